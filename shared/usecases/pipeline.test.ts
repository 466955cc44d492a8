import { describe, expect, it } from 'vitest';
import type { QueueMessage } from '../model/index.js';
import { LeaseBusyError } from '../state/index.js';
import { PipelineRecorder, messageSource } from './pipeline.js';

const push = (reason: 'push' | 'poll', webhook = reason === 'push'): QueueMessage => ({
  type: 'push',
  repo: 'https://git.example/acme/gitops.git',
  ref: 'refs/heads/main',
  sha: 'a'.repeat(40),
  paths: null,
  reason,
  ...(webhook ? { receivedAt: '2026-01-01T00:00:00Z' } : {}),
});

describe('PipelineRecorder', () => {
  it.each<[QueueMessage, string]>([
    [push('push'), 'github'],
    [push('poll'), 'poll'],
    [push('push', false), 'worker'], // an image update's commit, queued by the worker
    [{ type: 'reload', cluster: 'c', bucket: 1 }, 'poll'],
    [{ type: 'image', registry: 'r', repository: 'x', source: 'ecr' }, 'ecr'],
    [{ type: 'image', registry: 'r', repository: 'x', source: 'poll' }, 'worker'],
    [
      {
        type: 'sync',
        repo: 'r',
        target: 't',
        revision: { ref: 'refs/heads/main', sha: 'b'.repeat(40) },
        reason: 'push',
      },
      'worker',
    ],
  ])('the source of %j is %s', (msg, source) => {
    expect(messageSource(msg)).toBe(source);
  });

  it('keeps the newest of each: a webhook, a poll (and how it went), the last failure with credentials left out', () => {
    const rec = new PipelineRecorder(() => new Date('2026-01-01T00:10:00Z'));
    rec.handled(push('push'), new Date('2026-01-01T00:05:00Z'), { kind: 'fanned-out', targets: ['a', 'b'] });
    rec.handled(push('push'), new Date('2026-01-01T00:01:00Z'), { kind: 'fanned-out', targets: [] }); // older: kept out
    rec.handled(push('poll'), new Date('2026-01-01T00:06:00Z'), { kind: 'ignored', reason: 'nothing new' });
    rec.failed(
      push('poll'),
      new Date('2026-01-01T00:07:00Z'),
      new LeaseBusyError('t', 'someone', '2026-01-01T00:00:00Z'),
    );
    rec.failed(
      push('push'),
      new Date('2026-01-01T00:08:00Z'),
      new Error('cannot fetch https://bot:s3cret@git.example/x.git'),
    );
    const beat = rec.heartbeat();
    expect(beat.webhook).toMatchObject({ source: 'github', type: 'push', sentAt: '2026-01-01T00:08:00.000Z' });
    expect(beat.poll).toEqual({ at: '2026-01-01T00:06:00.000Z', outcome: 'push: ignored: nothing new' });
    expect(beat.error?.message).toBe('cannot fetch https://git.example/x.git');
    expect(JSON.stringify(beat)).not.toContain('s3cret');
  });
});
