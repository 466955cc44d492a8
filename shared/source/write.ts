import * as fs from 'node:fs';
import { join } from 'node:path';
import git from 'isomorphic-git';
import { errorMessage, TidegateError, redactUrl } from '../model/index.js';
import { authHeaders, meteredFetch, repoKey, type GitSource } from './git.js';
import { RepositoryTooLargeError } from './pack-budget.js';

export interface CommitAuthor {
  name: string;
  email: string;
}

export interface WriteBackResult {
  /** The branch's commit holding the change, or undefined when the change left every file as it was. */
  sha: string | undefined;
  /** False when nothing was pushed: no change, or the branch already held exactly this change. */
  pushed: boolean;
  attempts: number;
}

/**
 * Regular files under dir, relative, skipping .git. A symbolic link is never listed nor followed
 * (into a directory or to a file): a change reads and writes only files of this working copy.
 */
function listFiles(dir: string, base = ''): string[] {
  return fs.readdirSync(join(dir, base), { withFileTypes: true }).flatMap((e) => {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.name === '.git' || e.isSymbolicLink()) return [];
    if (e.isDirectory()) return listFiles(dir, rel);
    return e.isFile() ? [rel] : [];
  });
}

/** Stages every changed file and commits; undefined when nothing changed. */
async function stageAndCommit(dir: string, message: string, author: CommitAuthor): Promise<string | undefined> {
  const changed = (await git.statusMatrix({ fs, dir })).filter(([, head, work]) => head !== work);
  if (changed.length === 0) return undefined;
  for (const [file, , work] of changed) {
    if (work === 0) await git.remove({ fs, dir, filepath: file });
    else await git.add({ fs, dir, filepath: file });
  }
  const now = Math.floor(Date.now() / 1000);
  return git.commit({
    fs,
    dir,
    message,
    author: { ...author, timestamp: now },
    committer: { ...author, timestamp: now },
  });
}

/** The branch moved under us (non-fast-forward): worth a fresh attempt. */
const isRejected = (err: unknown): boolean =>
  (err as { code?: string }).code === 'PushRejectedError' ||
  /non-fast-forward|fetch first|rejected/i.test(err instanceof Error ? err.message : '');

/**
 * The head of a branch of our own when it already holds exactly `sha`'s change: the same tree on
 * the same parent. Then pushing again would only churn the pull request.
 */
async function sameChange(src: GitSource, dir: string, branch: string, sha: string): Promise<string | undefined> {
  const auth = await authHeaders(src);
  let head: string | undefined;
  await meteredFetch(src, join(dir, '.git'), async (http) => {
    const refs = await git.listServerRefs({ http, url: src.url, prefix: `refs/heads/${branch}`, ...auth });
    head = refs.find((r) => r.ref === `refs/heads/${branch}`)?.oid;
    if (head)
      await git.fetch({ fs, http, dir, url: src.url, ref: branch, singleBranch: true, depth: 1, tags: false, ...auth });
  });
  if (!head) return undefined;
  const [ours, theirs] = await Promise.all([
    git.readCommit({ fs, dir, oid: sha }),
    git.readCommit({ fs, dir, oid: head }),
  ]);
  return ours.commit.tree === theirs.commit.tree && ours.commit.parent.join() === theirs.commit.parent.join()
    ? head
    : undefined;
}

/**
 * A fresh shallow clone of the branch to start from, within the checkout limits as every fetch
 * (the branch may have moved since the checkout that chose the change), with the change
 * committed; undefined when the change changed nothing.
 */
async function commitChange(
  src: GitSource,
  dir: string,
  opts: Parameters<typeof commitAndPush>[1],
): Promise<string | undefined> {
  fs.rmSync(dir, { recursive: true, force: true });
  const auth = await authHeaders(src);
  try {
    await meteredFetch(src, join(dir, '.git'), (http) =>
      git.clone({ fs, http, dir, url: src.url, ref: opts.base ?? opts.branch, singleBranch: true, depth: 1, ...auth }),
    );
  } catch (err) {
    if (err instanceof RepositoryTooLargeError) throw err;
    throw new TidegateError('SourceFailed', `cannot clone ${redactUrl(src.url)}: ${errorMessage(err)}`, { cause: err });
  }
  const message = await opts.change(dir, () => listFiles(dir));
  return message === undefined ? undefined : stageAndCommit(dir, message, opts.author);
}

/**
 * Commits a change to a branch and pushes it, with isomorphic-git. `change` edits files in the
 * work tree and returns the commit message, or undefined when there is nothing to commit. When
 * the push is rejected because the branch moved (non-fast-forward), the branch is fetched again,
 * the change re-applied to the new head and pushed again, up to maxAttempts.
 *
 * With `base`, the change is made on top of `base` and `branch` is a branch of its own (a pull
 * request's): it is replaced (force-pushed) by the new commit, unless it already holds the same change.
 */
export async function commitAndPush(
  src: GitSource,
  opts: {
    branch: string;
    base?: string;
    author: CommitAuthor;
    cacheDir: string;
    maxAttempts?: number;
    change: (dir: string, files: () => string[]) => Promise<string | undefined>;
  },
): Promise<WriteBackResult> {
  // A working copy of this write's own: nothing another repository's (or message's) write does can reach it.
  fs.mkdirSync(join(opts.cacheDir, 'write'), { recursive: true });
  const dir = fs.mkdtempSync(join(opts.cacheDir, 'write', `${repoKey(src.url)}-`));
  try {
    return await pushChange(src, dir, opts);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function pushChange(
  src: GitSource,
  dir: string,
  opts: Parameters<typeof commitAndPush>[1],
): Promise<WriteBackResult> {
  const max = opts.maxAttempts ?? 5;
  for (let attempt = 1; attempt <= max; attempt++) {
    const sha = await commitChange(src, dir, opts);
    if (!sha) return { sha: undefined, pushed: false, attempts: attempt };
    const current = opts.base ? await sameChange(src, dir, opts.branch, sha) : undefined;
    if (current) return { sha: current, pushed: false, attempts: attempt };
    try {
      const auth = await authHeaders(src);
      let pushed: Awaited<ReturnType<typeof git.push>> | undefined;
      // What the server answers a push with is counted too.
      await meteredFetch(src, join(dir, '.git'), async (http) => {
        pushed = await git.push({
          fs,
          http,
          dir,
          ref: opts.base ?? opts.branch,
          remoteRef: `refs/heads/${opts.branch}`,
          force: opts.base !== undefined,
          ...auth,
        });
      });
      if (pushed?.ok) return { sha, pushed: true, attempts: attempt };
      throw new Error(pushed?.error ?? 'push refused');
    } catch (err) {
      if (!isRejected(err) || attempt === max)
        throw new TidegateError(
          'PushFailed',
          `cannot push to ${opts.branch} of ${redactUrl(src.url)} after ${attempt} attempt(s): ${errorMessage(err)}`,
          { cause: err },
        );
    }
  }
  throw new TidegateError('PushFailed', 'unreachable');
}
