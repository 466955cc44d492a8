import { KubeApiError, type KubeClient } from '../cluster/index.js';
import type { IgnoreRule } from '../config/index.js';
import { errorMessage, type KubeObject } from '../model/index.js';
import { mapLimit } from './concurrency.js';
import { changedPaths, comparable, containsSubset, sameObject } from './diff.js';
import { ApplyError, notAboutTheObject, type ObjectProblem } from './errors.js';
import { removePointer, setAt } from './jsonpointer.js';
import { FIELD_MANAGER } from './owner.js';
import { ignoredPaths, type DesiredObject } from './prepare.js';
import { hasShape, valueAt } from '../render/index.js';

export type PlanAction = 'create' | 'update' | 'unchanged' | 'recreate' | 'deferred';

export interface PlanItem {
  desired: DesiredObject;
  live: KubeObject | undefined;
  /** What is sent: the desired object without ignored fields (when the object exists). */
  body: KubeObject;
  action: PlanAction;
  /** Live state differs although Git did not change this object since the last sync. */
  drift: boolean;
  fields: string[];
  /** The object as the server-side dry-run says it would be (kept only with PlanOptions.keepPlanned). */
  planned?: KubeObject | undefined;
}

export interface PlanOptions {
  ignore: readonly IgnoreRule[];
  /** Desired-state hashes of the last sync, by object id. */
  previousHashes: ReadonlyMap<string, string>;
  force: boolean;
  concurrency?: number;
  signal?: AbortSignal | undefined;
  /** Keep each dry-run result on its item (previews show values; a sync does not hold them in memory). */
  keepPlanned?: boolean;
}

/** Whether tidegate's apply alone owns the field at a path of map keys (no hand edit, no other writer took it). */
function ownedByTidegateAlone(live: KubeObject, path: ReadonlyArray<string | number>): boolean {
  const owns = (fields: unknown): boolean =>
    path.reduce<unknown>(
      (node, key) =>
        node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[`f:${key}`] : undefined,
      fields,
    ) !== undefined;
  const entries = live.metadata.managedFields ?? [];
  const mine = entries.filter((e) => e.manager === FIELD_MANAGER && e.operation === 'Apply');
  const others = entries.filter((e) => !(e.manager === FIELD_MANAGER && e.operation === 'Apply'));
  return mine.some((e) => owns(e['fieldsV1'])) && !others.some((e) => owns(e['fieldsV1']));
}

/**
 * The desired object with the live value of each field the chart generates at random, as long as
 * nothing changed: Git and the chart the same as at the last sync (the same hash), the live value of
 * the shape the chart generates, written by tidegate's apply and by nobody since. What an earlier
 * render generated then stays, instead of a new random value at every sync; anything else (a commit,
 * a new chart version, a hand edit, a value inside a list) gets the fresh render, as Git says.
 */
function keepGenerated(d: DesiredObject, live: KubeObject, opts: PlanOptions): KubeObject {
  if (!d.random || opts.previousHashes.get(d.id) !== d.hash) return d.object;
  return d.random.reduce<KubeObject>((o, f) => {
    const current = valueAt(live, f.path);
    const keep =
      f.path.every((k) => typeof k === 'string') && hasShape(current, f) && ownedByTidegateAlone(live, f.path);
    return keep ? setAt(o, f.path, current) : o;
  }, d.object);
}

/** One LIST per kind and namespace: the live objects the desired set names, by id. */
async function readLive(
  items: readonly DesiredObject[],
  client: KubeClient,
  signal?: AbortSignal,
): Promise<Map<string, KubeObject>> {
  const groups = new Map<string, { apiVersion: string; kind: string; namespace?: string | undefined }>();
  for (const d of items) {
    if (d.waitsFor) continue;
    groups.set(`${d.object.apiVersion}|${d.object.kind}|${d.ref.namespace}`, {
      apiVersion: d.object.apiVersion,
      kind: d.object.kind,
      namespace: d.object.metadata.namespace,
    });
  }
  const byName = new Map(items.map((d) => [`${d.object.kind}|${d.ref.namespace}|${d.ref.name}`, d.id]));
  const live = new Map<string, KubeObject>();
  const lists = await mapLimit([...groups.values()], 4, (g) =>
    client.list(g.apiVersion, g.kind, {
      ...(g.namespace ? { namespace: g.namespace } : {}),
      ...(signal ? { signal } : {}),
    }),
  );
  for (const obj of lists.flat()) {
    const id = byName.get(`${obj.kind}|${obj.metadata.namespace ?? ''}|${obj.metadata.name}`);
    if (id) live.set(id, obj);
  }
  return live;
}

