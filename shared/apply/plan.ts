import { createHash } from 'node:crypto';
import { KubeApiError, type KubeClient } from '../cluster/index.js';
import type { IgnoreRule } from '../config/index.js';
import { errorMessage, type KubeObject } from '../model/index.js';
import { mapLimit } from './concurrency.js';
import { changedPaths, comparable, containsSubset, sameObject } from './diff.js';
import { ApplyError, notAboutTheObject, type ObjectProblem } from './errors.js';
import { removePointer, setAt } from './jsonpointer.js';
import { FIELD_MANAGER, canonicalJson } from './owner.js';
import { ignoredPaths, type DesiredObject } from './prepare.js';
import { hasShape, type RandomField } from '../render/index.js';

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
  /**
   * Digest of the values `body` holds at the chart's generated fields (keepable ones, see keepable):
   * recorded in the inventory with the hash, it is how the next sync knows them as tidegate's.
   */
  generated?: string | undefined;
  /** The object as the server-side dry-run says it would be (kept only with PlanOptions.keepPlanned). */
  planned?: KubeObject | undefined;
}

export interface PlanOptions {
  ignore: readonly IgnoreRule[];
  /** What the last sync recorded by object id (InventoryEntry.h): desired-state hash, and digest of generated values (see inventoryOf). */
  previousHashes: ReadonlyMap<string, string>;
  force: boolean;
  concurrency?: number;
  signal?: AbortSignal | undefined;
  /** Keep each dry-run result on its item (previews show values; a sync does not hold them in memory). */
  keepPlanned?: boolean;
}

/** 128 bits: no client can make another value with the digest of the one tidegate applied. */
const GENERATED_DIGEST_LENGTH = 32;
/** Between the desired-state hash and the digest of the generated values in an inventory entry's `h` (see inventoryOf). */
const GENERATED_SEPARATOR = ':';

/** The value at a path of map keys, own properties only (a key such as `__proto__` that is absent reads as absent). */
function ownValueAt(value: unknown, path: ReadonlyArray<string | number>): unknown {
  return path.reduce<unknown>(
    (node, key) =>
      node !== null && typeof node === 'object' && !Array.isArray(node) && Object.hasOwn(node, key)
        ? (node as Record<string, unknown>)[key]
        : undefined,
    value,
  );
}

/**
 * The generated fields of an object whose live value may be kept: under map keys (a Secret's `data`,
 * an annotation; not in a list such as `env`, whose items move), and not under a Secret's
 * write-only `stringData`, which live state never shows.
 */
function keepable(d: DesiredObject): RandomField[] {
  return (d.random ?? []).filter(
    (f) =>
      f.path.length > 0 &&
      f.path.every((k) => typeof k === 'string') &&
      !(d.object.kind === 'Secret' && f.path[0] === 'stringData'),
  );
}

/**
 * Digest of the values of an object's keepable generated fields in `object` (with their paths): what
 * the inventory records of what tidegate applied there, so that only those values are kept later.
 */
function generatedDigest(d: DesiredObject, object: KubeObject): string | undefined {
  const fields = keepable(d);
  if (fields.length === 0) return undefined;
  const values = fields.map((f) => [f.path, ownValueAt(object, f.path) ?? null]);
  return createHash('sha256').update(canonicalJson(values)).digest('hex').slice(0, GENERATED_DIGEST_LENGTH);
}

/** The desired-state hash and the digest of the generated values the last sync recorded for an object. */
function recorded(opts: Pick<PlanOptions, 'previousHashes'>, id: string): { hash?: string; generated?: string } {
  const h = opts.previousHashes.get(id);
  if (h === undefined) return {};
  const at = h.indexOf(GENERATED_SEPARATOR);
  return at < 0 ? { hash: h } : { hash: h.slice(0, at), generated: h.slice(at + 1) };
}

/**
 * The desired-state hash the last sync recorded for an object (previousHashes holds more: see
 * inventoryOf); compare this, not the map's value, with DesiredObject.hash.
 */
export const recordedHash = (opts: Pick<PlanOptions, 'previousHashes'>, id: string): string | undefined =>
  recorded(opts, id).hash;

/** Whether Git has not changed this object since the last sync (the same desired-state hash). */
const sameAsRecorded = (d: DesiredObject, opts: Pick<PlanOptions, 'previousHashes'>): boolean =>
  recordedHash(opts, d.id) === d.hash;

