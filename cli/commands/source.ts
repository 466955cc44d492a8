import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { loadConfig, syncCheckout, syncRepo, type EngineContext } from '../../shared/usecases/index.js';
import type { Revision, SyncResult } from '../../shared/model/index.js';

export interface SourceArgs {
  repo?: string | undefined;
  dir?: string | undefined;
  revision?: string | undefined;
  branch?: string | undefined;
}

/** The revision of a local working tree: its HEAD commit when it is a git checkout. */
export function localRevision(dir: string): Revision {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    return { ref: '', sha: `${sha}+worktree` };
  } catch {
    return { ref: '', sha: 'worktree' };
  }
}

/** The URL of a working tree's origin remote (the repository its targets belong to), when it has one. */
export function originUrl(dir: string): string | undefined {
  try {
    return (
      execFileSync('git', ['remote', 'get-url', 'origin'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/** Runs a sync (or a dry-run diff) from --repo (a Git URL) or --dir (a local working tree, the default). */
export async function runSync(
  ctx: EngineContext,
  args: SourceArgs,
  target: string | undefined,
  dryRun: boolean,
): Promise<SyncResult[]> {
  if (args.repo) {
    const revision = args.revision ? { ref: `refs/heads/${args.branch ?? 'main'}`, sha: args.revision } : undefined;
    return syncRepo(ctx, { repo: args.repo, target, revision, dryRun });
  }
  const dir = resolve(args.dir ?? '.');
  const repo = originUrl(dir);
  return syncCheckout(ctx, {
    config: await loadConfig(dir, ctx.settings, { repo }),
    dir,
    revision: localRevision(dir),
    repo,
    target,
    dryRun,
  });
}
