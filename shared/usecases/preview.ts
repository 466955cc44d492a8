import { repoName, type GitHub, type MergedPullRequest, type RepoName } from '../github/index.js';
import { errorMessage, TidegateError, type PreviewMessage } from '../model/index.js';
import { PREVIEW_MARKER, renderPreview } from '../report/index.js';
import { checkoutRevision } from '../source/index.js';
import { configAt, trackedBranch } from './repo-config.js';
import type { EngineContext } from './context.js';
import { syncCheckout } from './sync-repo.js';
import { affectedTargets } from './affected.js';

export interface PreviewOutcome {
  targets: string[];
  comment?: 'created' | 'updated';
  checkRun?: boolean;
  /** Why the pull request was not previewed (nothing was rendered, dry-run or published). */
  refused?: string;
}

const ASK =
  'it is previewed after a writer reviews its head and comments /tidegate preview <first 7 or more characters of its SHA>, again after each push';

/** Why a pull request may not be previewed now, or undefined when it may. */
async function refusal(
  github: GitHub,
  name: RepoName,
  pr: MergedPullRequest,
  branch: string,
  msg: PreviewMessage,
): Promise<string | undefined> {
  if (!pr.open) return `pull request #${pr.number} is not open`;
  if (pr.base !== branch) return `pull request #${pr.number} is into ${pr.base}, not the tracked branch ${branch}`;
  if (msg.requestedBy !== undefined && !(await github.canWrite(name, msg.requestedBy)))
    return `${msg.requestedBy} may not request a preview: only users with write access may`;
  // An event names its head; a writer's request may name the head they reviewed. Either way, only that head.
  if (msg.head !== undefined && !pr.head.startsWith(msg.head))
    return `pull request #${pr.number} is at ${pr.head.slice(0, 12)} now, not at ${msg.head.slice(0, 12)}: ${msg.requestedBy ? 'review the new head and ask again' : 'its newer head is previewed on its own event'}`;
  const untrusted = pr.fork
    ? 'comes from a fork'
    : (await github.canWrite(name, pr.author))
      ? undefined
      : `is by ${pr.author}, who has no write access`;
  if (untrusted && (msg.requestedBy === undefined || msg.head === undefined))
    return `pull request #${pr.number} ${untrusted}: ${ASK}`;
  return undefined;
}

/**
 * A pull request's preview on trusted configuration: the targets, clusters, gates, sources and
 * render settings are those of tidegate.yaml at the head of the tracked branch; only the manifest
 * files come from the pull request's head. Each target that follows the branch is rendered from
 * the head, dry-run server-side against the live cluster, and published as a check run and one
 * comment updated in place (values only of objects the target manages, never Secret data). Pull
 * requests from forks or from authors without write access are previewed only when a writer asks
 * (`/tidegate preview`). Nothing is applied.
 */
export async function previewPullRequest(
  ctx: EngineContext,
  msg: PreviewMessage,
  signal?: AbortSignal,
): Promise<PreviewOutcome> {
  const github = ctx.github?.(msg.repo);
  if (!github) throw new TidegateError('GitHubMissing', `${msg.repo} has no GitHub API access to publish a preview`);
  const name = repoName(msg.repo);
  const pr = await github.pullRequest(name, msg.pullRequest);
  const branch = trackedBranch(ctx, msg.repo);
  const refused = await refusal(github, name, pr, branch, msg);
  if (refused) {
    ctx.logger?.info('pull request not previewed', { pullRequest: pr.number, reason: refused });
    return { targets: [], refused };
  }
  const { config } = await configAt(ctx, msg.repo, { branch });
  const head = { ref: pr.fork ? `refs/pull/${pr.number}/head` : `refs/heads/${pr.headBranch}`, sha: pr.head };
  const { dir } = await checkoutRevision(ctx.gitSource(msg.repo), head, ctx.settings.cacheDir);
  const names = new Set(
    affectedTargets(config.targets, { repo: msg.repo, ref: `refs/heads/${branch}`, paths: null }).map((t) => t.name),
  );
  const results = (
    await syncCheckout(ctx, {
      config,
      dir,
      revision: head,
      repo: msg.repo,
      dryRun: true,
      standsFor: `refs/heads/${branch}`,
      signal,
    })
  ).filter((r) => names.has(r.target));
  const { title, markdown, conclusion } = renderPreview(pr.number, results);
  // Check runs need a GitHub App installation token; the comment works with any token.
  const checkRun = await github
    .checkRun(name, { headSha: pr.head, name: 'tidegate/preview', conclusion, title, summary: markdown })
    .then(
      () => true,
      (err: unknown) => {
        ctx.logger?.warn('preview check run not created', { pullRequest: pr.number, error: errorMessage(err) });
        return false;
      },
    );
  const comment = await github.upsertComment(name, pr.number, PREVIEW_MARKER, markdown);
  return { targets: [...names], comment, checkRun };
}
