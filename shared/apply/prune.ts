import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { formatRef, type Change, type KubeObject } from '../model/index.js';
import { mapLimit } from './concurrency.js';
import { notAboutTheObject, type ObjectProblem } from './errors.js';
import { entryRef, type InventoryEntry } from './state.js';
import { stageOf } from './ordering.js';
import { PRUNE_ANNOTATION, isOwnedBy } from './owner.js';

export interface PruneOutcome {
  changes: Change[];
  /** Entries that could not be deleted now and stay in the inventory to be retried. */
  retained: InventoryEntry[];
  problems: ObjectProblem[];
}

/** Why a live object of the inventory is not pruned, if it is not. */
function keptBecause(live: KubeObject, target: string): string | undefined {
  if (!isOwnedBy(live, target)) return `not pruned: it no longer carries the owner labels of target ${target}`;
  if (live.metadata.annotations?.[PRUNE_ANNOTATION] === 'disabled') return `not pruned: ${PRUNE_ANNOTATION} is disabled`;
  return undefined;
}

/**
 * Deletes one object of the inventory if it is still ours and may go; what happened, or nothing
 * when it is gone already. The delete carries the resourceVersion that was checked: an object
 * changed in between (another target's apply took it over) is checked again, never deleted unseen.
 */
async function pruneOne(entry: InventoryEntry, client: KubeClient, opts: { target: string; dryRun?: boolean; signal?: AbortSignal | undefined }): Promise<Change | undefined> {
  const ref = entryRef(entry);
  if (!client.resourceFor(entry.v, ref.kind)) return undefined; // the kind is no longer served: nothing of it can exist
  for (let tries = 1; ; tries++) {
    const live = await client.get(entry.v, ref.kind, ref.namespace || undefined, ref.name, opts.signal);
    if (!live || live.metadata.deletionTimestamp) return undefined;
    const keep = keptBecause(live, opts.target);
    if (keep) return { ref, action: 'skipped', reason: keep };
    try {
      const resourceVersion = live.metadata.resourceVersion;
      const deleted = await client.delete({ ...ref, apiVersion: entry.v }, { propagationPolicy: 'Background', ...(resourceVersion ? { resourceVersion } : {}), ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
      return deleted ? { ref, action: 'deleted' } : undefined;
    } catch (err) {
      if (!(err instanceof KubeApiError && err.isConflict) || tries >= 3) throw err;
    }
  }
}

/**
 * Deletes objects of the previous inventory that are no longer desired, in reverse apply order,
 * but only those that still carry this target's owner labels and have not opted out with
 * `tidegate.dev/prune: disabled`. Objects already gone are not reported.
 */
export async function prune(stale: readonly InventoryEntry[], client: KubeClient, opts: { target: string; dryRun?: boolean; signal?: AbortSignal | undefined }): Promise<PruneOutcome> {
  const out: PruneOutcome = { changes: [], retained: [], problems: [] };
  const one = async (entry: InventoryEntry): Promise<void> => {
    const ref = entryRef(entry);
    try {
      const change = await pruneOne(entry, client, opts);
      if (change) out.changes.push(change);
    } catch (err) {
      if (err instanceof KubeApiError && err.isNotFound) return;
      if (notAboutTheObject(err, opts.signal)) throw err;
      out.retained.push(entry);
      out.problems.push({ ref, source: 'inventory', message: err instanceof Error ? err.message : String(err) });
    }
  };
  // Stage by stage in reverse (resources, classes, then CRDs/Namespaces/ClusterRoles); within a stage in parallel.
  for (const stage of [2, 1, 0]) await mapLimit(stale.filter((e) => stageOf(entryRef(e).kind) === stage), 8, one);
  out.changes.sort((a, b) => stageOf(b.ref.kind) - stageOf(a.ref.kind) || formatRef(a.ref).localeCompare(formatRef(b.ref)));
  return out;
}
