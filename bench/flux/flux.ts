/**
 * Real Flux controllers (source-controller and kustomize-controller, built by bench/flux/build.sh)
 * run as local processes, out of cluster, against the same kube-apiserver as tidegate, behind a
 * counting proxy: what `npm run bench` compares tidegate with.
 *
 * Flux's own objects live in one namespace (`namespace`, default flux-system) that both
 * controllers are restricted to (RUNTIME_NAMESPACE, --watch-all-namespaces=false), so two Flux
 * instances in different namespaces never see each other's objects.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { freePort, kubeconfigYaml } from '../../devenv/index.js';
import { startProcess, waitUntilReady, type ManagedProcess } from '../../devenv/process.js';
import { KubeClient } from '../../shared/cluster/index.js';
import { kubeConfigFromFile } from '../../shared/cluster/kubeconfig.js';
import type { KubeObject } from '../../shared/model/index.js';
import { startCountingProxy, type CountingProxy, type RequestCounts } from './count-proxy.js';

export { diffCounts, formatCounts, type RequestCounts } from './count-proxy.js';

export const FLUX_VERSION = '1.9.6';
const SOURCE_API = 'source.toolkit.fluxcd.io/v1';
const KUSTOMIZE_API = 'kustomize.toolkit.fluxcd.io/v1';
const REQUESTED_AT = 'reconcile.fluxcd.io/requestedAt';
const FIELD_MANAGER = 'tidegate-bench';
/** A second manager for the annotation, so applying it never takes the spec away from FIELD_MANAGER. */
const TRIGGER_MANAGER = 'tidegate-bench-trigger';

/** Flux's documented large-cluster tuning, per controller (only the flags each one has in v1.9.6). */
export const TUNED_FLAGS = {
  sourceController: ['--kube-api-qps=500', '--kube-api-burst=1000'],
  kustomizeController: ['--kube-api-qps=500', '--kube-api-burst=1000', '--concurrent-ssa=8'],
} as const;

export interface FluxOptions {
  /** kubeconfig of the apiserver (cluster-admin); the controllers get one that points at the counting proxy. */
  kubeconfig: string;
  /** Where build.sh put source-controller, kustomize-controller and crds/. */
  binDir: string;
  /** true: TUNED_FLAGS; false: the controllers' defaults. */
  tuned: boolean;
  /** Logs, the artifact storage, temporary files, the proxy kubeconfig. */
  workDir: string;
  /** apiserver.crt/.key the proxy serves (default: devenv's layout, `certs` next to the kubeconfig); plain HTTP when absent. */
  certDir?: string;
  /** Namespace of the GitRepositories and Kustomizations (RUNTIME_NAMESPACE); default flux-system. */
  namespace?: string;
  /** Extra flags for both controllers (e.g. --concurrent=10). */
  extraFlags?: string[];
  /** How long the controllers may take to report ready (default 60 s). */
  startTimeoutMs?: number;
}

export interface WaitOptions {
  kustomization: string;
  /** The commit SHA the Kustomization must have applied (status.lastAppliedRevision `main@sha1:<sha>`). */
  sha: string;
  /**
   * A token from requestReconcile: also wait until the controllers handled that request
   * (status.lastHandledReconcileAt) — the way to see a no-op reconcile finish.
   */
  requested?: { token: string; gitRepository?: string };
  /** performance.now() the elapsed time counts from (default: now). */
  since?: number;
  /** Default 120 s. */
  timeoutMs?: number;
  /** Poll period (default 50 ms). */
  pollMs?: number;
}

