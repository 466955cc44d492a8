/**
 * The cost model behind docs/cost.md: pure logic, no I/O. Prices (a dated table, one region, each
 * with its source), the stack's facts read from serverless.yml's text, the per-event inputs that
 * bench/cost-measure.ts measures on the built bundles, and what a month of a scenario costs, beside
 * the EKS Capability for Argo CD and Flux's controllers as pods.
 */
import { parse } from 'yaml';
import { cfnTags } from '../devenv/lambda.js';
import type { BenchRow } from './row.js';

// ---------------------------------------------------------------------------------------------
// Prices: US East (N. Virginia), list prices, no free tier, no Savings Plans.

export type Arch = 'arm64' | 'x86_64';

export interface Ec2Instance {
  type: string;
  /** On-demand Linux, USD per hour. */
  hour: number;
  vcpu: number;
  memoryMiB: number;
  /** ENIs and IPv4 addresses per ENI (the EKS AMI's max pods: enis × (ips − 1) + 2, without prefix delegation). */
  enis: number;
  ipsPerEni: number;
}

export interface Prices {
  region: string;
  regionName: string;
  /** When the table was put together (each source's own date is in PRICE_SOURCES). */
  collected: string;
  hoursPerMonth: number;
  lambda: {
    gbSecond: Record<Arch, number>;
    request: number;
    /** Per GB-second of /tmp above the included 512 MB. */
    ephemeralGbSecond: number;
    includedEphemeralMiB: number;
    /** Lambda gives a function CPU in proportion to its memory: one vCPU at 1,769 MB. */
    mibPerVcpu: number;
  };
  /** SQS FIFO, per request; each 64 KiB chunk of a request's payload is a request. */
  sqsFifoRequest: number;
  sqsChunkBytes: number;
  /** API Gateway HTTP API, per request (first 300 million a month; 512 KB metering increments). */
  httpApiRequest: number;
  logs: { ingestGb: number; storeGbMonth: number };
  /** CloudWatch alarms: per alarm metric and month (standard resolution; a metric math alarm is billed per metric). */
  alarmMetricMonth: number;
  /** CloudWatch custom metrics (EMF): per metric and month, prorated by the hour a metric is sent in (first 10,000). */
  customMetricMonth: number;
  secretMonth: number;
  secretApiCall: number;
  /** SSM Parameter Store: a standard parameter, and a read at standard throughput. */
  ssmParameterMonth: number;
  ssmApiCall: number;
  /** KMS: per request (a SecureString parameter read decrypts with the aws/ssm key). */
  kmsRequest: number;
  kmsKeyMonth: number;
  /** EventBridge: a rule's scheduled invocations and AWS services' events on the default bus. */
  eventBridgeEvent: number;
  argoCd: { capabilityHour: number; applicationHour: number; applicationsPerCapability: number };
  ec2: Ec2Instance[];
}

export const PRICES: Prices = {
  region: 'us-east-1',
  regionName: 'US East (N. Virginia)',
  collected: '2026-12-07',
  hoursPerMonth: 730,
  lambda: {
    gbSecond: { arm64: 0.0000133334, x86_64: 0.0000166667 },
    request: 0.2 / 1e6,
    ephemeralGbSecond: 0.0000000309,
    includedEphemeralMiB: 512,
    mibPerVcpu: 1769,
  },
  sqsFifoRequest: 0.5 / 1e6,
  sqsChunkBytes: 64 * 1024,
  httpApiRequest: 1.0 / 1e6,
  logs: { ingestGb: 0.5, storeGbMonth: 0.03 },
  alarmMetricMonth: 0.1,
  customMetricMonth: 0.3,
  secretMonth: 0.4,
  secretApiCall: 0.05 / 10_000,
  ssmParameterMonth: 0,
  ssmApiCall: 0,
  kmsRequest: 0.03 / 10_000,
  kmsKeyMonth: 1,
  eventBridgeEvent: 0,
  argoCd: { capabilityHour: 0.02771, applicationHour: 0.00136, applicationsPerCapability: 1000 },
  ec2: [
    { type: 't4g.nano', hour: 0.0042, vcpu: 2, memoryMiB: 512, enis: 2, ipsPerEni: 2 },
    { type: 't4g.micro', hour: 0.0084, vcpu: 2, memoryMiB: 1024, enis: 2, ipsPerEni: 2 },
    { type: 't4g.small', hour: 0.0168, vcpu: 2, memoryMiB: 2048, enis: 3, ipsPerEni: 4 },
    { type: 't4g.medium', hour: 0.0336, vcpu: 2, memoryMiB: 4096, enis: 3, ipsPerEni: 6 },
  ],
};

/** Where each price comes from, and the date of the copy it was read from. */
export const PRICE_SOURCES: ReadonlyArray<{ item: string; price: string; source: string; asOf: string }> = [
  {
    item: 'Lambda duration',
    price: '$0.0000133334 per GB-second (arm64), $0.0000166667 (x86_64)',
    source: 'https://aws.amazon.com/lambda/pricing/ (first pricing tier)',
    asOf: 'AWS Price List copies of 2026-08-21 and 2026-10-02 (x86_64); unchanged since 2021 (arm64)',
  },
  {
    item: 'Lambda requests',
    price: '$0.20 per million',
    source: 'https://aws.amazon.com/lambda/pricing/',
    asOf: '2026-10-02',
  },
  {
    item: 'Lambda ephemeral storage',
    price: '$0.0000000309 per GB-second above 512 MB',
    source: 'https://aws.amazon.com/lambda/pricing/',
    asOf: '2026-08-21',
  },
  {
    item: 'Lambda INIT phase',
    price: 'billed as duration since 2025-08-01',
    source: 'https://aws.amazon.com/blogs/compute/aws-lambda-standardizes-billing-for-init-phase/',
    asOf: '2025-04-29 (announcement)',
  },
  {
    item: 'SQS FIFO requests',
    price: '$0.50 per million; each 64 KiB chunk of a payload is one request',
    source: 'https://aws.amazon.com/sqs/pricing/',
    asOf: '2026-03 and 2026-06 copies',
  },
  {
    item: 'API Gateway HTTP API',
    price: '$1.00 per million requests (first 300 million)',
    source: 'https://aws.amazon.com/api-gateway/pricing/',
    asOf: '2025-05 and 2026 copies',
  },
  {
    item: 'EventBridge',
    price: '$0: scheduled rule invocations and AWS service events (ECR) on the default bus',
    source: 'https://aws.amazon.com/eventbridge/pricing/',
    asOf: '2026',
  },
  {
    item: 'CloudWatch Logs',
    price: '$0.50 per GB ingested (first tier), $0.03 per GB-month stored',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
    asOf: '2026-02 and 2026-06 copies',
  },
  {
    item: 'CloudWatch alarms',
    price: '$0.10 per alarm metric and month (standard resolution; a metric math alarm counts each metric)',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
    asOf: '2026-02 copy',
  },
  {
    item: 'CloudWatch custom metrics (EMF)',
    price: '$0.30 per metric and month (first 10,000), prorated by the hour',
    source: 'https://aws.amazon.com/cloudwatch/pricing/',
    asOf: '2026-02 copy',
  },
  {
    item: 'Secrets Manager',
    price: '$0.40 per secret and month, $0.05 per 10,000 API calls',
    source: 'https://aws.amazon.com/secrets-manager/pricing/',
    asOf: '2024–2026 copies',
  },
  {
    item: 'SSM Parameter Store',
    price: '$0: standard parameters (up to 4 KB, SecureString included) and reads at standard throughput',
    source: 'https://aws.amazon.com/systems-manager/pricing/ (Parameter Store)',
    asOf: 'not read from a dated copy',
  },
  {
    item: 'KMS',
    price: '$1 per customer managed key and month (AWS managed keys: none); $0.03 per 10,000 requests',
    source: 'https://aws.amazon.com/kms/pricing/',
    asOf: '2026',
  },
  {
    item: 'EKS Capability for Argo CD',
    price: '$0.02771 per capability-hour, $0.00136 per Argo CD Application-hour',
    source:
      'https://aws.amazon.com/eks/pricing/ ("EKS Capabilities"), read from a copy of 2026-05-20; a copy of 2026-02 (us-west-2) reads $0.028838 and $0.00142',
    asOf: '2026-05-20',
  },
  {
    item: 'EC2 on-demand (Linux)',
    price: 't4g.nano $0.0042, t4g.micro $0.0084, t4g.small $0.0168, t4g.medium $0.0336 per hour',
    source: 'https://aws.amazon.com/ec2/pricing/on-demand/',
    asOf: 'AWS Price List copies of 2026-09 and 2026-10',
  },
];

