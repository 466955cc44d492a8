import type { KubeClient } from '../cluster/index.js';
import { orderTargets, type TargetSpec, type TidegateConfig } from '../config/index.js';
import {
  TargetNotFoundError,
  TidegateError,
  errorMessage,
  isTidegateError,
  memoryTurn,
  type Revision,
  type SyncResult,
} from '../model/index.js';
import { checkoutRevision, commitInfo, resolveRevision, type GitSource } from '../source/index.js';
import { readTargetState } from '../state/index.js';
import { syncTarget } from '../sync/index.js';
import {
  clusterResourcesOf,
  leaseOf,
  lockdownOf,
  reloadInputs,
  settingsFor,
  sourceFor,
  type EngineContext,
} from './context.js';
import { gateOf } from './gate.js';
import { CONFIG_FILE, configAt } from './repo-config.js';
import { removeTarget, removedTargets } from './remove.js';
import { autoRollback } from './rollback.js';
import { withDependants } from './affected.js';

export interface RepoSyncRequest {
  /** The GitOps repository holding tidegate.yaml. */
  repo: string;
  /** One target, or these targets (synced in dependency order); default: every target. */
  target?: string | undefined;
  targets?: readonly string[] | undefined;
  /** Leave out named targets tidegate.yaml does not declare (instead of TargetNotFoundError). */
  ignoreMissing?: boolean;
  /** Also the targets that depend on the named ones, directly or not (after them). */
  withDependants?: boolean;
  /** The exact commit (from a webhook); default: the head of main. */
  revision?: Revision | undefined;
  dryRun?: boolean;
  signal?: AbortSignal | undefined;
  /** When the push behind this sync was received (push→applied latency in history). */
  triggeredAt?: string | undefined;
}

/** Where a target's files come from: the checkout at hand, or its own source resolved and fetched. */
async function targetCheckout(
  ctx: EngineContext,
  spec: TargetSpec,
  here: {
    dir: string;
    revision: Revision;
    repo?: string | undefined;
    standsFor?: string | undefined;
    signal?: AbortSignal | undefined;
  },
): Promise<{ dir: string; revision: Revision }> {
  const ref = spec.source.ref ?? {};
  const sameRepo = spec.source.url === undefined || spec.source.url === here.repo;
  const hereRef = here.standsFor ?? here.revision.ref;
  const sameRef =
    !ref.tag && !ref.semver && !ref.commit && (hereRef === '' || `refs/heads/${ref.branch ?? 'main'}` === hereRef);
  if (sameRepo && sameRef) return here;
  const url = spec.source.url ?? here.repo;
  if (!url)
    throw new TidegateError(
      'SourceMissing',
      `target ${spec.name} names another ref but the local directory has no repository URL`,
    );
  return fetchSource(ctx, spec, sourceFor(ctx, here.repo, url), ref, here.signal);
}

/** A target's own source fetched; one fetched without credentials that is refused says why it had none. */
async function fetchSource(
  ctx: EngineContext,
  spec: TargetSpec,
  src: GitSource,
  ref: TargetSpec['source']['ref'] & object,
  signal: AbortSignal | undefined,
): Promise<{ dir: string; revision: Revision }> {
  // In a worker handling several messages: one fetch or render at a time, while the others hold little.
  const turnEnds = await memoryTurn(signal);
  try {
    const revision = await resolveRevision(src, ref);
    return { dir: (await checkoutRevision(src, revision, ctx.settings.cacheDir)).dir, revision };
  } catch (err) {
    if (src.cacheScope !== 'anonymous' || !/\b(401|403|404)\b/.test(errorMessage(err))) throw err;
    throw new TidegateError(
      'SourceMissing',
      `target ${spec.name}: ${errorMessage(err)} (a source other than the target's own repository is fetched without credentials: another repository's token is never used for it)`,
    );
  } finally {
    turnEnds(0);
  }
}

export interface CheckoutSyncRequest {
  config: TidegateConfig;
  /** The files tidegate.yaml came from, and the revision they are. */
  dir: string;
  revision: Revision;
  /** The repository URL of that checkout, when it is one. */
  repo?: string | undefined;
  /** One target, or these targets (synced in dependency order); default: every target. */
  target?: string | undefined;
  targets?: readonly string[] | undefined;
  ignoreMissing?: boolean;
  withDependants?: boolean;
  dryRun?: boolean;
  /** The branch this checkout stands in for (a pull request's head for its base): targets following it use this checkout. */
  standsFor?: string | undefined;
  signal?: AbortSignal | undefined;
  triggeredAt?: string | undefined;
}

