import {
  readTargetReloads,
  readTargetState,
  refuseOtherOwner,
  updateTargetReloads,
  type RegisteredHold,
  type TargetState,
} from '../state/index.js';
import { reloadWithPolicies } from '../sync/index.js';
import { RELOAD_REVISION_ANNOTATION, type ReloadReport } from '../reload/index.js';
import type { KubeClient } from '../cluster/index.js';
import type { GatePolicy, TargetSpec, TidegateConfig } from '../config/index.js';
import { repoName, type GitHub, type RepoName } from '../github/index.js';
import {
  RevisionError,
  TargetNotFoundError,
  TidegateError,
  isLocalRevision,
  isTidegateError,
  type Approval,
  type ApproveMessage,
  type QueueMessage,
  type Revision,
  type SyncResult,
} from '../model/index.js';
import { reloadPassOptions, type EngineContext } from './context.js';
import { changeOwnState } from './own-state.js';
import { CONFIG_FILE, configAt, trackedBranch } from './repo-config.js';
import type { Queue } from './queue.js';
import { chainMessage, dependencyChains, withDependants } from './affected.js';
import { syncRepo } from './sync-repo.js';
import { removeTarget, removedTargets } from './remove.js';
import { amongApprovers, judgeCommits } from './signoff.js';
import { rangeUpTo } from '../source/index.js';
import { targetInputs, trustedApprovers } from './gate.js';

/** Adds an approval to a target's state (one per person and revision), holding the target's lease; never to another repository's target. */
async function recordApproval(
  ctx: EngineContext,
  client: KubeClient,
  repo: string,
  target: string,
  approval: Approval,
  signal?: AbortSignal,
): Promise<void> {
  await changeOwnState(ctx, client, { repo, target, signal }, (state) => ({
    ...state,
    approvals: [...(state.approvals ?? []).filter((a) => !(a.sha === approval.sha && a.by === approval.by)), approval],
  }));
  ctx.logger?.info('approved', { target, revision: approval.sha, by: approval.by, via: approval.via });
}

/** A target as the head of the tracked branch declares it, or (removed from tidegate.yaml, not pruned yet) as its state on a cluster holds it. */
interface Approvable {
  name: string;
  cluster: string;
  spec?: TargetSpec | undefined;
  client: KubeClient;
  state: TargetState;
}

async function findTargets(
  ctx: EngineContext,
  repo: string,
  config: TidegateConfig,
  names: readonly string[] | undefined,
  signal?: AbortSignal,
): Promise<Approvable[]> {
  const out: Approvable[] = [];
  for (const spec of config.targets) {
    if (names && !names.includes(spec.name)) continue;
    const client = await ctx.connect(spec.cluster);
    out.push({
      name: spec.name,
      cluster: spec.cluster,
      spec,
      client,
      state: await readTargetState(client, spec.name, signal),
    });
  }
  for (const gone of await removedTargets(ctx, repo, config, signal)) {
    if (names && !names.includes(gone.target)) continue;
    const client = await ctx.connect(gone.cluster);
    out.push({ ...gone, name: gone.target, client, state: await readTargetState(client, gone.target, signal) });
  }
  return out;
}

/** The revision a target's change is judged from (its last signed-off revision), as the commits to leave out of its range. */
const excludedFor = (state: TargetState): string[] => {
  const base = state.signedOff?.revision ?? state.lastApplied;
  return base ? [base.sha] : (state.judgedFrom?.exclude ?? []);
};

/** The commits of a target's pending change (since its last signed-off revision, up to the head), with who made each. */
async function pendingChange(ctx: EngineContext, repo: string, t: Approvable, head: Revision, dir: string) {
  return judgeCommits(ctx, {
    url: repo,
    branch: trackedBranch(ctx, repo),
    candidate: head,
    exclude: excludedFor(t.state),
    first: t.state.signedOff || t.state.lastApplied ? undefined : t.state.judgedFrom?.first,
    inputs: [CONFIG_FILE, ...(t.spec ? targetInputs(t.spec, dir) : []), ...(t.state.signedOff?.inputs ?? [])],
  });
}