// ---------------------------------------------------------------------------------------------
// The alternatives.

/** Flux's controllers and their default requests (the manifests of each controller's release). */
export const FLUX = {
  version: 'v2.9.4',
  controllers: [
    { name: 'source-controller', version: 'v1.9.4', cpuMillis: 50, memoryMiB: 64 },
    { name: 'kustomize-controller', version: 'v1.9.4', cpuMillis: 100, memoryMiB: 64 },
    { name: 'helm-controller', version: 'v1.6.3', cpuMillis: 100, memoryMiB: 64 },
    { name: 'notification-controller', version: 'v1.9.3', cpuMillis: 100, memoryMiB: 64 },
  ],
  /** Every EKS node also runs the VPC CNI (aws-node) and kube-proxy DaemonSets: two pod slots. */
  daemonSetPods: 2,
} as const;

/** What the EKS AMI leaves allocatable on a node (nodeadm: max pods from ENIs, kube-reserved, eviction 100Mi). */
export function eksAllocatable(i: Ec2Instance): { maxPods: number; cpuMillis: number; memoryMiB: number } {
  const maxPods = i.enis * (i.ipsPerEni - 1) + 2;
  const cores = i.vcpu * 1000;
  // kube-reserved CPU: 6% of the first core, 1% of the second, 0.5% of the next two, 0.25% above.
  const band = (from: number, to: number, pct: number): number => Math.max(0, Math.min(cores, to) - from) * pct;
  const cpuReserved =
    band(0, 1000, 0.06) + band(1000, 2000, 0.01) + band(2000, 4000, 0.005) + band(4000, Infinity, 0.0025);
  return { maxPods, cpuMillis: cores - cpuReserved, memoryMiB: i.memoryMiB - (11 * maxPods + 255) - 100 };
}

/** The cheapest instance of the table on which Flux's four controllers fit, per cluster. */
export function fluxNode(prices: Prices = PRICES): { instance: Ec2Instance; why: string } {
  const pods = FLUX.controllers.length + FLUX.daemonSetPods;
  const cpu = FLUX.controllers.reduce((n, c) => n + c.cpuMillis, 0);
  const mem = FLUX.controllers.reduce((n, c) => n + c.memoryMiB, 0);
  const rejected: string[] = [];
  for (const i of [...prices.ec2].sort((a, b) => a.hour - b.hour)) {
    const a = eksAllocatable(i);
    const short = [
      a.maxPods < pods ? `${a.maxPods} pods < ${pods}` : '',
      a.cpuMillis < cpu ? `${a.cpuMillis}m CPU < ${cpu}m` : '',
      a.memoryMiB < mem ? `${a.memoryMiB} MiB < ${mem} MiB` : '',
    ].filter(Boolean);
    if (short.length === 0)
      return {
        instance: i,
        why: `${pods} pods (4 controllers + ${FLUX.daemonSetPods} DaemonSets) of ${a.maxPods}, ${cpu}m of ${Math.round(a.cpuMillis)}m CPU, ${mem} of ${a.memoryMiB} MiB allocatable${rejected.length ? `; smaller: ${rejected.join('; ')}` : ''}`,
      };
    rejected.push(`${i.type}: ${short.join(', ')}`);
  }
  throw new Error(`Flux fits no instance of the table: ${rejected.join('; ')}`);
}

/** Flux's controllers on one node of their own per cluster, a month. */
export function fluxMonthly(clusters: number, prices: Prices = PRICES): number {
  return clusters * fluxNode(prices).instance.hour * prices.hoursPerMonth;
}

/** The EKS Capability for Argo CD, a month: one capability (it manages both clusters) per 1000 Applications, one Application per target. */
export function argoCdMonthly(targets: number, prices: Prices = PRICES): number {
  const { capabilityHour, applicationHour, applicationsPerCapability } = prices.argoCd;
  const capabilities = Math.max(1, Math.ceil(targets / applicationsPerCapability));
  return (capabilities * capabilityHour + targets * applicationHour) * prices.hoursPerMonth;
}

// ---------------------------------------------------------------------------------------------
// The stack, from serverless.yml's text.

export interface FunctionFacts {
  /** The function's name in serverless.yml (githubWebhook, syncWorker, ...). */
  name: string;
  /** Its bundle's directory under dist/functions. */
  dir: string;
  memoryMiB: number;
  architecture: Arch;
  ephemeralMiB: number;
}

export interface StackFacts {
  functions: FunctionFacts[];
  /** AWS::CloudWatch::Alarm resources: a standard alarm is one alarm metric, a metric math alarm one per metric it reads. */
  alarms: Array<{ name: string; metrics: number; math: boolean }>;
  /** Resources with a monthly charge of their own (Secrets Manager secrets, KMS keys) the stack defines. */
  fixedResources: Array<{ name: string; type: string }>;
  logRetentionDays: number;
  /** The secrets the README's deploy steps create. */
  deploySecrets: DeploySecrets;
}

/** Secrets Manager secrets (billed a month each) and SSM SecureString parameters (standard: no charge). */
export interface DeploySecrets {
  secretsManager: number;
  ssmParameters: number;
}

/**
 * The secrets the README's deploy steps create, counted from its "Deploying to AWS" section: each
 * `aws secretsmanager create-secret` and each `aws ssm put-parameter` command at the start of a line.
 */
