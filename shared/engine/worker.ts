import type { ImagePolicySpec } from '../config/index.js';
import { repoName, type PullRequestRef } from '../github/index.js';
import { TidegateError, type ImageMessage, type PushMessage, type QueueMessage, type SyncMessage, type SyncResult } from '../model/index.js';
import { latestImage, policiesFor, pullRequestBranch, pullRequestText, splitRepository, writeImages, type ImageUpdate, type LatestImage } from '../images/index.js';
import { checkoutRevision, resolveRevision, type CommitAuthor } from '../source/index.js';
import type { Queue } from './queue.js';
import { reloadPass, type ReloadReport } from '../reload/index.js';
import { reportSync } from '../report/index.js';
import { TargetNotFoundError, loadConfig } from './config-file.js';
import type { EngineContext } from './context.js';
import { affectedTargets } from './affected.js';
import { previewPullRequest, type PreviewOutcome } from './preview.js';
import { approveFromComment, type CommentApproval } from './approve.js';
import { syncRepo } from './sync.js';

export type WorkOutcome =
  | { kind: 'fanned-out'; targets: string[] }
  | { kind: 'reloaded'; cluster: string; report: ReloadReport }
  | { kind: 'images-written'; updates: ImagesWritten[] }
  | { kind: 'synced'; result: SyncResult }
  | ({ kind: 'approved' } & CommentApproval)
  | ({ kind: 'previewed' } & PreviewOutcome)
  | { kind: 'ignored'; reason: string };

function registryAndRepository(repository: string): { registry: string; repository: string } {
  const { host, path } = splitRepository(repository);
  return { registry: host, repository: path };
}

async function fanOut(ctx: EngineContext, msg: PushMessage, queue: Queue): Promise<WorkOutcome> {
  const revision = { ref: msg.ref, sha: msg.sha };
  const checkout = await checkoutRevision(ctx.gitSource(msg.repo), revision, ctx.settings.cacheDir);
  const config = loadConfig(checkout.dir);
  const targets = affectedTargets(config.targets, msg);
  const syncs: SyncMessage[] = targets.map((t) => ({ type: 'sync', repo: msg.repo, target: t.name, revision, reason: msg.reason, ...(msg.bucket === undefined ? {} : { bucket: msg.bucket }) }));
  // The poll is also the fallback for registry events: ask each policy's registry once per interval.
  const images: ImageMessage[] = msg.reason === 'poll' ? config.images.map((p) => ({ type: 'image', ...registryAndRepository(p.repository), source: 'poll', ...(msg.bucket === undefined ? {} : { bucket: msg.bucket }) })) : [];
  await queue.send([...syncs, ...images]);
  return { kind: 'fanned-out', targets: targets.map((t) => t.name) };
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
  // Reporting never fails a sync: the result is recorded in the cluster either way.
  if (github) await reportSync(github, repoName(msg.repo), result).catch((err: unknown) => ctx.logger?.warn('commit status not set', { target: result.target, error: err instanceof Error ? err.message : String(err) }));
  return { kind: 'synced', result };
}

export interface ImagesWritten {
  repo: string;
  /** The commit holding the edits: on the tracked branch, or on the pull request branch. */
  sha: string;
  edits: ImageUpdate['edits'];
  pullRequest?: PullRequestRef & { branch: string };
}

type TrackedRepository = { url: string; branch: string };

/** Policies written back with a commit: one commit for all of them, then synced like any push. */
async function commitImages(ctx: EngineContext, queue: Queue, repo: TrackedRepository, author: CommitAuthor, latest: Map<ImagePolicySpec, LatestImage>): Promise<ImagesWritten[]> {
  const update = await writeImages(ctx.gitSource(repo.url), { branch: repo.branch, author, latest, cacheDir: ctx.settings.cacheDir });
  if (!update.sha) return [];
  ctx.logger?.info('images written', { repo: repo.url, sha: update.sha, edits: update.edits.map((e) => `${e.policy}: ${e.from} → ${e.to}`) });
  await queue.send([{ type: 'push', repo: repo.url, ref: `refs/heads/${repo.branch}`, sha: update.sha, paths: [...new Set(update.edits.map((e) => e.file))], reason: 'push' }]);
  return [{ repo: repo.url, sha: update.sha, edits: update.edits }];
}

/**
 * A policy written back with a pull request: its branch is rebuilt on the tracked branch and the
 * one open pull request of that branch is opened or updated. Nothing is synced: merging is.
 */
