/**
 * The inputs of the cost model (bench/cost.ts), measured on the built bundles as Lambda runs them
 * (devenv/lambda.ts: one process per function, serverless.yml's memory size), on a FIFO queue in
 * moto behind a proxy that counts the functions' AWS requests, against the test kube-apiserver, git
 * server and GitHub: per event (a push, a poll tick with nothing changed, a drift pass, a status
 * page view) the invocations of each function, their billed duration, CPU time, log bytes and
 * metric series, and the SQS requests the functions make. The SQS event source mapping is played
 * by a loop of `deliverBatch` (up to 10 visible messages a batch), with SQS's deduplication window
 * (moto keeps none once a message is deleted).
 */
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { stringify } from 'yaml';
import { GitWorkspace, createBareRepo, run, startGitHub, type EnvironmentInfo } from '../devenv/index.js';
import {
  apiEvent,
  createFifoQueue,
  deliverBatch,
  pendingMessages,
  functionDefinition,
  githubHeaders,
  nodeForRuntime,
  pushPayload,
  startFunction,
  type AwsAccess,
  type LambdaFunction,
} from '../devenv/lambda.js';
import type { QueueMessage } from '../shared/model/index.js';
import { signStatusLink } from '../shared/triggers/index.js';
import { messageKeys } from '../shared/usecases/index.js';
import {
  costReport,
  type EventUse,
  type FunctionUse,
  type GoalRow,
  type Measurement,
  type MeasuredPoint,
  type WorkerBreakdown,
} from './cost.js';

const SECRET = 'cost-webhook-secret';
const STATUS_SECRET = 'cost-status-secret';
const TOKEN = 'ghp_cost';
const SQS_DEDUP_MS = 5 * 60_000;
const CLK_TCK_MS = 10; // /proc/<pid>/stat counts in USER_HZ (100 a second)
const root = new URL('..', import.meta.url).pathname;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface MeasureOptions {
  /** Target counts to measure at (two at least; the model is linear between and beyond them). */
  targets?: number[];
  /** Pushes and status page views measured at each count (their mean is used). */
  samples?: number;
  /** Poll ticks with nothing changed, each in a minute of its own (the reload pass is deduplicated per minute). */
  quietTicks?: number;
  /** Poll ticks whose push message gets through (the branch moved): drift passes. */
  driftTicks?: number;
  log?: (line: string) => void;
  /** What measured it, for the page (default: npm run bench). */
  command?: string;
}

// ---------------------------------------------------------------------------------------------
// The functions' AWS requests, counted on their way to moto.

interface Counted {
  calls: number;
  /** 64 KiB chunks of the requests' payloads (what SQS bills). */
  chunks: number;
}

interface CountingProxy {
  endpoint: string;
  snapshot(): Map<string, Counted>;
  stop(): Promise<void>;
}

/** The action of an AWS request: X-Amz-Target (JSON protocols), else the Query protocol's Action. */
function actionOf(headers: IncomingHttpHeaders, body: Buffer): string {
  const target = headers['x-amz-target'];
  if (typeof target === 'string') return target;
  const action = /(?:^|&)Action=([A-Za-z]+)/.exec(body.toString('utf8'))?.[1];
  return action ? `Query.${action}` : 'other';
}

async function startCountingProxy(target: string): Promise<CountingProxy> {
  const counts = new Map<string, Counted>();
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      const action = actionOf(req.headers, body);
      const c = counts.get(action) ?? { calls: 0, chunks: 0 };
      c.calls++;
      c.chunks += Math.max(1, Math.ceil(body.length / (64 * 1024)));
      counts.set(action, c);
      const up = request(
        {
          host: upstream.hostname,
          port: upstream.port,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: upstream.host },
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', (err) => {
        res.writeHead(502);
        res.end(err.message);
      });
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    snapshot: () => new Map([...counts].map(([k, v]) => [k, { ...v }])),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** SQS requests (in 64 KiB chunks) between two snapshots. */
function sqsChunks(before: Map<string, Counted>, after: Map<string, Counted>): number {
  let n = 0;
  for (const [action, c] of after)
    if (action.startsWith('AmazonSQS.')) n += c.chunks - (before.get(action)?.chunks ?? 0);
  return n;
}

// ---------------------------------------------------------------------------------------------
// What a function used during an event.

/** CPU time of a process and the children it waited for (utime + stime + cutime + cstime), ms. */
function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [11, 12, 13, 14].reduce((n, i) => n + Number(fields[i] ?? 0), 0) * CLK_TCK_MS;
  } catch {
    return 0;
  }
}