/**
 * Syncs some targets, or all targets of a configuration, in dependency order. A target whose
 * dependency failed or was held in this run, or (when the dependency is not part of this run)
 * whose dependency's last sync failed or was held, is not synced: its result says which and why,
 * as Flux does with a Kustomization whose dependency is not ready. Each result says what happened;
 * failures are results too.
 */
export async function syncCheckout(ctx: EngineContext, req: CheckoutSyncRequest): Promise<SyncResult[]> {
  const all = orderTargets(req.config.targets);
  const wanted = req.targets ?? (req.target === undefined ? undefined : [req.target]);
  for (const name of wanted ?? [])
    if (!all.some((t) => t.name === name)) throw new TargetNotFoundError(name, CONFIG_FILE);
  const named = wanted && req.withDependants ? withDependants(all, wanted).map((t) => t.name) : wanted;
  const targets = named ? all.filter((t) => named.includes(t.name)) : all;
  const inRun = new Set(targets.map((t) => t.name));
  const notReady = new Map<string, string>(); // dependency → why its dependants wait
  const results: SyncResult[] = [];
  for (const spec of targets) {
    const blocked = await blockingDependencies(ctx, spec, req.config, inRun, notReady);
    const result =
      blocked.length > 0
        ? notSynced(spec, req.revision, `not synced: dependency ${blocked.join('; ')}`)
        : await connectAndSync(ctx, spec, req);
    if (result.outcome === 'failed' || result.outcome === 'held')
      notReady.set(spec.name, `${spec.name} ${result.outcome}`);
    if (!req.dryRun) measure(ctx, spec, result, req.triggeredAt);
    results.push(result);
  }
  return results;
}

/**
 * The dependencies of a target that keep it from syncing: those that failed or were held in this
 * run; outside this run, those whose last recorded sync failed or was held, or which themselves
 * wait for one of their own dependencies (a dependency that was not synced records nothing, so its
 * own record alone would look ready).
 */
async function blockingDependencies(
  ctx: EngineContext,
  spec: TargetSpec,
  config: TidegateConfig,
  inRun: ReadonlySet<string>,
  notReady: ReadonlyMap<string, string>,
): Promise<string[]> {
  const whyNotReady = async (dep: string): Promise<string | undefined> => {
    if (inRun.has(dep)) return notReady.get(dep);
    const depSpec = config.targets.find((t) => t.name === dep);
    if (!depSpec) return undefined;
    const last = (await readTargetState(await ctx.connect(depSpec.cluster), dep)).history
      .filter((h) => h.kind !== 'removal')
      .at(-1);
    if (last && (last.outcome === 'failed' || last.outcome === 'held'))
      return `${dep} ${last.outcome} at ${last.revision.sha.slice(0, 12)} (its last sync)`;
    for (const next of depSpec.dependsOn) {
      const why = await whyNotReady(next); // tidegate.yaml has no cycles: this ends
      if (why) return `${dep} waits for ${why}`;
    }
    return undefined;
  };
  const blocked: string[] = [];
  for (const dep of spec.dependsOn) {
    const why = await whyNotReady(dep);
    if (why) blocked.push(why);
  }
  return blocked;
}

/** A sync's outcome, duration and (applied after a push) push→applied latency, to the context's metrics. */
function measure(ctx: EngineContext, spec: TargetSpec, result: SyncResult, triggeredAt: string | undefined): void {
  const applied = result.outcome === 'applied' || result.outcome === 'progressing';
  const since = triggeredAt ? Date.parse(triggeredAt) : NaN;
  ctx.metrics?.sync({
    target: spec.name,
    cluster: spec.cluster,
    outcome: result.outcome,
    durationMs: result.durationMs,
    ...(applied && Number.isFinite(since)
      ? { latencyMs: Math.max(0, (ctx.now?.() ?? new Date()).getTime() - since) }
      : {}),
  });
}

