import type { KubeObject } from '../model/index.js';
import type { RenderedObject } from './manifests.js';
import { refKey, refOf } from '../model/index.js';

const escapeKey = (k: string): string => k.replace(/~/g, '~0').replace(/\//g, '~1');
const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * The JSON pointers of the values where a and b differ. Only values are reported: where the
 * structure differs (a list of another length, an object against a value), nothing is, so a
 * random shape never keeps a whole list or mapping from the cluster against Git.
 */
function differingPointers(a: unknown, b: unknown, at = ''): string[] {
  if (a === b) return [];
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length ? a.flatMap((v, i) => differingPointers(v, b[i], `${at}/${i}`)) : [];
  if (isRecord(a) && isRecord(b))
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) =>
      differingPointers(a[k], b[k], `${at}/${escapeKey(k)}`),
    );
  const structured = (v: unknown): boolean => v !== null && typeof v === 'object';
  return structured(a) || structured(b) ? [] : [at];
}

/**
 * Two renders of the same chart and values, compared: the fields that differ were made by a
 * template function that is random or time-dependent (randAlphaNum, uuidv4, genCA, now, ...).
 * They are marked unstable on the first render's objects, so an object that already exists keeps
 * its live value there instead of a new one on every sync.
 */
export function markUnstable(first: RenderedObject[], second: readonly RenderedObject[]): RenderedObject[] {
  const again = new Map(second.map((r) => [refKey(refOf(r.object)), r.object]));
  return first.map((r) => {
    const other: KubeObject | undefined = again.get(refKey(refOf(r.object)));
    const unstable = other ? differingPointers(r.object, other) : [];
    return unstable.length > 0 ? { ...r, unstable } : r;
  });
}
