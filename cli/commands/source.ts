import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exportTree } from '../../shared/source/index.js';
import { loadConfig, syncCheckout, syncRepo, type EngineContext } from '../../shared/usecases/index.js';
import {
  DIRTY_SUFFIX,
  TidegateError,
  WORKTREE_SUFFIX,
  errorMessage,
  shortSha,
  type Revision,
  type SyncResult,
} from '../../shared/model/index.js';
import { originUrl } from '../context.js';

export interface SourceArgs {
  repo?: string | undefined;
  dir?: string | undefined;
  revision?: string | undefined;
  branch?: string | undefined;
  /** Sync a working tree with uncommitted changes (recorded as <sha>+dirty). */
  allowDirty?: boolean | undefined;
}

const git = (dir: string, args: string[]): string =>
  execFileSync('git', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 }).toString();

/** What git said on stderr when it failed. */
const gitError = (err: unknown): string =>
  ((err as { stderr?: Buffer }).stderr?.toString() ?? errorMessage(err)).trim().split('\n')[0] ?? '';

/**
 * The files under a working tree that differ from its HEAD commit, as `git status` names them
 * (relative to the repository's root): modified, staged, deleted, renamed, and untracked ones that
 * are not ignored.
 */
export function uncommittedFiles(dir: string): string[] {
  const entries = git(dir, [
    'status',
    '--porcelain=v1',
    '-z',
    '--untracked-files=all',
    '--ignore-submodules=none',
    '--',
    '.',
  ]).split('\0');
  const files: string[] = [];
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] ?? '';
    if (entry.length < 4) continue;
    files.push(entry.slice(3));
    // A rename or copy is followed by the path it came from.
    if (/[RC]/.test(entry.slice(0, 2))) i++;
  }
  return files;
}

/** A local working tree: its revision (HEAD and a suffix) and its uncommitted files. */
export interface LocalTree {
  revision: Revision;
  /** Files that differ from HEAD (none: the tree is its commit). */
  dirty: string[];
}

/**
 * The revision of a local working tree: `<HEAD>+worktree` when it is a clean git checkout,
 * `<HEAD>+dirty` when files differ from HEAD, `worktree` outside git. A checkout git cannot read
 * (another user's, say) or one with no commit yet is an error, never taken for "outside git".
 */
export function localTree(dir: string): LocalTree {
  try {
    git(dir, ['rev-parse', '--is-inside-work-tree']);
  } catch (err) {
    const why = gitError(err);
    if (/not a git repository/i.test(why)) return { revision: { ref: '', sha: 'worktree' }, dirty: [] };
    throw new TidegateError('WorktreeDirty', `cannot read the git checkout ${dir}: ${why}`);
  }
  let sha: string;
  try {
    sha = git(dir, ['rev-parse', '--verify', 'HEAD^{commit}']).trim();
  } catch {
    throw new TidegateError('WorktreeDirty', `${dir} is a git checkout with no commit yet: commit its files first`);
  }
  const dirty = uncommittedFiles(dir);
  return { revision: { ref: '', sha: `${sha}${dirty.length ? DIRTY_SUFFIX : WORKTREE_SUFFIX}` }, dirty };
}

/**
 * The files of a clean checkout's HEAD commit, exported from its git objects into a temporary
 * directory (the --dir subdirectory of it returned as `dir`): what a sync of the checkout renders,
 * so nothing git does not hold under that SHA (ignored files, submodule contents, files changed
 * while the sync runs) reaches the cluster.
 */
async function headSnapshot(dir: string, sha: string, ctx: EngineContext): Promise<{ root: string; dir: string }> {
  const gitdir = git(dir, ['rev-parse', '--path-format=absolute', '--git-common-dir']).trim();
  const prefix = git(dir, ['rev-parse', '--show-prefix']).trim();
  const root = mkdtempSync(join(tmpdir(), 'tidegate-head-'));
  try {
    await exportTree(gitdir, sha, root, dir, ctx.settings.budgets.source);
  } catch (err) {
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return { root, dir: join(root, prefix) };
}

/** The revision of a local working tree (see localTree). */
export const localRevision = (dir: string): Revision => localTree(dir).revision;

/** The files of a list, the first few named and the rest counted. */
export const someFiles = (files: readonly string[], shown = 5): string =>
  `${files.slice(0, shown).join(', ')}${files.length > shown ? ` and ${files.length - shown} more` : ''}`;

/** The refusal of a sync of a working tree with uncommitted changes. */
export const dirtyTreeError = (dir: string, tree: LocalTree): TidegateError =>
  new TidegateError(
    'WorktreeDirty',
    `${dir} has uncommitted changes (${someFiles(tree.dirty)}): commit them, or sync with --allow-dirty to apply the working tree as it is (recorded as ${shortSha(tree.revision.sha)})`,
  );

/**
 * Runs a sync (or a dry-run diff) from --repo (a Git URL) or --dir (a local working tree, the
 * default). A sync of a working tree with uncommitted changes is refused unless --allow-dirty; a
 * dry-run of one is made, and `onDirty` told which files differ.
 */
export async function runSync(
  ctx: EngineContext,
  args: SourceArgs,
  target: string | undefined,
  dryRun: boolean,
  onDirty?: (files: readonly string[], revision: Revision) => void,
): Promise<SyncResult[]> {
  if (args.repo) {
    const revision = args.revision ? { ref: `refs/heads/${args.branch ?? 'main'}`, sha: args.revision } : undefined;
    return syncRepo(ctx, { repo: args.repo, target, revision, dryRun });
  }
  const dir = resolve(args.dir ?? '.');
  const tree = localTree(dir);
  if (tree.dirty.length > 0) {
    if (!dryRun && !args.allowDirty) throw dirtyTreeError(dir, tree);
    onDirty?.(tree.dirty, tree.revision);
  }
  const repo = originUrl(dir);
  const sha = tree.revision.sha.endsWith(WORKTREE_SUFFIX) ? tree.revision.sha.slice(0, -WORKTREE_SUFFIX.length) : '';
  const snapshot = sha ? await headSnapshot(dir, sha, ctx) : undefined;
  const from = snapshot?.dir ?? dir;
  try {
    return await syncCheckout(ctx, {
      config: await loadConfig(from, ctx.settings, { repo }),
      dir: from,
      revision: tree.revision,
      repo,
      target,
      dryRun,
    });
  } finally {
    if (snapshot) rmSync(snapshot.root, { recursive: true, force: true });
  }
}
