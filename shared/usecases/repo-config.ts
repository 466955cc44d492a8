import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeClient } from '../cluster/index.js';
import { parseConfig, type TargetSpec, type TidegateConfig } from '../config/index.js';
import { TargetNotFoundError, TidegateError, normaliseRepoUrl, type Revision } from '../model/index.js';
import { checkoutRevision, resolveRevision, type GitSource } from '../source/index.js';
import type { EngineContext } from './context.js';

export const CONFIG_FILE = 'tidegate.yaml';

/** Reads and validates tidegate.yaml from a checkout. */
export function loadConfig(dir: string, label = CONFIG_FILE): TidegateConfig {
  const file = join(dir, CONFIG_FILE);
  if (!existsSync(file)) throw new TidegateError('ConfigMissing', `${label} not found at the root of the repository`);
  return parseConfig(readFileSync(file, 'utf8'), label);
}

/** The branch of a repository the shell tracks (deploy-time settings, the CLI's --branch); main when it names none. */
export function trackedBranch(ctx: Pick<EngineContext, 'repositories'>, repo: string): string {
  return ctx.repositories?.find((r) => normaliseRepoUrl(r.url) === normaliseRepoUrl(repo))?.branch ?? 'main';
}

/**
 * tidegate.yaml of a GitOps repository at a revision, or at the head of a branch (default: the tracked branch),
 * with the checkout it was read from.
 */
export async function configAt(
  ctx: EngineContext,
  repo: string,
  at: Revision | { branch: string } = { branch: trackedBranch(ctx, repo) },
): Promise<{ revision: Revision; dir: string; config: TidegateConfig }> {
  const src = ctx.gitSource(repo);
  const revision = 'sha' in at ? at : await resolveRevision(src, at);
  const { dir } = await checkoutRevision(src, revision, ctx.settings.cacheDir);
  return { revision, dir, config: loadConfig(dir) };
}

/** A target as the head of a branch of the GitOps repository declares it (default: the tracked branch), and a client for its cluster. */
export async function headTarget(
  ctx: EngineContext,
  repo: string,
  target: string,
  branch = trackedBranch(ctx, repo),
): Promise<{ src: GitSource; head: Revision; spec: TargetSpec; client: KubeClient }> {
  const { revision: head, config } = await configAt(ctx, repo, { branch });
  const spec = config.targets.find((t) => t.name === target);
  if (!spec) throw new TargetNotFoundError(target, CONFIG_FILE);
  return { src: ctx.gitSource(repo), head, spec, client: await ctx.connect(spec.cluster) };
}
