import {
  HISTORY_LIMIT,
  readTargetState,
  statesOfRepo,
  withLease,
  writeTargetState,
  type TargetState,
} from '../state/index.js';
import type { KubeClient } from '../cluster/index.js';
import { HookFailedError, prune, runHooks } from '../apply/index.js';
import type { TidegateConfig } from '../config/index.js';
import {
  ENTRY_LIMITS,
  UnknownClusterError,
  clip,
  countChanges,
  errorMessage,
  isPreviewTarget,
  normaliseRepoUrl,
  type HistoryEntry,
  type HookRecord,
  type RemoveMessage,
  type Revision,
  type SyncResult,
} from '../model/index.js';
import { resolveRevision } from '../source/index.js';
import { leaseOf, type EngineContext } from './context.js';
import { configAt } from './repo-config.js';
import { ownerHold } from './gate.js';

const ownedBy = (state: { repo?: string | undefined }, repo: string): boolean =>
  state.repo !== undefined && normaliseRepoUrl(state.repo) === normaliseRepoUrl(repo);

export interface Removal {
  cluster: string;
  target: string;
}

type RepoStates = Awaited<ReturnType<typeof statesOfRepo>>;

/**
 * The states a repository owns, per cluster alias. A cluster that cannot be read now (unknown,
 * unreachable, access denied) is left out: nothing is removed on it and, as its targets are then
 * unplaced, nothing of them elsewhere; a later push or poll finds them. The sync of a target on
 * it reports why.
 */
async function statesOn(
  ctx: EngineContext,
  aliases: readonly string[],
  repo: string,
  signal?: AbortSignal,
): Promise<Map<string, RepoStates>> {
  const states = new Map<string, RepoStates>();
  for (const alias of aliases) {
    try {
      states.set(alias, await statesOfRepo(await ctx.connect(alias), repo, signal));
    } catch (err) {
      if (signal?.aborted) throw err;
      if (!(err instanceof UnknownClusterError))
        ctx.logger?.warn('removed targets not looked for on a cluster', { cluster: alias, error: errorMessage(err) });
    }
  }
  return states;
}

/**
 * Targets a repository owns on its clusters (the ones its tidegate.yaml names, and every alias the
 * shell knows) that this tidegate.yaml no longer declares there: removed, or moved to another
 * cluster. A state is declared when it is the very object (same uid) found for a declared target
 * through that target's alias, so two aliases of one cluster never make a target look moved.
 * Pass only a configuration that loaded: one that fails to load must never remove anything.
 */
export async function removedTargets(
  ctx: EngineContext,
  repo: string,
  config: TidegateConfig,
  signal?: AbortSignal,
): Promise<Removal[]> {
  const aliases = [...new Set([...config.targets.map((t) => t.cluster), ...(ctx.clusters?.() ?? [])])];
  const states = await statesOn(ctx, aliases, repo, signal);
  const declared = new Set(
    config.targets.flatMap((t) => (states.get(t.cluster) ?? []).filter((s) => s.target === t.name).map((s) => s.uid)),
  );
  // A target whose cluster cannot be reached here is never removed anywhere on its account.
  const unplaced = new Set(config.targets.filter((t) => !states.has(t.cluster)).map((t) => t.name));
  const found = new Map<string, Removal>();
  for (const [cluster, list] of states) {
    for (const { target, uid, state } of list) {
      // A pull request's preview is no target of tidegate.yaml: its teardown is the preview's own.
      if (isPreviewTarget(target)) continue;
      if (ownedBy(state, repo) && !state.removed && !declared.has(uid) && !unplaced.has(target) && !found.has(uid))
        found.set(uid, { cluster, target });
    }
  }
  return [...found.values()];
}

/**
 * The revision whose tidegate.yaml removes a target, checked again under the target's lease: the
 * head of the branch the removal was decided at. Undefined when the head declares the target on
 * that cluster again (a sync of it may have run in between).
 */
async function removedAtHead(
  ctx: EngineContext,
  req: RemoveRequest,
  signal: AbortSignal,
): Promise<Revision | undefined> {
  if (!req.revision.ref.startsWith('refs/heads/')) return req.revision;
  const head = await resolveRevision(ctx.gitSource(req.repo), { branch: req.revision.ref.slice('refs/heads/'.length) });
  const { config } = await configAt(ctx, req.repo, head);
  const gone = await removedTargets(ctx, req.repo, config, signal);
  return gone.some((r) => r.cluster === req.cluster && r.target === req.target) ? head : undefined;
}

/**
 * What Helm's uninstall does, for a target left tidegate.yaml: its delete hooks as last applied around
 * the prune (pre-delete first: one that fails deletes nothing; post-delete after), all as the
 * ServiceAccount the objects were applied as (tenancy), else as tidegate. With prune off, nothing runs.
 */
async function uninstall(client: KubeClient, target: string, state: TargetState, signal: AbortSignal) {
  const as = state.serviceAccount ? client.impersonating(state.serviceAccount) : client;
  const deleting = state.prune !== false;
  const hooks: HookRecord[] = [];
  const hookPoint = async (phase: 'pre-delete' | 'post-delete'): Promise<string | undefined> => {
    const stored = state.deleteHooks;
    if (!stored || !deleting) return undefined;
    try {
      hooks.push(...(await runHooks(phase, stored.hooks, as, { ...stored, target, signal })));
      return undefined;
    } catch (err) {
      if (!(err instanceof HookFailedError)) throw err;
      hooks.push(...err.ran);
      return err.message;
    }
  };
  const preFailed = await hookPoint('pre-delete');
  const pruned = preFailed
    ? { changes: [], retained: state.inventory, problems: [] }
    : deleting
      ? await prune(state.inventory, as, { target, signal })
      : { changes: [], retained: [], problems: [] };
  const postFailed = preFailed ?? (pruned.problems.length ? undefined : await hookPoint('post-delete'));
  const problems = [...pruned.problems.map((p) => p.message), ...(postFailed ? [postFailed] : [])];
  return { pruned, hooks, problems };
}

