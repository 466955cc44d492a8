import { repoName, type GitHub, type MergedPullRequest, type RepoName } from '../github/index.js';
import { orderTargets, type TargetSpec } from '../config/index.js';
import {
  errorMessage,
  isTidegateError,
  redactUrl,
  TidegateError,
  type PreviewMessage,
  type Revision,
} from '../model/index.js';
import {
  PREVIEW_MARKER,
  renderEnvironments,
  renderPreview,
  withEnvironments,
  type EnvironmentReport,
} from '../report/index.js';
import { checkoutRevision } from '../source/index.js';
import { configAt, trackedBranch } from './repo-config.js';
import type { EngineContext } from './context.js';
import { syncCheckout } from './sync-repo.js';
import { affectedTargets } from './affected.js';
import {
  deployEnvironment,
  leaveLine,
  previewEnvironment,
  stopPullRequestPreviews,
  sweepPreviews,
  type SweepReport,
  type TornDown,
} from './preview-env.js';
import type { PreviewEntry } from '../state/index.js';
import type { Queue } from './queue.js';
import { notify } from './notify.js';
import type { NotifyEvent } from '../notify/index.js';

export interface PreviewOutcome {
  targets: string[];
  comment?: 'created' | 'updated';
  checkRun?: boolean;
  /** Why the pull request was not previewed (nothing was rendered, dry-run, deployed or published). */
  refused?: string;
  /** The preview environments of opted-in targets (deployed, waiting, refused, failed, torn down). */
  environments?: EnvironmentReport[];
}

const ASK =
  'it is previewed after a writer reviews its head and comments /tidegate preview <the full 40-character SHA of that head>, again after each push';

/** A writer's request names one head beyond doubt: a prefix could be shared by a head made to collide with it. */
const FULL_SHA = /^[0-9a-f]{40}$/;

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
  if (untrusted && (msg.requestedBy === undefined || !FULL_SHA.test(msg.head ?? '')))
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
  queue: Queue,
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
    // A woken preview that may not run leaves the line: it would take every freed place again.
    if (msg.bucket !== undefined)
      await leaveLine(ctx, {
        repo: msg.repo,
        pullRequest: pr.number,
        clusters: await clustersOf(ctx, msg.repo),
        queue,
        signal,
      });
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
  const environments = await deployEnvironments(ctx, {
    targets: orderTargets(config.targets).filter((t) => names.has(t.name) && t.preview?.enabled),
    repo: msg.repo,
    pullRequest: pr.number,
    dir,
    head,
    requestedBy: msg.requestedBy,
    signal,
  });
  if (environments.length) await publishDeployment(ctx, github, name, pr.number, head.sha, environments);
  await notify(
    ctx,
    environments.map((e) => previewEvent(msg.repo, pr.number, head.sha, e, ctx.now?.())),
    signal,
  );
  const preview = renderPreview(pr.number, results);
  const { title, conclusion } = preview;
  const markdown = environments.length
    ? withEnvironments(preview.markdown, renderEnvironments(environments))
    : preview.markdown;
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
  return { targets: [...names], comment, checkRun, ...(environments.length ? { environments } : {}) };
}

/** Each opted-in target's environment, in dependency order; a permanent problem of one is its report, the others go on. */
async function deployEnvironments(
  ctx: EngineContext,
  req: {
    targets: TargetSpec[];
    repo: string;
    pullRequest: number;
    dir: string;
    head: Revision;
    requestedBy: string | undefined;
    signal: AbortSignal | undefined;
  },
): Promise<EnvironmentReport[]> {
  const reports: EnvironmentReport[] = [];
  for (const spec of req.targets) {
    try {
      reports.push(await deployEnvironment(ctx, { ...req, spec }));
    } catch (err) {
      if (!isTidegateError(err) || err.transient || req.signal?.aborted) throw err;
      reports.push({ target: spec.name, cluster: spec.cluster, status: 'failed', reason: err.message });
    }
  }
  return reports;
}

/** The GitHub deployment of the pull request's head to environment preview/pr-<n>, with a status saying how its previews went. */
async function publishDeployment(
  ctx: EngineContext,
  github: GitHub,
  name: RepoName,
  pullRequest: number,
  sha: string,
  environments: readonly EnvironmentReport[],
): Promise<void> {
  const deployed = environments.filter((e) => e.status === 'deployed' || e.status === 'failed');
  if (!deployed.length) return;
  const state = deployed.some((e) => e.status === 'failed')
    ? 'failure'
    : deployed.some((e) => e.result?.outcome === 'progressing')
      ? 'in_progress'
      : 'success';
  await github
    .deploymentStatus(name, {
      sha,
      environment: previewEnvironment(pullRequest),
      state,
      description: `preview in ${deployed.map((e) => e.namespace).join(', ')}`,
      url: deployed.find((e) => e.url)?.url,
      transient: true,
    })
    .catch((err: unknown) =>
      ctx.logger?.warn('preview deployment not reported', { pullRequest, error: errorMessage(err) }),
    );
}

/** Why a pull request's previews may not be stopped by this message, or undefined when they may. */
async function stopRefusal(
  github: GitHub | undefined,
  name: RepoName,
  msg: PreviewMessage,
): Promise<{ refused?: string; pr?: MergedPullRequest }> {
  if (!github)
    return msg.stop === 'closed' ? {} : { refused: `${msg.repo} has no GitHub API access to check who asked` };
  const pr = await github.pullRequest(name, msg.pullRequest);
  if (msg.stop === 'closed' && pr.open) return { pr, refused: `pull request #${pr.number} was reopened` };
  if (msg.stop === 'command' && msg.requestedBy !== pr.author && !(await github.canWrite(name, msg.requestedBy ?? '')))
    return {
      pr,
      refused: `${msg.requestedBy ?? 'someone'} may not stop the previews of #${pr.number}: only its author and users with write access may`,
    };
  return { pr };
}

