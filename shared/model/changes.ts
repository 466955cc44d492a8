import type { ObjectRef } from './objects.js';

export type ChangeAction = 'created' | 'configured' | 'unchanged' | 'deleted' | 'skipped';

/** What one sync (or plan) did, or would do, to one object. */
export interface Change {
  ref: ObjectRef;
  action: ChangeAction;
  /** Why it was skipped, or what kind of change it was (e.g. "drift corrected", "recreated"). */
  reason?: string;
  /** True when live state differed from Git although Git did not change (an out-of-band edit). */
  drift?: boolean;
  /** Field paths that differ, for configured objects (values are never included). */
  fields?: string[];
  /** Previews only: the changed values (old → new), shortened; a Secret's data is never shown, only that it changed. */
  values?: ValueChange[];
}

export interface ValueChange {
  path: string;
  from?: string;
  to?: string;
}

/** The change set of one sync: one entry per object, in the order the objects were handled. */
export interface ChangeSet {
  changes: Change[];
}

export function countChanges(set: ChangeSet): Record<ChangeAction, number> {
  const counts: Record<ChangeAction, number> = { created: 0, configured: 0, unchanged: 0, deleted: 0, skipped: 0 };
  for (const c of set.changes) counts[c.action]++;
  return counts;
}

export function hasChanges(set: ChangeSet): boolean {
  return set.changes.some((c) => c.action === 'created' || c.action === 'configured' || c.action === 'deleted');
}
