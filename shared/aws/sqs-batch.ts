import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { LeaseBusyError } from '../state/index.js';
import { MessageLoad, loadChanged, withLoad, type QueueMessage } from '../model/index.js';

export interface BatchOptions {
  /** Milliseconds left in the invocation (Lambda's context.getRemainingTimeInMillis). */
  remainingMs: () => number;
  /** Kept free at the end of the invocation: each message's deadline is this long before Lambda's. */
  reserveMs?: number;
  /** A message is not started with less than this left: it goes back to the queue untouched. */
  minStartMs?: number;
  /** Seconds until a message whose target's lease is busy is delivered again. */
  busyDelaySeconds?: number;
  /** Seconds until a failed message is delivered again: doubles with each receive, up to maxRetryDelaySeconds. */
  retryDelaySeconds?: number;
  maxRetryDelaySeconds?: number;
  /** Makes messages visible again after a delay (SQS ChangeMessageVisibility); without it they wait for the visibility timeout. */
  returnToQueue?: (records: readonly SQSRecord[], delaySeconds: number) => Promise<void>;
  /**
   * Sends copies of messages handed back without failing (busy, not started); the originals are
   * then done. Every receive counts toward the dead-letter queue's maxReceiveCount, so a message
   * deferred that way again and again would be dead-lettered though it never failed.
   */
  requeue?: (messages: readonly QueueMessage[]) => Promise<void>;
  /**
   * Messages of different groups handled at once (default 1: one after another). Another is started
   * only while every running one has rendered (model/load.ts) and together they hold at most
   * `heldDocuments`: what runs beside a render is known and small, so the messages of a batch never
   * hold much more memory than one may alone.
   */
  concurrency?: number;
  /** With concurrency: the documents the running messages may hold, together, for another to start. */
  heldDocuments?: number;
  /** A message deferred this often is counted as failed instead (default 100). */
  maxDeferrals?: number;
  /** A message failed (it is retried, then dead-lettered). */
  onError?: (messageId: string, err: unknown) => void;
  /** A message was handed back without failing: not started for lack of time, or its target busy. */
  onDeferred?: (messageId: string, reason: string) => void;
  /** The queue's maxReceiveCount: a message failed on that receive goes to the dead-letter queue next (at once, no backoff). */
  maxReceives?: number;
  /** A message failed for the last time: the queue moves it to the dead-letter queue. */
  onDeadLettered?: (record: SQSRecord, msg: QueueMessage | undefined, why: unknown) => void;
}

export const BATCH_DEFAULTS = {
  reserveMs: 10_000,
  minStartMs: 15_000,
  busyDelaySeconds: 30,
  retryDelaySeconds: 15,
  maxRetryDelaySeconds: 900,
  maxDeferrals: 100,
  concurrency: 1,
  heldDocuments: 5_000,
} as const;

/** A message's body, or undefined when it is not JSON. */
function parse(record: SQSRecord): QueueMessage | undefined {
  try {
    return JSON.parse(record.body) as QueueMessage;
  } catch {
    return undefined;
  }
}

/**
 * Processes an SQS FIFO batch in order and reports partial failures. Each message gets a deadline
 * of its own from the time left when it starts. Once a message of a group is not done, the later
 * messages of that group in the batch are not run either, so a target never sees its revisions
 * out of order. Messages not done are handed back: deferred ones (not started for lack of time, a
 * busy target lease, behind a deferred one) as copies sent to the queue (`requeue`), so they never
 * reach the dead-letter queue for having waited; failed ones (and those behind them) made visible
 * again with backoff by receive count. With `concurrency`, messages of different groups run at
 * once, each group's in order, the next to start always the first of the batch whose group is free.
 */