/** The function's process: the last invocation's, else our child whose TMPDIR is the function's /tmp. */
function pidOf(fn: LambdaFunction): number {
  const last = fn.lastInvocation()?.pid;
  if (last) return last;
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && readFileSync(`/proc/${p}/environ`, 'utf8').includes(`TMPDIR=${fn.tmpDir}\0`))
        return Number(p);
    } catch {
      // gone, or not ours
    }
  }
  return 0;
}

type EmfLine = {
  _aws?: { CloudWatchMetrics?: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }> };
  [k: string]: unknown;
};

const emfOf = (line: string): EmfLine | undefined => {
  if (!line.startsWith('{') || !line.includes('"_aws"')) return undefined;
  try {
    return JSON.parse(line) as EmfLine;
  } catch {
    return undefined;
  }
};

/** The metric series (namespace, name, dimension values) of the EMF lines in a log. */
function metricSeries(log: string): Set<string> {
  const series = new Set<string>();
  for (const emf of log.split('\n').map(emfOf))
    for (const d of emf?._aws?.CloudWatchMetrics ?? [])
      for (const dims of d.Dimensions) {
        const values = dims.map((k) => `${k}=${String(emf?.[k])}`).sort();
        for (const metric of d.Metrics) series.add(`${d.Namespace}|${metric.Name}|${values.join(',')}`);
      }
  return series;
}

interface RawEvent {
  functions: Record<string, FunctionUse>;
  sqsRequests: number;
  series: Set<string>;
  /** The message types the worker was handed. */
  types: string[];
  /** What each function logged meanwhile. */
  logs: Record<string, string>;
  worker?: WorkerBreakdown;
}

/** When a worker invocation started and ended (this process's clock, which is the function's). */
interface Window {
  start: number;
  end: number;
}

/**
 * The worker's time by message: each "message handled" line of an invocation ends that message,
 * which began where the previous one ended (or the invocation began); what follows the last one
 * (notifications, the pipeline heartbeat) is the batch's.
 */
function workerBreakdown(log: string, windows: readonly Window[]): WorkerBreakdown {
  const handled = log.split('\n').flatMap((line) => {
    if (!line.startsWith('{') || !line.includes('"message handled"')) return [];
    try {
      const j = JSON.parse(line) as { message?: string; type?: string; timestamp?: string };
      const t = Date.parse(j.timestamp ?? '');
      return j.message === 'message handled' && j.type && Number.isFinite(t) ? [{ type: j.type, t }] : [];
    } catch {
      return [];
    }
  });
  const messages: Record<string, { count: number; ms: number }> = {};
  let afterMs = 0;
  for (const w of windows) {
    let at = w.start;
    for (const h of handled.filter((x) => x.t >= w.start - 5 && x.t <= w.end + 5)) {
      const m = (messages[h.type] ??= { count: 0, ms: 0 });
      m.count++;
      m.ms += Math.max(0, h.t - at);
      at = Math.max(at, h.t);
    }
    afterMs += Math.max(0, w.end - at);
  }
  return { messages, afterMs };
}

const REPORT_LINE = /^REPORT RequestId: .*$/gm;

/** Runs `what`, then says what each of `fns` used meanwhile and what SQS requests the functions made. */
async function measureEvent(
  fns: readonly LambdaFunction[],
  proxy: CountingProxy,
  what: () => Promise<string[]>,
): Promise<RawEvent> {
  const before = fns.map((f) => {
    const pid = pidOf(f);
    return { reports: f.invocations().length, out: f.output().length, pid, cpu: cpuMsOf(pid) };
  });
  const counts = proxy.snapshot();
  const types = await what();
  await sleep(150); // the last lines of the logs
  const functions: Record<string, FunctionUse> = {};
  const logs: Record<string, string> = {};
  const series = new Set<string>();
  fns.forEach((f, i) => {
    const b = before[i];
    if (!b) return;
    const reports = f.invocations().slice(b.reports);
    const log = f.output().slice(b.out);
    const pid = pidOf(f);
    const reportBytes = (log.match(REPORT_LINE) ?? []).reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
    for (const s of metricSeries(log)) series.add(s);
    logs[f.name] = log;
    functions[f.name] = {
      invocations: reports.length,
      billedMs: reports.reduce((n, r) => n + Math.ceil(r.durationMs), 0),
      cpuMs: pid === b.pid ? cpuMsOf(pid) - b.cpu : cpuMsOf(pid),
      logBytes: Math.max(0, Buffer.byteLength(log) - reportBytes),
      peakRssMiB: reports.reduce((n, r) => Math.max(n, r.peakRssMiB), 0),
    };
  });
  return { functions, sqsRequests: sqsChunks(counts, proxy.snapshot()), series, types, logs };
}

