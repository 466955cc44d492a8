import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { parse, type Tags } from 'yaml';
import { testEnv } from './env.js';

/**
 * Built bundles run the way Lambda runs them: one child process per function (its own memory,
 * /tmp and environment), the module named by the handler string in serverless.yml imported once,
 * the environment serverless.yml sets (settings, queue URL, log level), the kubectl/helm layer
 * where the function has it, and the credentials of the function's own principal.
 */

const root = new URL('../..', import.meta.url).pathname;
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
  /** The AWS endpoint and the credentials of the function's principal (default: the test environment's moto). */
  aws?: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
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
  const aws = opts.aws ?? testEnv().aws;
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
  if (def.layers?.length)
    Object.assign(env, { TIDEGATE_KUBECTL: testEnv().tools.kubectl, TIDEGATE_HELM: testEnv().tools.helm });
  const child: ChildProcess = fork(
    join(root, 'test', 'helpers', 'lambda-child.mjs'),
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

/** The SQS event source mapping's delivery to a started function (see deliverBatch). */
export const asSqsHandler = (fn: LambdaFunction) => (event: SQSEvent) => fn.invoke<SQSBatchResponse>(event);
