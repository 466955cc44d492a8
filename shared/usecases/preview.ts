import { repoName } from '../github/index.js';
import { errorMessage, TidegateError, type PreviewMessage } from '../model/index.js';
import { PREVIEW_MARKER, renderPreview } from '../report/index.js';
import { configAt } from './repo-config.js';
import type { EngineContext } from './context.js';
import { syncCheckout } from './sync-repo.js';
import { affectedTargets } from './affected.js';

export interface PreviewOutcome {
  targets: string[];
  comment: 'created' | 'updated';
  checkRun: boolean;
}

/**
 * A pull request's preview: the head is rendered for every target that follows the base branch,
 * dry-run server-side against the live cluster, and published as a check run and one comment that
 * is updated in place. Secret values are never shown. Nothing is applied.
 */
export async function previewPullRequest(
  ctx: EngineContext,
  msg: PreviewMessage,
  signal?: AbortSignal,
): Promise<PreviewOutcome> {
  const github = ctx.github?.(msg.repo);
  if (!github) throw new TidegateError('GitHubMissing', `${msg.repo} has no GitHub API access to publish a preview`);
  const { revision, dir, config } = await configAt(ctx, msg.repo, { ref: msg.headRef, sha: msg.head });
  const names = new Set(
    affectedTargets(config.targets, { repo: msg.repo, ref: `refs/heads/${msg.base}`, paths: null }).map((t) => t.name),
  );
  const results = (
    await syncCheckout(ctx, {
      config,
      dir,
      revision,
      repo: msg.repo,
      dryRun: true,
      standsFor: `refs/heads/${msg.base}`,
      signal,
    })
  ).filter((r) => names.has(r.target));
  const { title, markdown, conclusion } = renderPreview(msg.pullRequest, results);
  const name = repoName(msg.repo);
  // Check runs need a GitHub App installation token; the comment works with any token.
  const checkRun = await github
    .checkRun(name, { headSha: msg.head, name: 'tidegate/preview', conclusion, title, summary: markdown })
    .then(
      () => true,
      (err: unknown) => {
        ctx.logger?.warn('preview check run not created', { pullRequest: msg.pullRequest, error: errorMessage(err) });
        return false;
      },
    );
  const comment = await github.upsertComment(name, msg.pullRequest, PREVIEW_MARKER, markdown);
  return { targets: [...names], comment, checkRun };
}
