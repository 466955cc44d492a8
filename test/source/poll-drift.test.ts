import { describe, expect, it } from 'vitest';
import type { QueueMessage } from '../../shared/model/index.js';
import { pollRepositories } from '../../shared/usecases/index.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';

/**
 * The poll runs every minute and asks for a drift pass of each repository once per drift interval;
 * SQS drops a repeated deduplication id for five minutes only, so the poll itself remembers what it
 * queued (on the real git server: one ls-remote per poll).
 */
describe('the poll queues one drift pass per repository and interval, and a moved branch at once', () => {
  const INTERVAL = 10 * 60_000;

  it('minute by minute over two intervals, the branch moving in the middle of one', async () => {
    const repo = await gitopsRepo('poll-drift');
    const first = await repo.commit({ 'apps/cm.yaml': configMap('a', { v: '1' }) });
    const sent = new Map<string, string>();
    const queued: QueueMessage[] = [];
    const queue = { send: (m: readonly QueueMessage[]) => Promise.resolve(void queued.push(...m)) };
    const tracked = [{ url: repo.url, branch: 'main', source: { url: repo.url } }];
    const pushesAt = async (minute: number): Promise<string[]> => {
      const before = queued.length;
      await pollRepositories(tracked, queue, { now: minute * 60_000, driftIntervalMs: INTERVAL, sent });
      return queued.slice(before).flatMap((m) => (m.type === 'push' ? [m.sha] : []));
    };
    let second = '';
    const seen: Record<number, string[]> = {};
    for (let minute = 0; minute < 20; minute++) {
      if (minute === 13) second = await repo.commit({ 'apps/cm.yaml': configMap('a', { v: '2' }) });
      seen[minute] = await pushesAt(minute);
    }
    // Once at the start of each interval, and at the minute the branch moved; never at minute 5 or 15.
    expect(Object.entries(seen).filter(([, shas]) => shas.length > 0)).toEqual([
      ['0', [first]],
      ['10', [first]],
      ['13', [second]],
    ]);
    // Without the memory (another process), the push is queued again: SQS's five minutes decide.
    await pollRepositories(tracked, queue, { now: 19 * 60_000, driftIntervalMs: INTERVAL });
    expect(queued.at(-1)).toMatchObject({ type: 'push', sha: second });
  });
});
