import { posix } from 'node:path';

/** Reading the loosely typed specs of Flux objects: a value of the shape asked for, or nothing. */
export const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
export const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
export const list = (v: unknown): Array<Record<string, unknown>> => (Array.isArray(v) ? v.map(rec) : []);

/** A path Flux reads from the source's root ("./apps/production") as a path in the repository. */
export const repoPath = (p: unknown): string =>
  posix
    .normalize(str(p) ?? '.')
    .replace(/^\.\/?$/, '.')
    .replace(/\/$/, '');

/** A source reference (`sourceRef`, `chartRef`): its kind (default given), namespace (default: the referring object's) and name. */
export function refOf(
  ref: unknown,
  from: { namespace: string },
  defaultKind: string,
): { kind: string; namespace: string; name: string } {
  const r = rec(ref);
  return {
    kind: str(r['kind']) ?? defaultKind,
    namespace: str(r['namespace']) ?? from.namespace,
    name: str(r['name']) ?? '',
  };
}