/** The mean of several occurrences of an event. */
function meanUse(events: readonly RawEvent[], apiRequests: number, extraSeries: number): EventUse {
  const names = new Set(events.flatMap((e) => Object.keys(e.functions)));
  const avg = (f: (e: RawEvent) => number): number => events.reduce((n, e) => n + f(e), 0) / Math.max(1, events.length);
  const field = (name: string, k: keyof FunctionUse) => (e: RawEvent) => e.functions[name]?.[k] ?? 0;
  return {
    functions: Object.fromEntries(
      [...names].map((name) => [
        name,
        {
          invocations: avg(field(name, 'invocations')),
          billedMs: avg(field(name, 'billedMs')),
          cpuMs: avg(field(name, 'cpuMs')),
          logBytes: avg(field(name, 'logBytes')),
          peakRssMiB: Math.max(...events.map(field(name, 'peakRssMiB'))),
        },
      ]),
    ),
    sqsRequests: avg((e) => e.sqsRequests),
    apiRequests,
    extraMetricSeries: extraSeries,
    samples: events.length,
    ...(events.some((e) => e.worker) ? { worker: meanBreakdown(events.map((e) => e.worker)) } : {}),
  };
}

function meanBreakdown(all: ReadonlyArray<WorkerBreakdown | undefined>): WorkerBreakdown {
  const types = new Set(all.flatMap((b) => Object.keys(b?.messages ?? {})));
  const avg = (f: (b: WorkerBreakdown | undefined) => number): number =>
    all.reduce((n, b) => n + f(b), 0) / Math.max(1, all.length);
  return {
    messages: Object.fromEntries(
      [...types].map((t) => [
        t,
        { count: avg((b) => b?.messages[t]?.count ?? 0), ms: avg((b) => b?.messages[t]?.ms ?? 0) },
      ]),
    ),
    afterMs: avg((b) => b?.afterMs ?? 0),
  };
}

