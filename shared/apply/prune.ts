import { setTimeout as sleep } from 'node:timers/promises';
import { KubeApiError, groupVersionOf, type KubeClient } from '../cluster/index.js';
import {
  errorMessage,
  entryRef,
  formatRef,
  type Change,
  type InventoryEntry,
  type KubeObject,
  type ObjectRef,
} from '../model/index.js';
import { mapLimit } from './concurrency.js';
import { notAboutTheObject, type ObjectProblem } from './errors.js';
import { stageOf } from './ordering.js';
import { FLUX_PRUNE_ANNOTATION, PRUNE_ANNOTATION, isOwnedBy } from './owner.js';

export interface PruneOutcome {
  changes: Change[];
  /** Entries that could not be deleted now and stay in the inventory to be retried. */
  retained: InventoryEntry[];
  problems: ObjectProblem[];
}

/** Why a live object of the inventory is not pruned, if it is not. */
function keptBecause(live: KubeObject, target: string): string | undefined {
  if (!isOwnedBy(live, target)) return `not pruned: it no longer carries the owner labels of target ${target}`;
  for (const annotation of [PRUNE_ANNOTATION, FLUX_PRUNE_ANNOTATION])
    if (live.metadata.annotations?.[annotation] === 'disabled') return `not pruned: ${annotation} is disabled`;
  return undefined;
}

/** Deletes an object only as it was seen (its resourceVersion as precondition); false when it is gone. */
const deleteAsSeen = (
  client: KubeClient,
  ref: ObjectRef & { apiVersion: string },
  live: KubeObject,
  opts: { dryRun?: boolean; signal?: AbortSignal | undefined },
): Promise<boolean> =>
  client.delete(ref, {
    propagationPolicy: 'Background',
    resourceVersion: live.metadata.resourceVersion ?? '',
    dryRun: opts.dryRun ?? false,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });

/**
 * Deletes one object of the inventory if it is still ours and may go: what happened (nothing when
 * it is gone already), and whether its entry stays in the inventory. The object is looked up by
 * any version its kind is served in (an inventory entry may name one the cluster dropped). The
 * delete carries the resourceVersion that was checked: an object changed in between (another
 * target's apply took it over) is checked again, never deleted unseen; one that keeps changing is
 * left for the next sync.
 */
async function pruneOne(
  entry: InventoryEntry,
  client: KubeClient,
  opts: { target: string; dryRun?: boolean; signal?: AbortSignal | undefined },
): Promise<{ change?: Change; retain?: boolean }> {
  const ref = entryRef(entry);
  const info = client.resourceFor(entry.v, ref.kind) ?? client.resourceForGroupKind(ref.group, ref.kind);
  if (!info) return {}; // the kind is no longer served at all: nothing of it can exist
  const apiVersion = groupVersionOf(info);
  for (let tries = 1; tries <= 5; tries++) {
    const live = await client.get(apiVersion, ref.kind, ref.namespace || undefined, ref.name, opts.signal);
    if (!live || live.metadata.deletionTimestamp) return {};
    const keep = keptBecause(live, opts.target);
    if (keep) return { change: { ref, action: 'skipped', reason: keep } };
    try {
      return (await deleteAsSeen(client, { ...ref, apiVersion }, live, opts))
        ? { change: { ref, action: 'deleted' } }
        : {};
    } catch (err) {
      if (!(err instanceof KubeApiError && err.isConflict)) throw err;
      await sleep(50 * 2 ** tries, undefined, opts.signal ? { signal: opts.signal } : {});
    }
  }
  return {
    change: {
      ref,
      action: 'skipped',
      reason: 'not pruned yet: it kept changing while it was checked; the next sync tries again',
    },
    retain: true,
  };
}

/**
 * Deletes objects of the previous inventory that are no longer desired, in reverse apply order,
 * but only those that still carry this target's owner labels and have not opted out with
 * `tidegate.dev/prune: disabled`. Objects already gone are not reported.
 */
export async function prune(
  stale: readonly InventoryEntry[],
  client: KubeClient,
  opts: { target: string; dryRun?: boolean; signal?: AbortSignal | undefined },
): Promise<PruneOutcome> {
  const out: PruneOutcome = { changes: [], retained: [], problems: [] };
  const one = async (entry: InventoryEntry): Promise<void> => {
    const ref = entryRef(entry);
    try {
      const { change, retain } = await pruneOne(entry, client, opts);
      if (change) out.changes.push(change);
      if (retain) out.retained.push(entry);
    } catch (err) {
      if (err instanceof KubeApiError && err.isNotFound) return;
      if (notAboutTheObject(err, opts.signal)) throw err;
      out.retained.push(entry);
      out.problems.push({ ref, source: 'inventory', message: errorMessage(err) });
    }
  };
  // Stage by stage in reverse (resources, classes, then CRDs/Namespaces/ClusterRoles); within a stage in parallel.
  for (const stage of [2, 1, 0])
    await mapLimit(
      stale.filter((e) => stageOf(entryRef(e).kind) === stage),
      8,
      one,
    );
  out.changes.sort(
    (a, b) => stageOf(b.ref.kind) - stageOf(a.ref.kind) || formatRef(a.ref).localeCompare(formatRef(b.ref)),
  );
  return out;
}
