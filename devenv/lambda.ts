import { fork, type ChildProcess } from 'node:child_process';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { APIGatewayProxyEventV2, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { unzipSync } from 'fflate';
import { parse, type Tags } from 'yaml';
import type { MotoInfo } from './moto.js';
import { LAMBDA_NODE, lambdaNodePath, nodePackage } from './paths.js';

/**
 * Built bundles run the way Lambda runs them, with no more room than Lambda gives: one process per
 * function started with the Node of the function's runtime (nodejs22.x → Node 22) and the heap
 * flags Lambda's runtime sets, the module named by the handler string in serverless.yml imported
 * once (the init), one invocation at a time. The process and everything it spawns (helm, kubectl)
 * are measured while an invocation runs and killed as Lambda kills them: at the function's memory
 * size (their resident memory), at its timeout, and when its /tmp (TMPDIR, HOME and TIDEGATE_CACHE,
 * a directory of its own) outgrows its ephemeral storage. After a kill the next invocation starts
 * a new process (a cold start) with the same /tmp: Lambda does not clear /tmp when it resets an
 * execution environment. The code is laid out as the function's package (its bundle and the
 * settings file under a task root of its own, LAMBDA_TASK_ROOT and the working directory); the
 * environment is the one serverless.yml sets (the settings file, queue URL, log level), the
 * kubectl/helm layer where the function has it, and the credentials of its principal.
 */

const root = new URL('..', import.meta.url).pathname;

/** Where AWS is (moto) and as whom the SDK calls it. */
export type AwsAccess = Pick<MotoInfo, 'endpoint' | 'region' | 'credentials'>;
const intrinsic = (tag: string) => ({
  tag: `!${tag}`,
  resolve: (value: unknown) => ({ [tag === 'Ref' ? 'Ref' : `Fn::${tag}`]: value }),
});
/** serverless.yml's CloudFormation intrinsics (!Ref, !GetAtt, …) as plain objects. */
export const cfnTags: Tags = ['Ref', 'GetAtt', 'Sub', 'Split', 'Join', 'If', 'Not', 'Equals'].flatMap((t) => [
  { ...intrinsic(t), collection: 'seq' as const },
  { ...intrinsic(t), collection: 'map' as const },
  intrinsic(t),
]);

interface FunctionDef {
  handler: string;
  runtime?: string;
  timeout?: number | string;
  memorySize?: number | string;
  ephemeralStorageSize?: number | string;
  layers?: unknown[];
  environment?: Record<string, unknown>;
}

interface Serverless {
  params: { default: Record<string, string | number> };
  provider: {
    runtime: string;
    timeout?: number | string;
    memorySize?: number | string;
    ephemeralStorageSize?: number | string;
    environment: Record<string, unknown>;
  };
  functions: Record<string, FunctionDef>;
}

export const serverlessYml = (): Serverless =>
  parse(readFileSync(join(root, 'serverless.yml'), 'utf8'), { customTags: cfnTags }) as Serverless;

/** A value of serverless.yml with its parameters filled in, the service and the stage (`test`). */
const param = (value: unknown, params: Record<string, string | number>): unknown =>
  typeof value === 'string'
    ? value
        .replace(/\$\{param:(\w+)\}/g, (_m, name: string) => String(params[name] ?? ''))
        .replace(/\$\{self:service\}/g, 'tidegate')
        .replace(/\$\{sls:stage\}/g, 'test')
    : value;

/** What Lambda gives a function (serverless.yml: per function, else provider, else Lambda's defaults). */
export interface FunctionLimits {
  /** The Lambda runtime (nodejs22.x): which Node major runs the function. */
  runtime: string;
  /** MiB of memory: the resident memory of the function's process and its descendants. */
  memorySize: number;
  /** Seconds an invocation may run. */
  timeout: number;
  /** MiB of /tmp. */
  ephemeralStorageSize: number;
}

/** Lambda's own defaults, for what neither the function nor the provider sets. */
export const LAMBDA_DEFAULTS = { memorySize: 128, timeout: 3, ephemeralStorageSize: 512 } as const;

/** The function of serverless.yml whose handler is in dist/functions/<dir>/, with its limits resolved. */
export function functionDefinition(dir: string): {
  name: string;
  def: FunctionDef;
  file: string;
  exportName: string;
  limits: FunctionLimits;
  environment: Record<string, unknown>;
} {
  const sls = serverlessYml();
  const entry = Object.entries(sls.functions).find(([, f]) => f.handler.startsWith(`dist/functions/${dir}/`));
  if (!entry) throw new Error(`serverless.yml has no function whose handler is in dist/functions/${dir}`);
  const [name, def] = entry;
  const dot = def.handler.lastIndexOf('.');
  const number = (key: keyof typeof LAMBDA_DEFAULTS): number => {
    const value = Number(param(def[key] ?? sls.provider[key] ?? LAMBDA_DEFAULTS[key], sls.params.default));
    if (!Number.isFinite(value) || value <= 0) throw new Error(`serverless.yml ${name}.${key}: not a number`);
    return value;
  };
  return {
    name,
    def,
    file: join(root, `${def.handler.slice(0, dot)}.mjs`),
    exportName: def.handler.slice(dot + 1),
    limits: {
      runtime: def.runtime ?? sls.provider.runtime,
      memorySize: number('memorySize'),
      timeout: number('timeout'),
      ephemeralStorageSize: number('ephemeralStorageSize'),
    },
    environment: { ...sls.provider.environment, ...def.environment },
  };
}

/**
 * The Node binary of a Lambda runtime (nodejsNN.x → Node NN): this process's own when it is that
 * major, else the pinned one `npm run setup` fetched (devenv/paths.ts LAMBDA_NODE). Throws, naming
 * what to do, when the runtime is not a Node runtime, no binary is pinned for it, or it is missing.
 */
export function nodeForRuntime(runtime: string): string {
  const major = Number(/^nodejs(\d+)\.x$/.exec(runtime)?.[1]);
  if (!major) throw new Error(`runtime ${runtime}: the Lambda emulation runs Node.js runtimes (nodejsNN.x) only`);
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath;
  const path = lambdaNodePath(major);
  if (!path)
    throw new Error(
      `runtime ${runtime} needs Node ${major}: devenv/paths.ts LAMBDA_NODE pins Node ${Object.keys(LAMBDA_NODE).join(', ')} only (add ${major} there, then npm run setup)`,
    );
  if (!existsSync(path))
    throw new Error(
      `runtime ${runtime} needs Node ${major}, which is not at ${path}: run npm run setup (it fetches ${nodePackage()}@${LAMBDA_NODE[major]?.version} from the npm registry)`,
    );
  return path;
}

/** The flags Lambda's Node runtime starts node with (its bootstrap: a tenth of the memory for the new space). */
export function runtimeFlags(memorySize: number): string[] {
  const newSpace = Math.floor(memorySize / 10);
  // TIDEGATE_CPU_PROF_DIR (measurements only): each function process writes a V8 CPU profile there when it stops.
  const profDir = process.env['TIDEGATE_CPU_PROF_DIR'];
  return [
    '--expose-gc',
    '--max-http-header-size=81920',
    `--max-semi-space-size=${Math.floor(newSpace / 2)}`,
    `--max-old-space-size=${memorySize - newSpace}`,
    ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []),
  ];
}