/** What `a` uses more than `b` (a drift tick over a quiet one), never below zero. */
function difference(a: EventUse, b: EventUse): EventUse {
  const sub = (x: number, y: number): number => Math.max(0, x - y);
  return {
    functions: Object.fromEntries(
      Object.entries(a.functions).map(([name, u]) => {
        const v = b.functions[name];
        return [
          name,
          {
            invocations: sub(u.invocations, v?.invocations ?? 0),
            billedMs: sub(u.billedMs, v?.billedMs ?? 0),
            cpuMs: sub(u.cpuMs, v?.cpuMs ?? 0),
            logBytes: sub(u.logBytes, v?.logBytes ?? 0),
            peakRssMiB: u.peakRssMiB,
          },
        ];
      }),
    ),
    sqsRequests: sub(a.sqsRequests, b.sqsRequests),
    apiRequests: 0,
    extraMetricSeries: 0,
    samples: Math.min(a.samples, b.samples),
    ...(a.worker
      ? {
          worker: {
            messages: Object.fromEntries(
              Object.entries(a.worker.messages).map(([t, v]) => {
                const w = b.worker?.messages[t];
                return [t, { count: sub(v.count, w?.count ?? 0), ms: sub(v.ms, w?.ms ?? 0) }];
              }),
            ),
            afterMs: sub(a.worker.afterMs, b.worker?.afterMs ?? 0),
          },
        }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// One stack of the four functions over a repository of n targets.

/** A target as a small application: a ConfigMap, a Deployment that reloads on it (Reloader's annotation), a Service. */
function appManifest(name: string, value: string): string {
  return [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-config' }, data: { value } },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'app', annotations: { 'reloader.stakater.com/auto': 'true' } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            containers: [
              { name: 'app', image: 'registry.example/app:1.0.0', envFrom: [{ configMapRef: { name: 'app-config' } }] },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'app' },
      spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  ]
    .map((d) => stringify(d))
    .join('---\n');
}

interface Stack {
  webhook: LambdaFunction;
  worker: LambdaFunction;
  poll: LambdaFunction;
  status: LambdaFunction;
  /** Commits files and delivers the push webhook; returns once the webhook answered 202. */
  push(files: Record<string, string>, message: string): Promise<void>;
  /** The event source mapping until the queue is empty: the message types the worker was handed. */
  drain(): Promise<string[]>;
  /** Every worker invocation's start and end, in order. */
  windows: Window[];
  stop(): Promise<void>;
}

async function startStack(env: EnvironmentInfo, aws: AwsAccess, clusters: readonly string[]): Promise<Stack> {
  const tag = Math.random().toString(36).slice(2, 8);
  const github = await startGitHub({ token: TOKEN, gitRoot: env.git.root });
  const url = await createBareRepo(env.git, `acme/cost-${tag}`);
  const ws = await GitWorkspace.clone(env.git, url);
  await ws.commit({ 'README.md': 'cost' }, 'init');
  const queueUrl = await createFifoQueue(env.aws, `cost-${tag}`, { visibilityTimeout: 60 });
  const deadLetterQueueUrl = await createFifoQueue(env.aws, `cost-${tag}-dlq`);
  const cluster = {
    server: env.kube.server,
    caData: Buffer.from(env.kube.caPem).toString('base64'),
    token: { value: env.kube.token },
  };
  const settings = {
    repositories: [{ url, branch: 'main', token: { value: TOKEN }, githubApiUrl: github.url }],
    clusters: Object.fromEntries(clusters.map((c) => [c, cluster])),
    webhookSecret: { value: SECRET },
    statusSecret: { value: STATUS_SECRET },
  };
  const start = (dir: string): Promise<LambdaFunction> =>
    startFunction(dir, { settings, queueUrl, deadLetterQueueUrl, aws, tools: env.tools });
  const [webhook, worker, poll, status] = await Promise.all(
    ['github-webhook', 'sync-worker', 'scheduled-poll', 'status-page'].map(start),
  );
  if (!webhook || !worker || !poll || !status) throw new Error('a function did not start');
  const sqs = new SQSClient(env.aws);
  // SQS drops a deduplication id seen within 5 minutes of its first message; moto only while that message is queued.
  const firstSent = new Map<string, number>();
  const duplicate = (msg: QueueMessage, sentAt: number): boolean => {
    const { dedup } = messageKeys(msg);
    const first = firstSent.get(dedup);
    if (first !== undefined && sentAt - first < SQS_DEDUP_MS) return true;
    firstSent.set(dedup, sentAt);
    return false;
  };
  const windows: Window[] = [];
  return {
    webhook,
    worker,
    poll,
    status,
    windows,
    async push(files, message) {
      const sha = await ws.commit(files, message);
      const body = pushPayload(url, sha, Object.keys(files));
      const res = await webhook.invoke<{ statusCode: number }>(
        apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body),
      );
      if (res.statusCode !== 202)
        throw new Error(`webhook answered ${res.statusCode}: ${webhook.output().slice(-2000)}`);
    },
    async drain() {
      const types: string[] = [];
      const deadline = Date.now() + 15 * 60_000;
      const handler = async (e: SQSEvent): Promise<SQSBatchResponse> => {
        const kept = e.Records.filter(
          (r) => !duplicate(JSON.parse(r.body) as QueueMessage, Number(r.attributes.SentTimestamp) || Date.now()),
        );
        if (kept.length === 0) return { batchItemFailures: [] };
        types.push(...kept.map((r) => (JSON.parse(r.body) as QueueMessage).type));
        const start = Date.now();
        try {
          return await worker.invoke<SQSBatchResponse>({ Records: kept });
        } finally {
          windows.push({ start, end: Date.now() });
        }
      };
      for (let idle = 0; idle < 3;) {
        if (Date.now() > deadline) throw new Error('the queue did not empty in 15 minutes');
        const batch = await deliverBatch(queueUrl, handler, env.aws);
        if (batch.received.length > 0) idle = 0;
        else if ((await pendingMessages(sqs, queueUrl)) > 0) await sleep(500);
        else {
          idle++;
          await sleep(30);
        }
      }
      return types;
    },
    async stop() {
      await Promise.all([webhook, worker, poll, status].map((f) => f.stop()));
      await github.stop();
      ws.remove();
    },
  };
}

/** Milliseconds to the next minute boundary, plus a little. */
const untilNextMinute = (): number => 60_000 - (Date.now() % 60_000) + 1_500;

/** Cold initialisation of each function's bundle: importing it in a fresh Node of its runtime (median of 3). */
async function coldInits(names: readonly string[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const name of names) {
    const fn = functionDefinition(BUNDLES[name] ?? name);
    const node = nodeForRuntime(fn.limits.runtime);
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const printed = await run(node, [
        '--input-type=module',
        '-e',
        `const t=performance.now(); await import(${JSON.stringify(fn.file)}); console.log(performance.now()-t)`,
      ]);
      times.push(Number(printed.trim()));
    }
    out[name] = [...times].sort((a, b) => a - b)[1] ?? 0;
  }
  return out;
}

