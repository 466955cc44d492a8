import type { SQSRecord } from 'aws-lambda';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { LeaseBusyError } from '../state/index.js';
import { memoryTurn, type QueueMessage } from '../model/index.js';
import { processSqsBatch } from './sqs-batch.js';

const record = (id: string, group: string, receives = 1): SQSRecord =>
  ({
    messageId: id,
    receiptHandle: `rh-${id}`,
    body: JSON.stringify({ type: 'reload', cluster: id, bucket: 0 }),
    attributes: { MessageGroupId: group, ApproximateReceiveCount: String(receives) },
  }) as unknown as SQSRecord;

/** Runs a batch whose messages behave as `plan` says (by message id), on a clock that advances per message. */
async function run(
  records: SQSRecord[],
  plan: Record<string, 'ok' | 'fail' | 'busy' | 'slow'>,
  remainingAtStart = 60_000,
  requeued?: QueueMessage[],
) {
  let remaining = remainingAtStart;
  const ran: string[] = [];
  const returned: Array<[string[], number]> = [];
  const deferred: string[] = [];
  const res = await processSqsBatch(
    records,
    (msg, signal) => {
      const id = (msg as { cluster: string }).cluster;
      ran.push(id);
      expect(signal.aborted).toBe(false);
      remaining -= plan[id] === 'slow' ? 50_000 : 1_000;
      if (plan[id] === 'fail') return Promise.reject(new Error('apiserver unreachable'));
      if (plan[id] === 'busy') return Promise.reject(new LeaseBusyError(id, 'someone', '2026-01-01T00:00:00Z'));
      return Promise.resolve();
    },
    {
      remainingMs: () => remaining,
      returnToQueue: (list, seconds) =>
        Promise.resolve(void returned.push([list.map((r) => r.receiptHandle), seconds])),
      onDeferred: (id) => void deferred.push(id),
      ...(requeued ? { requeue: (m: readonly QueueMessage[]) => Promise.resolve(void requeued.push(...m)) } : {}),
    },
  );
  return { failures: res.batchItemFailures.map((f) => f.itemIdentifier), ran, returned, deferred };
}

describe('an SQS FIFO batch, message by message', () => {
  it('all done: nothing is handed back', async () => {
    expect(await run([record('a', 'g1'), record('b', 'g2')], { a: 'ok', b: 'ok' })).toEqual({
      failures: [],
      ran: ['a', 'b'],
      returned: [],
      deferred: [],
    });
  });

  it('a failure hands back its message (backoff by receive count) and the rest of its group, not other groups', async () => {
    const out = await run([record('a', 'g1', 3), record('b', 'g1'), record('c', 'g2')], {
      a: 'fail',
      b: 'ok',
      c: 'ok',
    });
    expect(out.ran).toEqual(['a', 'c']);
    expect(out.failures).toEqual(['a', 'b']);
    expect(out.returned).toEqual([
      [['rh-a'], 60],
      [['rh-b'], 0],
    ]); // 15 s doubled per earlier receive
  });

  it('a busy target lease is not a failure: handed back with a short delay', async () => {
    const out = await run([record('a', 'g1'), record('b', 'g2')], { a: 'busy', b: 'ok' });
    expect(out.failures).toEqual(['a']);
    expect(out.deferred).toEqual(['a']);
    expect(out.returned).toEqual([[['rh-a'], 30]]);
  });

  it('a message that outlasts the invocation: the later ones are not started and become visible again at once', async () => {
    const out = await run(
      [record('a', 'g1'), record('b', 'g2'), record('c', 'g3')],
      { a: 'slow', b: 'ok', c: 'ok' },
      60_000,
    );
    expect(out.ran).toEqual(['a']);
    expect(out.failures).toEqual(['b', 'c']);
    expect(out.returned).toEqual([[['rh-b', 'rh-c'], 0]]);
  });

  it('with requeue, deferred messages (busy, not started, behind them) are sent again as copies and are not failures; failed ones still are', async () => {
    const requeued: QueueMessage[] = [];
    const out = await run(
      [record('a', 'g1'), record('b', 'g1'), record('c', 'g2'), record('d', 'g3')],
      { a: 'busy', b: 'ok', c: 'fail', d: 'ok' },
      60_000,
      requeued,
    );
    expect(out.ran).toEqual(['a', 'c', 'd']);
    expect(requeued).toEqual([
      { type: 'reload', cluster: 'a', bucket: 0, deferrals: 1 },
      { type: 'reload', cluster: 'b', bucket: 0, deferrals: 1 },
    ]);
    expect(out.failures).toEqual(['c']);
    expect(out.returned).toEqual([[['rh-c'], 15]]);
  });

  it('a message deferred 100 times is handed back as before (it counts toward the dead-letter queue)', async () => {
    const requeued: QueueMessage[] = [];
    const tired = {
      ...record('a', 'g1'),
      body: JSON.stringify({ type: 'reload', cluster: 'a', bucket: 0, deferrals: 100 }),
    } as SQSRecord;
    const out = await run([tired], { a: 'busy' }, 60_000, requeued);
    expect(requeued).toEqual([]);
    expect(out.failures).toEqual(['a']);
    expect(out.returned).toEqual([[['rh-a'], 30]]);
  });

  it('backoff of a failing message is capped at 15 minutes', async () => {
    expect((await run([record('a', 'g1', 12)], { a: 'fail' })).returned).toEqual([[['rh-a'], 900]]);
  });
});

