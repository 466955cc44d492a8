import { repoName, type GitHub, type MergedPullRequest, type RefUpdate, type RepoName } from '../github/index.js';
import type { JudgedCommit } from '../gates/index.js';
import type { Revision } from '../model/index.js';
import { commitRange, rangeUpTo, type CommitRange, type RangeCommit } from '../source/index.js';
import { under } from './affected.js';
import type { EngineContext } from './context.js';

/** The commits of one change: those a candidate brings over the excluded ones, and what matters to the target. */
export interface RangeRequest {
  /** The repository the commits are in, and the branch it tracks (pull requests merged into it, pushes to it). */
  url: string;
  branch: string;
  candidate: Revision;
  exclude: readonly string[];
  /** A commit judged whatever it changed (the first candidate of a target nothing was signed off of). */
  first?: string | undefined;
  /** Repository paths the target renders (and tidegate.yaml): a commit changing one of them is part of the change. */
  inputs: readonly string[];
}

export interface JudgedRange {
  range: CommitRange;
  commits: JudgedCommit[];
}

/** GitHub's pull request that brought a commit into the branch: merged into it, and holding it (or made from it by GitHub's merge). */
interface Brought {
  pr: MergedPullRequest;
  /** The commit is one of the pull request's own commits (index), or a commit GitHub's merge made from it (undefined). */
  index: number | undefined;
}

/** What is read once per pull request while judging a range: who may sign off each of its commits. */
interface PullRequestFacts {
  /** Users whose latest review approves a head at or after the commit at index i (all: the head as merged). */
  approversFrom: (index: number | undefined) => string[];
  notCounted: string[];
  commits: string[];
}

/** Everyone who wrote, committed or pushed the commits of a pull request, and the pull request's author. */
async function involvedIn(
  github: GitHub,
  name: RepoName,
  pr: MergedPullRequest,
  commits: Awaited<ReturnType<GitHub['pullRequestCommits']>>,
) {
  const people = new Set([pr.author]);
  for (const c of commits) {
    if (c.authorLogin) people.add(c.authorLogin);
    if (c.committerLogin && !c.madeByGitHub) people.add(c.committerLogin);
  }
  if (!pr.fork)
    for (const u of await github.refUpdates(name, pr.headBranch))
      if (u.type !== 'pr_merge' && u.actor) people.add(u.actor);
  return people;
}

async function pullRequestFacts(github: GitHub, name: RepoName, pr: MergedPullRequest): Promise<PullRequestFacts> {
  const commits = await github.pullRequestCommits(name, pr.number);
  const order = commits.map((c) => c.sha);
  const involved = await involvedIn(github, name, pr, commits);
  const latest = new Map<string, { state: string; commit: string }>();
  for (const r of await github.reviews(name, pr.number)) if (r.state !== 'COMMENTED') latest.set(r.user, r);
  const reviewed = new Map<string, number>(); // approver → index of the head they approved
  const notCounted: string[] = [];
  for (const [user, review] of latest) {
    if (review.state !== 'APPROVED') continue;
    const at = order.indexOf(review.commit);
    if (user === pr.author) notCounted.push(`${user} (opened it)`);
    else if (involved.has(user)) notCounted.push(`${user} (wrote, committed or pushed a commit of it)`);
    else if (at < 0) notCounted.push(`${user} (approved a head that is not the pull request's)`);
    else if (!(await github.canWrite(name, user))) notCounted.push(`${user} (no write access)`);
    else reviewed.set(user, at);
  }
  const head = order.indexOf(pr.head);
  return {
    commits: order,
    notCounted,
    approversFrom: (index) =>
      [...reviewed].filter(([, at]) => at >= (index ?? head) && head >= 0).map(([user]) => user),
  };
}

/** Which of the range's commits each update of the branch brought, and who pushed it (merges GitHub made are not pushes). */
function pushersOf(range: CommitRange, updates: readonly RefUpdate[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const u of updates) {
    if (u.type === 'pr_merge' || !u.actor) continue;
    const before = rangeUpTo(range, u.before);
    for (const sha of rangeUpTo(range, u.after))
      if (!before.has(sha)) out.set(sha, new Set([...(out.get(sha) ?? []), u.actor]));
  }
  return out;
}

