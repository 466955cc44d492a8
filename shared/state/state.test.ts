import { describe, expect, it } from 'vitest';
import { isExpired } from './lease.js';
import {
  STATE_LIMIT,
  StateTooLargeError,
  StateUnreadableError,
  decodeState,
  encodeState,
  type TargetState,
} from './state.js';

const state = (n: number): TargetState => ({
  inventory: Array.from({ length: n }, (_, i) => ({
    id: `ns_cm-${i}__ConfigMap`,
    v: 'v1',
    h: (i * 40503).toString(16).padStart(32, 'a'),
  })),
  history: [],
  repo: 'https://git.example/acme/gitops.git',
  prune: false,
  lastApplied: { ref: 'refs/heads/main', sha: 'a'.repeat(40) },
});

describe('the state ConfigMap encoding', () => {
  it.each([
    [0, false],
    [100, false],
    [5_000, true], // past 256 KiB of JSON: gzipped into binaryData
  ])('%i objects round-trip (compressed: %s)', (n, compressed) => {
    const cm = encodeState('t', state(n));
    expect('binaryData' in cm).toBe(compressed);
    const back = decodeState('t', { ...cm, metadata: { ...cm.metadata, resourceVersion: '42' } });
    expect(back).toEqual({
      ...state(n),
      resourceVersion: '42',
      approvals: undefined,
      gate: undefined,
      lastHealthy: undefined,
      pin: undefined,
      removed: undefined,
    });
  });

  it('labels name the target and a hash of its repository; the resourceVersion read is the precondition written', () => {
    const cm = encodeState('web', { ...state(1), resourceVersion: '7' });
    expect(cm.metadata.labels).toEqual({
      'app.kubernetes.io/managed-by': 'tidegate',
      'tidegate.dev/state-of': 'web',
      'tidegate.dev/repo': expect.stringMatching(/^[0-9a-f]{16}$/),
    });
    expect(cm.metadata.labels?.['tidegate.dev/repo']).toBe(
      encodeState('x', { ...state(0), repo: 'https://GIT.example/acme/gitops/' }).metadata.labels?.[
        'tidegate.dev/repo'
      ],
    );
    expect(cm.metadata.resourceVersion).toBe('7');
  });

  it('a state too large for one ConfigMap is refused with the counts', () => {
    const huge: TargetState = {
      ...state(0),
      inventory: Array.from({ length: 100_000 }, (_, i) => ({
        id: `ns_${i}__ConfigMap`,
        v: 'v1',
        h: Math.random().toString(16).slice(2).padEnd(32, '7'),
      })),
    };
    expect(() => encodeState('big', huge)).toThrow(StateTooLargeError);
    expect(() => encodeState('big', huge)).toThrow(
      new RegExp(
        `^the state of target big \\(100000 objects\\) takes \\d+ bytes compressed, more than the ${STATE_LIMIT} bytes`,
      ),
    );
  });

  it.each([
    ['history', { history: '[{' }],
    ['pin', { inventory: '[]', pin: 'nope' }],
  ])('unreadable %s is an error, never an empty state', (key, data) => {
    expect(() => decodeState('t', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data })).toThrow(
      StateUnreadableError,
    );
    expect(() => decodeState('t', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data })).toThrow(
      `key ${key}`,
    );
  });
});

describe('lease expiry', () => {
  const now = new Date('2026-11-30T12:00:00Z');
  it.each([
    [
      'renewed 10 s ago, 60 s lease',
      { holderIdentity: 'a', leaseDurationSeconds: 60, renewTime: '2026-11-30T11:59:50.000000Z' },
      0,
      false,
    ],
    [
      'renewed 61 s ago, clocks agree',
      { holderIdentity: 'a', leaseDurationSeconds: 60, renewTime: '2026-11-30T11:58:59.000000Z' },
      0,
      true,
    ],
    [
      'renewed 61 s ago, 120 s of skew allowed (the default)',
      { holderIdentity: 'a', leaseDurationSeconds: 60, renewTime: '2026-11-30T11:58:59.000000Z' },
      undefined,
      false,
    ],
    [
      'renewed 181 s ago, 120 s of skew allowed',
      { holderIdentity: 'a', leaseDurationSeconds: 60, renewTime: '2026-11-30T11:56:59.000000Z' },
      undefined,
      true,
    ],
    ['no holder', { leaseDurationSeconds: 60, renewTime: '2026-11-30T11:59:59.000000Z' }, undefined, true],
    [
      'acquired, never renewed, within the default 60 s',
      { holderIdentity: 'a', acquireTime: '2026-11-30T11:59:30.000000Z' },
      0,
      false,
    ],
    ['no times at all', { holderIdentity: 'a' }, undefined, true],
  ])('%s: expired %s', (_name, spec, skew, expired) => {
    expect(isExpired(spec, now, skew)).toBe(expired);
  });
});
