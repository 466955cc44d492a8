import * as fs from 'node:fs';
import git, { type WalkerEntry } from 'isomorphic-git';
import { errorMessage, redactUrl, type Revision } from '../model/index.js';
import { SourceError, cachedGitdir, deepen, type GitSource } from './git.js';

/** One commit of a range: who wrote and committed it (as git records them), and what it changed against its first parent. */
export interface RangeCommit {
  sha: string;
  parents: string[];
  author: { name: string; email: string };
  committer: { name: string; email: string };
  subject: string;
  /** Paths changed against the first parent (every path of a root commit); undefined when there were too many to list. */
  paths: string[] | undefined;
}

/** The commits a candidate brings over a base: `git rev-list <candidate> ^<exclude>…`. */
export interface CommitRange {
  /** Newest first (the order of a walk from the candidate). */
  commits: RangeCommit[];
  /** Every excluded commit is an ancestor of the candidate: the branch moved forward, history was not rewritten. */
  forward: boolean;
  /** The walk stopped at the commit limit, or at the end of what could be fetched: the range may hold more. */
  truncated: boolean;
}

/** Commits listed in one range at most; a longer range is reported truncated (and judged as unsigned beyond it). */
export const RANGE_LIMIT = 500;
/** Paths listed per commit at most (a commit touching more is taken to touch everything). */
const PATH_LIMIT = 5_000;
/** How deep the cached history may be made to find the base. */
const MAX_HISTORY = 4_096;

async function readCommit(gitdir: string, sha: string) {
  try {
    return (await git.readCommit({ fs, gitdir, oid: sha })).commit;
  } catch {
    return undefined;
  }
}

/** How one path differs between two trees: not at all (skip it and what is below), a tree to walk into, or a changed path. */
async function difference(
  a: WalkerEntry | null,
  b: WalkerEntry | null,
): Promise<'same' | 'tree' | 'changed' | 'changed-tree'> {
  const [oidA, oidB, modeA, modeB, typeA, typeB] = await Promise.all([
    a?.oid(),
    b?.oid(),
    a?.mode(),
    b?.mode(),
    a?.type(),
    b?.type(),
  ]);
  if (oidA !== undefined && oidA === oidB && modeA === modeB) return 'same';
  if (typeA === 'tree' && typeB === 'tree') return 'tree';
  // A tree replaced by a file (or the reverse, or added, or removed): its files are listed below it.
  return typeA === 'tree' || typeB === 'tree' ? 'changed-tree' : 'changed';
}

/** Paths whose blob or mode differs between two trees (a subtree with the same id is not walked). */
async function changedPaths(gitdir: string, from: string | undefined, to: string): Promise<string[] | undefined> {
  const paths: string[] = [];
  await git.walk({
    fs,
    gitdir,
    trees: from ? [git.TREE({ ref: from }), git.TREE({ ref: to })] : [git.TREE({ ref: to })],
    map: async (filepath, entries) => {
      if (paths.length > PATH_LIMIT) return null;
      if (filepath === '.') return true;
      const [a, b] = from ? entries : [null, entries[0] ?? null];
      const diff = await difference(a ?? null, b ?? null);
      if (diff === 'same') return null;
      if (diff === 'tree') return true;
      paths.push(filepath);
      return diff === 'changed-tree' ? true : null;
    },
  });
  return paths.length > PATH_LIMIT ? undefined : paths;
}

interface Walk {
  commits: RangeCommit[];
  reached: Set<string>;
  /** A parent was missing: the cached history ends there (shallow). */
  boundary: boolean;
  limited: boolean;
}

/** Every commit reachable from the excluded ones, as far as the cached history goes. */
async function ancestors(gitdir: string, exclude: readonly string[]): Promise<Set<string>> {
  const seen = new Set<string>();
  const queue = [...exclude];
  while (queue.length) {
    const sha = queue.pop() as string;
    if (seen.has(sha)) continue;
    const commit = await readCommit(gitdir, sha);
    if (!commit) continue;
    seen.add(sha);
    queue.push(...commit.parent);
  }
  return seen;
}

async function walk(gitdir: string, candidate: string, exclude: readonly string[], limit: number): Promise<Walk> {
  const stop = await ancestors(gitdir, exclude);
  const out: Walk = { commits: [], reached: new Set(), boundary: false, limited: false };
  const seen = new Set<string>();
  const queue = [candidate];
  while (queue.length) {
    const sha = queue.shift() as string;
    if (seen.has(sha)) continue;
    seen.add(sha);
    if (stop.has(sha)) {
      if (exclude.includes(sha)) out.reached.add(sha);
      continue;
    }
    const commit = await readCommit(gitdir, sha);
    if (!commit) {
      out.boundary = true;
      continue;
    }
    if (out.commits.length >= limit) {
      out.limited = true;
      break;
    }
    const parents = commit.parent;
    const first = parents[0] ? await readCommit(gitdir, parents[0]) : undefined;
    if (parents[0] && !first) out.boundary = true;
    out.commits.push({
      sha,
      parents,
      author: { name: commit.author.name, email: commit.author.email },
      committer: { name: commit.committer.name, email: commit.committer.email },
      subject: commit.message.split('\n')[0] ?? '',
      paths: parents[0] && !first ? undefined : await changedPaths(gitdir, first?.tree, commit.tree),
    });
    queue.push(...parents);
  }
  return out;
}

/**
 * The commits a candidate brings that the excluded commits do not have (`git rev-list candidate
 * ^exclude…`), each with what it changed, read from the cached repository (the candidate must be
 * checked out already). The cached history is deepened until the excluded commits and everything
 * between are there, up to a bound: what cannot be read makes the range `truncated`. A commit the
 * walk cannot place (the history of the base was rewritten) makes it not `forward`.
 */
export async function commitRange(
  src: GitSource,
  cacheDir: string,
  candidate: Revision,
  exclude: readonly string[],
  limit = RANGE_LIMIT,
): Promise<CommitRange> {
  const gitdir = cachedGitdir(src, cacheDir);
  const ref = candidate.ref.replace(/^refs\/(heads|tags)\//, '') || 'main';
  try {
    for (let depth = 16; ; depth *= 4) {
      const found = await walk(gitdir, candidate.sha, exclude, limit);
      const complete = exclude.every((e) => found.reached.has(e));
      if (found.limited || (complete && !found.boundary) || depth > MAX_HISTORY)
        return { commits: found.commits, forward: complete, truncated: found.limited || found.boundary };
      if (!(await deepen(src, cacheDir, ref, depth))) {
        const again = await walk(gitdir, candidate.sha, exclude, limit);
        const reached = exclude.every((e) => again.reached.has(e));
        return { commits: again.commits, forward: reached, truncated: again.limited || again.boundary };
      }
    }
  } catch (err) {
    if (err instanceof SourceError) throw err;
    throw new SourceError(
      `cannot list the commits of ${redactUrl(src.url)} since ${exclude.join(', ') || 'its start'}: ${errorMessage(err)}`,
      {
        cause: err,
      },
    );
  }
}

/** The commits of a range that `upTo` contains: itself and its ancestors among the range's commits. */
export function rangeUpTo(range: Pick<CommitRange, 'commits'>, upTo: string): Set<string> {
  const bySha = new Map(range.commits.map((c) => [c.sha, c]));
  const out = new Set<string>();
  const queue = [upTo];
  while (queue.length) {
    const sha = queue.pop() as string;
    const commit = bySha.get(sha);
    if (!commit || out.has(sha)) continue;
    out.add(sha);
    queue.push(...commit.parents);
  }
  return out;
}
