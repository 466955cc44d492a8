import { readTargetState, updateTargetState, withLease } from '../apply/index.js';
import type { TargetSpec } from '../config/index.js';
import { TidegateError, type HistoryEntry, type Revision, type SyncResult } from '../model/index.js';
import { checkoutRevision, commitInfo } from '../source/index.js';
import { loadConfig } from './config-file.js';
import { headTarget, trackedBranch } from './repo-config.js';
import { leaseOf, refuseOtherOwner, type EngineContext } from './context.js';
import { syncTarget } from './target-sync.js';

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
const ran = (h: HistoryEntry): boolean => h.kind !== 'removal' && (h.outcome === 'applied' || h.outcome === 'unchanged' || h.outcome === 'progressing');

/**
 * The revision a rollback goes to: one this target applied (a full SHA or a prefix of one in its
 * history), or the last healthy one that is not the current one. Any other full SHA only with force.
 */
function chooseRevision(history: readonly HistoryEntry[], current: Revision | undefined, to: string | undefined, force: boolean, branch: string): { revision: Revision; forced: boolean } {
  if (to) {
    const known = [...history].reverse().find((h) => ran(h) && h.revision.sha.startsWith(to.toLowerCase()));
    if (known && to.length >= 7) return { revision: known.revision, forced: false };
    if (force && /^[0-9a-f]{40}$/.test(to)) return { revision: { ref: `refs/heads/${branch}`, sha: to }, forced: true };
    throw new TidegateError('RevisionNotApplied', `revision ${to} was not applied to this target (a rollback goes to a revision in its history, given by at least 7 characters); --force with the full 40-character SHA applies another revision`);
  }
  const healthy = [...history].reverse().find((h) => ran(h) && h.health === 'healthy' && h.revision.sha !== current?.sha);
  if (!healthy) throw new TidegateError('NoHealthyRevision', 'the history has no healthy revision other than the current one; give --to <revision>');
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
  const spec: TargetSpec = loadConfig(checkout.dir).targets.find((t) => t.name === req.target) ?? current;
  return syncTarget({
    spec, dir: checkout.dir, revision, client, settings: ctx.settings, signal: req.signal,
    commit: await commitInfo(src, revision.sha, ctx.settings.cacheDir),
    repo: req.repo,
    rollback: { kind: req.kind ?? 'rollback', by: req.by, reason: req.reason ?? `rolled back to ${revision.sha.slice(0, 12)} by ${req.by}${forced ? ' (forced)' : ''}`, forced },
    lease: leaseOf(ctx),
    ...(ctx.logger ? { logger: ctx.logger } : {}),
  });
}

/** Lifts a target's pin; the next push or poll applies the branch again. */
export async function release(ctx: EngineContext, req: { repo: string; target: string }): Promise<boolean> {
  const { client } = await headTarget(ctx, req.repo, req.target);
  let lifted = false;
  await withLease(client, req.target, { ...leaseOf(ctx), logger: ctx.logger }, (signal) =>
    updateTargetState(client, req.target, (state) => {
      refuseOtherOwner(state, req.repo, req.target);
      if (!state.pin) return undefined;
      lifted = true;
      return { ...state, pin: undefined };
    }, signal));
  return lifted;
}
