import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import type { QueueMessage } from '../model/index.js';

/**
 * Processes an SQS FIFO batch in order and reports partial failures. Once a message of a group
 * fails, the later messages of that group in the batch are failed too (without running), so a
 * target never sees its revisions out of order.
 */
export async function processSqsBatch(records: readonly SQSRecord[], handle: (msg: QueueMessage) => Promise<void>, onError?: (msg: string, err: unknown) => void): Promise<SQSBatchResponse> {
  const failedGroups = new Set<string>();
  const failures: string[] = [];
  for (const record of records) {
    const group = record.attributes.MessageGroupId ?? record.messageId;
    if (failedGroups.has(group)) {
      failures.push(record.messageId);
      continue;
    }
    try {
      await handle(JSON.parse(record.body) as QueueMessage);
    } catch (err) {
      onError?.(record.messageId, err);
      failedGroups.add(group);
      failures.push(record.messageId);
    }
  }
  return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
}