export async function processSqsBatch(
  records: readonly SQSRecord[],
  handle: (msg: QueueMessage, signal: AbortSignal, record: SQSRecord) => Promise<void>,
  opts: BatchOptions,
): Promise<SQSBatchResponse> {
  const o = { ...BATCH_DEFAULTS, ...opts };
  const state = new Map<string, 'deferred' | 'failed'>(); // by message group: why its later messages do not run
  const returned = new Map<number, SQSRecord[]>();
  const deferred: SQSRecord[] = [];
  const giveBack = (record: SQSRecord, seconds: number): void =>
    void returned.set(seconds, [...(returned.get(seconds) ?? []), record]);
  const defer = (record: SQSRecord, group: string, why: string, delaySeconds = 0): void => {
    opts.onDeferred?.(record.messageId, why);
    state.set(group, state.get(group) ?? 'deferred');
    if (opts.requeue && (parse(record)?.deferrals ?? 0) < o.maxDeferrals) deferred.push(record);
    else giveBack(record, delaySeconds);
  };
  const received = (record: SQSRecord): number => Number(record.attributes.ApproximateReceiveCount) || 1;
  /** Handed back not done; on its last receive, told as dead-lettered and handed back at once. */
  const notDone = (record: SQSRecord, why: unknown, delaySeconds: number): void => {
    const last = o.maxReceives !== undefined && received(record) >= o.maxReceives;
    if (last) opts.onDeadLettered?.(record, parse(record), why);
    giveBack(record, last ? 0 : delaySeconds);
  };
  const fail = (record: SQSRecord, group: string, err: unknown): void => {
    opts.onError?.(record.messageId, err);
    state.set(group, 'failed');
    notDone(record, err, Math.min(o.maxRetryDelaySeconds, o.retryDelaySeconds * 2 ** (received(record) - 1)));
  };
  const groupOf = (record: SQSRecord): string => record.attributes.MessageGroupId ?? record.messageId;
  /** Runs one message, or hands it back at once; resolves when it is done either way. */
  const run = async (record: SQSRecord, load: MessageLoad): Promise<void> => {
    const group = groupOf(record);
    const left = o.remainingMs();
    const before = state.get(group);
    if (before === 'failed') notDone(record, new Error('an earlier message of its group failed'), 0);
    else if (before === 'deferred') defer(record, group, 'an earlier message of its group was deferred');
    else if (left < o.minStartMs) defer(record, group, `${left} ms left in this invocation; not started`);
    else {
      try {
        await withLoad(load, () =>
          handle(
            JSON.parse(record.body) as QueueMessage,
            AbortSignal.timeout(Math.max(1, Math.floor(left - o.reserveMs))),
            record,
          ),
        );
      } catch (err) {
        if (err instanceof LeaseBusyError) defer(record, group, err.message, o.busyDelaySeconds);
        else fail(record, group, err);
      }
    }
  };
  const waiting = [...records];
  const running = new Map<string, { load: MessageLoad; done: Promise<void> }>(); // by group
  /** Whether another message may start beside the running ones: each has rendered, and they hold little. */
  const admits = (): boolean => {
    if (running.size === 0) return true;
    if (running.size >= o.concurrency) return false;
    let held = 0;
    for (const { load } of running.values()) {
      if (load.documents === undefined) return false;
      held += load.documents;
    }
    return held <= o.heldDocuments;
  };
  while (waiting.length > 0 || running.size > 0) {
    const next = waiting.findIndex((r) => !running.has(groupOf(r)));
    if (next >= 0 && admits()) {
      const [record] = waiting.splice(next, 1) as [SQSRecord];
      const group = groupOf(record);
      const load = new MessageLoad(o.heldDocuments);
      running.set(group, { load, done: run(record, load).finally(() => running.delete(group)) });
      continue;
    }
    // Wait for one to end, or (another may start once a render ends) for what they hold to change.
    const ends = [...running.values()].map((r) => r.done);
    await Promise.race(next >= 0 && running.size < o.concurrency ? [...ends, loadChanged()] : ends);
  }
  const copies = deferred.map((r) => ({ ...(parse(r) as QueueMessage), deferrals: (parse(r)?.deferrals ?? 0) + 1 }));
  if (copies.length > 0)
    await opts.requeue?.(copies).catch((err: unknown) => {
      opts.onError?.(deferred.map((r) => r.messageId).join(','), err);
      for (const r of deferred.splice(0)) giveBack(r, 0); // not re-sent: they stay in the queue
    });
  for (const [delay, list] of returned) {
    await opts
      .returnToQueue?.(list, delay)
      .catch((err: unknown) => opts.onError?.(list.map((r) => r.messageId).join(','), err));
  }
  return { batchItemFailures: [...returned.values()].flat().map((r) => ({ itemIdentifier: r.messageId })) };
}