/** Why the emulation killed an invocation. */
export type KillReason = 'memory' | 'timeout' | 'disk';

/** What one invocation used, as Lambda's REPORT line gives it (and what killed it). */
export interface InvocationReport {
  requestId: string;
  /** The invocation started a new process: the first one, or the first after a kill or a crash. */
  coldStart: boolean;
  /** The function process's id. */
  pid: number;
  /** process.version of the function's process. */
  nodeVersion: string;
  durationMs: number;
  /** The largest sum of the resident memory (VmRSS) of the function's process and its descendants, sampled every 50 ms. */
  peakRssMiB: number;
  /** The largest disk use of the function's /tmp (allocated blocks, as du counts them), sampled. */
  peakTmpMiB: number;
  /** Set when the emulation killed the process tree at a limit. */
  killed?: KillReason;
  /** The message the invocation was rejected with (a handler error, a kill, the process exiting). */
  error?: string;
}

/** A rejected invocation: the message Lambda would give (errorMessage), its errorType, and the report. */
export class LambdaInvocationError extends Error {
  constructor(
    message: string,
    readonly errorType: string,
    readonly report: InvocationReport,
  ) {
    super(message);
    this.name = 'LambdaInvocationError';
  }
}

export interface LambdaFunction {
  /** The function's name in serverless.yml (githubWebhook, syncWorker, ...). */
  name: string;
  timeoutMs: number;
  memorySizeMiB: number;
  ephemeralStorageMiB: number;
  /** The Lambda runtime (nodejs22.x) and the Node binary that runs it. */
  runtime: string;
  nodePath: string;
  /** The function's /tmp (TMPDIR, HOME, TIDEGATE_CACHE): kept across restarts, removed by stop(). */
  tmpDir: string;
  /**
   * Invokes the handler as Lambda does, one invocation at a time: a thrown error is rejected with
   * its message; a kill (memory, timeout, /tmp) or the process exiting rejects with Lambda's message,
   * and the next invocation starts a new process (its init failing rejects with a plain Error).
   * An invocation that ran rejects with a LambdaInvocationError, which carries its report.
   */
  invoke<T = unknown>(event: unknown): Promise<T>;
  /** What the last invocation used (and what killed it); undefined before the first. */
  lastInvocation(): InvocationReport | undefined;
  /** Every invocation's report, in order. */
  invocations(): readonly InvocationReport[];
  /** Everything the function wrote (its CloudWatch log), with a REPORT line per invocation. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /**
   * The deploy-time settings: packaged as serverless.yml's TIDEGATE_SETTINGS_FILE names (what `sls
   * package` writes), each secret given inline first stored in Secrets Manager (storedSecrets).
   */
  settings: Record<string, unknown>;
  /** The stack's queue (TIDEGATE_QUEUE_URL: !Ref SyncQueue). */
  queueUrl: string;
  /** The stack's dead-letter queue (TIDEGATE_DEAD_LETTER_QUEUE_URL of the poll: !Ref SyncDeadLetterQueue). */
  deadLetterQueueUrl?: string;
  /** The AWS endpoint and the credentials of the function's principal. */
  aws: AwsAccess;
  /** kubectl and helm, for the functions serverless.yml gives the kubectl/helm layer. */
  tools: { kubectl: string; helm: string };
  /** Other limits than serverless.yml's (a smaller memory size, a shorter timeout). */
  limits?: Partial<FunctionLimits>;
  /** Parameters given as `sls deploy --param=name=value` would give them (over serverless.yml's defaults). */
  params?: Record<string, string>;
}

