import type { SQSClient } from '@aws-sdk/client-sqs';
import { ChangeMessageVisibilityBatchCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { TidegateError, awsCall, type QueueMessage } from '../model/index.js';
import { messageKeys, type Queue } from '../usecases/index.js';

/** The queue on AWS: SQS FIFO, message group and deduplication id from messageKeys. */
export class SqsQueue implements Queue {
  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
  ) {}

  async send(messages: readonly QueueMessage[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 10) {
      const batch = messages.slice(i, i + 10);
      const out = await awsCall(
        'sqs:SendMessage',
        'cannot enqueue',
        this.sqs.send(
          new SendMessageBatchCommand({
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

  /** Received messages become visible again after `seconds` (instead of the queue's visibility timeout). */
  async returnToQueue(receiptHandles: readonly string[], seconds: number): Promise<void> {
    for (let i = 0; i < receiptHandles.length; i += 10) {
      const batch = receiptHandles.slice(i, i + 10);
      const out = await awsCall(
        'sqs:ChangeMessageVisibility',
        'cannot return messages to the queue',
        this.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
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
