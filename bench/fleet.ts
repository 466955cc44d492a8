/**
 * Fleet-scale rows of `npm run bench` (BENCH_FLEET=1): a Flux repository of many small apps synced
 * through the deployed path (the built github-webhook and sync-worker bundles on SQS in moto, one
 * push delivering the whole repository), beside Flux's kustomize-controller on the same apiserver;
 * and as many HelmReleases of the test podinfo chart, beside Flux's published helm-controller figure.
 *
 * The repositories have the layout `flux bootstrap` writes: clusters/<cluster>/flux-system/ (the
 * GitRepository and the Kustomization syncing the cluster directory), and the fleet's objects under
 * the cluster directory; tidegate reads them without a tidegate.yaml. Each row's cluster directory
 * has a name of its own (target names are `<cluster>-<name>` and unique on a cluster), a cluster
 * alias of the deployed settings for the bench's apiserver.
 *
 * BENCH_SCALE scales the fleet (0.05: 50 apps); BENCH_FLEET_WORKERS sets the number of concurrent
 * sync-worker processes (Lambda's maximumConcurrency; default 4); BENCH_FLEET_FLUX_CONCURRENT sets
 * kustomize-controller's --concurrent (default 20, Flux's tuning for large fleets);
 * BENCH_FLEET_NAMESPACES=shared puts every app of a fleet in one namespace (as flux-benchmark does)
 * instead of a namespace each; BENCH_FLEET_TIDEGATE_ONLY=1 runs tidegate's Kustomization fleet alone
 * (its medians per sync are logged).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAllDocuments, stringify } from 'yaml';
import { GitWorkspace, createBareRepo, startHelmRepo, type EnvironmentInfo } from '../devenv/index.js';
import type { InvocationReport } from '../devenv/lambda.js';
import type { KubeClient } from '../shared/cluster/index.js';
import type { KubeObject } from '../shared/model/index.js';
import { readTargetState } from '../shared/state/index.js';
import { startDeployed, type Deployed } from './deployed.js';
import type { BenchRow } from './row.js';
import { buildFlux, diffCounts, formatCounts, startFlux, FLUX_VERSION, type Flux } from './flux/flux.js';

export interface FleetOptions {
  env: EnvironmentInfo;
  /** A client of the apiserver (cluster-admin), for checking what was applied. */
  client: KubeClient;
  /** BENCH_SCALE: the fleet has round(1000 × scale) apps (at least 10). */
  scale: number;
  log: (line: string) => void;
}

const FLUX_NS = 'flux-system';
const KUSTOMIZE_API = 'kustomize.toolkit.fluxcd.io/v1';
const SOURCE_API = 'source.toolkit.fluxcd.io/v1';
const FIELD_MANAGER = 'tidegate-bench-fleet';
const FLUX_PUBLISHED = { releases: 1000, ms: 4 * 60_000 + 39_000, memory: '361 MiB', runner: '16-core runner' };
const here = new URL('.', import.meta.url).pathname;
const PODINFO_CHART = join(here, '..', 'test', 'flux', 'fixture', 'charts', 'podinfo');

const fmt = (ms: number): string => {
  const s = Math.round(ms / 1000);
  if (s >= 60) return `${Math.floor(s / 60)} m ${s % 60} s`;
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
};
const pad = (i: number): string => String(i).padStart(4, '0');
const yaml = (...docs: unknown[]): string => docs.map((d) => stringify(d)).join('---\n');
const intFromEnv = (name: string, fallback: number): number => {
  const v = Number(process.env[name] ?? '');
  return Number.isInteger(v) && v > 0 ? v : fallback;
};

// ---------------------------------------------------------------------------------------------
// The repositories

/** clusters/<cluster>/flux-system/: the GitRepository of this repository and the Kustomization syncing the cluster directory. */
function bootstrapFiles(cluster: string, url: string): Record<string, string> {
  const dir = `clusters/${cluster}/flux-system`;
  return {
    [`${dir}/gotk-sync.yaml`]: yaml(
      {
        apiVersion: SOURCE_API,
        kind: 'GitRepository',
        metadata: { name: 'flux-system', namespace: FLUX_NS },
        spec: { interval: '1m0s', ref: { branch: 'main' }, url },
      },
      {
        apiVersion: KUSTOMIZE_API,
        kind: 'Kustomization',
        metadata: { name: 'flux-system', namespace: FLUX_NS },
        spec: {
          interval: '10m0s',
          path: `./clusters/${cluster}`,
          prune: true,
          sourceRef: { kind: 'GitRepository', name: 'flux-system' },
        },
      },
    ),
    [`${dir}/kustomization.yaml`]: yaml({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['gotk-sync.yaml'],
    }),
  };
}