export interface RemoveRequest {
  repo: string;
  cluster: string;
  target: string;
  /** The revision whose tidegate.yaml no longer declares the target. */
  revision: Revision;
  signal?: AbortSignal | undefined;
}

/**
 * A target left tidegate.yaml: holding its lease, and once the head of the branch is checked to
 * still leave it out, its objects are pruned (unless it was last applied with `deletionPolicy:
 * orphan`, or with `prune: false` and no `deletionPolicy: delete`; objects with
 * `tidegate.dev/prune: disabled` or without its labels stay) and its state is kept as an archive,
 * marked removed, with a last history entry. A target that came back, that another repository
 * owns, or that was removed already, is left alone (undefined).
 */
export async function removeTarget(ctx: EngineContext, req: RemoveRequest): Promise<SyncResult | undefined> {
  const client = await ctx.connect(req.cluster);
  return withLease(client, req.target, { ...leaseOf(ctx), signal: req.signal, logger: ctx.logger }, async (signal) => {
    const startedAt = new Date().toISOString();
    const state = await readTargetState(client, req.target, signal);
    if (!ownedBy(state, req.repo) || state.removed) return undefined;
    const revision = await removedAtHead(ctx, req, signal);
    if (!revision) return undefined;
    if (state.suspended)
      return heldRemoval(
        client,
        req.target,
        state,
        revision,
        startedAt,
        `removal waits: suspended by ${state.suspended.by} since ${state.suspended.at} (${state.suspended.reason})`,
        signal,
      );
    // Removing a target changes every object it applied: its gate as last signed off must sign that off.
    const hold = await ownerHold(ctx, { ...req, owner: req.target, state, candidate: revision });
    if (hold) return heldRemoval(client, req.target, state, revision, startedAt, `removal ${hold}`, signal);
    const { pruned, hooks, problems } = await uninstall(client, req.target, state, signal);
    const failed = problems.length > 0;
    const result: SyncResult = {
      target: req.target,
      revision,
      outcome: failed ? 'failed' : 'applied',
      changeSet: { changes: pruned.changes },
      health: { status: 'unknown', notReady: [] },
      startedAt,
      durationMs: Date.now() - Date.parse(startedAt),
      ...(hooks.length ? { hooks } : {}),
      ...(failed
        ? {
            error: clip(`removed from tidegate.yaml, not pruned yet: ${problems.join('; ')}`, ENTRY_LIMITS.error),
          }
        : {}),
    };
    const entry: HistoryEntry = {
      revision,
      kind: 'removal',
      outcome: result.outcome,
      health: 'unknown',
      counts: countChanges(result.changeSet),
      startedAt,
      durationMs: result.durationMs,
      ...(result.error ? { error: result.error } : {}),
    };
    await writeTargetState(
      client,
      req.target,
      {
        ...state,
        inventory: pruned.retained,
        history: [...state.history, entry].slice(-HISTORY_LIMIT),
        // Marked removed once nothing is left to prune; what failed to delete is tried again by the next push or poll.
        removed: failed ? undefined : { at: new Date().toISOString(), revision },
      },
      signal,
    );
    ctx.logger?.info('target removed from tidegate.yaml', {
      target: req.target,
      cluster: req.cluster,
      deleted: pruned.changes.filter((c) => c.action === 'deleted').length,
      kept: pruned.retained.length,
    });
    return result;
  });
}

/** A removal its target's gate holds: recorded once per revision and reason, nothing pruned. */
async function heldRemoval(
  client: KubeClient,
  target: string,
  state: TargetState,
  revision: Revision,
  startedAt: string,
  heldFor: string,
  signal: AbortSignal,
): Promise<SyncResult> {
  const result: SyncResult = {
    target,
    revision,
    outcome: 'held',
    changeSet: { changes: [] },
    health: { status: 'unknown', notReady: [] },
    heldFor: clip(heldFor, ENTRY_LIMITS.heldFor),
    startedAt,
    durationMs: Date.now() - Date.parse(startedAt),
  };
  const last = state.history.at(-1);
  if (
    last?.kind === 'removal' &&
    last.outcome === 'held' &&
    last.revision.sha === revision.sha &&
    last.heldFor === result.heldFor
  )
    return { ...result, repeat: true, seen: true };
  const entry: HistoryEntry = {
    revision,
    kind: 'removal',
    outcome: 'held',
    health: 'unknown',
    counts: countChanges(result.changeSet),
    startedAt,
    durationMs: result.durationMs,
    heldFor: result.heldFor,
  };
  await writeTargetState(
    client,
    target,
    { ...state, history: [...state.history, entry].slice(-HISTORY_LIMIT) },
    signal,
  );
  return result;
}

/** A target left tidegate.yaml: removed (checked against the branch head under its lease). */
export async function removeMessage(
  ctx: EngineContext,
  msg: RemoveMessage,
  signal?: AbortSignal,
): Promise<{ kind: 'synced'; result: SyncResult } | { kind: 'ignored'; reason: string }> {
  const result = await removeTarget(ctx, { ...msg, signal });
  return result
    ? { kind: 'synced', result }
    : {
        kind: 'ignored',
        reason: `target ${msg.target} is declared on cluster ${msg.cluster} again, not this repository's, or removed already`,
      };
}
