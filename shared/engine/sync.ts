import type { KubeClient } from '../cluster/index.js';
import { orderTargets, type TargetSpec, type TidegateConfig, type VerifyMode } from '../config/index.js';
import { ENTRY_LIMITS, TidegateError, clip, type Revision, type SyncResult } from '../model/index.js';
import { CONFIG_FILE, TargetNotFoundError } from './config-file.js';
import { configAt } from './repo-config.js';
import { leaseOf, type EngineContext } from './context.js';
import { rollback } from './rollback.js';
import { cachedGitdir, checkoutRevision, commitInfo, fetchTagObject, resolveRevision, verifyRevision } from '../source/index.js';
import { readTargetState, type TargetState } from '../apply/index.js';
import { evaluateGate, isOpen, signedOff, strictest, type GateSource, type GateVerdict } from '../gates/index.js';
import { repoName } from '../github/index.js';
import { syncTarget } from './target-sync.js';
import { removeTarget, removedTargets } from './remove.js';

export interface RepoSyncRequest {
  /** The GitOps repository holding tidegate.yaml. */
  repo: string;
  /** One target, or every target in dependency order. */
  target?: string | undefined;
  /** The exact commit (from a webhook); default: the head of main. */
  revision?: Revision | undefined;
  dryRun?: boolean;
  signal?: AbortSignal | undefined;
}

/** Where a target's files come from: the checkout at hand, or its own source resolved and fetched. */
async function targetCheckout(ctx: EngineContext, spec: TargetSpec, here: { dir: string; revision: Revision; repo?: string | undefined; standsFor?: string | undefined }): Promise<{ dir: string; revision: Revision }> {
  const ref = spec.source.ref ?? {};
  const sameRepo = spec.source.url === undefined || spec.source.url === here.repo;
  const hereRef = here.standsFor ?? here.revision.ref;
  const sameRef = !ref.tag && !ref.semver && !ref.commit && (hereRef === '' || `refs/heads/${ref.branch ?? 'main'}` === hereRef);
  if (sameRepo && sameRef) return here;
  const url = spec.source.url ?? here.repo;
  if (!url) throw new TidegateError('SourceMissing', `target ${spec.name} names another ref but the local directory has no repository URL`);
  const revision = await resolveRevision(ctx.gitSource(url), ref);
  return { dir: (await checkoutRevision(ctx.gitSource(url), revision, ctx.settings.cacheDir)).dir, revision };
}

