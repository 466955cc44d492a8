import { readTargetState, refuseOtherOwner, updateTargetState, withLease } from '../state/index.js';
import type { KubeClient } from '../cluster/index.js';
import type { GatePolicy, TargetSpec } from '../config/index.js';
import { repoName, type GitHub, type RepoName } from '../github/index.js';
import {
  RevisionError,
  TargetNotFoundError,
  TidegateError,
  isTidegateError,
  type Approval,
  type ApproveMessage,
  type SyncResult,
} from '../model/index.js';
import { leaseOf, type EngineContext } from './context.js';
import { configAt, headTarget } from './repo-config.js';
import type { Queue } from './queue.js';
import { chainMessage, dependencyChains, withDependants } from './affected.js';
import { syncRepo } from './sync-repo.js';

/** Adds a manual approval to a target's state (one per person and revision), holding the target's lease; never to another repository's target. */
async function recordApproval(
  ctx: EngineContext,
  client: KubeClient,
  repo: string,
  target: string,
  approval: Approval,
  signal?: AbortSignal,
): Promise<void> {
  await withLease(client, target, { ...leaseOf(ctx), logger: ctx.logger, signal }, (leased) =>
    updateTargetState(
      client,
      target,
      (state) => {
        refuseOtherOwner(state, repo, target);
        return {
          ...state,
          approvals: [
            ...(state.approvals ?? []).filter((a) => !(a.sha === approval.sha && a.by === approval.by)),
            approval,
          ],
        };
      },
      leased,
    ),
  );
  ctx.logger?.info('approved', { target, revision: approval.sha, by: approval.by, via: approval.via });
}

/**
 * `tidegate approve`: records a manual approval of a target's revision (the branch head, or a
 * revision in its history, by SHA or prefix) in the cluster, then syncs that revision: the target
 * first, then the targets that depend on it (which its hold kept back). The target's result comes first.
 */
export async function approve(
  ctx: EngineContext,
  req: { repo: string; target: string; revision: string; by: string; via: 'cli' | 'comment' },
): Promise<[SyncResult, ...SyncResult[]]> {
  const { head, client } = await headTarget(ctx, req.repo, req.target);
  const state = await readTargetState(client, req.target);
  const known = [head, ...[...state.history].reverse().map((h) => h.revision)].find((r) =>
    r.sha.startsWith(req.revision.toLowerCase()),
  );
  if (!known || req.revision.length < 7)
    throw new RevisionError(
      'RevisionUnknown',
      `revision ${req.revision} is neither the head of the branch nor in the history of ${req.target} (give at least 7 characters)`,
    );
  await recordApproval(ctx, client, req.repo, req.target, {
    sha: known.sha,
    by: req.by,
    at: (ctx.now?.() ?? new Date()).toISOString(),
    via: req.via,
  });
  const [result, ...dependants] = await syncRepo(ctx, {
    repo: req.repo,
    target: req.target,
    withDependants: true,
    revision: known,
  });
  if (result?.target !== req.target) throw new TargetNotFoundError(req.target, 'tidegate.yaml');
  return [result, ...dependants];
}

/**
 * Whether a commenter may approve a target. The approvers are those of a source the revision cannot
 * change: the cluster's floor, else tidegate.yaml as last applied; with neither, anyone with write
 * access who is also listed by the revision's tidegate.yaml when it names approvers (it can narrow,
 * never widen). The pull request's author never approves their own change.
 */
async function refusal(
  github: GitHub,
  repo: RepoName,
  spec: TargetSpec,
  trusted: GatePolicy['approvers'],
  pr: { author: string; number: number },
  user: string,
): Promise<string | undefined> {
  if (user === pr.author) return `${user} opened pull request #${pr.number} and may not approve their own change`;
  const may = async (approvers: NonNullable<GatePolicy['approvers']>) => {
    if (approvers.users.includes(user)) return true;
    for (const team of approvers.teams) {
      const [org = '', slug = ''] = team.split('/');
      if (await github.inTeam(org, slug, user)) return true;
    }
    return false;
  };
  const allowed = trusted
    ? await may(trusted)
    : (await github.canWrite(repo, user)) && (!spec.gate.approvers || (await may(spec.gate.approvers)));
  return allowed ? undefined : `${user} may not approve it`;
}

/** The approvers no revision can change: the floor's, else those of tidegate.yaml as last applied. */
async function trustedApprovers(ctx: EngineContext, client: KubeClient, spec: TargetSpec) {
  const floor = ctx.floor?.(spec.cluster)?.approvers;
  if (floor) return floor;
  const state = await readTargetState(client, spec.name);
  return state.lastApplied ? state.gate?.approvers : undefined;
}

export interface CommentApproval {
  approved: string[];
  refused: string[];
}

/**
 * A `/tidegate approve [target …]` comment on a merged pull request: the merge commit is approved
 * for the named targets (default: those with a manual gate) where the commenter may approve, and a
 * sync of each is queued. Anyone else's comment is refused, and nothing is recorded.
 */
export async function approveFromComment(
  ctx: EngineContext,
  msg: ApproveMessage,
  queue: Queue,
  signal?: AbortSignal,
): Promise<CommentApproval> {
  const github = ctx.github?.(msg.repo);
  if (!github)
    throw new TidegateError(
      'GitHubMissing',
      `${msg.repo} has no GitHub API access to check a /tidegate approve comment`,
    );
  const name = repoName(msg.repo);
  const pr = await github.pullRequest(name, msg.pullRequest);
  if (!pr.mergedAt || !pr.mergeCommit)
    return {
      approved: [],
      refused: [`pull request #${pr.number} is not merged; approve it once merged (its merge commit is what applies)`],
    };
  const revision = { ref: `refs/heads/${pr.base}`, sha: pr.mergeCommit };
  const { config } = await configAt(ctx, msg.repo, revision);
  const specs = config.targets.filter((t) =>
    msg.targets.length ? msg.targets.includes(t.name) : t.gate.manual || ctx.floor?.(t.cluster)?.manual,
  );
  const out: CommentApproval = {
    approved: [],
    refused: msg.targets.filter((t) => !specs.some((s) => s.name === t)).map((t) => `${t}: no such target`),
  };
  for (const spec of specs) {
    const client = await ctx.connect(spec.cluster);
    const refused = await refusal(github, name, spec, await trustedApprovers(ctx, client, spec), pr, msg.commenter);
    if (refused) {
      out.refused.push(`${spec.name}: ${refused}`);
      continue;
    }
    try {
      await recordApproval(
        ctx,
        client,
        msg.repo,
        spec.name,
        { sha: revision.sha, by: msg.commenter, at: (ctx.now?.() ?? new Date()).toISOString(), via: 'comment' },
        signal,
      );
    } catch (err) {
      if (!isTidegateError(err, 'TargetOwnedElsewhere')) throw err;
      out.refused.push(`${spec.name}: ${err.message}`);
      continue;
    }
    out.approved.push(spec.name);
  }
  // The approved targets and their dependants (held back by them), chained as a push chains them.
  // A bucket of its own: the held sync of this revision already used the plain deduplication id.
  const syncs = dependencyChains(withDependants(config.targets, out.approved), config.targets).map((chain) =>
    chainMessage(chain, { repo: msg.repo, revision, reason: `approved by ${msg.commenter}`, bucket: msg.comment }),
  );
  await queue.send(syncs);
  return out;
}
