import { createHash } from 'node:crypto';

/**
 * Label on a preview's namespace: the preview it belongs to (only such a namespace is ever deleted,
 * and it makes the namespace the preview's, so its base target's repository's; see sync/foreign.ts).
 */
export const PREVIEW_LABEL = 'tidegate.dev/preview';

/**
 * The name a pull request's preview of a target is recorded under (its state, Lease and owner
 * labels): `pr-<number>.<target>`. Target names are DNS labels, so the dot keeps a preview apart
 * from every target; a name past the 63 characters a label value holds ends in a hash instead.
 */
export function previewTarget(pullRequest: number, target: string): string {
  const name = `pr-${pullRequest}.${target}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, 54).replace(/[-.]+$/, '')}-${hash}`;
}

/** Whether a recorded name is a preview environment's rather than a target's. */
export const isPreviewTarget = (name: string): boolean => /^pr-\d+\./.test(name);

/**
 * The target a preview name reads as made from (`pr-<number>.<target>`): one previewTarget gives
 * that name for. A name shortened with a hash reads as another (shorter) target's, so this is a
 * last resort: the previews register says whose a preview is.
 */
export function previewBase(name: string): string | undefined {
  const m = /^pr-(\d+)\.(.+)$/.exec(name);
  return m && previewTarget(Number(m[1]), m[2]!) === name ? m[2] : undefined;
}