/** One small app: a ServiceAccount, a ConfigMap, a Service and a Deployment scaled to zero, a file each. */
function appFiles(name: string): Record<string, string> {
  const labels = { 'app.kubernetes.io/name': name };
  return {
    'serviceaccount.yaml': yaml({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, labels } }),
    'configmap.yaml': yaml({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${name}-config`, labels },
      data: { APP_NAME: name, LOG_LEVEL: 'info' },
    }),
    'service.yaml': yaml({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, labels },
      spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    }),
    'deployment.yaml': yaml({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, labels },
      spec: {
        replicas: 0,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: name,
            containers: [
              {
                name: 'app',
                image: 'registry.example/app:1.0.0',
                ports: [{ name: 'http', containerPort: 8080 }],
                envFrom: [{ configMapRef: { name: `${name}-config` } }],
                resources: { requests: { cpu: '10m', memory: '16Mi' } },
              },
            ],
          },
        },
      },
    }),
  };
}

/** Where a fleet's apps go: all in one namespace (flux-benchmark's shape), or each in one of its own. */
export type NamespaceLayout = 'shared' | 'per-app';

/** The namespace of an app: `prefix` (shared), or `prefix-<app>`. */
const namespaceOf = (layout: NamespaceLayout, prefix: string, app: string): string =>
  layout === 'shared' ? prefix : `${prefix}-${app}`;

/** The fleet's namespaces, declared in the cluster directory (the flux-system Kustomization applies them first). */
const namespacesFile = (layout: NamespaceLayout, prefix: string, apps: readonly string[]): string =>
  yaml(
    ...[...new Set(apps.map((a) => namespaceOf(layout, prefix, a)))].map((name) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    })),
  );

/**
 * A fleet of `apps` apps: clusters/<cluster>/apps/<app>.yaml is each app's Kustomization
 * (flux-system, the flux-system GitRepository, path ./apps/<app>, into the app's namespace),
 * apps/<app>/ its manifests; clusters/<cluster>/namespaces.yaml the namespaces they go to.
 */
export function kustomizationFleet(
  cluster: string,
  url: string,
  fleet: { prefix: string; layout: NamespaceLayout; apps: readonly string[] },
): Record<string, string> {
  const files: Record<string, string> = {
    ...bootstrapFiles(cluster, url),
    [`clusters/${cluster}/namespaces.yaml`]: namespacesFile(fleet.layout, fleet.prefix, fleet.apps),
  };
  for (const app of fleet.apps) {
    files[`clusters/${cluster}/apps/${app}.yaml`] = yaml({
      apiVersion: KUSTOMIZE_API,
      kind: 'Kustomization',
      metadata: { name: app, namespace: FLUX_NS },
      spec: {
        interval: '60m',
        retryInterval: '2m',
        timeout: '1m',
        path: `./apps/${app}`,
        prune: true,
        wait: false,
        targetNamespace: namespaceOf(fleet.layout, fleet.prefix, app),
        sourceRef: { kind: 'GitRepository', name: 'flux-system' },
      },
    });
    for (const [file, text] of Object.entries(appFiles(app))) files[`apps/${app}/${file}`] = text;
  }
  return files;
}

/**
 * A fleet of HelmReleases of the podinfo chart: clusters/<cluster>/podinfo/repository.yaml the
 * HelmRepository, clusters/<cluster>/podinfo/releases/<release>.yaml each release (flux-system,
 * into its namespace, created on install if missing), clusters/<cluster>/podinfo/namespaces.yaml
 * the namespaces.
 */
export function helmReleaseFleet(
  cluster: string,
  url: string,
  chartRepository: string,
  fleet: { prefix: string; layout: NamespaceLayout; apps: readonly string[] },
): Record<string, string> {
  const dir = `clusters/${cluster}/podinfo`;
  const files: Record<string, string> = {
    ...bootstrapFiles(cluster, url),
    [`${dir}/namespaces.yaml`]: namespacesFile(fleet.layout, fleet.prefix, fleet.apps),
    [`${dir}/repository.yaml`]: yaml({
      apiVersion: SOURCE_API,
      kind: 'HelmRepository',
      metadata: { name: 'podinfo', namespace: FLUX_NS },
      spec: { interval: '60m', url: chartRepository },
    }),
  };
  for (const release of fleet.apps)
    files[`${dir}/releases/${release}.yaml`] = yaml({
      apiVersion: 'helm.toolkit.fluxcd.io/v2',
      kind: 'HelmRelease',
      metadata: { name: release, namespace: FLUX_NS },
      spec: {
        interval: '60m',
        releaseName: release,
        targetNamespace: namespaceOf(fleet.layout, fleet.prefix, release),
        chart: {
          spec: { chart: 'podinfo', version: '*', sourceRef: { kind: 'HelmRepository', name: 'podinfo' } },
        },
        install: { createNamespace: true, disableWait: true },
        upgrade: { disableWait: true },
        values: { replicaCount: 0, message: `hello from ${release}` },
      },
    });
  return files;
}

/** The podinfo chart of the tests (test/flux/fixture/charts/podinfo): its templates and values. */
function podinfoChart(): { templates: Record<string, string>; values: string } {
  const templates = Object.fromEntries(
    readdirSync(join(PODINFO_CHART, 'templates')).map((f) => [
      f,
      readFileSync(join(PODINFO_CHART, 'templates', f), 'utf8'),
    ]),
  );
  return { templates, values: readFileSync(join(PODINFO_CHART, 'values.yaml'), 'utf8') };
}

// ---------------------------------------------------------------------------------------------
// tidegate through the deployed path

/** The deployed settings' clusters: the bench's apiserver as `test` (bench/deployed.ts) and as `alias`. */
function clusterSettings(env: EnvironmentInfo, alias: string): Record<string, unknown> {
  const cluster = {
    server: env.kube.server,
    caData: Buffer.from(env.kube.caPem).toString('base64'),
    token: { value: env.kube.token },
  };
  return { test: cluster, [alias]: cluster };
}

interface DeployedRun {
  ms: number;
  applied: number;
  targets: number;
  messages: number;
  deliveries: number;
  distinct: number;
  returned: number;
  workers: number;
  /** Peak RSS of each worker process (a process restarted after a kill counts apart), MiB. */
  peaks: number[];
  invocations: number;
  /** Invocations the emulation killed at a limit (memory, timeout, /tmp). */
  killed: number;
  /** The first targets not applied at the commit: their last recorded outcome. */
  notApplied: string[];
}

/** The first (up to 3) targets whose last recorded state is not `applied` at `sha`, with what it is. */
async function notAppliedAt(client: KubeClient, targets: readonly string[], sha: string): Promise<string[]> {
  const out: string[] = [];
  for (const t of targets) {
    const last = (await readTargetState(client, t)).history.at(-1);
    if (last?.revision.sha === sha && last.outcome === 'applied') continue;
    out.push(`${t}: ${last ? `${last.outcome} at ${last.revision.sha.slice(0, 7)} ${last.error ?? ''}` : 'no state'}`);
    if (out.length === 3) break;
  }
  return out;
}

/** The largest peakRssMiB of each worker process (by pid) over its invocations. */
function peaksByProcess(reports: ReadonlyArray<readonly InvocationReport[]>): number[] {
  const byPid = new Map<number, number>();
  for (const r of reports.flat()) byPid.set(r.pid, Math.max(byPid.get(r.pid) ?? 0, r.peakRssMiB));
  return [...byPid.values()];
}

/**
 * Pushes the whole repository (`files` of the repository at `d.url`) as one commit and plays the
 * queue with the deployed workers until every message was handled: the push (the fan-out, which
 * syncs one target itself) and a sync message per other target (`targets`, none depending on
 * another). Timed from the webhook delivery (the commit is already on the git server, as after a
 * git push) to the last handled message; then every target's recorded state is checked.
 */
async function deployedSync(
  d: Deployed,
  client: KubeClient,
  files: Record<string, string>,
  targets: readonly string[],
  workers: number,
): Promise<DeployedRun> {
  const sha = await d.commit(files, `a fleet of ${targets.length - 1}`);
  // The push message, and a sync message per target but the one the fan-out syncs itself.
  const messages = targets.length;
  const t0 = performance.now();
  await d.deliver(sha, Object.keys(files));
  const work = await d.work(messages);
  const ms = work.lastHandledAt - t0;
  const invocations = d.workerInvocations();
  const applied = await d.appliedAt(client, targets, sha);
  return {
    ms,
    applied,
    targets: targets.length,
    messages,
    deliveries: work.received.length,
    distinct: new Set(work.received).size,
    returned: work.failures.length,
    workers,
    peaks: peaksByProcess(invocations),
    invocations: invocations.flat().length,
    killed: invocations.flat().filter((r) => r.killed).length,
    notApplied: applied === targets.length ? [] : await notAppliedAt(client, targets, sha),
  };
}

/** The durations of the syncs the workers logged ('synced' lines), in the order they finished. */
function syncDurations(logs: readonly string[]): number[] {
  const synced: Array<{ at: string; ms: number }> = [];
  for (const line of logs.join('\n').split('\n')) {
    if (!line.includes('"synced"')) continue;
    try {
      const o = JSON.parse(line.slice(line.indexOf('{'))) as {
        message?: string;
        timestamp?: string;
        durationMs?: number;
      };
      if (o.message === 'synced' && typeof o.durationMs === 'number')
        synced.push({ at: o.timestamp ?? '', ms: o.durationMs });
    } catch {
      // not a log record
    }
  }
  return synced.sort((a, b) => a.at.localeCompare(b.at)).map((s) => s.ms);
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0
    ? NaN
    : s.length % 2
      ? (s[(s.length - 1) / 2] as number)
      : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

/** Median sync of all, of the first 100 and of the last 100 to finish (a sync slowing down as the fleet grows shows as last > first). */
const syncMedians = (ms: readonly number[]): string =>
  `median sync ${fmt(median(ms))} (first 100: ${fmt(median(ms.slice(0, 100)))}, last 100: ${fmt(median(ms.slice(-100)))}; ${ms.length} syncs logged)`;

const deployedCell = (r: DeployedRun): string =>
  `${fmt(r.ms)} until all applied (${r.applied} of ${r.targets} targets applied at the commit), ${r.workers} worker processes ` +
  `(${r.invocations} invocations, ${r.killed} killed); ` +
  `${r.messages} messages, ${r.deliveries} deliveries (${r.distinct} distinct), ${r.returned} returned to the queue; ` +
  `peak RSS per worker process ${Math.max(...r.peaks).toFixed(0)} MiB max (of each that ran: ${r.peaks.map((p) => p.toFixed(0)).join(', ')})` +
  (r.notApplied.length > 0 ? `; NOT applied: ${r.notApplied.join('; ')}` : '');

const allDone = (r: DeployedRun): boolean =>
  r.applied === r.targets &&
  r.deliveries === r.messages &&
  r.distinct === r.messages &&
  r.returned === 0 &&
  r.killed === 0;

// ---------------------------------------------------------------------------------------------
// Flux

type Condition = { type: string; status: string; reason?: string; message?: string };
type Kustomization = KubeObject & {
  status?: { conditions?: Condition[]; observedGeneration?: number; lastAppliedRevision?: string };
};

/** A Kustomization Ready at the commit, its status current. */
const readyAt = (k: Kustomization, sha: string): boolean =>
  k.status?.observedGeneration === k.metadata.generation &&
  k.status?.lastAppliedRevision?.endsWith(`:${sha}`) === true &&
  k.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;

/** Polls Flux's Kustomizations until every one named is Ready at the commit; the ms since `since`. */
async function waitAllReady(
  client: KubeClient,
  names: readonly string[],
  sha: string,
  since: number,
  timeoutMs: number,
): Promise<number> {
  const wanted = new Set(names);
  for (;;) {
    const all = (await client.list(KUSTOMIZE_API, 'Kustomization', { namespace: FLUX_NS })) as Kustomization[];
    const ready = all.filter((k) => wanted.has(k.metadata.name) && readyAt(k, sha));
    if (ready.length === wanted.size) return performance.now() - since;
    if (performance.now() - since > timeoutMs) {
      const waiting = all.filter((k) => wanted.has(k.metadata.name) && !readyAt(k, sha)).slice(0, 3);
      const why = waiting.map(
        (k) =>
          `${k.metadata.name}: ${k.status?.conditions?.map((c) => `${c.type}=${c.status} ${c.message ?? ''}`).join('; ') ?? 'no status'}`,
      );
      throw new Error(
        `Flux: ${ready.length} of ${wanted.size} Kustomizations Ready at ${sha} after ${fmt(timeoutMs)} (${all.length} exist): ${why.join(' | ')}`,
      );
    }
    // Each look lists every Kustomization: not so often that the listing slows Flux down (±2.5%).
    await sleep(Math.min(2000, Math.max(250, (performance.now() - since) / 40)));
  }
}

/** The peak resident memory (VmHWM) of the running process whose command line holds `needle`, MiB. */
function peakRssOf(needle: string): number | undefined {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) continue;
      const kib = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      return kib ? Number(kib) / 1024 : undefined;
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

interface FluxRun {
  ms: number;
  ready: number;
  requests: string;
  flags: string[];
  peakMiB: number | undefined;
}

/**
 * Flux on the same apiserver, from the same kind of repository: the flux-system GitRepository and
 * Kustomization of its gotk-sync.yaml created (as `flux bootstrap` does), the Kustomizations of the
 * cluster directory then applied by the flux-system Kustomization and reconciled by
 * kustomize-controller. Timed from the creation to every app's Kustomization Ready at the commit.
 */
async function fluxSync(o: FleetOptions, fleet: Parameters<typeof kustomizationFleet>[2]): Promise<FluxRun> {
  const { apps } = fleet;
  const binDir = await buildFlux();
  const url = await createBareRepo(o.env.git, `fleet-flux-${randomBytes(3).toString('hex')}`);
  const ws = await GitWorkspace.clone(o.env.git, url);
  const files = kustomizationFleet('flux', url, fleet);
  const sha = await ws.commit(files, `a fleet of ${apps.length}`);
  ws.remove();
  const concurrent = intFromEnv('BENCH_FLEET_FLUX_CONCURRENT', 20);
  // Flux's tuning for many Kustomizations: more workers, dependencies requeued at 5 s, builds in a
  // RAM-backed /tmp (TMPDIR under /dev/shm where there is one).
  const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const workDir = mkdtempSync(join(shm, 'bench-fleet-flux-'));
  let done = false;
  const flux: Flux = await startFlux({
    kubeconfig: o.env.kube.kubeconfigPath,
    binDir,
    tuned: true,
    workDir,
    namespace: FLUX_NS,
    extraFlags: [`--concurrent=${concurrent}`, '--requeue-dependency=5s'],
  });
  try {
    const sync = parseAllDocuments(files['clusters/flux/flux-system/gotk-sync.yaml'] ?? '').map(
      (d) => d.toJS() as KubeObject,
    );
    const c0 = flux.requests();
    const t0 = performance.now();
    for (const obj of sync) await flux.client.apply(obj, { fieldManager: FIELD_MANAGER, force: true });
    const ms = await waitAllReady(flux.client, apps, sha, t0, 30 * 60_000);
    const health = flux.flags.kustomizeController.find((f) => f.startsWith('--health-addr=')) ?? 'kustomize-controller';
    done = true;
    return {
      ms,
      ready: apps.length,
      requests: formatCounts(diffCounts(c0, flux.requests())),
      flags: flux.flags.kustomizeController.filter((f) => /concurrent|qps|burst|requeue/.test(f)),
      peakMiB: peakRssOf(health),
    };
  } finally {
    await flux.stop();
    // In RAM: removed once the run succeeded (after a failure, the controllers' logs are there).
    if (done) rmSync(workDir, { recursive: true, force: true });
    else o.log(`Flux's logs and storage: ${workDir}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The rows

/** BENCH_FLEET_TIDEGATE_ONLY=1: the Kustomization row's tidegate run alone (no Flux, no HelmRelease row), for measuring a sync. */
const tidegateOnly = (): boolean => process.env['BENCH_FLEET_TIDEGATE_ONLY'] === '1';

/** The size of the fleets, the deployed workers, where the apps go. */
interface Fleet {
  n: number;
  workers: number;
  layout: NamespaceLayout;
}

const layoutText = (layout: NamespaceLayout): string =>
  layout === 'shared' ? 'all in one namespace' : 'each in a namespace of its own';

/** The row: N Kustomizations, tidegate through SQS vs Flux's kustomize-controller. */
async function kustomizationRow(o: FleetOptions, fleet: Fleet): Promise<BenchRow> {
  const { n, workers, layout } = fleet;
  const tag = randomBytes(3).toString('hex');
  const apps = Array.from({ length: n }, (_, i) => `app-${pad(i)}`);
  o.log(`fleet: ${n} Kustomizations (${layoutText(layout)}) through SQS, ${workers} workers`);
  const cluster = `ks-${tag}`;
  const d = await startDeployed(o.env, { 'README.md': 'fleet' }, workers, {
    clusters: clusterSettings(o.env, cluster),
  });
  let t: DeployedRun;
  try {
    const files = kustomizationFleet(cluster, d.url, { prefix: `fleet-t-${tag}`, layout, apps });
    const targets = [`${cluster}-flux-system`, ...apps.map((a) => `${cluster}-${a}`)];
    t = await deployedSync(d, o.client, files, targets, workers);
    o.log(`fleet: ${fmt(t.ms)}, ${syncMedians(syncDurations(d.workerLogs()))}`);
  } finally {
    await d.stop();
  }
  const name = `fleet: ${n} Flux Kustomizations (a small app each: ServiceAccount, ConfigMap, Service, Deployment; ${layoutText(layout)}), one push, vs Flux`;
  if (tidegateOnly())
    return {
      name,
      tidegate: deployedCell(t),
      alternative: 'not run (BENCH_FLEET_TIDEGATE_ONLY=1)',
      ratio: '—',
      goal: '—',
      met: false,
    };
  o.log(`fleet: ${n} Kustomizations with Flux ${FLUX_VERSION}`);
  const f = await fluxSync(o, { prefix: `fleet-f-${tag}`, layout, apps });
  const ratio = t.ms / f.ms;
  return {
    name,
    tidegate: deployedCell(t),
    alternative:
      `Flux kustomize-controller + source-controller ${FLUX_VERSION} (${f.flags.join(' ')}, TMPDIR in RAM): ${fmt(f.ms)} until ${f.ready} of ${n} Ready at the commit; ` +
      `${f.requests} requests; kustomize-controller peak RSS ${f.peakMiB === undefined ? '?' : `${f.peakMiB.toFixed(0)} MiB`}`,
    ratio: ratio.toFixed(2),
    goal: '≤ 0.25 × Flux kustomize-controller',
    met: allDone(t) && ratio <= 0.25,
  };
}

/** The row: N HelmReleases of the podinfo chart through SQS, beside Flux's published figure. */
async function helmReleaseRow(o: FleetOptions, fleet: Fleet): Promise<BenchRow> {
  const { n, workers, layout } = fleet;
  const tag = randomBytes(3).toString('hex');
  const releases = Array.from({ length: n }, (_, i) => `podinfo-${pad(i)}`);
  o.log(`fleet: ${n} HelmReleases (${layoutText(layout)}) through SQS, ${workers} workers`);
  const helm = await startHelmRepo(o.env.tools.helm);
  const chart = podinfoChart();
  await helm.publish('podinfo', '1.0.0', chart.templates, chart.values);
  const cluster = `hr-${tag}`;
  const d = await startDeployed(o.env, { 'README.md': 'fleet' }, workers, {
    clusters: clusterSettings(o.env, cluster),
    render: { allowedHosts: ['127.0.0.1'] },
  });
  let t: DeployedRun;
  try {
    const files = helmReleaseFleet(cluster, d.url, helm.url, { prefix: `fleet-h-${tag}`, layout, apps: releases });
    const targets = [`${cluster}-flux-system`, ...releases.map((r) => `${cluster}-${r}`)];
    t = await deployedSync(d, o.client, files, targets, workers);
  } finally {
    await d.stop();
    await helm.stop();
  }
  const peak = Math.max(...t.peaks);
  return {
    name: `fleet: ${n} Flux HelmReleases (helm.toolkit.fluxcd.io/v2, the test podinfo chart; ${layoutText(layout)}), one push`,
    tidegate: deployedCell(t),
    alternative: `Flux (fluxcd/flux-benchmark v2.9.0, ${FLUX_PUBLISHED.runner}, published): ${FLUX_PUBLISHED.releases} HelmReleases in ${fmt(FLUX_PUBLISHED.ms)}, helm-controller ${FLUX_PUBLISHED.memory}`,
    // Not a ratio: Flux's figure is from other hardware (16 cores) and another chart.
    ratio: '—',
    goal: "reported beside Flux's 4 m 39 s; ≤ 256 MiB per worker",
    met: allDone(t) && peak <= 256,
  };
}

/**
 * The fleet rows: round(1000 × scale) Kustomizations (tidegate vs Flux kustomize-controller, same
 * apiserver, same run), then as many HelmReleases (beside Flux's published figure).
 */
export async function fleetRows(o: FleetOptions): Promise<BenchRow[]> {
  const fleet: Fleet = {
    n: Math.max(10, Math.round(1000 * o.scale)),
    workers: intFromEnv('BENCH_FLEET_WORKERS', 4),
    layout: process.env['BENCH_FLEET_NAMESPACES'] === 'shared' ? 'shared' : 'per-app',
  };
  if (tidegateOnly()) return [await kustomizationRow(o, fleet)];
  return [await kustomizationRow(o, fleet), await helmReleaseRow(o, fleet)];
}
