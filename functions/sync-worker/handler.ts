import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { handleMessage, lazyRuntime, processSqsBatch } from '../../shared/engine/index.js';

const runtime = lazyRuntime('tidegate-sync-worker');

/** SQS FIFO consumer: runs each message through the engine, reports partial batch failures. */
export async function handler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const rt = await runtime();
  // Stop waiting 10 s before Lambda's deadline, so the result is still recorded.
  const signal = AbortSignal.timeout(Math.max(context.getRemainingTimeInMillis() - 10_000, 1_000));
  return processSqsBatch(
    event.Records,
    async (msg) => {
      const outcome = await handleMessage(rt.engine, msg, rt.queue, signal);
      rt.logger.info('message handled', { type: msg.type, outcome: outcome.kind, ...(outcome.kind === 'ignored' ? { reason: outcome.reason } : {}) });
    },
    (id, err) => rt.logger.error('message failed', { messageId: id, error: err instanceof Error ? err.message : String(err) }),
  );
}