/**
 * Tears down a pull request's preview environments: on its close or merge, or on
 * `/tidegate preview stop` by its author or a writer. Every cluster the shell knows and the tracked
 * branch's tidegate.yaml names is looked at; the comment's environment section and the GitHub
 * deployment (inactive) say so.
 */
export async function stopPreview(
  ctx: EngineContext,
  msg: PreviewMessage,
  queue: Queue,
  signal?: AbortSignal,
): Promise<PreviewOutcome> {
  const github = ctx.github?.(msg.repo);
  const name = repoName(msg.repo);
  const { refused } = await stopRefusal(github, name, msg);
  if (refused) {
    ctx.logger?.info('previews not stopped', { pullRequest: msg.pullRequest, reason: refused });
    return { targets: [], refused };
  }
  const clusters = await clustersOf(ctx, msg.repo);
  const done = await stopPullRequestPreviews(ctx, {
    repo: msg.repo,
    pullRequest: msg.pullRequest,
    clusters,
    queue,
    signal,
  });
  const why = msg.stop === 'command' ? `/tidegate preview stop by ${msg.requestedBy ?? ''}` : 'the pull request closed';
  const environments = await reportTeardown(ctx, msg.repo, msg.pullRequest, done, why);
  return { targets: done.map((d) => d.entry.target), environments };
}

/** Every cluster a repository's previews may run on: those the shell knows and those the tracked branch's tidegate.yaml names. */
async function clustersOf(ctx: EngineContext, repo: string): Promise<string[]> {
  const declared = await configAt(ctx, repo).then(
    ({ config }) => config.targets.map((t) => t.cluster),
    () => [] as string[],
  );
  return [...new Set([...(ctx.clusters?.() ?? []), ...declared])];
}

/** Says on GitHub that previews of a pull request were torn down: its comment's environment section, its deployment inactive. */
async function reportTeardown(
  ctx: EngineContext,
  repo: string,
  pullRequest: number,
  done: readonly TornDown[],
  why: string,
): Promise<EnvironmentReport[]> {
  const at = (ctx.now?.() ?? new Date()).toISOString();
  const environments: EnvironmentReport[] = done.map(({ cluster, entry }) => ({
    target: entry.target,
    cluster,
    namespace: entry.namespace,
    status: 'torn-down',
    reason: `${why}, at ${at}`,
  }));
  const github = ctx.github?.(repo);
  if (!github || !environments.length) return environments;
  const name = repoName(repo);
  try {
    for (const sha of new Set(done.map((d) => d.entry.head)))
      await github.deploymentStatus(name, {
        sha,
        environment: previewEnvironment(pullRequest),
        state: 'inactive',
        description: 'preview torn down',
        transient: true,
      });
    await github.upsertComment(name, pullRequest, PREVIEW_MARKER, (body) =>
      withEnvironments(body, renderEnvironments(environments)),
    );
  } catch (err) {
    // The environments are gone whatever GitHub says; the next preview of the pull request writes its comment again.
    ctx.logger?.warn('preview teardown not reported on GitHub', { pullRequest, error: errorMessage(err) });
  }
  return environments;
}

/** The scheduled pass over a cluster's previews (see sweepPreviews), each teardown reported on its pull request. */
export async function sweepPreviewsOf(
  ctx: EngineContext,
  cluster: string,
  queue: Queue,
  signal?: AbortSignal,
): Promise<SweepReport> {
  const report = await sweepPreviews(ctx, cluster, queue, signal);
  const reasons: Array<[PreviewEntry[], string]> = [
    [report.expired, 'no push within its TTL'],
    [report.closed, 'the pull request is closed'],
  ];
  for (const [entries, why] of reasons) {
    const byPullRequest = new Map<string, TornDown[]>();
    for (const entry of entries) {
      const key = `${entry.repo}#${entry.pullRequest}`;
      byPullRequest.set(key, [...(byPullRequest.get(key) ?? []), { cluster, entry }]);
    }
    for (const done of byPullRequest.values()) {
      const { repo, pullRequest } = done[0]?.entry ?? { repo: '', pullRequest: 0 };
      await reportTeardown(ctx, repo, pullRequest, done, why);
    }
  }
  return report;
}

/** The notification of a preview environment that applied a new head (a re-run of the same head is no news). */
function previewEvent(
  repo: string,
  pullRequest: number,
  sha: string,
  e: EnvironmentReport,
  at: Date = new Date(),
): NotifyEvent | undefined {
  if (e.status !== 'deployed' || e.result?.outcome !== 'applied') return undefined;
  return {
    kind: 'preview-published',
    repo: redactUrl(repo),
    target: e.target,
    cluster: e.cluster,
    sha,
    title: `preview of #${pullRequest} published: ${e.target} in ${e.namespace ?? ''}`,
    text: e.url ?? '',
    fields: [
      ['pull request', `#${pullRequest}`],
      ['namespace', e.namespace ?? ''],
      ['health', e.result.health.status],
      ...(e.expiresAt ? ([['torn down at', e.expiresAt]] as Array<[string, string]>) : []),
    ],
    url: e.url,
    at: at.toISOString(),
  };
}
