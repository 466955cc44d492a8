import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { handleMessage, lazyRuntime, processSqsBatch } from '../../shared/engine/index.js';

const runtime = lazyRuntime('tidegate-sync-worker');

/** SQS FIFO consumer: runs each message through the engine with a deadline of its own, reports partial batch failures. */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const rt = await runtime();
  // Target state is written by one holder at a time: this invocation, named for the logs of the others.
  const engine = { ...rt.engine, lease: { holder: `lambda:${context.functionName}:${context.awsRequestId}`, waitMs: 20_000 } };
  return processSqsBatch(
    event.Records,
    async (msg, signal) => {
      const outcome = await handleMessage(engine, msg, rt.queue, signal);
      rt.logger.info('message handled', { type: msg.type, outcome: outcome.kind, ...(outcome.kind === 'ignored' ? { reason: outcome.reason } : {}) });
    },
    {
      remainingMs: () => context.getRemainingTimeInMillis(),
      returnToQueue: (records, seconds) => rt.queue.returnToQueue(records.map((r) => r.receiptHandle), seconds),
      requeue: (messages) => rt.queue.send(messages),
      onError: (id, err) => rt.logger.error('message failed', { messageId: id, error: err instanceof Error ? err.message : String(err) }),
      onDeferred: (id, reason) => rt.logger.info('message handed back to the queue', { messageId: id, reason }),
    },
  );
}
