import { notify } from './notify.js';
import { repositoryPage } from '../status/index.js';
import type { NotifyEvent } from '../notify/index.js';
import type { ImagePolicySpec, TargetSpec } from '../config/index.js';
import { renderInputs } from '../render/index.js';
import { under } from './affected.js';
import { suspension } from './suspend.js';
import { repoName, type PullRequestRef } from '../github/index.js';
import { TidegateError, errorMessage, isTransient, redactUrl, type ImageMessage } from '../model/index.js';
import {
  latestImage,
  policiesFor,
  pullRequestBranch,
  pullRequestText,
  writeImages,
  type ImageUpdate,
  type LatestImage,
} from '../images/index.js';
import type { CommitAuthor } from '../source/index.js';
import { configAt } from './repo-config.js';
import type { EngineContext } from './context.js';
import type { Queue } from './queue.js';

export type ImageOutcome =
  | { kind: 'images-written'; updates: ImagesWritten[]; failed?: Array<{ repo: string; error: string }> }
  | { kind: 'ignored'; reason: string };

export interface ImagesWritten {
  repo: string;
  /** The commit holding the edits: on the tracked branch, or on the pull request branch. */
  sha: string;
  edits: ImageUpdate['edits'];
  pullRequest?: PullRequestRef & { branch: string };
}

type TrackedRepository = { url: string; branch: string };

/** Policies written back with a commit: one commit for all of them, then synced like any push. */
async function commitImages(
  ctx: EngineContext,
  queue: Queue,
  repo: TrackedRepository,
  author: CommitAuthor,
  latest: Map<ImagePolicySpec, LatestImage>,
  skip: (file: string) => boolean,
): Promise<ImagesWritten[]> {
  const update = await writeImages(ctx.gitSource(repo.url), {
    branch: repo.branch,
    author,
    latest,
    cacheDir: ctx.settings.cacheDir,
    skip,
  });
  if (!update.sha) return [];
  ctx.logger?.info('images written', {
    repo: repo.url,
    sha: update.sha,
    edits: update.edits.map((e) => `${e.policy}: ${e.from} → ${e.to}`),
  });
  await queue.send([
    {
      type: 'push',
      repo: repo.url,
      ref: `refs/heads/${repo.branch}`,
      sha: update.sha,
      paths: [...new Set(update.edits.map((e) => e.file))],
      reason: 'push',
    },
  ]);
  return [{ repo: repo.url, sha: update.sha, edits: update.edits }];
}

/**
 * A policy written back with a pull request: its branch is rebuilt on the tracked branch and the
 * one open pull request of that branch is opened or updated. Nothing is synced: merging is.
 */
async function proposeImage(
  ctx: EngineContext,
  repo: TrackedRepository,
  author: CommitAuthor,
  policy: ImagePolicySpec,
  image: LatestImage,
  skip: (file: string) => boolean,
): Promise<ImagesWritten[]> {
  const github = ctx.github?.(repo.url);
  if (!github)
    throw new TidegateError(
      'GitHubMissing',
      `image policy ${policy.name} writes back with a pull request, but ${repo.url} has no GitHub API access (a token and, outside github.com, githubApiUrl)`,
    );
  const branch = pullRequestBranch(policy);
  const update = await writeImages(ctx.gitSource(repo.url), {
    branch: repo.branch,
    pullRequestBranch: branch,
    author,
    latest: new Map([[policy, image]]),
    cacheDir: ctx.settings.cacheDir,
    skip,
  });
  if (!update.sha) return [];
  const pr = await github.ensurePullRequest(repoName(repo.url), {
    head: branch,
    base: repo.branch,
    ...pullRequestText(policy, image, update),
  });
  ctx.logger?.info('image pull request', {
    repo: repo.url,
    policy: policy.name,
    tag: image.tag,
    pullRequest: pr.number,
    action: pr.action,
    pushed: update.pushed,
  });
  return [{ repo: repo.url, sha: update.sha, edits: update.edits, pullRequest: { ...pr, branch } }];
}

/**
 * An image push: for every GitOps repository whose tidegate.yaml has a policy for that image,
 * choose the tag by policy and rewrite the markers: a commit to the tracked branch (then synced
 * like any push), or a pull request per policy. The registry never changes the cluster directly.
 */
