import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { assess } from '../health/index.js';
import { entryRef, errorMessage, type ObjectRef } from '../model/index.js';
import type { TargetState } from '../state/index.js';

/**
 * How one object of a target's inventory is now, as people read it (Argo CD's words): Healthy,
 * Progressing, Degraded (its readiness rule failed), Missing (recorded in the inventory, absent from
 * the cluster), Unknown (it could not be read: the reason is the message).
 */
export type InventoryHealthStatus = 'Healthy' | 'Progressing' | 'Degraded' | 'Missing' | 'Unknown';

export interface InventoryObjectHealth {
  ref: ObjectRef;
  apiVersion: string;
  status: InventoryHealthStatus;
  message: string;
}

export interface InventoryHealthOptions {
  signal?: AbortSignal | undefined;
  /** Objects read at once (default 8). */
  concurrency?: number;
}

const STATUS = { healthy: 'Healthy', progressing: 'Progressing', failed: 'Degraded' } as const;

async function objectHealth(
  client: KubeClient,
  ref: ObjectRef & { apiVersion: string },
  reserved: boolean,
  signal: AbortSignal | undefined,
): Promise<InventoryObjectHealth> {
  const { apiVersion, ...bare } = ref;
  const of = (status: InventoryHealthStatus, message: string): InventoryObjectHealth => ({
    ref: bare,
    apiVersion,
    status,
    message,
  });
  try {
    const live = await client.get(apiVersion, ref.kind, ref.namespace || undefined, ref.name, signal);
    if (!live) return of('Missing', reserved ? 'reserved, not applied yet' : 'not found in the cluster');
    const a = assess(live);
    return of(STATUS[a.status], a.message);
  } catch (err) {
    if (signal?.aborted) throw err;
    // A kind the apiserver no longer serves (its CRD deleted): nothing of it can be there.
    if (err instanceof KubeApiError && err.isNotFound) return of('Missing', errorMessage(err));
    return of('Unknown', `not read: ${errorMessage(err)}`);
  }
}

/**
 * The health of every object of a target's inventory (as recorded in its state), read from the
 * cluster now and judged by the readiness rules of `health/` (the ones a sync waits on), in
 * inventory order. An object the client may not read, or that cannot be read, is Unknown with the
 * reason; nothing is thrown for one object. Reads only (get per object, a few at a time).
 */
export async function inventoryHealth(
  client: KubeClient,
  state: Pick<TargetState, 'inventory'>,
  opts: InventoryHealthOptions = {},
): Promise<InventoryObjectHealth[]> {
  const entries = state.inventory;
  const out = new Array<InventoryObjectHealth>(entries.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < entries.length; i = next++) {
      const entry = entries[i];
      if (entry) out[i] = await objectHealth(client, entryRef(entry), entry.h === '', opts.signal);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, entries.length)) }, worker));
  return out;
}
