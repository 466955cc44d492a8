import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { testEnv, uniqueName } from './env.js';

export const awsConfig = () => {
  const { aws } = testEnv();
  return { endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials };
};

/** Points the AWS SDK (and the runtime's deploy settings) of this test process at moto. */
export function useMotoEnv(settings: Record<string, unknown>): void {
  const { aws } = testEnv();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: aws.endpoint,
    AWS_REGION: aws.region,
    AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
    TIDEGATE_SETTINGS: JSON.stringify(settings),
  });
}

/** The test apiserver as a deploy-time cluster entry (endpoint, CA, an inline token). */
export function testClusterSetting(): { server: string; caData: string; token: { value: string } } {
  const { kube } = testEnv();
  return { server: kube.server, caData: Buffer.from(kube.caPem).toString('base64'), token: { value: kube.token } };
}

export async function createFifoQueue(prefix: string): Promise<string> {
  const sqs = new SQSClient(awsConfig());
  const out = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${uniqueName(prefix)}.fifo`,
      Attributes: { FifoQueue: 'true', VisibilityTimeout: '30' },
    }),
  );
  return out.QueueUrl ?? '';
}

/** An SQS message as the record Lambda's event source mapping hands the function. */
export function sqsRecord(m: Message): SQSRecord {
  return {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes: m.Attributes as unknown as SQSRecord['attributes'],
    messageAttributes: {},
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:eu-west-1:123456789012:queue.fifo',
    awsRegion: 'eu-west-1',
  };
}

/** Receives (and deletes) everything visible on a queue, as the SQS event Lambda would get. */
export async function drain(queueUrl: string): Promise<SQSRecord[]> {
  const sqs = new SQSClient(awsConfig());
  const records: SQSRecord[] = [];
  for (;;) {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 0,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    if (!out.Messages?.length) return records;
    for (const m of out.Messages) {
      records.push(sqsRecord(m));
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
    }
  }
}

export const sqsEvent = (records: SQSRecord[]): SQSEvent => ({ Records: records });

/**
 * One delivery as Lambda's SQS event source mapping makes it: receive a batch (up to 10), invoke
 * the handler, delete what it did not report as a batch item failure (those stay in flight until
 * their visibility timeout, or until the handler changed it). Returns the batch's message ids and
 * the failures; an empty batch when nothing was visible.
 */
export async function deliverBatch(
  queueUrl: string,
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>,
  aws: {
    endpoint: string;
    region: string;
    credentials: { accessKeyId: string; secretAccessKey: string };
  } = awsConfig(),
): Promise<{ received: string[]; failures: string[] }> {
  const sqs = new SQSClient(aws);
  const out = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['All'],
    }),
  );
  const records = (out.Messages ?? []).map(sqsRecord);
  if (records.length === 0) return { received: [], failures: [] };
  const res = await handler(sqsEvent(records));
  const failures = res.batchItemFailures.map((f) => f.itemIdentifier);
  for (const r of records)
    if (!failures.includes(r.messageId))
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: r.receiptHandle }));
  return { received: records.map((r) => r.messageId), failures };
}

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

export function signSha256(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** An API Gateway HTTP API (v2) event, as API Gateway delivers a webhook. */
export function apiEvent(
  path: string,
  headers: Record<string, string>,
  body: string,
  method = 'POST',
): APIGatewayProxyEventV2 {
  const [rawPath = path, rawQueryString = ''] = path.split('?');
  return {
    version: '2.0',
    routeKey: `${method} ${rawPath}`,
    rawPath,
    rawQueryString,
    headers,
    body,
    isBase64Encoded: false,
    requestContext: {
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'GitHub-Hookshot/test' },
      requestId: randomUUID(),
      routeKey: `${method} ${rawPath}`,
      stage: '$default',
      time: '',
      timeEpoch: Date.now(),
      accountId: '123456789012',
      apiId: 'test',
      domainName: 'test',
      domainPrefix: 'test',
    },
  };
}

/** Headers GitHub sends with a delivery. */
export function githubHeaders(
  event: string,
  body: string,
  secret: string,
  delivery: string = randomUUID(),
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': delivery,
    'x-hub-signature-256': signSha256(secret, body),
    'user-agent': 'GitHub-Hookshot/test',
  };
}

const examples = createRequire(import.meta.url)('@octokit/webhooks-examples/api.github.com/index.json') as Array<{
  name: string;
  examples: Array<Record<string, any>>;
}>;

/** GitHub's recorded push example (@octokit/webhooks-examples), pointed at our repository, branch and commit. */
export function pushPayload(repoUrl: string, sha: string, paths: string[]): string {
  const push = structuredClone(
    examples.find((e) => e.name === 'push')?.examples.find((p) => p['ref'] === 'refs/heads/master') ?? {},
  );
  push['ref'] = 'refs/heads/main';
  push['after'] = sha;
  push['repository'] = {
    ...push['repository'],
    clone_url: repoUrl,
    html_url: repoUrl.replace(/\.git$/, ''),
    full_name: 'local/gitops',
  };
  push['commits'] = [{ ...push['commits'][0], id: sha, added: [], removed: [], modified: paths }];
  return JSON.stringify(push);
}