export interface Flux {
  namespace: string;
  /** The counting proxy the controllers talk to. */
  proxyServer: string;
  /** The kubeconfig the controllers use (points at the proxy). */
  controllerKubeconfig: string;
  /** The flags each controller was started with. */
  flags: { sourceController: string[]; kustomizeController: string[] };
  logs: { sourceController: string; kustomizeController: string };
  /** A client straight to the apiserver (not counted): what the helpers poll with. */
  client: KubeClient;
  /** Requests the controllers made so far (a snapshot; subtract two with diffCounts). */
  requests(): RequestCounts;
  /** Requests in flight through the proxy (open watches included). */
  inFlight(): number;
  createGitRepository(o: { name: string; url: string; branch?: string; interval?: string }): Promise<void>;
  createKustomization(o: {
    name: string;
    /** GitRepository name (same namespace). */
    source: string;
    path: string;
    targetNamespace: string;
    interval?: string;
    prune?: boolean;
    /** spec.wait (health checks of everything applied); default false. */
    wait?: boolean;
    timeout?: string;
  }): Promise<void>;
  /**
   * What Flux's notification Receiver does to the resources it lists: sets
   * reconcile.fluxcd.io/requestedAt on the GitRepository, then on the Kustomization (each only when
   * named). Annotating the Kustomization on a push makes it reconcile the old artifact once more
   * before the new one arrives. Returns the token and when the first patch went out.
   */
  requestReconcile(o: { gitRepository?: string; kustomization?: string }): Promise<{ token: string; at: number }>;
  /** Polls until the Kustomization applied `sha` and is Ready=True; resolves with the elapsed ms. */
  waitApplied(o: WaitOptions): Promise<number>;
  /** Ready condition, revisions and handled token of a Kustomization (for messages). */
  describe(kustomization: string): Promise<string>;
  stop(): Promise<void>;
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Runs bench/flux/build.sh (builds once, then returns at once) and resolves with the bin
 * directory. Its progress goes to this process's stderr.
 */
export function buildFlux(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(here, 'build.sh')], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      const lines = Buffer.concat(out).toString('utf8').trim().split('\n');
      if (code === 0 && lines.at(-1)) resolve(lines.at(-1) as string);
      else reject(new Error(`bench/flux/build.sh exited ${String(code)}`));
    });
  });
}

type Condition = { type: string; status: string; reason?: string; message?: string };
type FluxObject = KubeObject & {
  status?: {
    conditions?: Condition[];
    observedGeneration?: number;
    lastAppliedRevision?: string;
    lastAttemptedRevision?: string;
    lastHandledReconcileAt?: string;
    artifact?: { revision?: string };
  };
};

const ready = (o: FluxObject | undefined): Condition | undefined =>
  o?.status?.conditions?.find((c) => c.type === 'Ready');
const revisionIs = (rev: string | undefined, sha: string): boolean =>
  rev !== undefined && (rev === sha || rev.endsWith(`:${sha}`));
const current = (o: FluxObject): boolean => o.status?.observedGeneration === o.metadata.generation;

/** The apiserver, CA and token of a kubeconfig's current context. */
function endpointOf(kubeconfig: string): { server: string; caPem: string; token: string } {
  const kc = kubeConfigFromFile(kubeconfig);
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user?.token) throw new Error(`${kubeconfig}: needs a current cluster and a token user`);
  const caPem = cluster.caData
    ? Buffer.from(cluster.caData, 'base64').toString('utf8')
    : cluster.caFile
      ? readFileSync(cluster.caFile, 'utf8')
      : '';
  return { server: cluster.server, caPem, token: user.token };
}

/** Server-side applies Flux's CRDs and waits until every one is Established. */
async function installCrds(client: KubeClient, crdDir: string): Promise<void> {
  const files = readdirSync(crdDir).filter((f) => f.endsWith('.yaml'));
  if (files.length === 0) throw new Error(`no CRDs in ${crdDir}; run bench/flux/build.sh`);
  const names: string[] = [];
  for (const file of files)
    for (const doc of parseAllDocuments(readFileSync(join(crdDir, file), 'utf8'))) {
      const crd = doc.toJS() as KubeObject | null;
      if (!crd?.kind) continue;
      await client.apply(crd, { fieldManager: FIELD_MANAGER, force: true });
      names.push(crd.metadata.name);
    }
  const deadline = Date.now() + 30_000;
  for (const name of names)
    for (;;) {
      const crd = (await client.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', undefined, name)) as
        FluxObject | undefined;
      if (crd?.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established within 30 s`);
      await sleep(100);
    }
  await client.discover();
}

/** The last lines of a log file, for error messages. */
function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Starts a controller and waits for its health endpoint's /readyz. */
async function startController(
  name: string,
  bin: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  healthPort: number,
  logFile: string,
  timeoutMs: number,
): Promise<ManagedProcess> {
  if (!existsSync(bin)) throw new Error(`${bin} is missing; run bench/flux/build.sh`);
  const proc = startProcess(name, bin, args, { logFile, env });
  try {
    await waitUntilReady(proc, async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`)).ok, timeoutMs);
  } catch (err) {
    await proc.stop();
    throw new Error(`${(err as Error).message}\n${tail(logFile)}`, { cause: err });
  }
  return proc;
}

