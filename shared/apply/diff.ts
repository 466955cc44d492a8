import type { KubeObject, ValueChange } from '../model/index.js';
import { canonicalJson } from './owner.js';

const VOLATILE_METADATA = ['resourceVersion', 'managedFields', 'generation', 'creationTimestamp', 'uid', 'selfLink'];

/** The parts of an object that an apply can change: no status, no server bookkeeping. */
export function comparable(obj: KubeObject): Record<string, unknown> {
  const { status: _status, metadata, ...rest } = obj;
  const meta = Object.fromEntries(Object.entries(metadata).filter(([k]) => !VOLATILE_METADATA.includes(k)));
  return { ...rest, metadata: meta };
}

/** Paths (like spec.replicas or data.key) whose values differ, to a bounded depth; values are never returned. */
export function changedPaths(before: unknown, after: unknown, path = '', depth = 0, out: string[] = []): string[] {
  if (canonicalJson(before) === canonicalJson(after)) return out;
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (depth >= 4 || !isObj(before) || !isObj(after)) {
    out.push(path || '.');
    return out;
  }
  for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    changedPaths(before[key], after[key], path ? `${path}.${key}` : key, depth + 1, out);
  }
  return out;
}

/** True when applying would leave the object as it is. */
export const sameObject = (a: KubeObject, b: KubeObject): boolean =>
  canonicalJson(comparable(a)) === canonicalJson(comparable(b));

/** Every field of `want` is in `have` with the same value (arrays element by element, same length). */
export function containsSubset(have: unknown, want: unknown): boolean {
  if (want === null || typeof want !== 'object') return have === want;
  if (Array.isArray(want))
    return Array.isArray(have) && have.length === want.length && want.every((w, i) => containsSubset(have[i], w));
  if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
  const h = have as Record<string, unknown>;
  return Object.entries(want as Record<string, unknown>).every(([k, v]) => containsSubset(h[k], v));
}

const SECRET_FIELDS = new Set(['data', 'stringData']);
const show = (v: unknown): string | undefined => {
  if (v === undefined) return undefined;
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};

/**
 * The changed values between two versions of an object (previews): path, old and new value, to a
 * bounded depth. A Secret's data and stringData are never shown: only that a key changed.
 */
export function valueChanges(before: KubeObject, after: KubeObject): ValueChange[] {
  const secret = after.kind === 'Secret';
  const a = comparable(before);
  const b = comparable(after);
  return changedPaths(a, b).map((path) => {
    if (secret && SECRET_FIELDS.has(path.split('.')[0] ?? '')) return { path, from: '(hidden)', to: '(hidden)' };
    const at = (o: unknown): unknown =>
      path === '.'
        ? o
        : path
            .split('.')
            .reduce<unknown>(
              (x, k) => (x !== null && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined),
              o,
            );
    const from = show(at(a));
    const to = show(at(b));
    return { path, ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) };
  });
}
