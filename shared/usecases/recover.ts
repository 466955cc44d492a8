import { readTargetState } from '../state/index.js';
import { orderTargets } from '../config/index.js';
import { TidegateError, type SyncResult } from '../model/index.js';
import { configAt } from './repo-config.js';
import type { EngineContext } from './context.js';
import { rollback } from './rollback.js';
import { syncRepo } from './sync-repo.js';

/**
 * Re-applies every target (of one cluster, or all) in dependency order, e.g. to an empty cluster:
 * pinned targets at their pinned revision, the others at the head of the branch.
 */
export async function recover(
  ctx: EngineContext,
  req: {
    repo: string;
    cluster?: string | undefined;
    onProgress?: (r: SyncResult, index: number, total: number) => void;
    signal?: AbortSignal;
  },
): Promise<SyncResult[]> {
  const { revision: head, config } = await configAt(ctx, req.repo);
  const targets = orderTargets(config.targets).filter((t) => req.cluster === undefined || t.cluster === req.cluster);
  if (req.cluster !== undefined && targets.length === 0) {
    const aliases = [...new Set(config.targets.map((t) => t.cluster))].sort();
    throw new TidegateError(
      'UnknownCluster',
      `no target of tidegate.yaml is on cluster "${req.cluster}" (its clusters: ${aliases.join(', ') || 'none'})`,
    );
  }
  const results: SyncResult[] = [];
  for (const spec of targets) {
    const pin = (await readTargetState(await ctx.connect(spec.cluster), spec.name, req.signal)).pin;
    const result = pin
      ? await rollback(ctx, {
          repo: req.repo,
          target: spec.name,
          to: pin.revision.sha,
          force: true,
          by: pin.by,
          reason: pin.reason,
          signal: req.signal,
        })
      : (await syncRepo(ctx, { repo: req.repo, target: spec.name, revision: head, signal: req.signal }))[0];
    if (result) {
      results.push(result);
      req.onProgress?.(result, results.length, targets.length);
    }
  }
  return results;
}