export function deploySecrets(readme: string): DeploySecrets {
  const start = readme.indexOf('\n## Deploying to AWS');
  if (start < 0) throw new Error('README.md has no "## Deploying to AWS" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const count = (command: RegExp): number => section.split('\n').filter((l) => command.test(l)).length;
  return {
    secretsManager: count(/^\s*aws secretsmanager create-secret\s/),
    ssmParameters: count(/^\s*aws ssm put-parameter\s/),
  };
}

interface SlsFunction {
  handler: string;
  memorySize?: number | string;
  architecture?: string;
  ephemeralStorageSize?: number | string;
}
interface SlsResource {
  Type?: string;
  Properties?: { Metrics?: Array<{ MetricStat?: unknown }> };
}

/**
 * What the cost model needs of serverless.yml (memory, architecture and /tmp per function, alarms,
 * fixed-price resources) and of the README's deploy steps (the secrets they create).
 */
export function stackFacts(serverlessYml: string, readme: string): StackFacts {
  const sls = parse(serverlessYml, { customTags: cfnTags }) as {
    provider: { memorySize?: number; architecture?: string; logRetentionInDays?: number };
    functions: Record<string, SlsFunction>;
    resources?: { Resources?: Record<string, SlsResource> };
  };
  const functions = Object.entries(sls.functions).map(([name, f]): FunctionFacts => {
    const dir = /^dist\/functions\/([^/]+)\//.exec(f.handler)?.[1];
    const architecture = f.architecture ?? sls.provider.architecture ?? 'x86_64';
    if (!dir) throw new Error(`serverless.yml ${name}: handler ${f.handler} is not under dist/functions/`);
    if (architecture !== 'arm64' && architecture !== 'x86_64')
      throw new Error(`serverless.yml ${name}: architecture ${architecture}`);
    return {
      name,
      dir,
      memoryMiB: Number(f.memorySize ?? sls.provider.memorySize ?? 128),
      architecture,
      ephemeralMiB: Number(f.ephemeralStorageSize ?? 512),
    };
  });
  const resources = Object.entries(sls.resources?.Resources ?? {});
  const alarms = resources
    .filter(([, r]) => r.Type === 'AWS::CloudWatch::Alarm')
    .map(([name, r]) => {
      const metrics = r.Properties?.Metrics;
      return metrics
        ? { name, metrics: metrics.filter((m) => m.MetricStat !== undefined).length, math: true }
        : { name, metrics: 1, math: false };
    });
  const fixedTypes = new Set(['AWS::SecretsManager::Secret', 'AWS::KMS::Key']);
  const fixedResources = resources
    .filter(([, r]) => r.Type !== undefined && fixedTypes.has(r.Type))
    .map(([name, r]) => ({ name, type: r.Type ?? '' }));
  return {
    functions,
    alarms,
    fixedResources,
    logRetentionDays: Number(sls.provider.logRetentionInDays ?? 0),
    deploySecrets: deploySecrets(readme),
  };
}

// ---------------------------------------------------------------------------------------------
// What bench/cost-measure.ts measures: per event, what each function used.

export interface FunctionUse {
  invocations: number;
  /** The sum of each invocation's duration rounded up to the millisecond (Lambda's billed duration). */
  billedMs: number;
  /** CPU time of the function's process (and the children it waited for) over those invocations. */
  cpuMs: number;
  /** Bytes the function wrote to its log (its CloudWatch log), without Lambda's START/END/REPORT lines. */
  logBytes: number;
  peakRssMiB: number;
}

export interface EventUse {
  /** By the function's name in serverless.yml. */
  functions: Record<string, FunctionUse>;
  /** SQS requests the functions made themselves, in 64 KiB chunks (the event source's receives and deletes are not in it). */
  sqsRequests: number;
  /** Requests through the HTTP API (webhook deliveries, status page views). */
  apiRequests: number;
  /** Metric series (EMF) this event publishes that the poll ticks and drift passes do not publish every hour already. */
  extraMetricSeries: number;
  /** How many occurrences were measured (the numbers are their mean). */
  samples: number;
  /** The worker's time by message type (from its "message handled" log lines), and what its batches spent after their last message. */
  worker?: WorkerBreakdown;
}

export interface WorkerBreakdown {
  /** By message type (push: the fan-out; sync; reload: the reload pass; previews: the sweep): how many, and their time. */
  messages: Record<string, { count: number; ms: number }>;
  /** After the last message of each batch (notifications, the pipeline heartbeat on each cluster). */
  afterMs: number;
}

export interface MeasuredPoint {
  targets: number;
  /** A push changing one target's ConfigMap: the webhook, then every worker invocation until the queue is empty. */
  push: EventUse;
  /** A poll tick with nothing changed: the poll, and the worker's reload passes and preview sweeps (one per cluster). */
  quietTick: EventUse;
  /** What a tick costs more when the poll's push message gets through (once per drift interval at least): the fan-out and a sync of every target. */
  driftPass: EventUse;
  /** One view of the status page (GET /status through a signed link). */
  statusPage: EventUse;
  /** Metric series the idle path (poll ticks and drift passes) publishes: sent every hour, billed all month. */
  idleMetricSeries: number;
}

export interface Measurement {
  /** The command that measured it (npm run bench, or bench/cost-only.ts alone). */
  command?: string;
  date: string;
  machine: string;
  clusters: number;
  driftIntervalMin: number;
  /** Measured at each of these target counts (at least two), extrapolated linearly beyond. */
  points: MeasuredPoint[];
  /** Cold initialisation of each function's bundle (median), by function name. */
  initMs: Record<string, number>;
  /** What the measurement saw that the model should say (objects on the apiserver, batching). */
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// The model.

export interface Scenario {
  targets: number;
  clusters: number;
  pollsPerMinute: number;
  pushesPerDay: number;
  statusViewsPerDay: number;
  /** settings driftInterval (default 10m). */
  driftIntervalMin: number;
  /**
   * Secrets Manager secrets in place of the SSM parameters of the README's deploy steps (the webhook
   * secret, a repository token, the registry secret, the status link secret); unset: as the README creates them.
   */
  secrets?: number;
  /** Cold starts an hour of each function the poll keeps warm (poll, worker): an estimate. */
  coldStartsPerHour: number;
}

export const DEFAULT_SCENARIO: Omit<Scenario, 'targets' | 'pushesPerDay'> = {
  clusters: 2,
  pollsPerMinute: 1,
  statusViewsPerDay: 0,
  driftIntervalMin: 10,
  coldStartsPerHour: 1,
};

/** Lambda's own log lines per invocation (START, END, REPORT): an estimate, bytes. */
export const PLATFORM_LOG_BYTES = 300;
/** The SQS event source's pollers on an idle queue, and their long polls a minute each (20 s): an estimate. */
export const IDLE_POLLERS = 5;
export const IDLE_RECEIVES_PER_POLLER_MIN = 3;
/** What the event source does per worker batch: one ReceiveMessage, one DeleteMessageBatch. */
export const ESM_REQUESTS_PER_BATCH = 2;
const GB = 1024 ** 3;
const WORKER = 'syncWorker';

/** A month's count of each event of a scenario. */
export function monthlyCounts(s: Scenario, hoursPerMonth = PRICES.hoursPerMonth) {
  const minutes = hoursPerMonth * 60;
  const days = hoursPerMonth / 24;
  const ticks = minutes * s.pollsPerMinute;
  // The poll queues its push message once per drift interval: it remembers, in its process, the head
  // and interval it last queued. A new process (a cold start) queues the interval's once more: counted
  // as a pass (SQS drops it when the first was less than 5 minutes before).
  const intervals = s.pollsPerMinute > 0 ? minutes / s.driftIntervalMin : 0;
  const driftPasses = Math.min(ticks, intervals + (s.pollsPerMinute > 0 ? s.coldStartsPerHour * hoursPerMonth : 0));
  const pushes = s.pushesPerDay * days;
  return {
    ticks,
    driftPasses,
    pushes,
    // A push moves the branch: the next tick sees a new head and queues its push message at once.
    pushPasses: Math.min(pushes, ticks - driftPasses),
    statusViews: s.statusViewsPerDay * days,
  };
}

const lerp = (a: number, b: number, ta: number, tb: number, t: number): number =>
  Math.max(0, tb === ta ? a : a + ((b - a) * (t - ta)) / (tb - ta));

function lerpUse(
  a: FunctionUse | undefined,
  b: FunctionUse | undefined,
  ta: number,
  tb: number,
  t: number,
): FunctionUse {
  const zero: FunctionUse = { invocations: 0, billedMs: 0, cpuMs: 0, logBytes: 0, peakRssMiB: 0 };
  const x = a ?? zero;
  const y = b ?? zero;
  return {
    invocations: lerp(x.invocations, y.invocations, ta, tb, t),
    billedMs: lerp(x.billedMs, y.billedMs, ta, tb, t),
    cpuMs: lerp(x.cpuMs, y.cpuMs, ta, tb, t),
    logBytes: lerp(x.logBytes, y.logBytes, ta, tb, t),
    peakRssMiB: Math.max(x.peakRssMiB, y.peakRssMiB),
  };
}

/** An event's use at `t` targets: the measured point itself, else linear through the smallest and largest measured points. */
export function eventAt(points: readonly MeasuredPoint[], kind: EventKind, t: number): EventUse {
  const exact = points.find((p) => p.targets === t);
  if (exact) return exact[kind];
  const sorted = [...points].sort((p, q) => p.targets - q.targets);
  const lo = sorted[0];
  const hi = sorted.at(-1);
  if (!lo || !hi) throw new Error('no measured points');
  const a = lo[kind];
  const b = hi[kind];
  const names = new Set([...Object.keys(a.functions), ...Object.keys(b.functions)]);
  return {
    functions: Object.fromEntries(
      [...names].map((n) => [n, lerpUse(a.functions[n], b.functions[n], lo.targets, hi.targets, t)]),
    ),
    sqsRequests: lerp(a.sqsRequests, b.sqsRequests, lo.targets, hi.targets, t),
    apiRequests: lerp(a.apiRequests, b.apiRequests, lo.targets, hi.targets, t),
    extraMetricSeries: lerp(a.extraMetricSeries, b.extraMetricSeries, lo.targets, hi.targets, t),
    samples: Math.min(a.samples, b.samples),
  };
}

/** The idle path's metric series at `t` targets (measured, else linear). */
export function idleSeriesAt(points: readonly MeasuredPoint[], t: number): number {
  const exact = points.find((p) => p.targets === t);
  if (exact) return exact.idleMetricSeries;
  const sorted = [...points].sort((p, q) => p.targets - q.targets);
  const lo = sorted[0];
  const hi = sorted.at(-1);
  if (!lo || !hi) throw new Error('no measured points');
  return lerp(lo.idleMetricSeries, hi.idleMetricSeries, lo.targets, hi.targets, t);
}

export type EventKind = 'push' | 'quietTick' | 'driftPass' | 'statusPage';

export interface EventCost {
  lambda: number;
  sqs: number;
  api: number;
  logs: number;
  total: number;
}

export interface ModelOptions {
  /** Stretch each invocation's CPU time to the CPU share Lambda gives its memory size (an estimate, not a measurement). */
  cpuScaled?: boolean;
}

/** Billed milliseconds of a function's use; with cpuScaled, its CPU time as it would run on 1,769 MB ÷ memory of a vCPU. */
export function billedMs(use: FunctionUse, fn: FunctionFacts, prices: Prices, opts: ModelOptions = {}): number {
  if (!opts.cpuScaled) return use.billedMs;
  const stretch = Math.max(1, prices.lambda.mibPerVcpu / fn.memoryMiB);
  return use.billedMs + use.cpuMs * (stretch - 1);
}

/** Lambda (duration, requests, /tmp), SQS, API Gateway and log ingestion of one occurrence of an event. */
export function eventCost(e: EventUse, stack: StackFacts, prices: Prices = PRICES, opts: ModelOptions = {}): EventCost {
  let lambda = 0;
  let logBytes = 0;
  let batches = 0;
  for (const [name, use] of Object.entries(e.functions)) {
    const fn = stack.functions.find((f) => f.name === name);
    if (!fn) throw new Error(`measured function ${name} is not in serverless.yml`);
    const seconds = billedMs(use, fn, prices, opts) / 1000;
    const extraTmpGb = Math.max(0, fn.ephemeralMiB - prices.lambda.includedEphemeralMiB) / 1024;
    lambda +=
      seconds * (fn.memoryMiB / 1024) * prices.lambda.gbSecond[fn.architecture] +
      use.invocations * prices.lambda.request +
      seconds * extraTmpGb * prices.lambda.ephemeralGbSecond;
    logBytes += use.logBytes + use.invocations * PLATFORM_LOG_BYTES;
    if (name === WORKER) batches += use.invocations;
  }
  const sqs = (e.sqsRequests + batches * ESM_REQUESTS_PER_BATCH) * prices.sqsFifoRequest;
  const api = e.apiRequests * prices.httpApiRequest;
  const logs = (logBytes / GB) * (prices.logs.ingestGb + prices.logs.storeGbMonth);
  return { lambda, sqs, api, logs, total: lambda + sqs + api + logs };
}

export interface CostLine {
  item: string;
  /** How many a month, and of what. */
  quantity: string;
  usd: number;
  /** Measured (from the run), estimated (an assumption of the model) or counted (from serverless.yml). */
  basis: 'measured' | 'estimated' | 'counted' | 'list price';
  /** A line of events (Lambda, SQS, API Gateway, logs), not a fixed or estimated charge. */
  event?: boolean;
}

export interface MonthlyCost {
  scenario: Scenario;
  lines: CostLine[];
  total: number;
  /** The Lambda, SQS, API Gateway and log part of the events, and the rest (fixed and estimated). */
  events: number;
  fixed: number;
}

const round = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/** What a month of the scenario costs on AWS, line by line. */
export function monthlyCost(
  s: Scenario,
  m: Measurement,
  stack: StackFacts,
  prices: Prices = PRICES,
  opts: ModelOptions = {},
): MonthlyCost {
  if (s.clusters !== m.clusters)
    throw new Error(`the measurement is of ${m.clusters} clusters; the scenario has ${s.clusters}`);
  const n = monthlyCounts(s, prices.hoursPerMonth);
  const at = (kind: EventKind): EventUse => eventAt(m.points, kind, s.targets);
  const event = (kind: EventKind, count: number, item: string, what: string): CostLine => ({
    item,
    quantity: `${round(count)} ${what}`,
    usd: count * eventCost(at(kind), stack, prices, opts).total,
    basis: 'measured',
    event: true,
  });
  const fn = (name: string): FunctionFacts => {
    const f = stack.functions.find((x) => x.name === name);
    if (!f) throw new Error(`serverless.yml has no function ${name}`);
    return f;
  };
  const initCost = (name: string): number =>
    ((m.initMs[name] ?? 0) / 1000) * (fn(name).memoryMiB / 1024) * prices.lambda.gbSecond[fn(name).architecture];
  const coldStarts = s.coldStartsPerHour * prices.hoursPerMonth;
  const alarmMetrics = stack.alarms.reduce((k, a) => k + a.metrics, 0);
  const pushSeries = at('push').extraMetricSeries * n.pushes;
  const viewSeries = at('statusPage').extraMetricSeries * n.statusViews;
  const idleSeries = idleSeriesAt(m.points, s.targets);
  const idleReceives = IDLE_POLLERS * IDLE_RECEIVES_PER_POLLER_MIN * prices.hoursPerMonth * 60;
  const secretCalls = n.pushes + n.statusViews + coldStarts * 2;
  // Secrets Manager secrets: the scenario's, else the README's; what the README creates as SSM parameters otherwise.
  const deploy = stack.deploySecrets;
  const deployed = deploy.secretsManager + deploy.ssmParameters;
  const managed = s.secrets ?? deploy.secretsManager;
  const parameters = Math.max(0, deployed - managed);
  const secretCall = managed > 0 ? prices.secretApiCall : prices.ssmApiCall + prices.kmsRequest;
  const stackSecrets = stack.fixedResources.filter((r) => r.type === 'AWS::SecretsManager::Secret').length;
  const stackKeys = stack.fixedResources.length - stackSecrets;
  const lines: CostLine[] = [
    event('quietTick', n.ticks, 'poll ticks: the poll, a reload pass and a preview sweep per cluster', 'ticks'),
    event(
      'driftPass',
      n.driftPasses,
      `drift passes: the poll's push fanned out, a no-op sync of each of the ${s.targets} targets`,
      'passes',
    ),
    event('push', n.pushes, 'pushes: the webhook, then the worker until the queue is empty', 'pushes'),
    event(
      'driftPass',
      n.pushPasses,
      "the tick after each push: the branch moved, the poll's push message is new, every target synced again (no-op)",
      'passes',
    ),
    event('statusPage', n.statusViews, 'status page views', 'views'),
    {
      item: 'cold starts (INIT is billed): poll and worker; each push and view counted cold',
      quantity: `${round(coldStarts * 2 + n.pushes + n.statusViews)} cold starts`,
      usd:
        coldStarts * (initCost('scheduledPoll') + initCost(WORKER)) +
        n.pushes * initCost('githubWebhook') +
        n.statusViews * initCost('statusPage'),
      basis: 'estimated',
    },
    {
      item: "the SQS event source's long polls of the idle queue",
      quantity: `${round(idleReceives)} receives`,
      usd: idleReceives * prices.sqsFifoRequest,
      basis: 'estimated',
    },
    {
      item: 'CloudWatch custom metrics (EMF): series sent every hour, and those of pushes and views by the hour',
      quantity: `${round(idleSeries)} series + ${round(pushSeries + viewSeries)} series-hours`,
      usd: (idleSeries + (pushSeries + viewSeries) / prices.hoursPerMonth) * prices.customMetricMonth,
      basis: 'measured',
    },
    {
      item: `CloudWatch alarms (${stack.alarms.length} in serverless.yml)`,
      quantity: `${alarmMetrics} alarm metrics`,
      usd: alarmMetrics * prices.alarmMetricMonth,
      basis: 'counted',
    },
    {
      item: "secrets: those of the README's deploy steps (Secrets Manager secrets, SSM parameters), and the Secrets Manager secrets and KMS keys the stack defines",
      quantity: `${managed + stackSecrets} secrets, ${parameters} parameters, ${stackKeys} keys`,
      usd:
        (managed + stackSecrets) * prices.secretMonth +
        parameters * prices.ssmParameterMonth +
        stackKeys * prices.kmsKeyMonth,
      basis: 'list price',
    },
    {
      item:
        managed > 0
          ? 'Secrets Manager API calls (a read per push, view and cold start)'
          : 'SSM parameter reads and their KMS decrypts (a read per push, view and cold start)',
      quantity: `${round(secretCalls)} calls`,
      usd: secretCalls * secretCall,
      basis: 'estimated',
    },
    {
      item: 'EventBridge: the poll schedule, ECR events',
      quantity: `${round(n.ticks)} events`,
      usd: n.ticks * prices.eventBridgeEvent,
      basis: 'list price',
    },
  ];
  const total = lines.reduce((k, l) => k + l.usd, 0);
  const events = lines.filter((l) => l.event).reduce((k, l) => k + l.usd, 0);
  return { scenario: s, lines, total, events, fixed: total - events };
}

export const scenario = (targets: number, pushesPerDay: number, over: Partial<Scenario> = {}): Scenario => ({
  ...DEFAULT_SCENARIO,
  targets,
  pushesPerDay,
  ...over,
});

// ---------------------------------------------------------------------------------------------
// The report: docs/cost.md, docs/cost.svg and the goal row of docs/benchmarks.md.

/** The goal, as the issue states it; a run never rewords it. */
export const GOAL = {
  name: 'idle cost, 100 targets on 2 clusters, 1 poll/min, 20 pushes/day',
  goal: '≤ $5/month, from measured durations and memory',
  limitUsd: 5,
  scenario: (): Scenario => scenario(100, 20),
} as const;

export type GoalRow = BenchRow;

const usd = (n: number): string => `$${n >= 1000 ? n.toFixed(0) : n >= 100 ? n.toFixed(1) : n.toFixed(2)}`;
const ms = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(0)} ms`);

function fnCell(e: EventUse, name: string): string {
  const u = e.functions[name];
  if (!u || u.invocations === 0) return '—';
  return `${u.invocations.toFixed(u.invocations % 1 ? 1 : 0)} × = ${ms(u.billedMs)} (CPU ${ms(u.cpuMs)}), ${(u.logBytes / 1024).toFixed(1)} KiB log, ≤ ${u.peakRssMiB.toFixed(0)} MiB`;
}

function measuredTable(m: Measurement, stack: StackFacts): string {
  const names = ['githubWebhook', 'scheduledPoll', WORKER, 'statusPage'];
  const head = names.map((n) => {
    const f = stack.functions.find((x) => x.name === n);
    return f ? `${n} (${f.memoryMiB} MB, ${f.architecture})` : n;
  });
  const kinds: Array<[EventKind, string]> = [
    ['push', 'a push (one target changed)'],
    ['quietTick', 'a poll tick, nothing changed'],
    ['driftPass', 'a drift pass (on top of a tick)'],
    ['statusPage', 'a status page view'],
  ];
  const rows = m.points.flatMap((p) =>
    kinds.map(([k, label]) => {
      const e = p[k];
      return `| ${p.targets} | ${label} | ${names.map((n) => fnCell(e, n)).join(' | ')} | ${e.sqsRequests.toFixed(1)} | ${e.extraMetricSeries.toFixed(1)} | $${(eventCost(e, stack).total * 1000).toPrecision(3)} | ${e.samples} |`;
    }),
  );
  return [
    `| targets | event | ${head.join(' | ')} | SQS requests by the functions | new metric series | $ per 1000 | samples |`,
    `|---|---|${names.map(() => '---').join('|')}|---|---|---|---|`,
    ...rows,
  ].join('\n');
}

const MESSAGE_NAMES: Record<string, string> = {
  push: 'fan-out',
  sync: 'sync',
  reload: 'reload pass',
  previews: 'preview sweep',
};

function breakdownCell(b: WorkerBreakdown | undefined): string {
  if (!b) return '—';
  const parts = Object.entries(b.messages)
    .filter(([, v]) => v.count > 0)
    .map(
      ([type, v]) => `${MESSAGE_NAMES[type] ?? type} ${v.count.toFixed(v.count % 1 ? 1 : 0)} × ${ms(v.ms / v.count)}`,
    );
  return [...parts, `after the batches ${ms(b.afterMs)}`].join('; ');
}

function workerTable(m: Measurement): string {
  const kinds: Array<[EventKind, string]> = [
    ['push', 'a push'],
    ['quietTick', 'a poll tick, nothing changed'],
    ['driftPass', 'a drift pass'],
  ];
  return [
    '| targets | event | the worker’s time by message (count × mean) |',
    '|---|---|---|',
    ...m.points.flatMap((p) =>
      kinds.map(([k, label]) => `| ${p.targets} | ${label} | ${breakdownCell(p[k].worker)} |`),
    ),
  ].join('\n');
}

function scenarioTable(m: Measurement, stack: StackFacts, targets: readonly number[]): string {
  const rows = targets.flatMap((t) =>
    [20, 200].map((p) => {
      const c = monthlyCost(scenario(t, p), m, stack);
      const cpu = monthlyCost(scenario(t, p), m, stack, PRICES, { cpuScaled: true });
      const metrics = c.lines.find((l) => l.item.startsWith('CloudWatch custom metrics'))?.usd ?? 0;
      const measured = m.points.some((x) => x.targets === t) ? '' : ' (extrapolated)';
      return `| ${t}${measured} | ${p} | **${usd(c.total)}** | ${usd(c.events)} | ${usd(metrics)} | ${usd(c.fixed - metrics)} | ${usd(cpu.total)} | ${usd(argoCdMonthly(t))} | ${usd(fluxMonthly(2))} |`;
    }),
  );
  return [
    '| targets | pushes/day | tidegate | of which events (Lambda, SQS, API, logs) | custom metrics | alarms, secrets, pollers, cold starts | tidegate, CPU stretched to Lambda’s share | EKS Capability for Argo CD | Flux pods (2 nodes) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

function breakdownTable(c: MonthlyCost): string {
  return [
    '| item | a month | $ | basis |',
    '|---|---|---|---|',
    ...c.lines.map((l) => `| ${l.item} | ${l.quantity} | ${usd(l.usd)} | ${l.basis} |`),
    `| **total** | | **${usd(c.total)}** | |`,
  ].join('\n');
}

const CHART_TARGETS = [10, 20, 50, 100, 200, 500, 1000];

/** Monthly cost against targets, log–log: tidegate (20 and 200 pushes a day), the Argo CD capability, Flux's pods. */
export function costSvg(m: Measurement, stack: StackFacts): string {
  const series: Array<{ label: string; color: string; dash?: string; values: number[] }> = [
    {
      label: 'tidegate, 20 pushes/day',
      color: '#2a9d8f',
      values: CHART_TARGETS.map((t) => monthlyCost(scenario(t, 20), m, stack).total),
    },
    {
      label: 'tidegate, 200 pushes/day',
      color: '#264653',
      dash: '6 3',
      values: CHART_TARGETS.map((t) => monthlyCost(scenario(t, 200), m, stack).total),
    },
    { label: 'EKS Capability for Argo CD', color: '#e76f51', values: CHART_TARGETS.map((t) => argoCdMonthly(t)) },
    { label: 'Flux controllers as pods (2 nodes)', color: '#8a5cf6', values: CHART_TARGETS.map(() => fluxMonthly(2)) },
  ];
  const W = 860;
  const H = 440;
  const L = 70;
  const R = 320;
  const T = 56;
  const B = 50;
  const all = series.flatMap((s) => s.values).filter((v) => v > 0);
  const yMin = Math.min(1, 10 ** Math.floor(Math.log10(Math.min(...all))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...all)));
  const x = (t: number): number => L + ((Math.log10(t) - 1) / 2) * (W - L - R);
  const y = (v: number): number =>
    T + (1 - (Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / Math.log10(yMax / yMin)) * (H - T - B);
  const grid: string[] = [];
  for (let v = yMin; v <= yMax; v *= 10)
    grid.push(
      `<line x1="${L}" y1="${y(v)}" x2="${W - R}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">$${v}</text>`,
    );
  for (const t of [10, 100, 1000])
    grid.push(
      `<line x1="${x(t)}" y1="${T}" x2="${x(t)}" y2="${H - B}" stroke="#ddd"/><text x="${x(t)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${t}</text>`,
    );
  const measuredMax = Math.max(...m.points.map((p) => p.targets));
  const lines = series.map((s, i) => {
    const pts = s.values.map((v, k) => `${x(CHART_TARGETS[k] ?? 1).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const last = s.values.at(-1) ?? 0;
    return `<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/><text x="${W - R + 8}" y="${T + 16 + i * 18}" font-size="12" fill="${s.color}">${s.label}: ${usd(last)} at 1000</text>`;
  });
  const shade = `<rect x="${x(measuredMax)}" y="${T}" width="${W - R - x(measuredMax)}" height="${H - T - B}" fill="#f4f4f4"/><text x="${(x(measuredMax) + W - R) / 2}" y="${T + 14}" font-size="11" text-anchor="middle" fill="#777">extrapolated</text>`;
  const goal = `<circle cx="${x(100)}" cy="${y(GOAL.limitUsd)}" r="4" fill="none" stroke="#c00" stroke-width="2"/><text x="${x(100) + 8}" y="${y(GOAL.limitUsd) + 4}" font-size="11" fill="#c00">goal: ≤ $${GOAL.limitUsd} at 100 targets, 20 pushes/day</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><rect width="${W}" height="${H}" fill="#fff"/><text x="0" y="16" font-size="13" font-weight="bold">Monthly cost against targets: 2 clusters, 1 poll/min (log–log)</text><text x="0" y="34" font-size="11">${PRICES.regionName} list prices of ${PRICES.collected}; tidegate from durations measured on ${m.date} at ${m.points.map((p) => p.targets).join(' and ')} targets</text>${shade}${grid.join('')}${lines.join('')}${goal}<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#444"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#444"/><text x="${(L + W - R) / 2}" y="${H - 12}" font-size="12" text-anchor="middle">targets (Argo CD Applications)</text></svg>\n`;
}

/** The goal row for docs/benchmarks.md. */
export function goalRow(m: Measurement, stack: StackFacts): GoalRow {
  const c = monthlyCost(GOAL.scenario(), m, stack);
  const argo = argoCdMonthly(100);
  return {
    name: GOAL.name,
    tidegate: `${usd(c.total)}/month (docs/cost.md)`,
    alternative: `EKS Capability for Argo CD: ${usd(argo)}; Flux pods: ${usd(fluxMonthly(2))}`,
    ratio: (c.total / argo).toFixed(3),
    goal: GOAL.goal,
    met: c.total <= GOAL.limitUsd,
  };
}

/** Sync metrics with a Target dimension when metrics.perTarget is set (shared/telemetry/metrics.ts): Syncs<Outcome> and SyncDuration. */
export const PER_TARGET_SERIES = 2;

/** The idle path's metric series at the goal scenario: per target, besides, and what metrics.perTarget would add. */
function metricsNote(m: Measurement, goal: MonthlyCost): string {
  const sorted = [...m.points].sort((a, b) => a.targets - b.targets);
  const lo = sorted[0];
  const hi = sorted.at(-1);
  if (!lo || !hi || hi.targets === lo.targets) return '';
  const perTarget = (hi.idleMetricSeries - lo.idleMetricSeries) / (hi.targets - lo.targets);
  const fixed = lo.idleMetricSeries - perTarget * lo.targets;
  const n = goal.scenario.targets;
  const measured = `Custom metrics (EMF): the poll ticks and drift passes publish ${(fixed + perTarget * n).toFixed(0)} series at ${n} targets, ${perTarget.toFixed(1)} a target and ${fixed.toFixed(0)} besides (the line through the measured ${lo.targets} and ${hi.targets} targets), each sent every hour and so billed all month.`;
  if (perTarget >= 1)
    return `${measured} Without the per-target ones the same scenario would be ${usd(goal.total - perTarget * n * PRICES.customMetricMonth)}/month.`;
  return `${measured} A sync that changed nothing publishes no metric unless the deploy-time setting \`metrics.unchanged\` is set; with it, and with \`metrics.perTarget\` (\`Syncs<Outcome>\` and \`SyncDuration\` with a Target dimension, shared/telemetry/metrics.ts), a drift pass's no-op syncs publish ${PER_TARGET_SERIES} series more a target, billed all month because it syncs every target at least once an hour: ${usd(PER_TARGET_SERIES * n * PRICES.customMetricMonth)} a month more at ${n} targets (counted from the code, not measured).`;
}

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? '' : 's'}`;
/** "4 SSM SecureString parameters, 0 Secrets Manager secrets". */
const secretsCount = (d: DeploySecrets): string =>
  `${plural(d.ssmParameters, 'SSM SecureString parameter')}, ${plural(d.secretsManager, 'Secrets Manager secret')}`;

/** The goal scenario with the README's secrets in the other store (the settings take both). */
function secretsNote(m: Measurement, stack: StackFacts): string {
  const d = stack.deploySecrets;
  const all = d.secretsManager + d.ssmParameters;
  if (all === 0) return '';
  const other = monthlyCost({ ...GOAL.scenario(), secrets: d.secretsManager > 0 ? 0 : all }, m, stack).total;
  return d.secretsManager > 0
    ? `With the secrets as SSM SecureString parameters instead of Secrets Manager secrets (the settings take both; standard parameters have no monthly charge), the same scenario is ${usd(other)}/month.`
    : `The README's deploy steps keep the secrets in SSM SecureString parameters (standard parameters have no monthly charge); with the ${all} of them as Secrets Manager secrets instead (the settings take both), the same scenario is ${usd(other)}/month.`;
}

