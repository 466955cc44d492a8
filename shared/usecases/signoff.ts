import { repoName, type GitHub, type MergedPullRequest, type RefUpdate, type RepoName } from '../github/index.js';
import type { JudgedCommit } from '../gates/index.js';
import type { GatePolicy } from '../config/index.js';
import type { Revision } from '../model/index.js';
import { commitRange, rangeUpTo, type CommitRange, type RangeCommit } from '../source/index.js';
import { under } from './affected.js';
import { githubFor, sourceFor, type EngineContext } from './context.js';

/** Whether a user is among named approvers: listed by name, or an active member of a listed team (org/slug). */
export async function amongApprovers(
  github: GitHub,
  approvers: NonNullable<GatePolicy['approvers']>,
  user: string,
): Promise<boolean> {
  if (approvers.users.includes(user)) return true;
  for (const team of approvers.teams) {
    const [org = '', slug = ''] = team.split('/');
    if (await github.inTeam(org, slug, user)) return true;
  }
  return false;
}

/**
 * Reviews count only from named approvers, where a source the change cannot edit names them: the
 * approvers of each commit's pull request who are not among them move to "not counted".
 */
export async function onlyApprovers(
  github: GitHub | undefined,
  commits: readonly JudgedCommit[],
  approvers: GatePolicy['approvers'],
): Promise<JudgedCommit[]> {
  if (!github || !approvers) return [...commits];
  const may = new Map<string, Promise<boolean>>();
  const check = (u: string) => {
    if (!may.has(u)) may.set(u, amongApprovers(github, approvers, u));
    return may.get(u) as Promise<boolean>;
  };
  const out: JudgedCommit[] = [];
  for (const c of commits) {
    if (!c.pullRequest) {
      out.push(c);
      continue;
    }
    const kept: string[] = [];
    const dropped: string[] = [];
    for (const u of c.pullRequest.approvers) ((await check(u)) ? kept : dropped).push(u);
    out.push({
      ...c,
      pullRequest: {
        ...c.pullRequest,
        approvers: kept,
        notCounted: [...c.pullRequest.notCounted, ...dropped.map((u) => `${u} (not among the approvers)`)],
      },
    });
  }
  return out;
}

/** The commits of one change: those a candidate brings over the excluded ones, and what matters to the target. */
export interface RangeRequest {
  /** The repository the commits are in, and the branch it tracks (pull requests merged into it, pushes to it). */
  url: string;
  /** The tracked repository whose target this is: another URL is read without its credentials (sourceFor). */
  repo?: string | undefined;
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
  // Everyone who ever pushed to its branch (a fork's pushes are not in this repository's activity).
  if (pr.fork) return { people, known: true };
  const { updates, complete } = await github.refUpdates(name, pr.headBranch);
  for (const u of updates) if (u.type !== 'pr_merge' && u.actor) people.add(u.actor);
  return { people, known: complete };
}

