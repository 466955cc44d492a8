import { createHash } from 'node:crypto';

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
