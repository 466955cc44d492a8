import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { lambdaHandler, processSqsBatch } from '../../shared/aws/index.js';
import { errorMessage } from '../../shared/model/index.js';
import type { NotifyEvent } from '../../shared/notify/index.js';
import {
  PipelineRecorder,
  deadLetterEvent,
  handleMessage,
  notify,
  recordPipeline,
} from '../../shared/usecases/index.js';

/** SQS FIFO consumer: runs each message through the use cases with a deadline of its own, reports partial batch failures. */
export const handler = lambdaHandler(
  'tidegate-sync-worker',
  async (event: SQSEvent, rt, context): Promise<SQSBatchResponse> => {
    // Target state is written by one holder at a time: this invocation, named for the logs of the others.
    const engine = {
      ...(await rt.git()).engine,
      lease: { holder: `lambda:${context.functionName}:${context.awsRequestId}`, waitMs: 20_000 },
    };
    const dead: NotifyEvent[] = [];
    // What this batch did, for the status page's pipeline panel (recorded on the clusters at the end).
    const pipeline = new PipelineRecorder();
    const response = await processSqsBatch(
      event.Records,
      async (msg, signal, record) => {
        const sentAt = new Date(Number(record.attributes.SentTimestamp) || Date.now());
        const outcome = await handleMessage(engine, msg, rt.queue, signal).catch((err: unknown) => {
          pipeline.failed(msg, sentAt, err);
          throw err;
        });
        pipeline.handled(msg, sentAt, outcome);
        rt.logger.info('message handled', {
          type: msg.type,
          outcome: outcome.kind,
          ...(outcome.kind === 'ignored' ? { reason: outcome.reason } : {}),
          // A push's fan-out names the targets it found, and those it synced itself.
          ...(outcome.kind === 'fanned-out' ? { targets: outcome.targets } : {}),
          ...(outcome.kind === 'synced' && outcome.fannedOut
            ? { targets: outcome.fannedOut, synced: (outcome.results ?? [outcome.result]).map((r) => r.target) }
            : {}),
        });
      },
      {
        remainingMs: () => context.getRemainingTimeInMillis(),
        // Targets' syncs wait on the apiserver and git much of their time: other targets' go on meanwhile.
        concurrency: rt.settings.worker.concurrency,
        heldDocuments: Math.floor(rt.settings.render.maxDocuments / 2),
        returnToQueue: (records, seconds) =>
          rt.queue.returnToQueue(
            records.map((r) => r.receiptHandle),
            seconds,
          ),
        requeue: (messages) => rt.queue.send(messages),
        onError: (id, err) => {
          rt.metrics.count('MessagesFailed');
          rt.logger.error('message failed', { messageId: id, error: errorMessage(err) });
        },
        onDeferred: (id, reason) => {
          rt.metrics.count('MessagesDeferred');
          rt.logger.info('message handed back to the queue', { messageId: id, reason });
        },
        maxReceives: rt.deadLetter.maxReceives,
        onDeadLettered: (record, msg, why) => {
          rt.metrics.count('MessagesDeadLettered');
          rt.logger.error('message dead-lettered', { messageId: record.messageId, error: errorMessage(why) });
          dead.push(deadLetterEvent(msg, why));
        },
      },
    );
    // Told once the batch is done, each within the notifier's budget (kept in the batch's reserve).
    await notify(engine, dead);
    await recordPipeline(engine, Object.keys(rt.settings.clusters), pipeline.heartbeat(), {
      timeoutMs: Math.min(3_000, Math.max(1, context.getRemainingTimeInMillis() - 1_000)),
    });
    return response;
  },
);