/**
 * Where Lambda's Node runtime keeps the AWS SDK v3 it ships (the bundles leave @aws-sdk/* and
 * @smithy/* out): a node_modules holding those two scopes only, above every task root, so a bundle
 * resolves them as it does in Lambda and nothing else it forgot to bundle.
 */
function runtimeDir(): string {
  const dir = join(tmpdir(), `tidegate-lambda-runtime-${createHash('sha256').update(root).digest('hex').slice(0, 12)}`);
  for (const scope of ['@aws-sdk', '@smithy']) {
    const link = join(dir, 'node_modules', scope);
    if (existsSync(link)) continue;
    mkdirSync(dirname(link), { recursive: true });
    try {
      symlinkSync(join(root, 'node_modules', scope), link);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return dir;
}

/**
 * The function's package as Lambda unpacks it (/var/task): its bundle directory and the settings
 * file at the paths serverless.yml gives them, in a directory of its own.
 */
function taskRoot(
  bundleFile: string,
  settingsFile: string,
  settings: Record<string, unknown>,
): { dir: string; file: string } {
  const dir = mkdtempSync(join(runtimeDir(), 'task-'));
  const bundleDir = relative(root, dirname(bundleFile));
  cpSync(join(root, bundleDir), join(dir, bundleDir), { recursive: true });
  mkdirSync(join(dir, dirname(settingsFile)), { recursive: true });
  writeFileSync(join(dir, settingsFile), JSON.stringify(settings));
  return { dir, file: join(dir, relative(root, bundleFile)) };
}

/**
 * The settings as a deployer writes them for Lambda: each secret given inline (`{ value }`) stored
 * in Secrets Manager (with the function's own credentials) and named instead, as docs/deploy.md's steps 2
 * and 3 ask; the functions refuse inline secrets on Lambda.
 */
async function storedSecrets(settings: unknown, sm: SecretsManagerClient): Promise<unknown> {
  if (Array.isArray(settings)) return Promise.all(settings.map((v) => storedSecrets(v, sm)));
  if (settings === null || typeof settings !== 'object') return settings;
  const entries = Object.entries(settings);
  const [only] = entries;
  if (entries.length === 1 && only?.[0] === 'value' && typeof only[1] === 'string') {
    const name = `tidegate-test/${createHash('sha256').update(only[1]).digest('hex').slice(0, 24)}`;
    await sm.send(new CreateSecretCommand({ Name: name, SecretString: only[1] })).catch((err: Error) => {
      if (err.name !== 'ResourceExistsException') throw err;
    });
    return { secretsManager: name };
  }
  return Object.fromEntries(await Promise.all(entries.map(async ([k, v]) => [k, await storedSecrets(v, sm)])));
}

/** Starts the built bundle of a function of serverless.yml (by its directory: github-webhook, sync-worker, ...). */
export async function startFunction(dir: string, opts: StartOptions): Promise<LambdaFunction> {
  const fn = functionDefinition(dir);
  const sls = serverlessYml();
  const { aws } = opts;
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    AWS_REGION: aws.region,
    AWS_ENDPOINT_URL: aws.endpoint,
    AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
  };
  for (const [key, value] of Object.entries(fn.environment)) {
    if (key === 'TIDEGATE_QUEUE_URL') env[key] = opts.queueUrl;
    else if (key === 'TIDEGATE_DEAD_LETTER_QUEUE_URL') {
      if (opts.deadLetterQueueUrl) env[key] = opts.deadLetterQueueUrl;
    } else if (typeof value === 'string') env[key] = String(param(value, { ...sls.params.default, ...opts.params }));
  }
  const settingsFile = env['TIDEGATE_SETTINGS_FILE'];
  if (!settingsFile) throw new Error('serverless.yml sets no TIDEGATE_SETTINGS_FILE');
  const settings = await storedSecrets(opts.settings, new SecretsManagerClient(aws));
  const task = taskRoot(fn.file, settingsFile, settings as Record<string, unknown>);
  // The layer serverless.yml attaches (kubectl and helm under /opt in Lambda): the same binaries.
  if (fn.def.layers?.length)
    Object.assign(env, { TIDEGATE_KUBECTL: opts.tools.kubectl, TIDEGATE_HELM: opts.tools.helm });
  return startHandler({
    name: fn.name,
    file: task.file,
    taskRoot: task.dir,
    exportName: fn.exportName,
    limits: { ...fn.limits, ...opts.limits },
    env,
  });
}

/** A function as the stack deployed it: its package (the zip `sls package` wrote) and its configuration. */
export interface PackagedFunction {
  name: string;
  /** The zip's bytes. */
  zip: Uint8Array;
  /** The handler string (dist/functions/x/index.handler). */
  handler: string;
  /** The environment variables of its configuration. */
  environment: Record<string, string>;
  limits: Partial<FunctionLimits>;
  aws: AwsAccess;
}

/** Starts a deployed function from its package, as Lambda does: unpacked into a task root, run with its configuration's environment. */
export function startPackagedFunction(fn: PackagedFunction): Promise<LambdaFunction> {
  const dir = mkdtempSync(join(runtimeDir(), 'task-'));
  for (const [path, bytes] of Object.entries(unzipSync(fn.zip))) {
    if (path.endsWith('/')) continue;
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), bytes);
  }
  const dot = fn.handler.lastIndexOf('.');
  return startHandler({
    name: fn.name,
    file: join(dir, `${fn.handler.slice(0, dot)}.mjs`),
    exportName: fn.handler.slice(dot + 1),
    taskRoot: dir,
    limits: fn.limits,
    env: {
      ...fn.environment,
      AWS_REGION: fn.aws.region,
      AWS_ENDPOINT_URL: fn.aws.endpoint,
      AWS_ACCESS_KEY_ID: fn.aws.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: fn.aws.credentials.secretAccessKey,
    },
  });
}