const BUNDLES: Record<string, string> = {
  githubWebhook: 'github-webhook',
  syncWorker: 'sync-worker',
  scheduledPoll: 'scheduled-poll',
  statusPage: 'status-page',
};

async function apiserverObjects(env: EnvironmentInfo): Promise<number> {
  const out = await run(env.tools.kubectl, [
    '--kubeconfig',
    env.kube.kubeconfigPath,
    'get',
    'configmaps,secrets,deployments',
    '-A',
    '--no-headers',
  ]);
  return out.split('\n').filter((l) => l.trim()).length;
}

interface PointResult {
  point: MeasuredPoint;
  notes: string[];
}

/** Every event at n targets on the given clusters. */
async function measureAt(
  env: EnvironmentInfo,
  proxy: CountingProxy,
  n: number,
  clusters: readonly string[],
  opts: Required<Omit<MeasureOptions, 'targets' | 'command'>>,
): Promise<PointResult> {
  const log = opts.log;
  const aws: AwsAccess = { ...env.aws, endpoint: proxy.endpoint };
  const stack = await startStack(env, aws, clusters);
  const withWorker = async (fns: LambdaFunction[], what: () => Promise<string[]>): Promise<RawEvent> => {
    const from = stack.windows.length;
    const e = await measureEvent(fns, proxy, what);
    return { ...e, worker: workerBreakdown(e.logs['syncWorker'] ?? '', stack.windows.slice(from)) };
  };
  try {
    const tag = Math.random().toString(36).slice(2, 6);
    const names = Array.from({ length: n }, (_, i) => `c${tag}-${i}`);
    const config = stringify({
      targets: names.map((name, i) => ({
        name,
        cluster: clusters[i % clusters.length],
        path: `apps/${name}`,
        targetNamespace: name,
        wait: false,
      })),
    });
    log(`cost: ${n} targets: first sync`);
    await stack.push(
      { 'tidegate.yaml': config, ...Object.fromEntries(names.map((t) => [`apps/${t}/app.yaml`, appManifest(t, '0')])) },
      'the targets',
    );
    await stack.drain();
    // One tick not measured: the poll's first invocation loads what it loads once, and the first
    // reload pass records the workloads' baselines; neither is what a tick does afterwards.
    await stack.poll.invoke({});
    await stack.drain();
    const warmMinute = Math.floor(Date.now() / 60_000);

    log(`cost: ${n} targets: ${opts.samples} pushes`);
    const pushes: RawEvent[] = [];
    for (let i = 0; i < opts.samples; i++) {
      const t = names[(i * 7) % n] ?? '';
      pushes.push(
        await withWorker([stack.webhook, stack.worker], async () => {
          await stack.push({ [`apps/${t}/app.yaml`]: appManifest(t, `push-${i}`) }, `push ${i}`);
          return stack.drain();
        }),
      );
    }
    log(`cost: ${n} targets: ${opts.samples} status page views`);
    const views: RawEvent[] = [];
    for (let i = 0; i < opts.samples; i++)
      views.push(
        await measureEvent([stack.status], proxy, async () => {
          const query = new URL(
            signStatusLink('https://x.test/status', STATUS_SECRET, new Date(Date.now() + 3_600_000)),
          ).search;
          const res = await stack.status.invoke<{ statusCode: number }>(apiEvent(`/status${query}`, {}, '', 'GET'));
          if (res.statusCode !== 200) throw new Error(`status page answered ${res.statusCode}`);
          return [];
        }),
      );

    // The ticks, each in a minute of its own (the reload pass and the sweep are deduplicated per
    // minute). The first sees the branch moved by the pushes: its push message is new, a drift pass.
    const tick = (): Promise<RawEvent> =>
      withWorker([stack.poll, stack.worker], async () => {
        await stack.poll.invoke({});
        return stack.drain();
      });
    const driftTicks: RawEvent[] = [];
    const quietTicks: RawEvent[] = [];
    const firstTickTypes: string[][] = [];
    const enough = (): boolean => quietTicks.length >= opts.quietTicks && driftTicks.length >= opts.driftTicks;
    for (let k = 0; !enough() && k < opts.quietTicks + 2 * opts.driftTicks + 2; k++) {
      // Once the quiet ticks are in, a push not measured (README.md: no target affected) moves the
      // branch again, so that the next tick is a drift pass.
      if (quietTicks.length >= opts.quietTicks) {
        await stack.push({ 'README.md': `moved before tick ${k + 1}` }, `README ${k}`);
        await stack.drain();
      }
      await sleep(Math.floor(Date.now() / 60_000) === warmMinute || k > 0 ? untilNextMinute() : 0);
      log(`cost: ${n} targets: poll tick ${k + 1} (${driftTicks.length} drift, ${quietTicks.length} quiet so far)`);
      const t = await tick();
      if (k === 0) firstTickTypes.push(t.types);
      (t.types.includes('push') ? driftTicks : quietTicks).push(t);
    }
    if (driftTicks.length === 0 || quietTicks.length === 0)
      throw new Error(`${driftTicks.length} drift ticks and ${quietTicks.length} quiet ticks measured`);
    const objects = await apiserverObjects(env);

    const idle = new Set([...driftTicks, ...quietTicks].flatMap((t) => [...t.series]));
    const extra = (events: RawEvent[]): number =>
      events.reduce((k, e) => k + [...e.series].filter((s) => !idle.has(s)).length, 0) / events.length;
    const quiet = meanUse(quietTicks, 0, 0);
    const point: MeasuredPoint = {
      targets: n,
      push: meanUse(pushes, 1, extra(pushes)),
      quietTick: quiet,
      driftPass: difference(meanUse(driftTicks, 0, 0), quiet),
      statusPage: meanUse(views, 1, extra(views)),
      idleMetricSeries: idle.size,
    };
    const workerPerPush = point.push.functions['syncWorker']?.invocations ?? 0;
    return {
      point,
      notes: [
        `${n} targets: a push took ${workerPerPush.toFixed(1)} worker invocations (mean of ${pushes.length}); the first tick after the pushes ${firstTickTypes[0]?.includes('push') ? 'was' : 'was not'} a drift pass (the branch had moved); a drift tick handed the worker ${driftTicks[0]?.types.length ?? 0} messages; ${driftTicks.length} drift and ${quietTicks.length} quiet ticks measured; the apiserver held ${objects} ConfigMaps, Secrets and Deployments (both cluster aliases point at it, so each cluster's reload pass lists all of them).`,
      ],
    };
  } finally {
    await stack.stop();
  }
}

