import { fork, type ChildProcess } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { APIGatewayProxyEventV2, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { parse, type Tags } from 'yaml';
import type { MotoInfo } from './moto.js';

/**
 * Built bundles run the way Lambda runs them: one child process per function (its own memory,
 * /tmp and environment), the module named by the handler string in serverless.yml imported once,
 * the environment serverless.yml sets (settings, queue URL, log level), the kubectl/helm layer
 * where the function has it, and the credentials of the function's own principal.
 */

const root = new URL('..', import.meta.url).pathname;

/** Where AWS is (moto) and as whom the SDK calls it. */
export type AwsAccess = Pick<MotoInfo, 'endpoint' | 'region' | 'credentials'>;
const intrinsic = (tag: string) => ({
  tag: `!${tag}`,
  resolve: (value: unknown) => ({ [tag === 'Ref' ? 'Ref' : `Fn::${tag}`]: value }),
});
const customTags: Tags = ['Ref', 'GetAtt', 'Sub', 'Split', 'Join'].flatMap((t) => [
  { ...intrinsic(t), collection: 'seq' as const },
  { ...intrinsic(t), collection: 'map' as const },
  intrinsic(t),
]);

interface FunctionDef {
  handler: string;
  timeout?: number | string;
  memorySize?: number;
  layers?: unknown[];
  environment?: Record<string, unknown>;
}

interface Serverless {
  params: { default: Record<string, string | number> };
  provider: { timeout: number; memorySize: number; environment: Record<string, unknown> };
  functions: Record<string, FunctionDef>;
}

export const serverlessYml = (): Serverless =>
  parse(readFileSync(join(root, 'serverless.yml'), 'utf8'), { customTags }) as Serverless;

const param = (value: unknown, params: Record<string, string | number>): unknown =>
  typeof value === 'string'
    ? value.replace(/\$\{param:(\w+)\}/, (_m, name: string) => String(params[name] ?? ''))
    : value;

export interface LambdaFunction {
  /** The function's name in serverless.yml (githubWebhook, syncWorker, ...). */
  name: string;
  timeoutMs: number;
  /** Invokes the handler as Lambda does; a thrown error is rejected with its message. */
  invoke<T = unknown>(event: unknown): Promise<T>;
  /** Everything the function wrote (its CloudWatch log). */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** The deploy-time settings (TIDEGATE_SETTINGS, the `settings` parameter). */
  settings: Record<string, unknown>;
  /** The stack's queue (TIDEGATE_QUEUE_URL: !Ref SyncQueue). */
  queueUrl: string;
  /** The AWS endpoint and the credentials of the function's principal. */
  aws: AwsAccess;
  /** kubectl and helm, for the functions serverless.yml gives the kubectl/helm layer. */
  tools: { kubectl: string; helm: string };
}

/** Starts the built bundle of a function of serverless.yml (by its directory: github-webhook, sync-worker, ...). */
export async function startFunction(dir: string, opts: StartOptions): Promise<LambdaFunction> {
  const sls = serverlessYml();
  const entry = Object.entries(sls.functions).find(([, f]) => f.handler.startsWith(`dist/functions/${dir}/`));
  if (!entry) throw new Error(`serverless.yml has no function whose handler is in dist/functions/${dir}`);
  const [name, def] = entry;
  const dot = def.handler.lastIndexOf('.');
  const file = join(root, `${def.handler.slice(0, dot)}.mjs`);
  const timeoutMs = Number(param(def.timeout ?? sls.provider.timeout, sls.params.default)) * 1000;
  const { aws } = opts;
  const functionName = `tidegate-test-${name}`;
  const environment: Record<string, unknown> = { ...sls.provider.environment, ...def.environment };
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    HOME: mkdtempSync(join(tmpdir(), `lambda-home-${name}-`)),
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_REGION: aws.region,
    AWS_ENDPOINT_URL: aws.endpoint,
    AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
    // Lambda's /tmp: a directory of the function's own.
    TIDEGATE_CACHE: mkdtempSync(join(tmpdir(), `lambda-tmp-${name}-`)),
  };
  for (const [key, value] of Object.entries(environment)) {
    if (key === 'TIDEGATE_SETTINGS') env[key] = JSON.stringify(opts.settings);
    else if (key === 'TIDEGATE_QUEUE_URL') env[key] = opts.queueUrl;
    else if (typeof value === 'string') env[key] = String(param(value, sls.params.default));
  }
  // The layer serverless.yml attaches (kubectl and helm under /opt in Lambda): the same binaries.
  if (def.layers?.length) Object.assign(env, { TIDEGATE_KUBECTL: opts.tools.kubectl, TIDEGATE_HELM: opts.tools.helm });
  const child: ChildProcess = fork(
    join(root, 'devenv', 'lambda-child.mjs'),
    [file, def.handler.slice(dot + 1), functionName, String(def.memorySize ?? sls.provider.memorySize)],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready: ${output}`)));
  });
  let next = 0;
  return {
    name,
    timeoutMs,
    invoke: <T>(event: unknown) =>
      new Promise<T>((resolve, reject) => {
        const id = ++next;
        const onMessage = (m: { id?: number; result?: T; error?: { message: string } }): void => {
          if (m.id !== id) return;
          child.off('message', onMessage);
          if (m.error) reject(new Error(m.error.message));
          else resolve(m.result as T);
        };
        child.on('message', onMessage);
        child.send({ id, event, timeoutMs });
      }),
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill();
      await exited;
    },
  };
}

/** A FIFO queue as serverless.yml declares the stack's SyncQueue. */
export async function createFifoQueue(aws: AwsAccess, name: string): Promise<string> {
  const out = await new SQSClient(aws).send(
    new CreateQueueCommand({ QueueName: `${name}.fifo`, Attributes: { FifoQueue: 'true', VisibilityTimeout: '30' } }),
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

/** Up to 10 visible messages of a queue (without waiting), as the records Lambda would get. */
export async function receiveRecords(sqs: SQSClient, queueUrl: string): Promise<SQSRecord[]> {
  const out = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 0,
      MessageSystemAttributeNames: ['All'],
    }),
  );
  return (out.Messages ?? []).map(sqsRecord);
}

/**
 * One delivery as Lambda's SQS event source mapping makes it: receive a batch (up to 10), invoke
 * the handler, delete what it did not report as a batch item failure (those stay in flight until
 * their visibility timeout, or until the handler changed it). Returns the batch's message ids and
 * the failures; an empty batch when nothing was visible.
 */
export async function deliverBatch(
  queueUrl: string,
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>,
  aws: AwsAccess,
): Promise<{ received: string[]; failures: string[] }> {
  const sqs = new SQSClient(aws);
  const records = await receiveRecords(sqs, queueUrl);
  if (records.length === 0) return { received: [], failures: [] };
  const res = await handler({ Records: records });
  const failures = res.batchItemFailures.map((f) => f.itemIdentifier);
  for (const r of records)
    if (!failures.includes(r.messageId))
      await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: r.receiptHandle }));
  return { received: records.map((r) => r.messageId), failures };
}

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