async function proposeImage(ctx: EngineContext, repo: TrackedRepository, author: CommitAuthor, policy: ImagePolicySpec, image: LatestImage): Promise<ImagesWritten[]> {
  const github = ctx.github?.(repo.url);
  if (!github) throw new TidegateError('GitHubMissing', `image policy ${policy.name} writes back with a pull request, but ${repo.url} has no GitHub API access (a token and, outside github.com, githubApiUrl)`);
  const branch = pullRequestBranch(policy);
  const update = await writeImages(ctx.gitSource(repo.url), { branch: repo.branch, pullRequestBranch: branch, author, latest: new Map([[policy, image]]), cacheDir: ctx.settings.cacheDir });
  if (!update.sha) return [];
  const pr = await github.ensurePullRequest(repoName(repo.url), { head: branch, base: repo.branch, ...pullRequestText(policy, image, update) });
  ctx.logger?.info('image pull request', { repo: repo.url, policy: policy.name, tag: image.tag, pullRequest: pr.number, action: pr.action, pushed: update.pushed });
  return [{ repo: repo.url, sha: update.sha, edits: update.edits, pullRequest: { ...pr, branch } }];
}

/**
 * An image push: for every GitOps repository whose tidegate.yaml has a policy for that image,
 * choose the tag by policy and rewrite the markers: a commit to the tracked branch (then synced
 * like any push), or a pull request per policy. The registry never changes the cluster directly.
 */
async function updateImages(ctx: EngineContext, msg: ImageMessage, queue: Queue): Promise<WorkOutcome> {
  const updates: ImagesWritten[] = [];
  let matched = false;
  for (const repo of ctx.repositories ?? []) {
    const src = ctx.gitSource(repo.url);
    const head = await resolveRevision(src, { branch: repo.branch });
    const config = loadConfig((await checkoutRevision(src, head, ctx.settings.cacheDir)).dir);
    const policies = policiesFor(config, msg);
    if (policies.length === 0) continue;
    matched = true;
    const latest = await Promise.all(policies.map(async (p) => [p, await latestImage(p, ctx.registry)] as const));
    const author = config.imageAutomation.author;
    // A commit straight to the branch would be held by an approvals gate: propose it instead.
    const gated = config.targets.some((t) => t.gate.approvals > 0 || (ctx.floor?.(t.cluster)?.approvals ?? 0) > 0);
    const viaPullRequest = (p: ImagePolicySpec): boolean => p.writeBack === 'pullRequest' || (p.writeBack === 'auto' && gated);
    const direct = new Map(latest.filter(([p]) => !viaPullRequest(p)));
    if (direct.size > 0) updates.push(...(await commitImages(ctx, queue, repo, author, direct)));
    for (const [policy, image] of latest.filter(([p]) => viaPullRequest(p))) updates.push(...(await proposeImage(ctx, repo, author, policy, image)));
  }
  if (!matched) return { kind: 'ignored', reason: `no image policy follows ${msg.registry}/${msg.repository}` };
  return { kind: 'images-written', updates };
}

/**
 * Handles one queue message. A push fans out into one sync message per affected target (its
 * message group serialises that target); a sync runs the engine. A failed sync is a result; an
 * exception (git or the apiserver unreachable) is thrown so the queue retries the message.
 */
export async function handleMessage(ctx: EngineContext, msg: QueueMessage, queue: Queue, signal?: AbortSignal): Promise<WorkOutcome> {
  switch (msg.type) {
    case 'push':
      return fanOut(ctx, msg, queue);
    case 'sync':
      return syncOne(ctx, msg, signal);
    case 'reload': {
      const client = await ctx.connect(msg.cluster);
      const report = await reloadPass(client, { ...(ctx.reload?.scope ?? {}), strategy: ctx.reload?.strategy ?? 'annotations', signal });
      ctx.logger?.info('reload pass', { cluster: msg.cluster, rolled: report.rolled.length, recorded: report.recorded.length });
      return { kind: 'reloaded', cluster: msg.cluster, report };
    }
    case 'image':
      return updateImages(ctx, msg, queue);
    case 'approve':
      return { kind: 'approved', ...(await approveFromComment(ctx, msg, queue)) };
    case 'preview':
      return { kind: 'previewed', ...(await previewPullRequest(ctx, msg)) };
  }
}
