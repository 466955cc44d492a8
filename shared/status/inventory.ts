import { KubeApiError, KubeClient } from '../cluster/index.js';
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

const METADATA_ONLY = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1';

/** Whether a Secret exists, read as its metadata only: its values never leave the apiserver. */
async function secretExists(
  client: KubeClient,
  namespace: string,
  name: string,
  signal?: AbortSignal,
): Promise<boolean> {
  if (!client.resourceFor('v1', 'Secret')) await client.discover(signal);
  const info = client.resourceFor('v1', 'Secret');
  if (!info) return false;
  try {
    await client.getRaw(KubeClient.path(info, namespace, name), METADATA_ONLY, signal);
    return true;
  } catch (err) {
    if (err instanceof KubeApiError && err.isNotFound) return false;
    throw err;
  }
}

/** Kinds per namespace this reader was refused (403): not asked again for the other objects of one call. */
type Refused = Map<string, string>;
const refusalKey = (ref: ObjectRef): string => `${ref.group}/${ref.kind}/${ref.namespace}`;

async function objectHealth(
  client: KubeClient,
  ref: ObjectRef & { apiVersion: string },
  reserved: boolean,
  refused: Refused,
  signal: AbortSignal | undefined,
): Promise<InventoryObjectHealth> {
  const { apiVersion, ...bare } = ref;
  const of = (status: InventoryHealthStatus, message: string): InventoryObjectHealth => ({
    ref: bare,
    apiVersion,
    status,
    message,
  });
  const missing = reserved ? 'reserved, not applied yet' : 'not found in the cluster';
  const refusal = refused.get(refusalKey(ref));
  if (refusal) return of('Unknown', refusal);
  try {
    if (ref.kind === 'Secret' && ref.group === '')
      return (await secretExists(client, ref.namespace, ref.name, signal))
        ? of('Healthy', 'present (its values are not read)')
        : of('Missing', missing);
    const live = await client.get(apiVersion, ref.kind, ref.namespace || undefined, ref.name, signal);
    if (!live) return of('Missing', missing);
    const a = assess(live);
    return of(STATUS[a.status], a.message);
  } catch (err) {
    if (signal?.aborted) throw err;
    const [status, message] = unread(err, ref, refused);
    return of(status, message);
  }
}

/** An object that could not be read: Missing when its kind is not served any more, else Unknown (a refusal remembered). */
function unread(err: unknown, ref: ObjectRef, refused: Refused): [InventoryHealthStatus, string] {
  // A kind the apiserver no longer serves (its CRD deleted): nothing of it can be there.
  if (err instanceof KubeApiError && err.isNotFound) return ['Missing', errorMessage(err)];
  if (err instanceof KubeApiError && err.status === 403) {
    const where = ref.namespace ? `namespace ${ref.namespace}` : 'the cluster scope';
    refused.set(refusalKey(ref), `not read: this reader may not get ${ref.kind} in ${where} (HTTP 403)`);
  }
  return ['Unknown', `not read: ${errorMessage(err)}`];
}

/**
 * The health of every object of a target's inventory (as recorded in its state), read from the
 * cluster now and judged by the readiness rules of `health/` (the ones a sync waits on), in
 * inventory order. An object the client may not read, or that cannot be read, is Unknown with the
 * reason; nothing is thrown for one object. Reads only (get per object, a few at a time; a kind
 * refused in a namespace is not asked for again); a Secret is read as its metadata only (present
 * or Missing), never its values.
 */
export async function inventoryHealth(
  client: KubeClient,
  state: Pick<TargetState, 'inventory'>,
  opts: InventoryHealthOptions = {},
): Promise<InventoryObjectHealth[]> {
  const entries = state.inventory;
  const out = new Array<InventoryObjectHealth>(entries.length);
  const refused: Refused = new Map();
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < entries.length; i = next++) {
      const entry = entries[i];
      if (entry) out[i] = await objectHealth(client, entryRef(entry), entry.h === '', refused, opts.signal);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(opts.concurrency ?? 8, entries.length)) }, worker));
  return out;
}
