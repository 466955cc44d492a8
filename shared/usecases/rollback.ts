import type { KubeClient } from '../cluster/index.js';
import type { TargetSpec } from '../config/index.js';
import {
  ENTRY_LIMITS,
  RevisionError,
  clip,
  isLocalRevision,
  isTidegateError,
  type HistoryEntry,
  type Revision,
  type SyncResult,
} from '../model/index.js';
import { checkoutRevision, commitInfo } from '../source/index.js';
import { readTargetState } from '../state/index.js';
import { syncTarget } from '../sync/index.js';
import { clusterResourcesOf, leaseOf, lockdownOf, reloadInputs, settingsFor, type EngineContext } from './context.js';
import { changeOwnState } from './own-state.js';
import { headTarget, loadConfig, trackedBranch } from './repo-config.js';

export interface RollbackRequest {
  repo: string;
  target: string;
  /** A full SHA, or a prefix of one in the target's history; default: the last healthy revision before the current one. */
  to?: string | undefined;
  by: string;
  /** Allow a revision this target never applied (a full SHA); recorded in history with who. */
  force?: boolean;
  /** The branch the target follows (default: the tracked branch of the repository). */
  branch?: string | undefined;
  kind?: 'rollback' | 'auto-rollback';
  reason?: string;
  signal?: AbortSignal | undefined;
}

/** Entries after which their revision ran on the cluster (applied, or already in place, or still rolling out); a removal ran nothing. */
const ran = (h: HistoryEntry): boolean =>
  h.kind !== 'removal' && (h.outcome === 'applied' || h.outcome === 'unchanged' || h.outcome === 'progressing');

/** Entries whose revision is a commit, fetched again from Git (not a local working tree's, `tidegate sync --dir`). */
const fetchable = (h: HistoryEntry): boolean => !isLocalRevision(h.revision.sha);

/**
 * The revision a rollback goes to: one this target applied (a full SHA or a prefix of one in its
 * history), or the last healthy one that is not the current one. Any other full SHA only with force.
 */
function chooseRevision(
  history: readonly HistoryEntry[],
  current: Revision | undefined,
  to: string | undefined,
  force: boolean,
  branch: string,
): { revision: Revision; forced: boolean } {
  if (to) {
    const known = [...history]
      .reverse()
      .find((h) => ran(h) && fetchable(h) && h.revision.sha.startsWith(to.toLowerCase()));
    if (known && to.length >= 7) return { revision: known.revision, forced: false };
    if (force && /^[0-9a-f]{40}$/.test(to)) return { revision: { ref: `refs/heads/${branch}`, sha: to }, forced: true };
    throw new RevisionError(
      'RevisionNotApplied',
      `revision ${to} was not applied to this target (a rollback goes to a revision in its history, given by at least 7 characters); --force with the full 40-character SHA applies another revision`,
    );
  }
  const healthy = [...history]
    .reverse()
    .find((h) => ran(h) && fetchable(h) && h.health === 'healthy' && h.revision.sha !== current?.sha);
  if (!healthy)
    throw new RevisionError(
      'NoHealthyRevision',
      'the history has no healthy revision other than the current one; give --to <revision>',
    );
  return { revision: healthy.revision, forced: false };
}

/**
 * Rolls a target back: re-renders that revision from Git (never from a stored copy), applies and
 * prunes it, and pins the target there. While pinned, pushes and polls change nothing.
 */
export async function rollback(ctx: EngineContext, req: RollbackRequest): Promise<SyncResult> {
  const branch = req.branch ?? trackedBranch(ctx, req.repo);
  const { src, spec: current, client } = await headTarget(ctx, req.repo, req.target, branch);
  const state = await readTargetState(client, req.target, req.signal);
  const { revision, forced } = chooseRevision(state.history, state.lastApplied, req.to, req.force ?? false, branch);
  const checkout = await checkoutRevision(src, revision, ctx.settings.cacheDir);
  // The target as that revision declared it (its path, render options), else as declared now.
  const spec: TargetSpec =
    (await loadConfig(checkout.dir, ctx.settings, { repo: req.repo })).targets.find((t) => t.name === req.target) ??
    current;
  return syncTarget({
    spec,
    dir: checkout.dir,
    revision,
    client,
    settings: settingsFor(ctx, req.repo),
    signal: req.signal,
    ...reloadInputs(ctx, spec),
    commit: await commitInfo(src, revision.sha, ctx.settings.cacheDir),
    repo: req.repo,
    clusterResources: clusterResourcesOf(ctx, req.repo),
    lockdown: lockdownOf(ctx, req.repo),
    rollback: {
      kind: req.kind ?? 'rollback',
      by: req.by,
      reason: req.reason ?? `rolled back to ${revision.sha.slice(0, 12)} by ${req.by}${forced ? ' (forced)' : ''}`,
      forced,
    },
    lease: leaseOf(ctx),
    ...(ctx.logger ? { logger: ctx.logger } : {}),
  });
}

/** Lifts a target's pin; the next push or poll applies the branch again. */
export async function release(ctx: EngineContext, req: { repo: string; target: string }): Promise<boolean> {
  const { client } = await headTarget(ctx, req.repo, req.target);
  return changeOwnState(ctx, client, req, (state) => (state.pin ? { ...state, pin: undefined } : undefined));
}

/** When health failed and the target asks for it: re-apply the last healthy revision and pin there. */
export async function autoRollback(
  ctx: EngineContext,
  spec: TargetSpec,
  repo: string,
  result: SyncResult,
  client: KubeClient,
  signal?: AbortSignal,
): Promise<SyncResult> {
  if (!spec.rollback.onFailedHealth || result.health.status !== 'failed') return result;
  const lastHealthy = (await readTargetState(client, spec.name, signal)).lastHealthy;
  // A working tree (<sha>+worktree, <sha>+dirty) cannot be fetched again: nothing to roll back to.
  if (!lastHealthy || lastHealthy.sha === result.revision.sha || isLocalRevision(lastHealthy.sha)) return result;
  // lastHealthy ran here (it is in the state even when it has left the 20 history entries): forced is safe.
  const reason = clip(
    `health failed at ${result.revision.sha.slice(0, 12)}: ${result.error ?? ''}`.trim(),
    ENTRY_LIMITS.pinReason,
  );
  const branch = result.revision.ref.startsWith('refs/heads/')
    ? result.revision.ref.slice('refs/heads/'.length)
    : undefined;
  const back = await rollback(ctx, {
    repo,
    target: spec.name,
    to: lastHealthy.sha,
    force: true,
    branch,
    by: 'tidegate',
    kind: 'auto-rollback',
    reason,
    signal,
  }).catch((err: unknown) => {
    if (isTidegateError(err) && !err.transient) return { outcome: 'failed' as const, error: err.message };
    throw err;
  });
  ctx.logger?.warn('auto-rollback', {
    target: spec.name,
    failed: result.revision.sha,
    to: lastHealthy.sha,
    outcome: back.outcome,
    ...(back.error ? { error: back.error } : {}),
  });
  return back.outcome === 'failed' ? result : { ...result, rolledBackTo: lastHealthy };
}