/** The digest of the generated values recorded at the last sync (what an item that was not applied keeps on record). */
export const recordedGenerated = (opts: Pick<PlanOptions, 'previousHashes'>, id: string): string | undefined =>
  recorded(opts, id).generated;

/** The object without the fields the target's ignore rules name for it. */
const withoutIgnored =
  (d: DesiredObject, opts: PlanOptions) =>
  (o: KubeObject): KubeObject =>
    ignoredPaths(opts.ignore, d.ref).reduce<KubeObject>((x, p) => removePointer(x, p), o);

/**
 * What is sent for an object that exists: the desired object without ignored fields, with the live
 * value of each field the chart generates at random, as long as nothing changed: Git and the chart
 * the same as at the last sync (the same hash), each live value of the shape the chart generates,
 * and the live values together those tidegate applied, by the digest the inventory recorded of them
 * (tidegate-system, which only tidegate writes; a field manager name any client can use is not
 * asked). What an earlier render generated then stays, instead of a new random value at every sync;
 * anything else (a commit, a new chart version, a hand edit under any name, a value inside a list)
 * gets the fresh render, as Git says.
 */
function bodyOf(d: DesiredObject, live: KubeObject, opts: PlanOptions): KubeObject {
  const strip = withoutIgnored(d, opts);
  const fresh = strip(d.object);
  const fields = keepable(d);
  const last = recorded(opts, d.id);
  if (fields.length === 0 || last.hash !== d.hash || last.generated === undefined) return fresh;
  const kept = strip(
    fields.reduce<KubeObject>((o, f) => {
      const value = ownValueAt(live, f.path);
      return hasShape(value, f) ? setAt(o, f.path, value) : o;
    }, d.object),
  );
  return generatedDigest(d, kept) === last.generated ? kept : fresh;
}

/**
 * One LIST per kind and namespace: the live objects the desired set names, by id. A LIST the
 * identity may not make (403: a ServiceAccount outside its namespace) fails the plan naming every
 * object of that kind and namespace, with the apiserver's refusal.
 */
async function readLive(
  items: readonly DesiredObject[],
  client: KubeClient,
  signal?: AbortSignal,
): Promise<Map<string, KubeObject>> {
  const groups = new Map<
    string,
    { apiVersion: string; kind: string; namespace?: string | undefined; items: DesiredObject[] }
  >();
  for (const d of items) {
    if (d.waitsFor) continue;
    const key = `${d.object.apiVersion}|${d.object.kind}|${d.ref.namespace}`;
    const group = groups.get(key) ?? {
      apiVersion: d.object.apiVersion,
      kind: d.object.kind,
      namespace: d.object.metadata.namespace,
      items: [],
    };
    group.items.push(d);
    groups.set(key, group);
  }
  const byName = new Map(items.map((d) => [`${d.object.kind}|${d.ref.namespace}|${d.ref.name}`, d.id]));
  const live = new Map<string, KubeObject>();
  const problems: ObjectProblem[] = [];
  const lists = await mapLimit([...groups.values()], 4, (g) =>
    client
      .list(g.apiVersion, g.kind, {
        ...(g.namespace ? { namespace: g.namespace } : {}),
        ...(signal ? { signal } : {}),
      })
      .catch((err: unknown) => {
        if (!(err instanceof KubeApiError) || err.status !== 403) throw err;
        problems.push(...g.items.map((d) => ({ ref: d.ref, source: d.source, message: err.message })));
        return [];
      }),
  );
  if (problems.length > 0) throw new ApplyError('plan', problems);
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
  if (!live || !sameAsRecorded(item.desired, opts)) return false;
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
    const drift = sameAsRecorded(item.desired, opts) && !item.desired.reload;
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
    const body = current ? bodyOf(d, current, opts) : d.object;
    // Of the values sent, ignored fields left out (sent on create, never kept): what the next sync compares.
    const generated = generatedDigest(d, withoutIgnored(d, opts)(body));
    return {
      desired: d,
      live: current,
      body,
      ...(generated ? { generated } : {}),
      action: d.waitsFor ? 'deferred' : 'create',
      drift: false,
      fields: [],
    };
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