/**
 * The commit an approval names: a commit of the target's pending change (by its SHA or a prefix of
 * at least 7 characters, matching one commit), the head, or a revision in its history.
 */
function resolveNamed(
  named: string,
  commits: ReadonlyArray<{ sha: string }>,
  head: Revision,
  history: TargetState['history'],
): Revision {
  const prefix = named.toLowerCase();
  const candidates = new Set(
    // A working tree's revision (<sha>+worktree, <sha>+dirty) is no commit: an approval never names one.
    [head.sha, ...commits.map((c) => c.sha), ...history.map((h) => h.revision.sha)].filter(
      (sha) => sha.startsWith(prefix) && !isLocalRevision(sha),
    ),
  );
  if (named.length < 7 || candidates.size !== 1)
    throw new RevisionError(
      'RevisionUnknown',
      candidates.size > 1
        ? `revision ${named} names more than one commit; give more characters`
        : `revision ${named} is neither a commit of the pending change, the head of the branch, nor in the history (give at least 7 characters)`,
    );
  const [sha] = [...candidates] as [string];
  return { ref: head.ref, sha };
}

/** Targets held now (their last sync or removal was held): an approval may be what they wait for. */
const heldNow = (targets: readonly Approvable[]): Approvable[] =>
  targets.filter((t) => t.state.history.at(-1)?.outcome === 'held');

/**
 * `tidegate approve`: records a manual approval of a revision for a target (a commit of its pending
 * change, the head, or one in its history, by SHA or prefix) in the cluster, then syncs that
 * revision: the target and its dependants, and the targets held now (they may wait for its
 * sign-off); or, for a target that left tidegate.yaml, its removal. The command line is trusted as the cluster
 * credentials that run it. The target's result comes first.
 */
export async function approve(
  ctx: EngineContext,
  req: { repo: string; target: string; revision: string; by: string; via: 'cli' | 'comment' },
): Promise<[SyncResult, ...SyncResult[]]> {
  const { revision: head, dir, config } = await configAt(ctx, req.repo);
  const all = await findTargets(ctx, req.repo, config, undefined);
  const target = all.find((t) => t.name === req.target);
  if (!target) throw new TargetNotFoundError(req.target, CONFIG_FILE);
  const { commits } = await pendingChange(ctx, req.repo, target, head, dir);
  const known = resolveNamed(req.revision, commits, head, target.state.history);
  await recordApproval(ctx, target.client, req.repo, req.target, {
    sha: known.sha,
    by: req.by,
    at: (ctx.now?.() ?? new Date()).toISOString(),
    via: req.via,
  });
  const held = heldNow(all)
    .filter((t) => t.spec && t.name !== req.target)
    .map((t) => t.name);
  if (!target.spec) {
    // Targets waiting to take its objects over go first: its removal then prunes only what nobody took.
    const others = held.length ? await syncRepo(ctx, { repo: req.repo, targets: held, revision: head }) : [];
    const removed = await removeTarget(ctx, {
      repo: req.repo,
      cluster: target.cluster,
      target: target.name,
      revision: head,
    });
    if (!removed) throw new TargetNotFoundError(req.target, CONFIG_FILE);
    return [removed, ...others];
  }
  const results = await syncRepo(ctx, {
    repo: req.repo,
    targets: [req.target, ...held],
    withDependants: true,
    revision: known,
  });
  const result = results.find((r) => r.target === req.target);
  if (!result) throw new TargetNotFoundError(req.target, CONFIG_FILE);
  return [result, ...results.filter((r) => r !== result)];
}

/** The reloads of a target waiting for an approval, as the cluster's register lists them. */
async function heldReloads(t: Approvable, signal?: AbortSignal): Promise<RegisteredHold[]> {
  const register = await readTargetReloads(t.client, t.name, signal);
  return register.holds.filter((h) => h.target === t.name && h.kind === 'approval');
}

/**
 * Why a commenter may not release these held reloads: they made a commit of the repository
 * (wrote, committed, pushed it or opened its pull request) since the revision a held workload's
 * target had applied when it last rolled (tidegate.dev/reload-revision): any such commit can have
 * changed its sources from Git, through this target or another. Out-of-band changes have no
 * commits; a workload with no revision recorded is approved on the command line.
 */
