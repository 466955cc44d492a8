import type { KubeClient } from '../cluster/index.js';
import type { TargetSpec } from '../config/index.js';
import type { Revision } from '../model/index.js';
import { checkoutRevision, resolveRevision, type GitSource } from '../source/index.js';
import { CONFIG_FILE, TargetNotFoundError, loadConfig } from './config-file.js';
import type { EngineContext } from './context.js';

/** A target as the head of the GitOps repository declares it, and a client for its cluster. */
export async function headTarget(ctx: EngineContext, repo: string, target: string): Promise<{ src: GitSource; head: Revision; spec: TargetSpec; client: KubeClient }> {
  const src = ctx.gitSource(repo);
  const head = await resolveRevision(src, {});
  const spec = loadConfig((await checkoutRevision(src, head, ctx.settings.cacheDir)).dir).targets.find((t) => t.name === target);
  if (!spec) throw new TargetNotFoundError(target, CONFIG_FILE);
  return { src, head, spec, client: await ctx.connect(spec.cluster) };
}
