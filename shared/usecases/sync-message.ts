import { repoName } from '../github/index.js';
import { errorMessage, redactUrl, type SyncMessage, type SyncResult } from '../model/index.js';
import { notify, resultEvent, reloadHeldEvent } from './notify.js';
import { holdMarker, renderHold, reportSync } from '../report/index.js';
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
 * A sync message: the target (or the dependency chain, in order) at the branch head, then each
 * result's commit status and deployment on GitHub (never failing the sync). Targets that
 * tidegate.yaml no longer declares are left out (their removal is a message of its own).
 */
export async function syncMessage(
  ctx: EngineContext,
  msg: SyncMessage,
  signal?: AbortSignal,
): Promise<{ kind: 'synced'; result: SyncResult; results: SyncResult[] } | { kind: 'ignored'; reason: string }> {
  const revision = await newestRevision(ctx, msg);
  if (revision.sha !== msg.revision.sha)
    ctx.logger?.info('newer commit on the branch', {
      target: msg.target,
      pushed: msg.revision.sha,
      head: revision.sha,
    });
  const names = msg.chain ?? [msg.target];
  const results = await syncRepo(ctx, {
    repo: msg.repo,
    targets: names,
    ignoreMissing: true,
    revision,
    signal,
    ...(msg.receivedAt ? { triggeredAt: msg.receivedAt } : {}),
  });
  const [result] = results;
  if (!result) return { kind: 'ignored', reason: `tidegate.yaml no longer declares ${names.join(', ')}` };
  for (const r of results) await report(ctx, msg, r);
  await commentHold(ctx, msg, revision.sha, results);
  await notify(
    ctx,
    [
      ...results.map((r) => resultEvent(r, { repo: msg.repo, how: howToApprove(msg, r) }, ctx.now?.())),
      ...results.flatMap((r) =>
        (r.reloadsHeld ?? [])
          .filter((h) => h.fresh)
          .map((h) => reloadHeldEvent({ ...h, target: r.target }, { repo: msg.repo }, ctx.now?.())),
      ),
    ],
    signal,
  );
  return { kind: 'synced', result, results };
}

/** Logs a result and sets its commit status and deployment; reporting never fails a sync. */
async function report(ctx: EngineContext, msg: SyncMessage, result: SyncResult): Promise<void> {
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
  // when it was pushed, and GitHub keeps at most 1000 statuses per commit and context; but a
  // rollout that was still progressing then and has settled since is reported now.
  const repeat =
    msg.reason === 'poll' && (result.outcome === 'unchanged' || result.outcome === 'held') && !result.settled;
  if (github && !repeat)
    await reportSync(github, repoName(msg.repo), result).catch((err: unknown) =>
      ctx.logger?.warn('commit status not set', { target: result.target, error: errorMessage(err) }),
    );
}

/**
 * A hold that is news is also told on the merged pull request(s) that brought the revision: which
 * commits are not signed off and how to approve (one comment per revision, updated in place).
 */
async function commentHold(
  ctx: EngineContext,
  msg: SyncMessage,
  sha: string,
  results: readonly SyncResult[],
): Promise<void> {
  const held = results.filter((r) => r.outcome === 'held' && !r.repeat);
  const github = ctx.github?.(msg.repo);
  if (!github || held.length === 0) return;
  const name = repoName(msg.repo);
  try {
    const branch = msg.revision.ref.replace(/^refs\/heads\//, '');
    const merged = (await github.pullRequestsOfCommit(name, sha)).filter((p) => p.mergedAt && p.base === branch);
    for (const pr of merged) await github.upsertComment(name, pr.number, holdMarker(sha), renderHold(sha, held));
  } catch (err) {
    ctx.logger?.warn('hold not commented on its pull request', { revision: sha, error: errorMessage(err) });
  }
}

const howToApprove = (msg: SyncMessage, r: SyncResult): string =>
  `\`tidegate approve ${r.target} ${r.revision.sha.slice(0, 12)} --repo ${redactUrl(msg.repo)}\`, or comment \`/tidegate approve ${r.revision.sha.slice(0, 12)} ${r.target}\` on a pull request`;
