import type { KubeClient } from '../cluster/index.js';
import { refuseOtherOwner, updateTargetState, withLease, type TargetState } from '../state/index.js';
import { leaseOf, type EngineContext } from './context.js';

/**
 * Changes a target's state under its lease (an operator's command: suspend, resume, release, an
 * approval), never another repository's target. `change` gives the new state, or undefined to leave
 * it as it is. Whether it changed.
 */
export async function changeOwnState(
  ctx: EngineContext,
  client: KubeClient,
  req: { repo: string; target: string; signal?: AbortSignal | undefined },
  change: (state: TargetState) => TargetState | undefined,
): Promise<boolean> {
  let changed = false;
  const lease = { ...leaseOf(ctx), logger: ctx.logger, ...(req.signal ? { signal: req.signal } : {}) };
  await withLease(client, req.target, lease, (leased) =>
    updateTargetState(
      client,
      req.target,
      (state) => {
        refuseOtherOwner(state, req.repo, req.target);
        const next = change(state);
        changed = next !== undefined;
        return next;
      },
      leased,
    ),
  );
  return changed;
}
