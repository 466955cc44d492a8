import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../config/index.js';
import { isPreviewTarget, previewBase, previewTarget, type PreviewMessage } from '../model/index.js';
import { routeGithubEvent } from '../triggers/index.js';
import { previewSpecOf } from './preview-env.js';
import { messageKeys } from './queue.js';

const config = (preview: Record<string, unknown>) =>
  parseConfig(
    stringify({
      targets: [{ name: 'web', cluster: 'prod', targetNamespace: 'web', substitute: { HOST: 'www', A: '1' }, preview }],
    }),
  );

describe('preview names: never a target name, at most 63 characters, distinct', () => {
  const long = 'a'.repeat(60);
  it.each<[number, string, string]>([
    [7, 'web', 'pr-7.web'],
    [123456, 'podinfo', 'pr-123456.podinfo'],
  ])('pull request %i of %s is %s', (pr, target, name) => {
    expect(previewTarget(pr, target)).toBe(name);
    expect(isPreviewTarget(name)).toBe(true);
  });
  it('a long target name ends in a hash: still a label value, two targets never collide', () => {
    const a = previewTarget(1, `${long}-x`);
    const b = previewTarget(1, `${long}-y`);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).toMatch(/^pr-1\.a+-[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    expect(previewTarget(2, `${long}-x`)).not.toBe(a);
  });
  it.each(['web', 'pr-7-web', 'pr-7', 'pr-x.web'])('target name %s is no preview', (name) =>
    expect(isPreviewTarget(name)).toBe(false),
  );
  it('a preview name reads back as its target; a name previewTarget never gives reads as none', () => {
    expect(previewBase(previewTarget(7, 'web'))).toBe('web');
    expect(previewBase('pr-123456.podinfo')).toBe('podinfo');
    for (const name of ['web', 'pr-7-web', 'pr-07.web', 'pr-x.web', 'pr-7.']) expect(previewBase(name)).toBeUndefined();
  });
});

describe('preview settings in tidegate.yaml', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['a namespace without {{number}}', { namespace: 'preview-{{target}}' }, 'must contain {{number}}'],
    ['upper case in the namespace', { namespace: 'PR-{{number}}' }, 'lower case letters'],
    ['an unknown placeholder', { namespace: 'pr-{{number}}-{{branch}}' }, 'lower case letters'],
    ['a bad TTL', { ttl: 'soon' }, 'must be a duration'],
    ['maxConcurrent 0', { maxConcurrent: 0 }, 'maxConcurrent'],
    ['an unknown field', { enabled: true, namespaces: 'x' }, 'namespaces'],
  ])('%s is refused', (_, preview, message) => {
    expect(() => config({ enabled: true, ...preview })).toThrow(message);
  });

  it('the preview runs as its own target: its namespace, substitutions over the target’s, no gate, no dependencies', () => {
    const spec = config({
      enabled: true,
      substitute: { HOST: 'pr-{{number}}.example.com', T: '{{target}}' },
    }).targets[0]!;
    const derived = previewSpecOf(
      { ...spec, dependsOn: ['infra'], gate: { ...spec.gate, approvals: 2, manual: true } },
      spec.preview!,
      42,
    );
    expect(derived).toMatchObject({
      name: 'pr-42.web',
      targetNamespace: 'pr-42-web',
      substitute: { HOST: 'pr-42.example.com', A: '1', T: 'web' },
      dependsOn: [],
      prune: true,
      gate: { approvals: 0, manual: false, windows: [] },
      rollback: { onFailedHealth: false },
    });
    expect(spec.preview).toMatchObject({ ttl: '72h', maxConcurrent: 10, namespace: 'pr-{{number}}-{{target}}' });
  });
});

describe('routing: teardown on close and on /tidegate preview stop', () => {
  const repository = {
    clone_url: 'https://github.com/acme/gitops.git',
    full_name: 'acme/gitops',
  };
  const tracked = [{ url: 'https://github.com/acme/gitops.git', branch: 'main' }];
  const pr = (action: string, base = 'main') =>
    routeGithubEvent(
      {
        id: '1',
        event: 'pull_request',
        payload: {
          action,
          number: 5,
          repository,
          pull_request: { number: 5, head: { sha: 'f'.repeat(40) }, base: { ref: base } },
        },
      },
      tracked,
    );
  const comment = (body: string) =>
    routeGithubEvent(
      {
        id: '2',
        event: 'issue_comment',
        payload: {
          action: 'created',
          repository,
          issue: { number: 5, pull_request: {} },
          comment: { id: 77, body, user: { login: 'alice' } },
        },
      },
      tracked,
    );
  it.each<[string, () => ReturnType<typeof pr>, Partial<PreviewMessage> | undefined]>([
    ['closed (or merged)', () => pr('closed'), { stop: 'closed', pullRequest: 5, head: 'f'.repeat(40) }],
    ['closed into an untracked branch', () => pr('closed', 'dev'), undefined],
    ['edited', () => pr('edited'), undefined],
    [
      '/tidegate preview stop',
      () => comment('/tidegate preview stop'),
      { stop: 'command', requestedBy: 'alice', comment: 77 },
    ],
    [
      '/tidegate preview abc1234',
      () => comment('/tidegate preview abc1234'),
      { head: 'abc1234', requestedBy: 'alice' },
    ],
  ])('%s', (_, route, message) => {
    const routed = route();
    expect(routed.response.status).toBe(202);
    if (message) expect(routed.messages).toEqual([expect.objectContaining({ type: 'preview', ...message })]);
    else expect(routed.messages).toEqual([]);
  });

  it('a teardown, a preview of the same head and a woken preview are never dropped as repeats of each other; all share the pull request’s group', () => {
    const base: PreviewMessage = {
      type: 'preview',
      repo: 'https://github.com/acme/gitops.git',
      pullRequest: 5,
      head: 'abc',
    };
    const keys = [base, { ...base, stop: 'closed' as const }, { ...base, bucket: 1 }, { ...base, bucket: 2 }].map(
      messageKeys,
    );
    expect(new Set(keys.map((k) => k.dedup)).size).toBe(4);
    expect(new Set(keys.map((k) => k.group)).size).toBe(1);
  });
});