/**
 * Installs Flux's CRDs, starts the counting proxy and both controllers (no leader election,
 * no metrics server, health endpoints and the artifact server on free loopback ports), and
 * resolves when both report ready.
 */
export async function startFlux(opts: FluxOptions): Promise<Flux> {
  const namespace = opts.namespace ?? 'flux-system';
  const timeoutMs = opts.startTimeoutMs ?? 60_000;
  mkdirSync(opts.workDir, { recursive: true });
  const tmp = join(opts.workDir, 'tmp');
  const storage = join(opts.workDir, 'storage');
  mkdirSync(tmp, { recursive: true });
  mkdirSync(storage, { recursive: true });

  const client = new KubeClient(kubeConfigFromFile(opts.kubeconfig));
  const endpoint = endpointOf(opts.kubeconfig);
  const stops: Array<() => Promise<void>> = [async () => client.close()];
  const stop = async (): Promise<void> => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  };
  try {
    await installCrds(client, join(opts.binDir, 'crds'));
    await client.apply(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
      { fieldManager: FIELD_MANAGER, force: true },
    );

    const proxy: CountingProxy = await startCountingProxy({
      server: endpoint.server,
      caPem: endpoint.caPem,
      certDir: opts.certDir ?? join(dirname(opts.kubeconfig), 'certs'),
    });
    stops.push(() => proxy.stop());
    const controllerKubeconfig = join(opts.workDir, 'kubeconfig-proxy');
    writeFileSync(
      controllerKubeconfig,
      kubeconfigYaml({ server: proxy.server, caPem: endpoint.caPem, token: endpoint.token }, 'flux-bench'),
      { mode: 0o600 },
    );

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KUBECONFIG: controllerKubeconfig,
      RUNTIME_NAMESPACE: namespace,
      TMPDIR: tmp,
    };
    const [srcHealth, storagePort, ksHealth] = [await freePort(), await freePort(), await freePort()];
    const common = ['--enable-leader-election=false', '--metrics-addr=0', '--watch-all-namespaces=false'];
    const flags = {
      sourceController: [
        ...common,
        `--health-addr=127.0.0.1:${srcHealth}`,
        `--storage-path=${storage}`,
        `--storage-addr=127.0.0.1:${storagePort}`,
        `--storage-adv-addr=127.0.0.1:${storagePort}`,
        ...(opts.tuned ? TUNED_FLAGS.sourceController : []),
        ...(opts.extraFlags ?? []),
      ],
      kustomizeController: [
        ...common,
        `--health-addr=127.0.0.1:${ksHealth}`,
        ...(opts.tuned ? TUNED_FLAGS.kustomizeController : []),
        ...(opts.extraFlags ?? []),
      ],
    };
    const logs = {
      sourceController: join(opts.workDir, 'source-controller.log'),
      kustomizeController: join(opts.workDir, 'kustomize-controller.log'),
    };
    // Side by side: two cores, and each waits mostly on the apiserver.
    const started = await Promise.allSettled([
      startController(
        'source-controller',
        join(opts.binDir, 'source-controller'),
        flags.sourceController,
        env,
        srcHealth,
        logs.sourceController,
        timeoutMs,
      ),
      startController(
        'kustomize-controller',
        join(opts.binDir, 'kustomize-controller'),
        flags.kustomizeController,
        env,
        ksHealth,
        logs.kustomizeController,
        timeoutMs,
      ),
    ]);
    for (const r of started) if (r.status === 'fulfilled') stops.push(() => r.value.stop(10_000));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    const get = async (apiVersion: string, kind: string, name: string): Promise<FluxObject | undefined> =>
      (await client.get(apiVersion, kind, namespace, name)) as FluxObject | undefined;

    const describe = async (name: string): Promise<string> => {
      const ks = await get(KUSTOMIZE_API, 'Kustomization', name);
      if (!ks) return `Kustomization ${namespace}/${name} not found`;
      const r = ready(ks);
      const s = ks.status ?? {};
      return (
        `Kustomization ${namespace}/${name}: Ready=${r?.status ?? '?'} ${r?.reason ?? ''} ${r?.message ?? ''}; ` +
        `applied ${s.lastAppliedRevision ?? '-'}, attempted ${s.lastAttemptedRevision ?? '-'}, ` +
        `handled ${s.lastHandledReconcileAt ?? '-'}, generation ${ks.metadata.generation ?? '?'}/${s.observedGeneration ?? '?'}`
      );
    };

    const annotate = (apiVersion: string, kind: string, name: string, token: string): Promise<KubeObject> =>
      client.apply(
        { apiVersion, kind, metadata: { name, namespace, annotations: { [REQUESTED_AT]: token } } },
        { fieldManager: TRIGGER_MANAGER, force: true },
      );

    let lastToken = '';
    const flux: Flux = {
      namespace,
      proxyServer: proxy.server,
      controllerKubeconfig,
      flags,
      logs,
      client,
      requests: () => proxy.requests(),
      inFlight: () => proxy.inFlight(),

      async createGitRepository(o) {
        await client.apply(
          {
            apiVersion: SOURCE_API,
            kind: 'GitRepository',
            metadata: { name: o.name, namespace },
            spec: { url: o.url, ref: { branch: o.branch ?? 'main' }, interval: o.interval ?? '1m' },
          },
          { fieldManager: FIELD_MANAGER, force: true },
        );
      },

      async createKustomization(o) {
        await client.apply(
          {
            apiVersion: KUSTOMIZE_API,
            kind: 'Kustomization',
            metadata: { name: o.name, namespace },
            spec: {
              interval: o.interval ?? '10m',
              path: o.path,
              prune: o.prune ?? true,
              targetNamespace: o.targetNamespace,
              sourceRef: { kind: 'GitRepository', name: o.source },
              wait: o.wait ?? false,
              ...(o.timeout ? { timeout: o.timeout } : {}),
            },
          },
          { fieldManager: FIELD_MANAGER, force: true },
        );
      },

      async requestReconcile(o) {
        // Any string the controllers have not handled yet; a timestamp like `flux reconcile` writes.
        let token = new Date().toISOString();
        while (token === lastToken) {
          await sleep(2);
          token = new Date().toISOString();
        }
        lastToken = token;
        const at = performance.now();
        if (o.gitRepository) await annotate(SOURCE_API, 'GitRepository', o.gitRepository, token);
        if (o.kustomization) await annotate(KUSTOMIZE_API, 'Kustomization', o.kustomization, token);
        return { token, at };
      },

      async waitApplied(o) {
        const since = o.since ?? performance.now();
        const timeout = o.timeoutMs ?? 120_000;
        const deadline = since + timeout;
        for (;;) {
          const ks = await get(KUSTOMIZE_API, 'Kustomization', o.kustomization);
          let done =
            ks !== undefined &&
            current(ks) &&
            ready(ks)?.status === 'True' &&
            revisionIs(ks.status?.lastAppliedRevision, o.sha);
          if (done && o.requested) {
            done = ks?.status?.lastHandledReconcileAt === o.requested.token;
            if (done && o.requested.gitRepository) {
              const repo = await get(SOURCE_API, 'GitRepository', o.requested.gitRepository);
              done = repo?.status?.lastHandledReconcileAt === o.requested.token;
            }
          }
          if (done) return performance.now() - since;
          if (performance.now() > deadline)
            throw new Error(
              `Flux did not apply ${o.sha} within ${timeout} ms: ${await describe(o.kustomization)}\n` +
                `source-controller:\n${tail(logs.sourceController, 5)}\nkustomize-controller:\n${tail(logs.kustomizeController, 5)}`,
            );
          await sleep(o.pollMs ?? 50);
        }
      },

      describe,
      stop,
    };
    return flux;
  } catch (err) {
    await stop();
    throw err;
  }
}
