import { randomUUID } from 'node:crypto';
import { DeleteMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import {
  createFifoQueue as createQueue,
  deliverBatch as deliverFrom,
  receiveRecords,
  type AwsAccess,
} from '../../devenv/lambda.js';
import { testEnv, uniqueName } from './env.js';

export { BatchFailedError, apiEvent, githubHeaders, pushPayload, signSha256, sqsRecord } from '../../devenv/lambda.js';

export const awsConfig = () => {
  const { aws } = testEnv();
  return { endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials };
};

/** The environment that points the AWS SDK at the test environment's moto. */
export function motoEnv(): Record<string, string> {
  const { aws } = testEnv();
  return {
    AWS_ENDPOINT_URL: aws.endpoint,
    AWS_REGION: aws.region,
    AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
  };
}

/** Points the AWS SDK (and the runtime's deploy settings) of this test process at moto. */
export function useMotoEnv(settings: Record<string, unknown>): void {
  Object.assign(process.env, { ...motoEnv(), TIDEGATE_SETTINGS: JSON.stringify(settings) });
}

/** The test apiserver as a deploy-time cluster entry (endpoint, CA, an inline token). */
export function testClusterSetting(): { server: string; caData: string; token: { value: string } } {
  const { kube } = testEnv();
  return { server: kube.server, caData: Buffer.from(kube.caPem).toString('base64'), token: { value: kube.token } };
}

/** A FIFO queue on moto (visibility timeout 30 s unless given: how long a failed batch stays in flight). */
export const createFifoQueue = (prefix: string, opts: { visibilityTimeout?: number } = {}): Promise<string> =>
  createQueue(awsConfig(), uniqueName(prefix), opts);

/** One delivery of the SQS event source mapping (devenv's deliverBatch) on the test environment's moto. */
export const deliverBatch = (
  queueUrl: string,
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>,
  aws: AwsAccess = awsConfig(),
): Promise<{ received: string[]; failures: string[] }> => deliverFrom(queueUrl, handler, aws);

/**
 * The targets each push's fan-out synced itself (its first sync message, run in the same
 * invocation), in order, from the sync worker's log: one list per push, the chain it synced.
 */
export function syncedInFanOut(log: string): string[][] {
  return log.split('\n').flatMap((line) => {
    if (!line.includes('"message handled"')) return [];
    try {
      const o = JSON.parse(line) as { type?: string; synced?: string[] };
      return o.type === 'push' && Array.isArray(o.synced) ? [o.synced] : [];
    } catch {
      return [];
    }
  });
}

/** Receives (and deletes) everything visible on a queue, as the SQS event Lambda would get. */
export async function drain(queueUrl: string): Promise<SQSRecord[]> {
  const sqs = new SQSClient(awsConfig());
  const records: SQSRecord[] = [];
  for (;;) {
    const batch = await receiveRecords(sqs, queueUrl);
    if (batch.length === 0) return records;
    for (const r of batch) {
      records.push(r);
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: r.receiptHandle }));
    }
  }
}

export const sqsEvent = (records: SQSRecord[]): SQSEvent => ({ Records: records });

/** A Lambda context as the runtime passes it (the fields handlers and Powertools read). */
export const lambdaContext = (remainingMs = 60_000): Context =>
  ({
    functionName: 'tidegate-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:tidegate-test',
    memoryLimitInMB: '512',
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => remainingMs,
  }) as unknown as Context;
