import { repoName } from '../github/index.js';
import { TargetNotFoundError, errorMessage, type SyncMessage, type SyncResult } from '../model/index.js';
import { reportSync } from '../report/index.js';
import { resolveRevision } from '../source/index.js';
import type { EngineContext } from './context.js';
import { syncRepo } from './sync-repo.js';

/**
 * The revision a branch sync applies: the branch head at processing time, which is the pushed
 * commit or one after it. Webhooks arrive in any order and queues redeliver; a late or
 * out-of-order message then re-applies the newest commit instead of moving the target back.
 */
async function newestRevision(ctx: EngineContext, msg: SyncMessage): Promise<SyncMessage['revision']> {
  if (!msg.revision.ref.startsWith('refs/heads/')) return msg.revision;
  return resolveRevision(ctx.gitSource(msg.repo), { branch: msg.revision.ref.slice('refs/heads/'.length) });
}

/**
 * A sync message: the target at the branch head, then its commit status and deployment on GitHub
 * (never failing the sync). A target that tidegate.yaml no longer declares is ignored (its removal
 * is a message of its own).
 */
export async function syncMessage(
  ctx: EngineContext,
  msg: SyncMessage,
  signal?: AbortSignal,
): Promise<{ kind: 'synced'; result: SyncResult } | { kind: 'ignored'; reason: string }> {
  const revision = await newestRevision(ctx, msg);
  if (revision.sha !== msg.revision.sha)
    ctx.logger?.info('newer commit on the branch', {
      target: msg.target,
      pushed: msg.revision.sha,
      head: revision.sha,
    });
  const results = await syncRepo(ctx, { repo: msg.repo, target: msg.target, revision, signal }).catch(
    (err: unknown) => {
      if (err instanceof TargetNotFoundError) return err; // removed from tidegate.yaml since: nothing to retry
      throw err;
    },
  );
  if (results instanceof TargetNotFoundError) return { kind: 'ignored', reason: results.message };
  const [result] = results;
  if (!result) return { kind: 'ignored', reason: `target ${msg.target} produced no result` };
  ctx.logger?.info('synced', {
    target: result.target,
    revision: result.revision.sha,
    outcome: result.outcome,
    durationMs: result.durationMs,
    ...(result.error ? { error: result.error } : {}),
    ...(result.heldFor ? { heldFor: result.heldFor } : {}),
  });
  const github = ctx.github?.(msg.repo);
  // A poll re-syncs an unchanged (or still held) revision every drift interval: that was reported
  // when it was pushed, and GitHub keeps at most 1000 statuses per commit and context.
  const repeat = msg.reason === 'poll' && (result.outcome === 'unchanged' || result.outcome === 'held');
  // Reporting never fails a sync: the result is recorded in the cluster either way.
  if (github && !repeat)
    await reportSync(github, repoName(msg.repo), result).catch((err: unknown) =>
      ctx.logger?.warn('commit status not set', { target: result.target, error: errorMessage(err) }),
    );
  return { kind: 'synced', result };
}
