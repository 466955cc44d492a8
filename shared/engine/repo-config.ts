import type { KubeClient } from '../cluster/index.js';
import type { TargetSpec, TidegateConfig } from '../config/index.js';
import type { Revision } from '../model/index.js';
import { checkoutRevision, resolveRevision, type GitSource } from '../source/index.js';
import { CONFIG_FILE, TargetNotFoundError, loadConfig } from './config-file.js';
import type { EngineContext } from './context.js';

/**
 * tidegate.yaml of a GitOps repository at a revision, or at the head of a branch (default main),
 * with the checkout it was read from.
 */
export async function configAt(ctx: EngineContext, repo: string, at: Revision | { branch: string } = { branch: 'main' }): Promise<{ revision: Revision; dir: string; config: TidegateConfig }> {
  const src = ctx.gitSource(repo);
  const revision = 'sha' in at ? at : await resolveRevision(src, at);
  const { dir } = await checkoutRevision(src, revision, ctx.settings.cacheDir);
  return { revision, dir, config: loadConfig(dir) };
}

/** A target as the head of the GitOps repository declares it, and a client for its cluster. */
export async function headTarget(ctx: EngineContext, repo: string, target: string): Promise<{ src: GitSource; head: Revision; spec: TargetSpec; client: KubeClient }> {
  const { revision: head, config } = await configAt(ctx, repo);
  const spec = config.targets.find((t) => t.name === target);
  if (!spec) throw new TargetNotFoundError(target, CONFIG_FILE);
  return { src: ctx.gitSource(repo), head, spec, client: await ctx.connect(spec.cluster) };
}