async function commitsSinceLastRoll(
  ctx: EngineContext,
  repo: string,
  t: Approvable,
  held: readonly RegisteredHold[],
  head: Revision,
  commenter: string,
): Promise<string | undefined> {
  const since = new Set<string>();
  for (const h of held) {
    const live = await t.client.get(
      h.workload.group ? `${h.workload.group}/v1` : 'v1',
      h.workload.kind,
      h.workload.namespace,
      h.workload.name,
    );
    const revision = live?.metadata.annotations?.[RELOAD_REVISION_ANNOTATION];
    if (!revision)
      return `which revision ${h.workload.kind}/${h.workload.name} last rolled at is not recorded, so tidegate cannot tell who changed its sources since: approve it with \`tidegate approve ${t.name} --reload\` on the command line`;
    since.add(revision);
  }
  for (const from of since) {
    const { commits, range } = await judgeCommits(ctx, {
      url: repo,
      branch: trackedBranch(ctx, repo),
      candidate: head,
      exclude: [from],
      inputs: ['.'],
    });
    // Commits past the limit of one range, or a recorded revision the branch does not lead from, are not all seen.
    if (range.truncated || !range.forward)
      return `the commits since the held workloads last rolled (${from.slice(0, 12)}) are more than tidegate reads, or not on the branch: approve the reload with \`tidegate approve ${t.name} --reload\` on the command line`;
    const unknown = commits.find((c) => c.pusherUnknown);
    if (unknown)
      return `who pushed ${unknown.sha.slice(0, 12)} (by ${unknown.by}) is past the repository activity tidegate reads: approve the reload with \`tidegate approve ${t.name} --reload\` on the command line`;
    const own = commits.find((c) => c.involved.includes(commenter));
    if (own)
      return `${commenter} made ${own.sha.slice(0, 12)} (by ${own.by}) since the held workloads last rolled: nobody approves a reload their own commits can have caused`;
  }
  return undefined;
}

/**
 * Records approvals of exactly the reloads of a target that wait for one now (each names its
 * workload and its changed sources' hashes: a later change is another reload), then runs the
 * reload pass over their namespaces, which rolls them (a closed reload window still holds them).
 * Only a target of this repository's tidegate.yaml, on its cluster, owned by this repository.
 */
async function releaseReloads(
  ctx: EngineContext,
  t: Approvable,
  req: { repo: string; by: string; via: 'cli' | 'comment'; held?: RegisteredHold[] | undefined },
  signal?: AbortSignal,
): Promise<{ approved: RegisteredHold[]; report?: ReloadReport }> {
  refuseOtherOwner(t.state, req.repo, t.name);
  // Exactly the holds a comment's approver was checked against, when it was.
  const held = req.held ?? (await heldReloads(t, signal));
  if (held.length === 0) return { approved: [] };
  const at = (ctx.now?.() ?? new Date()).toISOString();
  await updateTargetReloads(
    t.client,
    t.name,
    (register) => ({
      ...register,
      approvals: [
        ...register.approvals.filter((a) => !held.some((h) => a.target === t.name && a.digest === h.digest)),
        ...held.map((h) => ({ target: t.name, digest: h.digest, workload: h.workload, by: req.by, at, via: req.via })),
      ],
    }),
    signal,
  );
  ctx.logger?.info('reloads approved', { target: t.name, reloads: held.length, by: req.by, via: req.via });
  // Released now: no debounce (what was held had settled), only their namespaces.
  const { report } = await reloadWithPolicies(t.client, {
    ...reloadPassOptions(ctx),
    debounceMs: undefined,
    namespaces: [...new Set(held.map((h) => h.workload.namespace))],
    signal,
  });
  return { approved: held, report };
}

/**
 * `tidegate approve <target> --reload`: approves the reloads the target's reload.approve holds on
 * its cluster, and rolls them. The command line is trusted as the cluster credentials that run it.
 */
