import { repoName } from '../github/index.js';
import type { ImageMessage, PushMessage, QueueMessage, RemoveMessage, SyncMessage, SyncResult } from '../model/index.js';
import { splitRepository } from '../images/index.js';
import { resolveRevision } from '../source/index.js';
import type { Queue } from './queue.js';
import { reloadPass, type ReloadReport } from '../reload/index.js';
import { reportSync } from '../report/index.js';
import { TargetNotFoundError } from './config-file.js';
import { configAt } from './repo-config.js';
import type { EngineContext } from './context.js';
import { affectedTargets } from './affected.js';
import { previewPullRequest, type PreviewOutcome } from './preview.js';
import { approveFromComment, type CommentApproval } from './approve.js';
import { updateImages, type ImageOutcome } from './image-updates.js';
import { syncRepo } from './sync.js';
import { removeTarget, removedTargets } from './remove.js';

export type WorkOutcome =
  | { kind: 'fanned-out'; targets: string[] }
  | { kind: 'reloaded'; cluster: string; report: ReloadReport }
  | ImageOutcome
  | { kind: 'synced'; result: SyncResult }
  | ({ kind: 'approved' } & CommentApproval)
  | ({ kind: 'previewed' } & PreviewOutcome)
  | { kind: 'ignored'; reason: string };

function registryAndRepository(repository: string): { registry: string; repository: string } {
  const { host, path } = splitRepository(repository);
  return { registry: host, repository: path };
}

async function fanOut(ctx: EngineContext, msg: PushMessage, queue: Queue, signal?: AbortSignal): Promise<WorkOutcome> {
  const { revision, config } = await configAt(ctx, msg.repo, { ref: msg.ref, sha: msg.sha });
  const targets = affectedTargets(config.targets, msg);
  const syncs: SyncMessage[] = targets.map((t) => ({ type: 'sync', repo: msg.repo, target: t.name, revision, reason: msg.reason, ...(msg.bucket === undefined ? {} : { bucket: msg.bucket }) }));
  // The poll is also the fallback for registry events: ask each policy's registry once per interval.
  const images: ImageMessage[] = msg.reason === 'poll' ? config.images.map((p) => ({ type: 'image', ...registryAndRepository(p.repository), source: 'poll', ...(msg.bucket === undefined ? {} : { bucket: msg.bucket }) })) : [];
  // Targets this repository owns on its clusters that this tidegate.yaml (it loaded) no longer declares.
  const removals: RemoveMessage[] = (await removedTargets(ctx, msg.repo, config, signal)).map((r) => ({ type: 'remove', repo: msg.repo, ...r, revision }));
  await queue.send([...syncs, ...removals, ...images]);
  return { kind: 'fanned-out', targets: targets.map((t) => t.name) };
}

/** A target left tidegate.yaml: removed (checked against the branch head under its lease). */
async function removeOne(ctx: EngineContext, msg: RemoveMessage, signal?: AbortSignal): Promise<WorkOutcome> {
  const result = await removeTarget(ctx, { ...msg, signal });
  return result ? { kind: 'synced', result } : { kind: 'ignored', reason: `target ${msg.target} is declared on cluster ${msg.cluster} again, not this repository's, or removed already` };
}

/**
 * The revision a branch sync applies: the branch head at processing time, which is the pushed
 * commit or one after it. Webhooks arrive in any order and queues redeliver; a late or
 * out-of-order message then re-applies the newest commit instead of moving the target back.
 */
async function newestRevision(ctx: EngineContext, msg: SyncMessage): Promise<SyncMessage['revision']> {
  if (!msg.revision.ref.startsWith('refs/heads/')) return msg.revision;
  return resolveRevision(ctx.gitSource(msg.repo), { branch: msg.revision.ref.slice('refs/heads/'.length) });
}

async function syncOne(ctx: EngineContext, msg: SyncMessage, signal?: AbortSignal): Promise<WorkOutcome> {
  const revision = await newestRevision(ctx, msg);
  if (revision.sha !== msg.revision.sha) ctx.logger?.info('newer commit on the branch', { target: msg.target, pushed: msg.revision.sha, head: revision.sha });
  const results = await syncRepo(ctx, { repo: msg.repo, target: msg.target, revision, signal }).catch((err: unknown) => {
    if (err instanceof TargetNotFoundError) return err; // removed from tidegate.yaml since: nothing to retry
    throw err;
  });
  if (results instanceof TargetNotFoundError) return { kind: 'ignored', reason: results.message };
  const [result] = results;
  if (!result) return { kind: 'ignored', reason: `target ${msg.target} produced no result` };
  ctx.logger?.info('synced', { target: result.target, revision: result.revision.sha, outcome: result.outcome, durationMs: result.durationMs, ...(result.error ? { error: result.error } : {}), ...(result.heldFor ? { heldFor: result.heldFor } : {}) });
  const github = ctx.github?.(msg.repo);
  // A poll re-syncs an unchanged (or still held) revision every drift interval: that was reported
  // when it was pushed, and GitHub keeps at most 1000 statuses per commit and context.
  const repeat = msg.reason === 'poll' && (result.outcome === 'unchanged' || result.outcome === 'held');
  // Reporting never fails a sync: the result is recorded in the cluster either way.
  if (github && !repeat) await reportSync(github, repoName(msg.repo), result).catch((err: unknown) => ctx.logger?.warn('commit status not set', { target: result.target, error: err instanceof Error ? err.message : String(err) }));
  return { kind: 'synced', result };
}

/**
 * Handles one queue message. A push fans out into one sync message per affected target (its
 * message group serialises that target); a sync runs the engine. A failed sync is a result; an
 * exception (git or the apiserver unreachable) is thrown so the queue retries the message.
 */
export async function handleMessage(ctx: EngineContext, msg: QueueMessage, queue: Queue, signal?: AbortSignal): Promise<WorkOutcome> {
  switch (msg.type) {
    case 'push':
      return fanOut(ctx, msg, queue, signal);
    case 'sync':
      return syncOne(ctx, msg, signal);
    case 'remove':
      return removeOne(ctx, msg, signal);
    case 'reload': {
      const client = await ctx.connect(msg.cluster);
      const report = await reloadPass(client, { ...(ctx.reload?.scope ?? {}), strategy: ctx.reload?.strategy ?? 'annotations', signal });
      ctx.logger?.info('reload pass', { cluster: msg.cluster, rolled: report.rolled.length, recorded: report.recorded.length });
      return { kind: 'reloaded', cluster: msg.cluster, report };
    }
    case 'image':
      return updateImages(ctx, msg, queue);
    case 'approve':
      return { kind: 'approved', ...(await approveFromComment(ctx, msg, queue, signal)) };
    case 'preview':
      return { kind: 'previewed', ...(await previewPullRequest(ctx, msg, signal)) };
  }
}
