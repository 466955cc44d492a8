import * as fs from 'node:fs';
import { join } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { TidegateError } from '../model/index.js';
import { authHeaders, redactUrl, repoKey, type GitSource } from './git.js';

export interface CommitAuthor {
  name: string;
  email: string;
}

export interface WriteBackResult {
  /** The pushed commit, or undefined when the change left every file as it was. */
  sha: string | undefined;
  attempts: number;
}

/** Files under dir, relative, skipping .git. */
function listFiles(dir: string, base = ''): string[] {
  return fs.readdirSync(join(dir, base), { withFileTypes: true }).flatMap((e) => {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.name === '.git') return [];
    return e.isDirectory() ? listFiles(dir, rel) : [rel];
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
  return git.commit({ fs, dir, message, author: { ...author, timestamp: now }, committer: { ...author, timestamp: now } });
}

/** The branch moved under us (non-fast-forward): worth a fresh attempt. */
const isRejected = (err: unknown): boolean =>
  (err as { code?: string }).code === 'PushRejectedError' || /non-fast-forward|fetch first|rejected/i.test(err instanceof Error ? err.message : '');

/**
 * Commits a change to a branch and pushes it, with isomorphic-git. `change` edits files in the
 * work tree and returns the commit message, or undefined when there is nothing to commit. When
 * the push is rejected because the branch moved (non-fast-forward), the branch is fetched again,
 * the change re-applied to the new head and pushed again, up to maxAttempts.
 */
export async function commitAndPush(
  src: GitSource,
  opts: { branch: string; author: CommitAuthor; cacheDir: string; maxAttempts?: number; change: (dir: string, files: () => string[]) => Promise<string | undefined> },
): Promise<WriteBackResult> {
  const dir = join(opts.cacheDir, 'write', repoKey(src.url));
  const auth = authHeaders(src);
  const max = opts.maxAttempts ?? 5;
  for (let attempt = 1; attempt <= max; attempt++) {
    fs.rmSync(dir, { recursive: true, force: true });
    try {
      await git.clone({ fs, http, dir, url: src.url, ref: opts.branch, singleBranch: true, depth: 1, ...auth });
    } catch (err) {
      throw new TidegateError('SourceFailed', `cannot clone ${redactUrl(src.url)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const message = await opts.change(dir, () => listFiles(dir));
    if (message === undefined) return { sha: undefined, attempts: attempt };
    const sha = await stageAndCommit(dir, message, opts.author);
    if (!sha) return { sha: undefined, attempts: attempt };
    try {
      const pushed = await git.push({ fs, http, dir, ref: opts.branch, remoteRef: `refs/heads/${opts.branch}`, ...auth });
      if (pushed.ok) return { sha, attempts: attempt };
      throw new Error(pushed.error ?? 'push refused');
    } catch (err) {
      if (!isRejected(err) || attempt === max) throw new TidegateError('PushFailed', `cannot push to ${opts.branch} of ${redactUrl(src.url)} after ${attempt} attempt(s): ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
  throw new TidegateError('PushFailed', 'unreachable');
}