const largest = (c: MonthlyCost, k: number): string =>
  [...c.lines]
    .sort((a, b) => b.usd - a.usd)
    .slice(0, k)
    .map((l) => `${l.item} (${usd(l.usd)})`)
    .join('; ');

/** docs/cost.md. */
export function costMarkdown(m: Measurement, stack: StackFacts): string {
  const goal = monthlyCost(GOAL.scenario(), m, stack);
  const goalCpu = monthlyCost(GOAL.scenario(), m, stack, PRICES, { cpuScaled: true });
  const flux = fluxNode();
  const measuredTargets = m.points.map((p) => p.targets).join(' and ');
  const worker = stack.functions.find((f) => f.name === WORKER);
  const alarmList = stack.alarms.map((a) => (a.math ? `${a.name} (metric math, ${a.metrics} metrics)` : a.name));
  const metricsLine = goal.lines.find((l) => l.item.startsWith('CloudWatch custom metrics'));
  return `# Cost

Measured by \`${m.command ?? 'npm run bench'}\` on ${m.date}: ${m.machine} (\`npx tsx bench/cost-only.ts\` runs the cost
part of \`npm run bench\` alone; the raw measurement is in [cost.json](cost.json), and
\`npx tsx bench/cost-only.ts --from docs/cost.json\` writes this page again from it). Prices:
${PRICES.regionName} (${PRICES.region}) list prices as collected on ${PRICES.collected} (sources and their dates below),
without the free tier, Savings Plans or volume tiers. The functions' durations, CPU time, log output, SQS requests and
metric series are measured on the built bundles run as Lambda runs them (\`devenv/lambda.ts\`, one process per function,
the memory size of serverless.yml) against the test kube-apiserver, git server and moto, at ${measuredTargets} targets on
${m.clusters} clusters; 1000 targets is extrapolated linearly from those two points. How: \`bench/cost-measure.ts\`
(measurement) and \`bench/cost.ts\` (prices and model).

## Goal

| goal | tidegate | met |
|---|---|---|
| ${GOAL.name}: ${GOAL.goal} | ${usd(goal.total)}/month: ${usd(goal.events)} events, ${usd(metricsLine?.usd ?? 0)} custom metrics, ${usd(goal.fixed - (metricsLine?.usd ?? 0))} fixed and estimated | ${goal.total <= GOAL.limitUsd ? 'yes' : '**no**'} |

${goal.total <= GOAL.limitUsd ? 'Met.' : `Missed. The largest lines: ${largest(goal, 3)}.`}
${metricsNote(m, goal)}
${secretsNote(m, stack)} With the CPU time of each
invocation stretched to the CPU share Lambda gives its memory size (an estimate, below), it is ${usd(goalCpu.total)}/month.

## Monthly cost

2 clusters, 1 poll a minute, the default drift interval (${m.driftIntervalMin} min), no status page views, the secrets of the README's deploy steps (${secretsCount(stack.deploySecrets)}).

${scenarioTable(m, stack, [10, 100, 1000])}

![cost against targets](cost.svg)

### ${GOAL.name}, line by line

${breakdownTable(goal)}

## Measured inputs, per event

Each cell: invocations = billed duration (each invocation rounded up to 1 ms) (CPU time), log bytes, peak resident
memory. "$ per 1000" is 1000 occurrences of the event (Lambda, SQS, API Gateway, logs). A push changes one target's
ConfigMap and is followed until the queue is empty; a tick is the poll and every worker invocation it causes; a drift
pass is what a tick costs more when the poll's push message gets through (the fan-out and a no-op sync of every target,
measured as a drift tick minus a quiet tick). Worker batches are formed as the event source forms them: up to
${'10'} visible messages a receive, so the invocation count is measured, not assumed (a push's fan-out and its first sync
are one or two invocations depending on the worker's code at the time of the run).

${measuredTable(m, stack)}

The worker's invocations by message, from the timestamps of its "message handled" log lines (the webhook and the poll
enqueue; the worker fans a push out into one sync message per target, syncs, runs the reload pass and the preview sweep
of each cluster; where the worker's code runs a push's first sync in the fan-out itself, that sync's time is the
fan-out's):

${workerTable(m)}

${m.notes.map((n) => `- ${n}`).join('\n')}
- Cold initialisation (importing the bundle in a fresh Node of its runtime, median of 3; billed at each cold start):
  ${Object.entries(m.initMs)
    .map(([name, t]) => `${name} ${ms(t)}`)
    .join(', ')}.

## The alternatives

- **EKS Capability for Argo CD**: $${PRICES.argoCd.capabilityHour} per capability-hour and
  $${PRICES.argoCd.applicationHour} per Argo CD Application-hour (${PRICES.hoursPerMonth} hours a month), one
  Application per target, one capability managing both clusters (hub and spoke; up to
  ${PRICES.argoCd.applicationsPerCapability} Applications per capability, a second one above). The published price list
  is the Amazon EKS pricing page, section EKS Capabilities; the numbers were read from a copy of that page of
  2026-05-20, not from the page itself: a copy of 2026-02 for us-west-2 reads $0.028838 and $0.00142 (4% more). The
  Argo CD software runs in AWS's accounts: no node cost.
- **Flux's controllers as pods**: Flux ${FLUX.version}: ${FLUX.controllers.map((c) => `${c.name} ${c.version} (requests ${c.cpuMillis}m CPU, ${c.memoryMiB} Mi)`).join(', ')} (their
  release manifests, config/manager/deployment.yaml). The smallest instance they fit on, per cluster, is
  **${flux.instance.type}** ($${flux.instance.hour}/hour on demand): ${flux.why}. Allocatable as the EKS AMI computes it
  (max pods from ENIs without prefix delegation, kube-reserved 11 × max pods + 255 MiB, eviction at 100 MiB). One
  node per cluster: ${usd(fluxMonthly(2))}/month for 2 clusters, whatever the number of targets; its EBS volume and the
  other DaemonSets' requests are not counted.
- The EKS control plane ($0.10 per cluster-hour) is common to all three and not counted anywhere.

## Prices

| item | price | source | as of |
|---|---|---|---|
${PRICE_SOURCES.map((p) => `| ${p.item} | ${p.price} | ${p.source} | ${p.asOf} |`).join('\n')}

## Assumptions: what is measured, counted or estimated

- **Measured** (this run): invocations per event and function, their billed duration and CPU time, log bytes, SQS
  requests the functions make (each request's payload in 64 KiB chunks, through a counting proxy in front of moto), EMF
  metric series, cold initialisation of each bundle (importing it in a fresh Node, median of 3).
- **Counted from serverless.yml**: memory and architecture per function (${stack.functions.map((f) => `${f.name} ${f.memoryMiB} MB ${f.architecture}`).join(', ')}),
  the worker's ${worker?.ephemeralMiB ?? '?'} MB of /tmp (billed above 512 MB), the ${stack.alarms.length} alarms (${alarmList.join(', ')}),
  log retention ${stack.logRetentionDays} days. The stack defines ${stack.fixedResources.length === 0 ? 'no Secrets Manager secret and no KMS key of its own (SQS uses SSE-SQS, SNS the AWS managed key: no monthly charge)' : stack.fixedResources.map((r) => `${r.name} (${r.type})`).join(', ')}.
- **Counted from the README's deploy steps**: the secrets they create, ${secretsCount(stack.deploySecrets)} (a Secrets
  Manager secret $0.40 a month; a standard SSM parameter nothing, a read of it a KMS decrypt).
- **Estimated**: Lambda's own START/END/REPORT log lines
  (${PLATFORM_LOG_BYTES} bytes an invocation); the SQS event source's polling of the idle queue (Lambda does not
  publish its rate: ${IDLE_POLLERS} pollers, a 20 s long poll each, ${IDLE_POLLERS * IDLE_RECEIVES_PER_POLLER_MIN} receives a minute) and its receive and delete per
  worker batch (${ESM_REQUESTS_PER_BATCH} requests); one cold start an hour of the poll and of the worker, every push's
  webhook and every view cold (upper bound); a secret read per push, view and cold start; log storage at the
  ingested size for a month (retention ${stack.logRetentionDays} days; stored logs are billed compressed: an upper bound).
- **Drift passes**: the poll queues its push message once per drift interval (${m.driftIntervalMin} min by default; it
  remembers in its process the head and interval it last queued), so a month has one pass per interval, and one more
  per cold start of the poll (a new process does not know what was queued; SQS's 5-minute deduplication drops it when
  the interval's first was recent: an upper bound). A push moves the branch, so the next tick queues the new head at
  once: one more pass per push. The notes above say whether the measurement's first tick after its pushes was such a
  pass. (The measurement applies SQS's 5-minute deduplication to moto, which keeps none once a message is deleted.)
- **CPU**: the emulation gives each function process a whole core; Lambda gives ${PRICES.lambda.mibPerVcpu} MB a vCPU, so
  a 512 MB function has about 0.29 of one and the 1024 MB worker 0.58. The "CPU stretched" column re-times each
  invocation's measured CPU time at that share (CPU ms × ${PRICES.lambda.mibPerVcpu} ÷ memory) and keeps its waiting time:
  an estimate of what Lambda would bill, not a measurement. The goal is judged on the measured durations.
- **Linear in targets**: every per-event number is measured at ${measuredTargets} targets; other counts are on the line
  through those two points (1000 targets: extrapolated). Pushes, views and ticks are priced per occurrence; a month is
  ${PRICES.hoursPerMonth} hours.
- **Not counted**: the free tier, data transfer (the answers from GitHub and the cluster come in, which is free;
  what goes out is small), X-Ray (tracing is PassThrough by default), the alarm notifier and SNS (only when an alarm
  fires), registry webhooks and ECR events (image pushes are not part of these scenarios), EKS itself.
`;
}

/** Everything the bench writes from a measurement. */
export function costReport(
  m: Measurement,
  serverlessYml: string,
  readme: string,
): { markdown: string; svg: string; row: GoalRow } {
  const stack = stackFacts(serverlessYml, readme);
  return { markdown: costMarkdown(m, stack), svg: costSvg(m, stack), row: goalRow(m, stack) };
}
