import { readTargetState, writeTargetState } from '../apply/index.js';
import { TidegateError, type SyncResult } from '../model/index.js';
import type { EngineContext } from './context.js';
import { headTarget } from './head-target.js';
import { syncRepo } from './sync.js';

/**
 * Records a manual approval of a target's revision (the branch head, or a revision in its history,
 * by SHA or prefix) in the cluster, then syncs that revision: with the approval, a manual gate lets it through.
 */
export async function approve(ctx: EngineContext, req: { repo: string; target: string; revision: string; by: string; via: 'cli' | 'comment' }): Promise<SyncResult> {
  const { head, client } = await headTarget(ctx, req.repo, req.target);
  const state = await readTargetState(client, req.target);
  const known = [head, ...[...state.history].reverse().map((h) => h.revision)].find((r) => r.sha.startsWith(req.revision.toLowerCase()));
  if (!known || req.revision.length < 7) throw new TidegateError('RevisionUnknown', `revision ${req.revision} is neither the head of the branch nor in the history of ${req.target} (give at least 7 characters)`);
  const approval = { sha: known.sha, by: req.by, at: (ctx.now?.() ?? new Date()).toISOString(), via: req.via };
  await writeTargetState(client, req.target, { ...state, approvals: [...(state.approvals ?? []).filter((a) => !(a.sha === known.sha && a.by === req.by)), approval] });
  ctx.logger?.info('approved', { target: req.target, revision: known.sha, by: req.by, via: req.via });
  const [result] = await syncRepo(ctx, { repo: req.repo, target: req.target, revision: known });
  if (!result) throw new TidegateError('TargetNotFound', `target ${req.target} produced no result`);
  return result;
}
