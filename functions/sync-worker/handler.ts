import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { lambdaHandler, processSqsBatch } from '../../shared/aws/index.js';
import { errorMessage } from '../../shared/model/index.js';
import { handleMessage } from '../../shared/usecases/index.js';

/** SQS FIFO consumer: runs each message through the use cases with a deadline of its own, reports partial batch failures. */
export const handler = lambdaHandler(
  'tidegate-sync-worker',
  async (event: SQSEvent, rt, context): Promise<SQSBatchResponse> => {
    // Target state is written by one holder at a time: this invocation, named for the logs of the others.
    const engine = {
      ...(await rt.git()).engine,
      lease: { holder: `lambda:${context.functionName}:${context.awsRequestId}`, waitMs: 20_000 },
    };
    return processSqsBatch(
      event.Records,
      async (msg, signal) => {
        const outcome = await handleMessage(engine, msg, rt.queue, signal);
        rt.logger.info('message handled', {
          type: msg.type,
          outcome: outcome.kind,
          ...(outcome.kind === 'ignored' ? { reason: outcome.reason } : {}),
        });
      },
      {
        remainingMs: () => context.getRemainingTimeInMillis(),
        returnToQueue: (records, seconds) =>
          rt.queue.returnToQueue(
            records.map((r) => r.receiptHandle),
            seconds,
          ),
        requeue: (messages) => rt.queue.send(messages),
        onError: (id, err) => rt.logger.error('message failed', { messageId: id, error: errorMessage(err) }),
        onDeferred: (id, reason) => rt.logger.info('message handed back to the queue', { messageId: id, reason }),
      },
    );
  },
);
