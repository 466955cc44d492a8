import type * as SqsModule from '@aws-sdk/client-sqs';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { TidegateError, awsCall, type QueueMessage } from '../model/index.js';
import { messageKeys, type Queue } from '../usecases/index.js';

type SqsSdk = typeof SqsModule;

/**
 * The queue on AWS: SQS FIFO, message group and deduplication id from messageKeys. The SDK is
 * loaded on first send (about 80 ms of module loading a cold start need not pay when nothing is
 * enqueued: a refused webhook, a sync that returns nothing to the queue).
 */
export class SqsQueue implements Queue {
  private loaded: Promise<{ sdk: SqsSdk; sqs: SQSClient }> | undefined;

  /** @param client a client, or how to make one once the SDK is loaded */
  constructor(
    private readonly client: SQSClient | ((sdk: SqsSdk) => SQSClient),
    private readonly queueUrl: string,
  ) {}

  private load(): Promise<{ sdk: SqsSdk; sqs: SQSClient }> {
    const client = this.client;
    return (this.loaded ??= import('@aws-sdk/client-sqs').then((sdk) => ({
      sdk,
      sqs: typeof client === 'function' ? client(sdk) : client,
    })));
  }

  async send(messages: readonly QueueMessage[]): Promise<void> {
    const { sdk, sqs } = await this.load();
    for (let i = 0; i < messages.length; i += 10) {
      const batch = messages.slice(i, i + 10);
      const out = await awsCall(
        'sqs:SendMessage',
        'cannot enqueue',
        sqs.send(
          new sdk.SendMessageBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: batch.map((m, n) => {
              const { group, dedup } = messageKeys(m);
              return {
                Id: String(n),
                MessageBody: JSON.stringify(m),
                MessageGroupId: group,
                MessageDeduplicationId: dedup,
              };
            }),
          }),
        ),
      );
      if (out.Failed?.length)
        throw new TidegateError(
          'QueueFailed',
          `SQS refused ${out.Failed.length} message(s): ${out.Failed.map((f) => `${f.Code ?? ''} ${f.Message ?? ''}`.trim()).join('; ')}`,
        );
    }
  }

  /** Messages waiting in a queue of the same account (this one by default): ApproximateNumberOfMessages. */
  async depth(queueUrl = this.queueUrl): Promise<number> {
    const { sdk, sqs } = await this.load();
    const out = await awsCall(
      'sqs:GetQueueAttributes',
      'cannot read the queue',
      sqs.send(
        new sdk.GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
      ),
    );
    return Number(out.Attributes?.['ApproximateNumberOfMessages'] ?? 0);
  }

  /** Messages of a queue of the same account (this one by default): waiting (ApproximateNumberOfMessages, delayed ones included) and in flight (NotVisible). */
  async counts(queueUrl = this.queueUrl): Promise<{ waiting: number; inFlight: number }> {
    const { sdk, sqs } = await this.load();
    const out = await awsCall(
      'sqs:GetQueueAttributes',
      'cannot read the queue',
      sqs.send(
        new sdk.GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: [
            'ApproximateNumberOfMessages',
            'ApproximateNumberOfMessagesDelayed',
            'ApproximateNumberOfMessagesNotVisible',
          ],
        }),
      ),
    );
    const n = (
      k: 'ApproximateNumberOfMessages' | 'ApproximateNumberOfMessagesDelayed' | 'ApproximateNumberOfMessagesNotVisible',
    ): number => Number(out.Attributes?.[k] ?? 0);
    return {
      waiting: n('ApproximateNumberOfMessages') + n('ApproximateNumberOfMessagesDelayed'),
      inFlight: n('ApproximateNumberOfMessagesNotVisible'),
    };
  }

  /**
   * The pipeline panel's counts: the sync queue's messages and the dead-letter queue's (its
   * waiting messages: failed on every delivery). Throws when the dead-letter queue is not named.
   */
  async pipelineCounts(
    deadLetterUrl: string | undefined,
  ): Promise<{ waiting: number; inFlight: number; deadLettered: number }> {
    if (!deadLetterUrl)
      throw new TidegateError(
        'SettingsInvalid',
        "no dead-letter queue: TIDEGATE_DEAD_LETTER_QUEUE_URL (the stack's SyncDeadLetterQueue) is not set",
      );
    const [main, dead] = await Promise.all([this.counts(), this.counts(deadLetterUrl)]);
    return { ...main, deadLettered: dead.waiting + dead.inFlight };
  }

  /** Received messages become visible again after `seconds` (instead of the queue's visibility timeout). */
  async returnToQueue(receiptHandles: readonly string[], seconds: number): Promise<void> {
    const { sdk, sqs } = await this.load();
    for (let i = 0; i < receiptHandles.length; i += 10) {
      const batch = receiptHandles.slice(i, i + 10);
      const out = await awsCall(
        'sqs:ChangeMessageVisibility',
        'cannot return messages to the queue',
        sqs.send(
          new sdk.ChangeMessageVisibilityBatchCommand({
            QueueUrl: this.queueUrl,
            Entries: batch.map((handle, n) => ({ Id: String(n), ReceiptHandle: handle, VisibilityTimeout: seconds })),
          }),
        ),
      );
      if (out.Failed?.length)
        throw new TidegateError(
          'QueueFailed',
          `SQS refused to return ${out.Failed.length} message(s): ${out.Failed.map((f) => `${f.Code ?? ''} ${f.Message ?? ''}`.trim()).join('; ')}`,
        );
    }
  }
}