/** A handler module to run as a Lambda function (a built bundle, or a test's own fixture). */
export interface HandlerSpec {
  /** The function's name (AWS_LAMBDA_FUNCTION_NAME is tidegate-test-<name>). */
  name: string;
  /** The ES module, and the export that is the handler (default `handler`). */
  file: string;
  exportName?: string;
  /** Unset limits: serverless.yml's provider runtime, Lambda's defaults for the rest. */
  limits?: Partial<FunctionLimits>;
  /** The function's environment; the emulation adds the Lambda variables, TMPDIR, HOME and TIDEGATE_CACHE. */
  env?: Record<string, string>;
  /** The unpacked package (LAMBDA_TASK_ROOT, the working directory), removed by stop(); default: the file's directory. */
  taskRoot?: string;
}

const POLL_MS = 50;
const MiB = 2 ** 20;
const round = (n: number): number => Math.round(n * 10) / 10;

/** The lines of a file, or none when it is gone (a process or thread that ended). */
const readOr = (path: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};
const listOr = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

/** A process and all its descendants (the children of each of its threads, from /proc). */
function processTree(pid: number): number[] {
  const tree: number[] = [];
  const stack = [pid];
  for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
    tree.push(p);
    const children = listOr(`/proc/${p}/task`).flatMap((task) => readOr(`/proc/${p}/task/${task}/children`).split(' '));
    stack.push(...children.filter((c) => c.trim()).map(Number));
  }
  return tree;
}