export interface CheckoutSyncRequest {
  config: TidegateConfig;
  /** The files tidegate.yaml came from, and the revision they are. */
  dir: string;
  revision: Revision;
  /** The repository URL of that checkout, when it is one. */
  repo?: string | undefined;
  target?: string | undefined;
  dryRun?: boolean;
  /** The branch this checkout stands in for (a pull request's head for its base): targets following it use this checkout. */
  standsFor?: string | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Syncs one target, or all targets of a configuration in dependency order (a target whose
 * dependency failed in this run is not synced). Each result says what happened; failures are
 * results too.
 */
export async function syncCheckout(ctx: EngineContext, req: CheckoutSyncRequest): Promise<SyncResult[]> {
  let targets = orderTargets(req.config.targets);
  if (req.target !== undefined) {
    const one = targets.find((t) => t.name === req.target);
    if (!one) throw new TargetNotFoundError(req.target, CONFIG_FILE);
    targets = [one];
  }
  const clients = new Map<string, Promise<KubeClient>>();
  const client = (alias: string): Promise<KubeClient> => {
    if (!clients.has(alias)) clients.set(alias, ctx.connect(alias));
    return clients.get(alias) as Promise<KubeClient>;
  };
  const failed = new Set<string>();
  const results: SyncResult[] = [];
  for (const spec of targets) {
    const blocked = spec.dependsOn.filter((d) => failed.has(d));
    const result = blocked.length > 0 ? notSynced(spec, req.revision, `not synced: dependency ${blocked.join(', ')} failed`) : await connectAndSync(ctx, spec, req, client);
    if (result.outcome === 'failed') failed.add(spec.name);
    results.push(result);
  }
  return results;
}

function notSynced(spec: TargetSpec, revision: Revision, error: string): SyncResult {
  return { target: spec.name, revision, outcome: 'failed', changeSet: { changes: [] }, health: { status: 'unknown', notReady: [] }, error, startedAt: new Date().toISOString(), durationMs: 0 };
}

/**
 * A permanent problem of one target before its sync (a cluster alias the settings do not know, a
 * source ref that does not exist) fails that target, and the others go on; what may pass on its
 * own (a git server or cluster out of reach, the deadline) is thrown for the queue to retry.
 */
async function connectAndSync(ctx: EngineContext, spec: TargetSpec, req: CheckoutSyncRequest, client: (alias: string) => Promise<KubeClient>): Promise<SyncResult> {
  try {
    return await syncOne(ctx, spec, req, await client(spec.cluster));
  } catch (err) {
    if (err instanceof TidegateError && !err.transient && !req.signal?.aborted) return notSynced(spec, req.revision, err.message);
    throw err;
  }
}

function gateSources(ctx: EngineContext, spec: TargetSpec, state: TargetState): GateSource[] {
  const floor = ctx.floor?.(spec.cluster);
  const sources: GateSource[] = [{ from: 'tidegate.yaml', policy: spec.gate }];
  if (state.gate && state.lastApplied) sources.push({ from: `tidegate.yaml at the last applied ${state.lastApplied.sha.slice(0, 12)}`, policy: state.gate });
  if (floor) sources.push({ from: `the floor of cluster ${spec.cluster}`, policy: floor });
  return sources;
}

/**
 * The target's gate: the strictest of its tidegate.yaml at this revision, at the last applied
 * revision (so a commit cannot lower the gate it is judged by) and the cluster's floor. Sign-offs
 * are given once per revision: the revision already applied is judged by the change windows only.
 */
function gateOf(ctx: EngineContext, spec: TargetSpec, revision: Revision, url: string | undefined): (state: TargetState) => Promise<GateVerdict> {
  return async (state) => {
    const sources = gateSources(ctx, spec, state);
    // The revision that runs now passed its sign-offs when it was applied: re-syncs of it are not held for them again.
    const gate = state.lastApplied?.sha === revision.sha ? signedOff(strictest(sources)) : strictest(sources);
    if (isOpen(gate)) return { approvals: [] };
    const github = url ? ctx.github?.(url) : undefined;
    return evaluateGate({
      gate, revision, now: ctx.now?.() ?? new Date(), manualApprovals: state.approvals ?? [],
      github: github && url ? { client: github, repo: repoName(url) } : undefined,
      verify: url ? (mode, names) => verifySignatures(ctx, url, revision, mode, names) : undefined,
    });
  };
}

/** The revision's signatures against the named trusted keys; why they are not trusted, or nothing. */
async function verifySignatures(ctx: EngineContext, url: string, revision: Revision, mode: VerifyMode, names: string[]): Promise<string | undefined> {
  const keys = (await ctx.trustedKeys?.(names)) ?? [];
  if (keys.length === 0) return `none of the trusted keys ${names.join(', ')} is configured (deploy-time setting trustedKeys)`;
  const src = ctx.gitSource(url);
  return (await verifyRevision(cachedGitdir(src, ctx.settings.cacheDir), revision, mode, keys, (ref) => fetchTagObject(src, ctx.settings.cacheDir, ref))).problem;
}

/** One target of a checkout: its files, its commit, the sync, and auto-rollback when asked for. */
async function syncOne(ctx: EngineContext, spec: TargetSpec, req: CheckoutSyncRequest, client: KubeClient): Promise<SyncResult> {
  const { dir, revision } = await targetCheckout(ctx, spec, req);
  const url = spec.source.url ?? req.repo;
  const result = await syncTarget({
    spec, dir, revision, client, settings: ctx.settings, reloadStrategy: spec.reload.strategy ?? ctx.reload?.strategy ?? 'annotations', gate: gateOf(ctx, spec, revision, url), repo: req.repo, lease: leaseOf(ctx),
    ...(url ? { commit: await commitInfo(ctx.gitSource(url), revision.sha, ctx.settings.cacheDir) } : {}),
    ...(req.dryRun ? { dryRun: true } : {}), signal: req.signal, ...(ctx.logger ? { logger: ctx.logger } : {}), ...(ctx.now ? { now: ctx.now } : {}),
  });
  return url && !req.dryRun ? autoRollback(ctx, spec, url, result, client, req.signal) : result;
}

/** When health failed and the target asks for it: re-apply the last healthy revision and pin there. */
async function autoRollback(ctx: EngineContext, spec: TargetSpec, repo: string, result: SyncResult, client: KubeClient, signal?: AbortSignal): Promise<SyncResult> {
  if (!spec.rollback.onFailedHealth || result.health.status !== 'failed') return result;
  const lastHealthy = (await readTargetState(client, spec.name, signal)).lastHealthy;
  if (!lastHealthy || lastHealthy.sha === result.revision.sha) return result;
  // lastHealthy ran here (it is in the state even when it has left the 20 history entries): forced is safe.
  const reason = clip(`health failed at ${result.revision.sha.slice(0, 12)}: ${result.error ?? ''}`.trim(), ENTRY_LIMITS.pinReason);
  const branch = result.revision.ref.startsWith('refs/heads/') ? result.revision.ref.slice('refs/heads/'.length) : undefined;
  const back = await rollback(ctx, { repo, target: spec.name, to: lastHealthy.sha, force: true, branch, by: 'tidegate', kind: 'auto-rollback', reason, signal }).catch((err: unknown) => {
    if (err instanceof TidegateError && !err.transient) return { outcome: 'failed' as const, error: err.message };
    throw err;
  });
  ctx.logger?.warn('auto-rollback', { target: spec.name, failed: result.revision.sha, to: lastHealthy.sha, outcome: back.outcome, ...(back.error ? { error: back.error } : {}) });
  return back.outcome === 'failed' ? result : { ...result, rolledBackTo: lastHealthy };
}

/**
 * Syncs from the GitOps repository: the requested commit (a webhook's SHA) or the head of main.
 * A sync of every target then removes the targets the repository owns that its tidegate.yaml no
 * longer declares.
 */
export async function syncRepo(ctx: EngineContext, req: RepoSyncRequest): Promise<SyncResult[]> {
  const { revision, dir, config } = await configAt(ctx, req.repo, req.revision);
  const results = await syncCheckout(ctx, { config, dir, revision, repo: req.repo, target: req.target, ...(req.dryRun ? { dryRun: true } : {}), signal: req.signal });
  // A sync of every target also removes what the repository owns and its tidegate.yaml no longer declares.
  if (req.target !== undefined || req.dryRun) return results;
  for (const gone of await removedTargets(ctx, req.repo, config, req.signal)) {
    const removed = await removeTarget(ctx, { repo: req.repo, ...gone, revision, signal: req.signal });
    if (removed) results.push(removed);
  }
  return results;
}