function notSynced(spec: TargetSpec, revision: Revision, error: string): SyncResult {
  return {
    target: spec.name,
    revision,
    outcome: 'failed',
    changeSet: { changes: [] },
    health: { status: 'unknown', notReady: [] },
    error,
    startedAt: new Date().toISOString(),
    durationMs: 0,
  };
}

/**
 * A permanent problem of one target before its sync (a cluster alias the settings do not know, a
 * source ref that does not exist) fails that target, and the others go on; what may pass on its
 * own (a git server or cluster out of reach, the deadline) is thrown for the queue to retry.
 */
async function connectAndSync(ctx: EngineContext, spec: TargetSpec, req: CheckoutSyncRequest): Promise<SyncResult> {
  try {
    return await syncOne(ctx, spec, req, await ctx.connect(spec.cluster));
  } catch (err) {
    if (req.signal?.aborted) throw err;
    if (isTidegateError(err) && !err.transient) return notSynced(spec, req.revision, err.message);
    // A target another writer holds says so and ends the run (the caller waits, or asks again).
    if (ctx.noRetry && !isTidegateError(err, 'LeaseBusy'))
      return notSynced(spec, req.revision, `${errorMessage(err)} (this may pass on its own: run again)`);
    throw err;
  }
}

/** One target of a checkout: its files, its commit, the sync, and auto-rollback when asked for. */
async function syncOne(
  ctx: EngineContext,
  spec: TargetSpec,
  req: CheckoutSyncRequest,
  client: KubeClient,
): Promise<SyncResult> {
  const { dir, revision } = await targetCheckout(ctx, spec, req);
  const url = spec.source.url ?? req.repo;
  const result = await syncTarget({
    spec,
    dir,
    revision,
    client,
    settings: settingsFor(ctx, req.repo),
    ...reloadInputs(ctx, spec),
    gate: gateOf(ctx, spec, revision, { repo: req.repo, config: req.revision, dir, configDir: req.dir }),
    repo: req.repo,
    clusterResources: clusterResourcesOf(ctx, req.repo),
    lockdown: lockdownOf(ctx, req.repo),
    lease: leaseOf(ctx),
    ...(url ? { commit: await commitInfo(sourceFor(ctx, req.repo, url), revision.sha, ctx.settings.cacheDir) } : {}),
    ...(req.dryRun ? { dryRun: true } : {}),
    // A checkout standing in for the tracked branch is a pull request's head: nothing in it was reviewed.
    ...(req.standsFor ? { untrusted: true } : {}),
    ...(req.triggeredAt ? { triggeredAt: req.triggeredAt } : {}),
    onProgress: ctx.progress,
    onPrepared: ctx.prepared,
    registryCredentials: ctx.registry?.credentials,
    trustedKeys: ctx.trustedKeys,
    signal: req.signal,
    ...(ctx.logger ? { logger: ctx.logger } : {}),
    ...(ctx.now ? { now: ctx.now } : {}),
  });
  return url && !req.dryRun ? autoRollback(ctx, spec, url, result, client, req.signal) : result;
}

/**
 * Syncs from the GitOps repository: the requested commit (a webhook's SHA) or the head of main.
 * A sync of every target then removes the targets the repository owns that its tidegate.yaml no
 * longer declares.
 */
export async function syncRepo(ctx: EngineContext, req: RepoSyncRequest): Promise<SyncResult[]> {
  const { revision, dir, config } = await configAt(ctx, req.repo, req.revision);
  const results = await syncCheckout(ctx, {
    config,
    dir,
    revision,
    repo: req.repo,
    target: req.target,
    targets: req.targets,
    ...(req.ignoreMissing ? { ignoreMissing: true } : {}),
    ...(req.withDependants ? { withDependants: true } : {}),
    ...(req.dryRun ? { dryRun: true } : {}),
    ...(req.triggeredAt ? { triggeredAt: req.triggeredAt } : {}),
    signal: req.signal,
  });
  // A sync of every target also removes what the repository owns and its tidegate.yaml no longer declares.
  if (req.target !== undefined || req.targets !== undefined || req.dryRun) return results;
  for (const gone of await removedTargets(ctx, req.repo, config, req.signal)) {
    const removed = await removeTarget(ctx, { repo: req.repo, ...gone, revision, signal: req.signal });
    if (removed) results.push(removed);
  }
  return results;
}