const identity = (p: { name: string; email: string }): string => `${p.name} <${p.email}>`;

/** A commit judged without GitHub: who git says made it; nothing can show it was reviewed. */
function withoutGitHub(c: RangeCommit, relevant: boolean): JudgedCommit {
  return {
    sha: c.sha,
    by: c.author.name,
    involved: [...new Set([identity(c.author), identity(c.committer)])],
    relevant,
    unreviewed: 'no GitHub API access to find its review',
  };
}

/**
 * The commits of a change, each with whether it matters to the target (it changes one of the
 * target's inputs), who made it (GitHub's users for its author and committer, whoever pushed it to
 * the branch) and who may sign it off through the merged pull request that brought it.
 */
export async function judgeCommits(ctx: EngineContext, req: RangeRequest): Promise<JudgedRange> {
  const range = await commitRange(ctx.gitSource(req.url), ctx.settings.cacheDir, req.candidate, req.exclude);
  const relevant = (c: RangeCommit) =>
    c.sha === req.first || c.paths === undefined || c.paths.some((p) => req.inputs.some((i) => under(p, i)));
  const github = ctx.github?.(req.url);
  if (!github) return { range, commits: range.commits.map((c) => withoutGitHub(c, relevant(c))) };
  const name = repoName(req.url);
  const needed = range.commits.filter(relevant);
  const pushers = needed.length ? pushersOf(range, await github.refUpdates(name, req.branch)) : new Map();
  const facts = new Map<number, Promise<PullRequestFacts>>();
  const factsOf = (pr: MergedPullRequest) => {
    if (!facts.has(pr.number)) facts.set(pr.number, pullRequestFacts(github, name, pr));
    return facts.get(pr.number) as Promise<PullRequestFacts>;
  };
  const commits: JudgedCommit[] = [];
  for (const c of range.commits) {
    if (!relevant(c)) {
      commits.push({ sha: c.sha, by: c.author.name, involved: [], relevant: false });
      continue;
    }
    const who = await github.commit(name, c.sha);
    const pushedBy = [...(pushers.get(c.sha) ?? [])];
    // A merge commit GitHub made is authored by whoever pressed the button: that is not making the change.
    const mergedByGitHub = who.madeByGitHub && c.parents.length > 1;
    const involved = new Set([...pushedBy, ...(who.authorLogin && !mergedByGitHub ? [who.authorLogin] : [])]);
    if (who.committerLogin && !who.madeByGitHub) involved.add(who.committerLogin);
    const author = who.authorLogin ?? c.author.name;
    const by = `${author}${pushedBy.some((p) => p !== author) ? ` (pushed by ${pushedBy.join(', ')})` : ''}`;
    const brought = await broughtBy(github, name, req.branch, c.sha, who.madeByGitHub, factsOf);
    if (!brought) {
      commits.push({
        sha: c.sha,
        by,
        involved: [...involved],
        relevant: true,
        unreviewed: `pushed straight to ${req.branch}, not through a merged pull request`,
      });
      continue;
    }
    const pr = await factsOf(brought.pr);
    involved.add(brought.pr.author);
    commits.push({
      sha: c.sha,
      by,
      involved: [...involved],
      relevant: true,
      pullRequest: {
        number: brought.pr.number,
        approvers: pr.approversFrom(brought.index).filter((u) => !involved.has(u)),
        notCounted: pr.notCounted,
      },
    });
  }
  return { range, commits };
}

/**
 * The merged pull request into the branch that brought a commit: one of its own commits, or a
 * commit GitHub made from it (its merge, squash or rebase). A merge commit GitHub did not make
 * (pushed by hand, so its content was never reviewed) is brought by none.
 */
async function broughtBy(
  github: GitHub,
  name: RepoName,
  branch: string,
  sha: string,
  madeByGitHub: boolean,
  factsOf: (pr: MergedPullRequest) => Promise<PullRequestFacts>,
): Promise<Brought | undefined> {
  const merged = (await github.pullRequestsOfCommit(name, sha)).filter((p) => p.mergedAt && p.base === branch);
  for (const pr of merged) {
    const index = (await factsOf(pr)).commits.indexOf(sha);
    if (index >= 0) return { pr, index };
    if (madeByGitHub) return { pr, index: undefined };
  }
  return undefined;
}