export async function approveReloads(
  ctx: EngineContext,
  req: { repo: string; target: string; by: string },
): Promise<{ approved: RegisteredHold[]; report?: ReloadReport }> {
  const { config } = await configAt(ctx, req.repo);
  const [target] = await findTargets(ctx, req.repo, config, [req.target]);
  if (!target?.spec) throw new TargetNotFoundError(req.target, CONFIG_FILE);
  return releaseReloads(ctx, target, { repo: req.repo, by: req.by, via: 'cli' });
}

/** `/tidegate approve reload [target …]`: per target (default: those with reloads held for approval), where the commenter may approve it. */
async function approveReloadsFromComment(
  ctx: EngineContext,
  github: GitHub,
  msg: ApproveMessage,
  signal?: AbortSignal,
): Promise<CommentApproval> {
  const { config, revision: head } = await configAt(ctx, msg.repo);
  const all = (await findTargets(ctx, msg.repo, config, msg.targets.length ? msg.targets : undefined, signal)).filter(
    (t) => t.spec,
  );
  const out: CommentApproval = {
    approved: [],
    refused: msg.targets.filter((t) => !all.some((a) => a.name === t)).map((t) => `${t}: no such target`),
  };
  for (const t of all) {
    const held = await heldReloads(t, signal);
    if (!msg.targets.length && held.length === 0) continue;
    const why =
      (await refusal(github, repoName(msg.repo), t.spec, trustedApprovers(ctx, t.cluster, t.state), msg.commenter)) ??
      (await commitsSinceLastRoll(ctx, msg.repo, t, held, head, msg.commenter));
    if (why) {
      out.refused.push(`${t.name}: ${why}`);
      continue;
    }
    try {
      const req = { repo: msg.repo, by: msg.commenter, via: 'comment' as const, held };
      const { approved } = await releaseReloads(ctx, t, req, signal);
      if (approved.length) out.approved.push(t.name);
      else out.refused.push(`${t.name}: no reload of it waits for an approval`);
    } catch (err) {
      if (!isTidegateError(err, 'TargetOwnedElsewhere')) throw err;
      out.refused.push(`${t.name}: ${err.message}`);
    }
  }
  return out;
}

/** Whether a commenter may approve a target at all (approvers of a source the change cannot edit, else writers); why not. */
async function refusal(
  github: GitHub,
  repo: RepoName,
  spec: TargetSpec | undefined,
  trusted: GatePolicy['approvers'],
  user: string,
): Promise<string | undefined> {
  const allowed = trusted
    ? await amongApprovers(github, trusted, user)
    : (await github.canWrite(repo, user)) &&
      (!spec?.gate.approvers || (await amongApprovers(github, spec.gate.approvers, user)));
  return allowed ? undefined : `${user} may not approve it`;
}

export interface CommentApproval {
  approved: string[];
  refused: string[];
}

/** The revision a comment approves: the one it names, or the merge commit of the merged pull request it is on. */
async function namedRevision(
  github: GitHub,
  name: RepoName,
  msg: ApproveMessage,
): Promise<string | { refused: string }> {
  if (msg.revision) return msg.revision;
  const pr = await github.pullRequest(name, msg.pullRequest);
  if (pr.mergedAt && pr.mergeCommit) return pr.mergeCommit;
  return {
    refused: `pull request #${pr.number} is not merged: name the revision you approve (\`/tidegate approve <sha> [target …]\`), as a hold lists it`,
  };
}