/** Measures every input of the cost model on the running environment (startEnvironment's). */
export async function measureCost(env: EnvironmentInfo, options: MeasureOptions = {}): Promise<Measurement> {
  const opts = {
    samples: options.samples ?? 5,
    quietTicks: options.quietTicks ?? 2,
    driftTicks: options.driftTicks ?? 2,
    log: options.log ?? ((line: string) => void process.stderr.write(`[cost] ${line}\n`)),
  };
  const targets = options.targets ?? [10, 100];
  const clusters = ['a', 'b'];
  const proxy = await startCountingProxy(env.aws.endpoint);
  try {
    const results: PointResult[] = [];
    for (const n of targets) results.push(await measureAt(env, proxy, n, clusters, opts));
    return {
      command: options.command ?? 'npm run bench',
      date: new Date().toISOString().slice(0, 10),
      machine: `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), shared with other work; functions on the Node of their runtime`,
      clusters: clusters.length,
      driftIntervalMin: 10,
      points: results.map((r) => r.point),
      initMs: await coldInits(Object.keys(BUNDLES)),
      notes: results.flatMap((r) => r.notes),
    };
  } finally {
    await proxy.stop();
  }
}

/** Writes docs/cost.md and docs/cost.svg from a measurement; returns the goal row for docs/benchmarks.md. */
export function writeCostDocs(m: Measurement, repoRoot: string = root): GoalRow {
  const report = costReport(
    m,
    readFileSync(join(repoRoot, 'serverless.yml'), 'utf8'),
    readFileSync(join(repoRoot, 'README.md'), 'utf8'),
  );
  writeFileSync(join(repoRoot, 'docs', 'cost.md'), report.markdown);
  writeFileSync(join(repoRoot, 'docs', 'cost.svg'), report.svg);
  writeFileSync(join(repoRoot, 'docs', 'cost.json'), `${JSON.stringify(m, null, 2)}\n`);
  return report.row;
}