export async function updateImages(
  ctx: EngineContext,
  msg: ImageMessage,
  queue: Queue,
  signal?: AbortSignal,
): Promise<ImageOutcome> {
  const updates: ImagesWritten[] = [];
  const failed: Array<{ repo: string; error: string }> = [];
  let matched = false;
  let retry: unknown;
  // Each repository on its own: one whose tidegate.yaml does not load, or whose write fails, stops no other.
  for (const repo of ctx.repositories ?? []) {
    try {
      const written = await updateRepository(ctx, msg, queue, repo, signal);
      if (!written) continue;
      matched = true;
      updates.push(...written);
    } catch (err) {
      matched = true;
      if (isTransient(err)) retry ??= err;
      failed.push({ repo: redactUrl(repo.url), error: errorMessage(err) });
      ctx.logger?.warn('image update failed for a repository', { repo: redactUrl(repo.url), error: errorMessage(err) });
    }
  }
  await notify(
    ctx,
    updates.map((u) => imageEvent(u, ctx.now?.())),
  );
  // What may pass on its own is tried again (the other repositories' edits are found already made).
  if (retry) throw retry;
  if (!matched) return { kind: 'ignored', reason: `no image policy follows ${msg.registry}/${msg.repository}` };
  return { kind: 'images-written', updates, ...(failed.length ? { failed } : {}) };
}

/** The files of the repository's suspended targets (what they render): image automation leaves them as they are. */
async function suspendedFiles(
  ctx: EngineContext,
  targets: readonly TargetSpec[],
  dir: string,
): Promise<(file: string) => boolean> {
  const frozen: string[] = [];
  for (const t of targets) {
    const by = await suspension(ctx, t.cluster, t.name).catch(() => undefined);
    if (by) {
      frozen.push(...renderInputs(dir, t));
      ctx.logger?.info('image edits skipped: target suspended', { target: t.name, by: by.by, reason: by.reason });
    }
  }
  return (file) => frozen.some((i) => under(file, i));
}

/** One repository's image edits for a pushed image: undefined when none of its policies follows it. */
async function updateRepository(
  ctx: EngineContext,
  msg: ImageMessage,
  queue: Queue,
  repo: { url: string; branch: string },
  signal?: AbortSignal,
): Promise<ImagesWritten[] | undefined> {
  const { config, dir } = await configAt(ctx, repo.url, { branch: repo.branch });
  const policies = policiesFor(config, msg);
  if (policies.length === 0) return undefined;
  const skip = await suspendedFiles(ctx, config.targets, dir);
  const latest = await Promise.all(policies.map(async (p) => [p, await latestImage(p, ctx.registry, signal)] as const));
  const author = config.imageAutomation.author;
  // A commit straight to the branch would be held by an approvals gate: propose it instead.
  const gated = config.targets.some((t) => t.gate.approvals > 0 || (ctx.floor?.(t.cluster)?.approvals ?? 0) > 0);
  const viaPullRequest = (p: ImagePolicySpec): boolean =>
    p.writeBack === 'pullRequest' || (p.writeBack === 'auto' && gated);
  const out: ImagesWritten[] = [];
  const direct = new Map(latest.filter(([p]) => !viaPullRequest(p)));
  if (direct.size > 0) out.push(...(await commitImages(ctx, queue, repo, author, direct, skip)));
  for (const [policy, image] of latest.filter(([p]) => viaPullRequest(p)))
    out.push(...(await proposeImage(ctx, repo, author, policy, image, skip)));
  return out;
}

/** The notification of image edits written to Git: committed to the branch, or proposed in a pull request. */
function imageEvent(u: ImagesWritten, at: Date = new Date()): NotifyEvent | undefined {
  if (u.edits.length === 0 || u.pullRequest?.action === 'unchanged') return undefined;
  const images = [...new Set(u.edits.map((e) => `${e.policy}: ${e.from} → ${e.to}`))];
  const page = repositoryPage(u.repo);
  return {
    kind: u.pullRequest ? 'image-proposed' : 'image-committed',
    repo: redactUrl(u.repo),
    sha: u.sha,
    title: u.pullRequest
      ? `image update proposed in pull request #${u.pullRequest.number}`
      : `image update committed: ${u.sha.slice(0, 12)}`,
    text: images.join('\n'),
    fields: [
      ['images', String(images.length)],
      ['files', String(new Set(u.edits.map((e) => e.file)).size)],
    ],
    url: u.pullRequest?.url ?? (page ? `${page}/commit/${u.sha}` : undefined),
    at: at.toISOString(),
  };
}