/** The resident memory of a process and its descendants, MiB (0 when /proc does not have them). */
export function treeRssMiB(pid: number): number {
  let kib = 0;
  for (const p of processTree(pid)) {
    try {
      kib += Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return kib / 1024;
}

/** Disk use of a directory as du counts it (allocated blocks, a hard-linked file once), MiB. */
export function diskUsageMiB(dir: string): number {
  let bytes = 0;
  const seen = new Set<string>();
  const walk = (path: string): void => {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return; // removed meanwhile
    }
    if (st.nlink > 1 && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    bytes += st.blocks * 512;
    if (st.isDirectory()) for (const name of listOr(path)) walk(join(path, name));
  };
  walk(dir);
  return bytes / MiB;
}

/**
 * SIGKILL (or `signal`) to a function process's group (what it spawned, also what was re-parented)
 * and to every descendant found. Once the process has exited and been reaped only its group is
 * signalled: Linux keeps a group's id from being reused while a member lives, not a process id.
 */
function killTree(pid: number, signal: NodeJS.Signals = 'SIGKILL', exited = false): void {
  const tree = exited ? [] : processTree(pid);
  try {
    process.kill(-pid, signal);
  } catch {
    // no such group
  }
  for (const p of tree) {
    try {
      process.kill(p, signal);
    } catch {
      // exited
    }
  }
}

interface Watch {
  /** Stops sampling (after a last sample when `final`); the peaks, MiB. */
  stop(final: boolean): { peakRssMiB: number; peakTmpMiB: number };
}

/**
 * Samples a process tree's resident memory every 50 ms, and the disk use of its /tmp as often as
 * walking it allows; calls `over` once when the memory size is exceeded, or /tmp grew past its size.
 */
function watch(
  pid: number,
  limits: FunctionLimits,
  tmpDir: string,
  over: (reason: 'memory' | 'disk', usedMiB: number) => void,
): Watch {
  let peakRss = 0;
  const tmpAtStart = diskUsageMiB(tmpDir);
  let peakTmp = tmpAtStart;
  let diskDueAt = 0;
  let tripped = false;
  const sample = (): void => {
    const rss = treeRssMiB(pid);
    peakRss = Math.max(peakRss, rss);
    if (!tripped && rss > limits.memorySize) {
      tripped = true;
      over('memory', rss);
    }
    if (tripped || Date.now() < diskDueAt) return;
    const started = performance.now();
    const tmp = diskUsageMiB(tmpDir);
    // A large /tmp (a Git checkout of thousands of files) takes a while to walk, on this process's
    // one thread, for every function running: keep each function's walks to a twentieth of the time.
    diskDueAt = Date.now() + Math.max(POLL_MS, 19 * (performance.now() - started));
    peakTmp = Math.max(peakTmp, tmp);
    // On Lambda the write that does not fit fails; what was already there before this invocation is not its doing.
    if (tmp > limits.ephemeralStorageSize && tmp > tmpAtStart) {
      tripped = true;
      over('disk', tmp);
    }
  };
  sample();
  const timer = setInterval(sample, POLL_MS);
  return {
    stop(final) {
      clearInterval(timer);
      if (final) {
        diskDueAt = 0;
        sample();
      }
      return { peakRssMiB: round(peakRss), peakTmpMiB: round(peakTmp) };
    },
  };
}

/** How Lambda's runtime (written in Go) names the signal a process ended with. */
const GO_SIGNALS: Partial<Record<NodeJS.Signals, string>> = {
  SIGKILL: 'killed',
  SIGTERM: 'terminated',
  SIGABRT: 'aborted (core dumped)',
  SIGSEGV: 'segmentation fault',
};
const signalText = (signal: NodeJS.Signals | null): string => (signal && GO_SIGNALS[signal]) ?? String(signal);

interface FunctionProcess {
  child: ChildProcess;
  pid: number;
  version: string;
  alive: boolean;
  /** Invocations handed to it so far (its first is the cold start). */
  invocations: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

type Outcome = { result: unknown } | { error: string; errorType: string; killed?: KillReason };

/** Runs a handler module as a Lambda function with the limits of its runtime, memory size, timeout and /tmp. */
export async function startHandler(spec: HandlerSpec): Promise<LambdaFunction> {
  const limits: FunctionLimits = {
    runtime: spec.limits?.runtime ?? serverlessYml().provider.runtime,
    memorySize: spec.limits?.memorySize ?? LAMBDA_DEFAULTS.memorySize,
    timeout: spec.limits?.timeout ?? LAMBDA_DEFAULTS.timeout,
    ephemeralStorageSize: spec.limits?.ephemeralStorageSize ?? LAMBDA_DEFAULTS.ephemeralStorageSize,
  };
  const nodePath = nodeForRuntime(limits.runtime);
  const { name } = spec;
  const timeoutMs = limits.timeout * 1000;
  const functionName = `tidegate-test-${name}`;
  const exportName = spec.exportName ?? 'handler';
  // Lambda's /tmp: a directory of the function's own, the only place it writes to.
  const tmpDir = mkdtempSync(join(tmpdir(), `lambda-tmp-${name}-`));
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    ...spec.env,
    AWS_LAMBDA_FUNCTION_NAME: functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(limits.memorySize),
    AWS_EXECUTION_ENV: `AWS_Lambda_${limits.runtime}`,
    LAMBDA_TASK_ROOT: spec.taskRoot ?? dirname(spec.file),
    TMPDIR: tmpDir,
    HOME: tmpDir,
    TIDEGATE_CACHE: tmpDir,
  };
  let output = '';
  const reports: InvocationReport[] = [];
  let proc: FunctionProcess | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let next = 0;
  let stopped = false;

  /** The init: a new process imports the module; limited as an invocation is (Lambda retries a slow init with the function's timeout). */
  const spawnProcess = async (): Promise<FunctionProcess> => {
    const child = fork(
      join(root, 'devenv', 'lambda-child.mjs'),
      [spec.file, exportName, functionName, String(limits.memorySize)],
      {
        execPath: nodePath,
        execArgv: runtimeFlags(limits.memorySize),
        env,
        cwd: spec.taskRoot ?? dirname(spec.file),
        // Its own process group: a kill reaches what it spawned, also what was re-parented.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      },
    );
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const p: FunctionProcess = {
      child,
      pid: child.pid ?? 0,
      version: '',
      alive: child.pid !== undefined,
      invocations: 0,
      exited: new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          p.alive = false;
          resolve({ code, signal });
        });
        child.once('error', (err) => {
          p.alive = false;
          output += `${err.message}\n`;
          resolve({ code: -1, signal: null });
        });
      }),
    };
    let killed = '';
    const stopWatch = p.pid
      ? watch(p.pid, limits, tmpDir, (reason) => ((killed = reason), killTree(p.pid, 'SIGKILL', !p.alive)))
      : undefined;
    const timer = setTimeout(() => ((killed = 'timeout'), killTree(p.pid, 'SIGKILL', !p.alive)), timeoutMs);
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('message', (m: { version?: string }) => {
          p.version = m.version ?? '';
          resolve();
        });
        void p.exited.then(({ code, signal }) =>
          reject(
            new Error(
              `${name} exited (${code ?? signal}${killed ? `, killed at its ${killed} limit` : ''}) before it was ready: ${output.slice(-3000)}`,
            ),
          ),
        );
      });
    } finally {
      clearTimeout(timer);
      stopWatch?.stop(false);
    }
    return p;
  };

  const invokeOnce = async <T>(event: unknown): Promise<T> => {
    if (stopped) throw new Error(`${name} was stopped`);
    if (!proc?.alive) proc = await spawnProcess();
    const p = proc;
    const coldStart = p.invocations++ === 0;
    const id = ++next;
    const requestId = randomUUID();
    const started = performance.now();
    let killed: { reason: KillReason; message: string } | undefined;
    const kill = (reason: KillReason, message: string): void => {
      if (killed) return;
      killed = { reason, message };
      killTree(p.pid, 'SIGKILL', !p.alive);
    };
    const watching = watch(p.pid, limits, tmpDir, (reason, used) =>
      kill(
        reason,
        reason === 'memory'
          ? `Runtime exited with error: signal: killed (the function's memory size was exceeded: its process tree had ${round(used)} MiB resident, over its memory size of ${limits.memorySize} MB)`
          : `ENOSPC: No space left on device (/tmp held ${round(used)} MiB, over the function's ephemeral storage of ${limits.ephemeralStorageSize} MiB; Lambda fails the write, the emulation kills the invocation)`,
      ),
    );
    const timer = setTimeout(
      () => kill('timeout', `Task timed out after ${limits.timeout.toFixed(2)} seconds`),
      timeoutMs,
    );
    let onMessage: (m: {
      id?: number;
      result?: unknown;
      error?: { name?: string; message: string };
    }) => void = () => {};
    const outcome = await new Promise<Outcome>((resolve) => {
      onMessage = (m) => {
        if (m.id !== id || killed) return; // a kill wins over an answer that was on its way
        resolve(m.error ? { error: m.error.message, errorType: m.error.name ?? 'Error' } : { result: m.result });
      };
      p.child.on('message', onMessage);
      void p.exited.then(({ code, signal }) =>
        resolve(
          killed
            ? {
                error: `RequestId: ${requestId} Error: ${killed.message}`,
                errorType: killed.reason === 'timeout' ? 'Sandbox.Timedout' : 'Runtime.ExitError',
                killed: killed.reason,
              }
            : {
                error: `RequestId: ${requestId} Error: Runtime exited with error: ${code !== null ? `exit status ${code}` : `signal: ${signalText(signal)}`}`,
                errorType: 'Runtime.ExitError',
              },
        ),
      );
      p.child.send({ id, event, timeoutMs, requestId }, (err) => {
        if (err && p.alive) killTree(p.pid); // the event could not be handed over: the process is no use
      });
    });
    clearTimeout(timer);
    p.child.off('message', onMessage);
    const peaks = watching.stop(p.alive);
    // The process exited: whatever it spawned goes with it (Lambda resets the whole environment).
    if (!p.alive) killTree(p.pid, 'SIGKILL', true);
    const report: InvocationReport = {
      requestId,
      coldStart,
      pid: p.pid,
      nodeVersion: p.version,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      ...peaks,
      ...('killed' in outcome && outcome.killed ? { killed: outcome.killed } : {}),
      ...('error' in outcome ? { error: outcome.error } : {}),
    };
    reports.push(report);
    output +=
      `REPORT RequestId: ${requestId}\tDuration: ${report.durationMs} ms\tMemory Size: ${limits.memorySize} MB\t` +
      `Max Memory Used: ${Math.ceil(report.peakRssMiB)} MB\t/tmp Used: ${Math.ceil(report.peakTmpMiB)} of ${limits.ephemeralStorageSize} MB` +
      `${report.killed ? `\tKilled: ${report.killed}` : ''}\n`;
    if ('error' in outcome) throw new LambdaInvocationError(outcome.error, outcome.errorType, report);
    return outcome.result as T;
  };

  try {
    proc = await spawnProcess();
  } catch (err) {
    for (const d of [tmpDir, spec.taskRoot]) if (d) rmSync(d, { recursive: true, force: true });
    throw err;
  }
  return {
    name,
    timeoutMs,
    memorySizeMiB: limits.memorySize,
    ephemeralStorageMiB: limits.ephemeralStorageSize,
    runtime: limits.runtime,
    nodePath,
    tmpDir,
    invoke: <T>(event: unknown): Promise<T> => {
      // One execution environment handles one invocation at a time.
      const run = queue.then(() => invokeOnce<T>(event));
      queue = run.catch(() => undefined);
      return run;
    },
    lastInvocation: () => reports.at(-1),
    invocations: () => reports,
    output: () => output,
    stop: async () => {
      stopped = true;
      const p = proc;
      if (p?.alive) {
        const killer = setTimeout(() => killTree(p.pid, 'SIGKILL', !p.alive), 5000);
        killTree(p.pid, 'SIGTERM');
        await p.exited;
        clearTimeout(killer);
        killTree(p.pid, 'SIGKILL', true);
      }
      for (const d of [tmpDir, spec.taskRoot]) if (d) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** A FIFO queue as serverless.yml declares the stack's SyncQueue (a short visibility timeout, for tests of redelivery). */
/** Messages of a queue not yet done: waiting, in flight and delayed. */
export async function pendingMessages(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes: a = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return Object.values(a).reduce((n, v) => n + Number(v), 0);
}

export async function createFifoQueue(
  aws: AwsAccess,
  name: string,
  opts: { visibilityTimeout?: number } = {},
): Promise<string> {
  const out = await new SQSClient(aws).send(
    new CreateQueueCommand({
      QueueName: `${name}.fifo`,
      Attributes: { FifoQueue: 'true', VisibilityTimeout: String(opts.visibilityTimeout ?? 30) },
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

/** An invocation of a batch failed (the handler threw, or was killed): nothing of the batch was deleted. */
export class BatchFailedError extends Error {
  constructor(
    /** The batch's message ids: in flight until their visibility timeout, then delivered again. */
    readonly received: string[],
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'BatchFailedError';
  }
}

/**
 * One delivery as Lambda's SQS event source mapping makes it: receive a batch (up to 10), invoke
 * the handler, delete what it did not report as a batch item failure (those stay in flight until
 * their visibility timeout, or until the handler changed it). Returns the batch's message ids and
 * the failures; an empty batch when nothing was visible. When the invocation fails (the handler
 * throws, or the function is killed at its memory size, timeout or /tmp size) the whole batch is
 * left as it is, as SQS leaves it: nothing is deleted, every message comes back after its
 * visibility timeout; this rejects with a BatchFailedError (the invocation's message).
 */
export async function deliverBatch(
  queueUrl: string,
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>,
  aws: AwsAccess,
): Promise<{ received: string[]; failures: string[] }> {
  const sqs = new SQSClient(aws);
  const records = await receiveRecords(sqs, queueUrl);
  if (records.length === 0) return { received: [], failures: [] };
  let res: SQSBatchResponse;
  try {
    res = await handler({ Records: records });
  } catch (err) {
    throw new BatchFailedError(
      records.map((r) => r.messageId),
      err,
    );
  }
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
