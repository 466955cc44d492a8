/**
 * `npx tsx bench/flux/smoke.ts`: Flux (tuned) against the local apiserver and git server, on a
 * repository of 100 ConfigMaps: first apply, a no-op reconcile and a push→applied, each timed and
 * with the API requests the controllers made. Builds the controllers first when they are missing.
 * SMOKE_TUNED=0 uses the default flags, SMOKE_OBJECTS=n another repository size, SMOKE_KEEP=1 keeps the logs.
 * Every phase is bounded; the whole run is too (SMOKE_TIMEOUT_MS, default 10 min).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GitWorkspace, createBareRepo, startEnvironment, type Environment } from '../../devenv/index.js';
import { buildFlux, diffCounts, formatCounts, startFlux, type Flux, type RequestCounts } from './flux.js';

const N = Number(process.env['SMOKE_OBJECTS'] ?? '100');
/** SMOKE_TUNED=0: the controllers' default flags instead of the large-cluster tuning. */
const tuned = process.env['SMOKE_TUNED'] !== '0';
/** SMOKE_KEEP=1: keep the controller logs even when the run passed. */
const keep = process.env['SMOKE_KEEP'] === '1';
const PHASE_TIMEOUT_MS = 180_000;
const log = (s: string): void => void process.stderr.write(`[flux-smoke] ${s}\n`);
const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`);

const configMap = (i: number, value: string): string =>
  [
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata:',
    `  name: cm-${String(i).padStart(3, '0')}`,
    '  labels:',
    '    bench: flux',
    'data:',
    `  index: "${i}"`,
    `  value: "${value}"`,
    `  payload: "${'x'.repeat(200)}"`,
    '',
  ].join('\n');

/** Rejects after ms (with what was being waited for); the timer never keeps the process alive. */
function bounded<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

let env: Environment | undefined;
let flux: Flux | undefined;
const fluxDir = mkdtempSync(join(tmpdir(), 'tidegate-flux-'));
let ok = false;
const cleanup = async (): Promise<void> => {
  await flux?.stop().catch((e: unknown) => log(`flux stop: ${String(e)}`));
  await env?.stop().catch((e: unknown) => log(`environment stop: ${String(e)}`));
};
const watchdog = setTimeout(
  () => {
    log('the smoke run took too long; stopping');
    void cleanup().finally(() => process.exit(2));
  },
  Number(process.env['SMOKE_TIMEOUT_MS'] ?? '600000'),
);
watchdog.unref();

try {
  log('building Flux controllers (skipped when cached)');
  const binDir = await buildFlux();
  log(`Flux ${binDir}`);
  env = await bounded('startEnvironment', 180_000, startEnvironment({ withoutAws: true }));
  const kubeEnv = env;

  // A repository of N ConfigMaps under apps/ (no kustomization.yaml: Flux generates one).
  const url = await createBareRepo(kubeEnv.git, 'flux-smoke');
  const ws = await GitWorkspace.clone(kubeEnv.git, url);
  const files: Record<string, string> = {};
  for (let i = 0; i < N; i++) files[`apps/cm-${String(i).padStart(3, '0')}.yaml`] = configMap(i, 'v1');
  const sha1 = await ws.commit(files, `${N} ConfigMaps`);
  log(`pushed ${N} ConfigMaps at ${sha1}`);

  flux = await bounded(
    'startFlux',
    120_000,
    startFlux({
      kubeconfig: kubeEnv.kube.kubeconfigPath,
      certDir: kubeEnv.kube.certDir,
      binDir,
      tuned,
      workDir: fluxDir,
    }),
  );
  const f = flux;
  log(`controllers ready behind ${f.proxyServer}; logs in ${fluxDir}`);
  const target = 'flux-smoke-apps';
  await f.client.apply(
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: target } },
    { fieldManager: 'tidegate-bench', force: true },
  );
  const countApplied = async (value: string): Promise<number> =>
    (await f.client.list('v1', 'ConfigMap', { namespace: target, labelSelector: 'bench=flux' })).filter(
      (cm) => (cm as { data?: Record<string, string> }).data?.['value'] === value,
    ).length;
  // Requests at completion, and after a short settle (status updates, events that trail Ready).
  const phase = async (
    name: string,
    run: () => Promise<number>,
  ): Promise<{ name: string; ms: number; atDone: RequestCounts; settled: RequestCounts }> => {
    await sleep(1000); // let the previous phase's trailing requests pass
    const before = f.requests();
    const ms = await bounded(name, PHASE_TIMEOUT_MS, run());
    const atDone = diffCounts(before, f.requests());
    await sleep(1000);
    return { name, ms, atDone, settled: diffCounts(before, f.requests()) };
  };

  const idle = await phase('idle (1 s right after start)', async () => {
    await sleep(1000);
    return 1000;
  });

  const first = await phase(`first apply, ${N} ConfigMaps`, async () => {
    const since = performance.now();
    await f.createGitRepository({ name: 'smoke', url, branch: 'main', interval: '1m' });
    await f.createKustomization({
      name: 'smoke',
      source: 'smoke',
      path: './apps',
      targetNamespace: target,
      interval: '10m',
      prune: true,
    });
    return f.waitApplied({ kustomization: 'smoke', sha: sha1, since, timeoutMs: PHASE_TIMEOUT_MS - 5000 });
  });
  const applied1 = await countApplied('v1');
  if (applied1 !== N) throw new Error(`after the first apply ${applied1} of ${N} ConfigMaps are in ${target}`);

  const noop = await phase('no-op reconcile (requestedAt, no new commit)', async () => {
    const { token, at } = await f.requestReconcile({ gitRepository: 'smoke', kustomization: 'smoke' });
    return f.waitApplied({
      kustomization: 'smoke',
      sha: sha1,
      requested: { token, gitRepository: 'smoke' },
      since: at,
      timeoutMs: PHASE_TIMEOUT_MS - 5000,
    });
  });

  // One ConfigMap changed: the rest of the repository is as before.
  const sha2 = await ws.commit({ 'apps/cm-000.yaml': configMap(0, 'v2') }, 'change one ConfigMap');
  log(`pushed a change at ${sha2}`);
  const push = await phase('push → applied (one ConfigMap changed)', async () => {
    const { at } = await f.requestReconcile({ gitRepository: 'smoke', kustomization: 'smoke' });
    return f.waitApplied({ kustomization: 'smoke', sha: sha2, since: at, timeoutMs: PHASE_TIMEOUT_MS - 5000 });
  });
  if ((await countApplied('v2')) !== 1) throw new Error('the pushed change is not in the cluster');

  // What a Receiver listing only the GitRepository does: the Kustomization follows the new artifact.
  const sha3 = await ws.commit({ 'apps/cm-000.yaml': configMap(0, 'v3') }, 'change it again');
  log(`pushed a change at ${sha3}`);
  const pushSource = await phase('push → applied (GitRepository annotated only)', async () => {
    const { at } = await f.requestReconcile({ gitRepository: 'smoke' });
    return f.waitApplied({ kustomization: 'smoke', sha: sha3, since: at, timeoutMs: PHASE_TIMEOUT_MS - 5000 });
  });
  if ((await countApplied('v3')) !== 1) throw new Error('the second pushed change is not in the cluster');

  const total = f.requests();
  const lines = [
    `Flux source-controller + kustomize-controller v1.9.6, ${tuned ? `tuned (${f.flags.kustomizeController.filter((x) => /qps|burst|ssa/.test(x)).join(' ')})` : 'default flags'}`,
    ...[idle, first, noop, push, pushSource].map(
      (p) =>
        `${p.name.padEnd(48)} ${fmt(p.ms).padStart(9)}   requests: ${formatCounts(p.atDone)}; +1 s settle: ${p.settled.total}`,
    ),
    `all requests through the proxy since the controllers started: ${formatCounts(total)}`,
    `by client: ${JSON.stringify(total.byClient)}`,
  ];
  for (const phaseResult of [first, noop, push, pushSource])
    lines.push(
      `${phaseResult.name} by resource: ${Object.entries(phaseResult.atDone.byResource)
        .sort(([, a], [, b]) => b - a)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
    );
  process.stdout.write(`${lines.join('\n')}\n`);
  ok = true;
} catch (err) {
  log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  log(`controller logs kept in ${fluxDir}`);
  process.exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
  if (ok && !keep) rmSync(fluxDir, { recursive: true, force: true });
  else if (keep) log(`controller logs kept in ${fluxDir}`);
}