/**
 * The fast path of a no-op sync: Git has not changed this object since the last sync (same
 * desired-state hash), tidegate's apply is on record, and live state still holds every field
 * tidegate sends with the same value. Then an apply would change nothing, and no dry-run is
 * needed. Anything else (a drifted or removed field, a value the apiserver normalised) goes
 * through the dry-run.
 */
function provablyUnchanged(item: PlanItem, opts: PlanOptions): boolean {
  const live = item.live;
  if (!live || opts.previousHashes.get(item.desired.id) !== item.desired.hash) return false;
  if (!live.metadata.managedFields?.some((f) => f.manager === FIELD_MANAGER && f.operation === 'Apply')) return false;
  return containsSubset(live, item.body);
}

/** Server-side dry-run of one object; classifies it or returns the apiserver's refusal. */
export async function dryRunItem(
  item: PlanItem,
  client: KubeClient,
  opts: PlanOptions,
): Promise<PlanItem | ObjectProblem> {
  try {
    const result = await client.apply(item.body, {
      fieldManager: FIELD_MANAGER,
      force: true,
      dryRun: true,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    if (!item.live) return { ...item, action: 'create' };
    if (sameObject(result, item.live)) return { ...item, action: 'unchanged' };
    const drift = opts.previousHashes.get(item.desired.id) === item.desired.hash;
    return {
      ...item,
      action: 'update',
      drift,
      fields: changedPaths(comparable(item.live), comparable(result)),
      ...(opts.keepPlanned ? { planned: result } : {}),
    };
  } catch (err) {
    if (notAboutTheObject(err, opts.signal)) throw err;
    if (err instanceof KubeApiError && err.isImmutable && opts.force && item.live)
      return { ...item, action: 'recreate', fields: err.causes.map((c) => c.field ?? '').filter(Boolean) };
    const message =
      err instanceof KubeApiError && err.isImmutable
        ? `${err.message} (set force: true to recreate it)`
        : errorMessage(err);
    return { ref: item.desired.ref, source: item.desired.source, message };
  }
}

/**
 * Plans a sync: reads live state (one LIST per kind and namespace), removes ignored fields, and
 * dry-runs server-side every object that is not provably unchanged (see provablyUnchanged). Objects whose CRD or namespace this sync creates are
 * "deferred" and dry-run when their stage comes. Throws ApplyError('plan') naming every refused
 * object; nothing has been written then.
 */
export async function plan(
  desired: readonly DesiredObject[],
  client: KubeClient,
  opts: PlanOptions,
): Promise<PlanItem[]> {
  const live = await readLive(desired, client, opts.signal);
  const items: PlanItem[] = desired.map((d) => {
    const current = live.get(d.id);
    const body = current
      ? ignoredPaths(opts.ignore, d.ref).reduce<KubeObject>(
          (o, p) => removePointer(o, p),
          keepGenerated(d, current, opts),
        )
      : d.object;
    return { desired: d, live: current, body, action: d.waitsFor ? 'deferred' : 'create', drift: false, fields: [] };
  });
  const results = await mapLimit(items, opts.concurrency ?? 8, (item) => {
    if (item.action === 'deferred') return Promise.resolve(item);
    if (provablyUnchanged(item, opts)) return Promise.resolve<PlanItem>({ ...item, action: 'unchanged' });
    return dryRunItem(item, client, opts);
  });
  const problems = results.filter((r): r is ObjectProblem => !('desired' in r));
  if (problems.length > 0) throw new ApplyError('plan', problems);
  return results as PlanItem[];
}