/**
 * A `/tidegate approve [<sha>] [target …]` comment: for each named target (default: those with a
 * manual gate, and those held now), the named revision (default: the merge commit of the merged pull
 * request commented on) is approved where the commenter may approve it and made none of the
 * commits the approval would release (the target's change since its last signed-off revision, up
 * to that revision); a sync (or a removal) of each is queued. A refused comment records nothing for
 * that target, and says which commit the commenter made.
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
  if (msg.reload) return approveReloadsFromComment(ctx, github, msg, signal);
  const name = repoName(msg.repo);
  const named = await namedRevision(github, name, msg);
  if (typeof named !== 'string') return { approved: [], refused: [named.refused] };
  const { revision: head, dir, config } = await configAt(ctx, msg.repo);
  const all = await findTargets(ctx, msg.repo, config, msg.targets.length ? msg.targets : undefined, signal);
  const chosen = msg.targets.length
    ? all
    : all.filter((t) => t.spec?.gate.manual || ctx.floor?.(t.cluster)?.manual || heldNow([t]).length);
  const out: CommentApproval = {
    approved: [],
    refused: msg.targets.filter((t) => !all.some((a) => a.name === t)).map((t) => `${t}: no such target`),
  };
  const approved: Approvable[] = [];
  for (const t of chosen) {
    const why = await commentRefusal(ctx, github, name, msg, t, named, head, dir);
    if (typeof why === 'string') {
      out.refused.push(`${t.name}: ${why}`);
      continue;
    }
    try {
      await recordApproval(
        ctx,
        t.client,
        msg.repo,
        t.name,
        { sha: why.sha, by: msg.commenter, at: (ctx.now?.() ?? new Date()).toISOString(), via: 'comment' },
        signal,
      );
    } catch (err) {
      if (!isTidegateError(err, 'TargetOwnedElsewhere')) throw err;
      out.refused.push(`${t.name}: ${err.message}`);
      continue;
    }
    out.approved.push(t.name);
    approved.push(t);
  }
  if (approved.length) await queue.send(afterApproval(msg, config, approved, all, head));
  return out;
}

/** Why a commenter's approval of a target is refused, or the revision it approves. */
async function commentRefusal(
  ctx: EngineContext,
  github: GitHub,
  name: RepoName,
  msg: ApproveMessage,
  t: Approvable,
  named: string,
  head: Revision,
  dir: string,
): Promise<string | Revision> {
  const rights = await refusal(github, name, t.spec, trustedApprovers(ctx, t.cluster, t.state), msg.commenter);
  if (rights) return rights;
  const { commits, range } = await pendingChange(ctx, msg.repo, t, head, dir);
  let revision: Revision;
  try {
    revision = resolveNamed(named, commits, head, t.state.history);
  } catch (err) {
    if (err instanceof RevisionError) return err.message;
    throw err;
  }
  const released = rangeUpTo(range, revision.sha);
  const unknown = commits.find((c) => c.relevant && released.has(c.sha) && c.pusherUnknown);
  if (unknown)
    return `who pushed ${unknown.sha.slice(0, 12)} (by ${unknown.by}) is past the repository activity tidegate reads, so it cannot tell that ${msg.commenter} did not: approve it with \`tidegate approve\` on the command line`;
  const own = commits.find((c) => c.relevant && released.has(c.sha) && c.involved.includes(msg.commenter));
  if (own)
    return `${msg.commenter} made ${own.sha.slice(0, 12)} (wrote, committed, pushed it or opened its pull request; by ${own.by}), part of the change this approval would release: nobody approves their own change`;
  return revision;
}

/**
 * What an approval sets going: the approved targets and their dependants (held back by them), and
 * the targets held now (one may wait for an approved target's sign-off), chained as a push chains
 * them; a removal for an approved target that left tidegate.yaml. A bucket of the comment's own:
 * the held sync of this revision already used the plain deduplication id.
 */
function afterApproval(
  msg: ApproveMessage,
  config: TidegateConfig,
  approved: readonly Approvable[],
  all: readonly Approvable[],
  head: Revision,
): QueueMessage[] {
  const declared = [...approved, ...heldNow(all)].filter((t) => t.spec).map((t) => t.name);
  const syncs = dependencyChains(withDependants(config.targets, [...new Set(declared)]), config.targets).map((chain) =>
    chainMessage(chain, {
      repo: msg.repo,
      revision: head,
      reason: `approved by ${msg.commenter}`,
      bucket: msg.comment,
    }),
  );
  // A removal waits while targets are synced that may take its objects over: the next poll removes it.
  const removals: QueueMessage[] = syncs.length
    ? []
    : approved
        .filter((t) => !t.spec)
        .map((t) => ({
          type: 'remove',
          repo: msg.repo,
          cluster: t.cluster,
          target: t.name,
          revision: head,
          bucket: msg.comment,
        }));
  return [...syncs, ...removals];
}