async function pullRequestFacts(github: GitHub, name: RepoName, pr: MergedPullRequest): Promise<PullRequestFacts> {
  const commits = await github.pullRequestCommits(name, pr.number);
  const order = commits.map((c) => c.sha);
  const { people: involved, known } = await involvedIn(github, name, pr, commits);
  const latest = new Map<string, { state: string; commit: string }>();
  for (const r of await github.reviews(name, pr.number)) if (r.state !== 'COMMENTED') latest.set(r.user, r);
  const reviewed = new Map<string, number>(); // approver → index of the head they approved
  const notCounted: string[] = [];
  for (const [user, review] of latest) {
    if (review.state !== 'APPROVED') continue;
    const at = order.indexOf(review.commit);
    if (!known) notCounted.push(`${user} (who pushed to its branch is past the activity tidegate reads)`);
    else if (user === pr.author) notCounted.push(`${user} (opened it)`);
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

/** Who pushed each commit of a range, as the branch's updates brought them (a merge GitHub made is no one's push), and which commits no update read brought. */
interface Pushes {
  by: Map<string, Set<string>>;
  brought: Set<string>;
}

function pushesOf(range: CommitRange, updates: readonly RefUpdate[]): Pushes {
  const out: Pushes = { by: new Map(), brought: new Set() };
  for (const u of updates) {
    const before = rangeUpTo(range, u.before);
    for (const sha of rangeUpTo(range, u.after)) {
      if (before.has(sha)) continue;
      out.brought.add(sha);
      if (u.type !== 'pr_merge' && u.actor) out.by.set(sha, new Set([...(out.by.get(sha) ?? []), u.actor]));
    }
  }
  return out;
}

/** The branch's updates, read back until every one of `needed` is brought by one (or the activity ends, or its bound). */
async function pushesFor(
  github: GitHub,
  name: RepoName,
  branch: string,
  range: CommitRange,
  needed: readonly RangeCommit[],
): Promise<Pushes> {
  if (!needed.length) return { by: new Map(), brought: new Set() };
  const { updates } = await github.refUpdates(name, branch, {
    enough: (read) => {
      const brought = pushesOf(range, read).brought;
      return needed.every((c) => brought.has(c.sha));
    },
  });
  return pushesOf(range, updates);
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

/** What judging one range reads once: the GitHub client, the branch's pushes, each pull request's facts. */
interface Reader {
  github: GitHub;
  name: RepoName;
  branch: string;
  pushes: Pushes;
  factsOf: (pr: MergedPullRequest) => Promise<PullRequestFacts>;
}

/** One relevant commit: who made it (author, committer, pusher) and who may sign it off through the pull request that brought it. */
async function judgeOne(r: Reader, c: RangeCommit): Promise<JudgedCommit> {
  const who = await r.github.commit(r.name, c.sha);
  const pushedBy = [...(r.pushes.by.get(c.sha) ?? [])];
  // A commit no update read brought: who pushed it cannot be told, so no comment approval counts for it.
  const unknown = r.pushes.brought.has(c.sha) ? {} : { pusherUnknown: true };
  // A merge commit GitHub made is authored by whoever pressed the button: that is not making the change.
  const mergedByGitHub = who.madeByGitHub && c.parents.length > 1;
  const involved = new Set([...pushedBy, ...(who.authorLogin && !mergedByGitHub ? [who.authorLogin] : [])]);
  if (who.committerLogin && !who.madeByGitHub) involved.add(who.committerLogin);
  const author = who.authorLogin ?? c.author.name;
  const by = `${author}${pushedBy.some((p) => p !== author) ? ` (pushed by ${pushedBy.join(', ')})` : ''}`;
  const brought = await broughtBy(r.github, r.name, r.branch, c.sha, who.madeByGitHub, r.factsOf);
  if (!brought)
    return {
      sha: c.sha,
      by,
      involved: [...involved],
      relevant: true,
      ...unknown,
      unreviewed: `pushed straight to ${r.branch}, not through a merged pull request`,
    };
  const pr = await r.factsOf(brought.pr);
  involved.add(brought.pr.author);
  return {
    sha: c.sha,
    by,
    involved: [...involved],
    relevant: true,
    ...unknown,
    pullRequest: {
      number: brought.pr.number,
      approvers: pr.approversFrom(brought.index).filter((u) => !involved.has(u)),
      notCounted: pr.notCounted,
    },
  };
}

/**
 * The commits of a change, each with whether it matters to the target (it changes one of the
 * target's inputs), who made it (GitHub's users for its author and committer, whoever pushed it to
 * the branch) and who may sign it off through the merged pull request that brought it.
 */
export async function judgeCommits(ctx: EngineContext, req: RangeRequest): Promise<JudgedRange> {
  const range = await commitRange(sourceFor(ctx, req.repo, req.url), ctx.settings.cacheDir, req.candidate, req.exclude);
  const relevant = (c: RangeCommit) =>
    c.sha === req.first || c.paths === undefined || c.paths.some((p) => req.inputs.some((i) => under(p, i)));
  const github = githubFor(ctx, req.repo, req.url);
  if (!github) return { range, commits: range.commits.map((c) => withoutGitHub(c, relevant(c))) };
  const name = repoName(req.url);
  const facts = new Map<number, Promise<PullRequestFacts>>();
  const reader: Reader = {
    github,
    name,
    branch: req.branch,
    pushes: await pushesFor(github, name, req.branch, range, range.commits.filter(relevant)),
    factsOf: (pr) => {
      if (!facts.has(pr.number)) facts.set(pr.number, pullRequestFacts(github, name, pr));
      return facts.get(pr.number) as Promise<PullRequestFacts>;
    },
  };
  const commits: JudgedCommit[] = [];
  for (const c of range.commits)
    commits.push(
      relevant(c) ? await judgeOne(reader, c) : { sha: c.sha, by: c.author.name, involved: [], relevant: false },
    );
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
