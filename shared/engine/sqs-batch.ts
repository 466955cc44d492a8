import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import { LeaseBusyError } from '../apply/index.js';
import type { QueueMessage } from '../model/index.js';

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
  /** A message failed (it is retried, then dead-lettered). */
  onError?: (messageId: string, err: unknown) => void;
  /** A message was handed back without failing: not started for lack of time, or its target busy. */
  onDeferred?: (messageId: string, reason: string) => void;
}

export const BATCH_DEFAULTS = { reserveMs: 5_000, minStartMs: 15_000, busyDelaySeconds: 30, retryDelaySeconds: 15, maxRetryDelaySeconds: 900 } as const;

/**
 * Processes an SQS FIFO batch in order and reports partial failures. Each message gets a deadline
 * of its own from the time left when it starts. Once a message of a group is not done, the later
 * messages of that group in the batch are handed back too (without running), so a target never
 * sees its revisions out of order. Every message not done is made visible again after a delay of
 * its own, rather than the queue's visibility timeout: at once when it was not started, shortly
 * when its target's lease was busy, with backoff by receive count when it failed.
 */
export async function processSqsBatch(records: readonly SQSRecord[], handle: (msg: QueueMessage, signal: AbortSignal) => Promise<void>, opts: BatchOptions): Promise<SQSBatchResponse> {
  const o = { ...BATCH_DEFAULTS, ...opts };
  const stopped = new Set<string>();
  const delays = new Map<number, SQSRecord[]>();
  const notDone = (record: SQSRecord, delaySeconds: number): void => {
    stopped.add(record.attributes.MessageGroupId ?? record.messageId);
    delays.set(delaySeconds, [...(delays.get(delaySeconds) ?? []), record]);
  };
  for (const record of records) {
    const left = o.remainingMs();
    if (stopped.has(record.attributes.MessageGroupId ?? record.messageId)) {
      opts.onDeferred?.(record.messageId, 'an earlier message of its group was not done');
      notDone(record, 0);
    } else if (left < o.minStartMs) {
      opts.onDeferred?.(record.messageId, `${left} ms left in this invocation; not started`);
      notDone(record, 0);
    } else {
      try {
        await handle(JSON.parse(record.body) as QueueMessage, AbortSignal.timeout(Math.max(1, Math.floor(left - o.reserveMs))));
      } catch (err) {
        if (err instanceof LeaseBusyError) {
          opts.onDeferred?.(record.messageId, err.message);
          notDone(record, o.busyDelaySeconds);
        } else {
          opts.onError?.(record.messageId, err);
          const received = Number(record.attributes.ApproximateReceiveCount) || 1;
          notDone(record, Math.min(o.maxRetryDelaySeconds, o.retryDelaySeconds * 2 ** (received - 1)));
        }
      }
    }
  }
  for (const [delay, list] of delays) {
    await opts.returnToQueue?.(list, delay).catch((err: unknown) => opts.onError?.(list.map((r) => r.messageId).join(','), err));
  }
  return { batchItemFailures: [...delays.values()].flat().map((r) => ({ itemIdentifier: r.messageId })) };
}