describe('an SQS FIFO batch, several groups at once', () => {
  /** Runs a batch with `concurrency`; each message does what `plan` says, then ends when released. */
  async function concurrent(
    records: SQSRecord[],
    plan: Record<string, { documents?: number; fail?: boolean; ms?: number }>,
    concurrency = 4,
  ) {
    const log: string[] = [];
    let now = 0;
    let peak = 0;
    const res = await processSqsBatch(
      records,
      async (msg) => {
        const id = (msg as { cluster: string }).cluster;
        const p = plan[id] ?? {};
        log.push(`start ${id}`);
        peak = Math.max(peak, ++now);
        if (p.documents !== undefined) (await memoryTurn())(p.documents);
        await sleep(p.ms ?? 100);
        now--;
        log.push(`end ${id}`);
        if (p.fail) throw new Error('apiserver unreachable');
      },
      { remainingMs: () => 600_000, concurrency, heldDocuments: 100 },
    );
    return { log, peak, failures: res.batchItemFailures.map((f) => f.itemIdentifier) };
  }

  it('messages of different groups that have rendered little run together, up to the concurrency', async () => {
    const recs = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => record(id, `g-${id}`));
    const out = await concurrent(recs, Object.fromEntries(recs.map((r) => [r.messageId, { documents: 10 }])), 4);
    expect(out.peak).toBe(4);
    expect(out.log.slice(0, 4)).toEqual(['start a', 'start b', 'start c', 'start d']);
    expect(out.failures).toEqual([]);
  });

  it('one group never runs two messages at once, and keeps its order', async () => {
    const recs = [record('a', 'g1'), record('b', 'g1'), record('c', 'g2'), record('d', 'g1')];
    const out = await concurrent(recs, {
      a: { documents: 1 },
      b: { documents: 1 },
      c: { documents: 1 },
      d: { documents: 1 },
    });
    const g1 = out.log.filter((l) => / [abd]$/.test(l));
    expect(g1).toEqual(['start a', 'end a', 'start b', 'end b', 'start d', 'end d']);
    expect(out.log.indexOf('start c')).toBeLessThan(out.log.indexOf('end a'));
  });

  it('nothing starts beside a message that has not rendered (its memory is not known yet)', async () => {
    const out = await concurrent([record('a', 'g1'), record('b', 'g2')], { a: {}, b: { documents: 1 } });
    expect(out.log).toEqual(['start a', 'end a', 'start b', 'end b']);
    expect(out.peak).toBe(1);
  });

  it('nothing starts beside messages that hold more than heldDocuments together', async () => {
    const out = await concurrent([record('a', 'g1'), record('b', 'g2'), record('c', 'g3')], {
      a: { documents: 60, ms: 200 },
      b: { documents: 60, ms: 200 },
      c: { documents: 1 },
    });
    // a and b (60 each, 120 together) run at once; c waits until one has ended.
    expect(out.log.slice(0, 2)).toEqual(['start a', 'start b']);
    expect(out.log.indexOf('start c')).toBeGreaterThan(out.log.indexOf('end a'));
    expect(out.peak).toBe(2);
  });

  it('a failure stops the rest of its group only; the other groups go on', async () => {
    const out = await concurrent([record('a', 'g1'), record('b', 'g1'), record('c', 'g2')], {
      a: { documents: 1, fail: true },
      b: { documents: 1 },
      c: { documents: 1 },
    });
    expect(out.log).not.toContain('start b');
    expect(out.log).toContain('end c');
    expect(out.failures.sort()).toEqual(['a', 'b']);
  });
});
