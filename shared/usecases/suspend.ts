import { readTargetState } from '../state/index.js';
import { ENTRY_LIMITS, TargetNotFoundError, clip } from '../model/index.js';
import type { EngineContext } from './context.js';
import { changeOwnState } from './own-state.js';
import { configAt } from './repo-config.js';
import { removedTargets } from './remove.js';

/** The cluster a target is on: as the head of the tracked branch declares it, or (removed, not pruned yet) where its state is. */
async function clusterOf(ctx: EngineContext, repo: string, target: string): Promise<string> {
  const { config } = await configAt(ctx, repo);
  const declared = config.targets.find((t) => t.name === target)?.cluster;
  if (declared) return declared;
  const gone = (await removedTargets(ctx, repo, config)).find((r) => r.target === target);
  if (!gone) throw new TargetNotFoundError(target, 'tidegate.yaml');
  return gone.cluster;
}

/**
 * Suspends a target (an incident): recorded in its state under its lease with who, when and why;
 * every writer (push, poll, approval, image update, preview, removal) then changes nothing of it,
 * saying so, until `resume`. Only an operator's rollback still applies. Never another repository's target.
 */
export async function suspend(
  ctx: EngineContext,
  req: { repo: string; target: string; by: string; reason: string },
): Promise<void> {
  const client = await ctx.connect(await clusterOf(ctx, req.repo, req.target));
  await changeOwnState(ctx, client, req, (state) => ({
    ...state,
    repo: state.repo ?? req.repo,
    suspended: {
      by: req.by,
      at: (ctx.now?.() ?? new Date()).toISOString(),
      reason: clip(req.reason, ENTRY_LIMITS.pinReason),
    },
  }));
  ctx.logger?.info('target suspended', { target: req.target, by: req.by, reason: req.reason });
}

/** Lifts a suspension; the next push, poll or approval applies again. False when it was not suspended. */
export async function resume(ctx: EngineContext, req: { repo: string; target: string; by: string }): Promise<boolean> {
  const client = await ctx.connect(await clusterOf(ctx, req.repo, req.target));
  const lifted = await changeOwnState(ctx, client, req, (state) =>
    state.suspended ? { ...state, suspended: undefined } : undefined,
  );
  if (lifted) ctx.logger?.info('target resumed', { target: req.target, by: req.by });
  return lifted;
}

/** Whether a target is suspended now (read without its lease: for writers that do not touch the cluster, such as image automation). */
export async function suspension(ctx: EngineContext, cluster: string, target: string) {
  return (await readTargetState(await ctx.connect(cluster), target)).suspended;
}
