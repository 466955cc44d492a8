export { applyPlan, type ApplyOptions, type ApplyOutcome } from './apply.js';
export { changedPaths, comparable, sameObject, valueChanges } from './diff.js';
export { ApplyError, type ObjectProblem } from './errors.js';
export {
  HISTORY_LIMIT, STATE_LIMIT, StateConflictError, StateTooLargeError, StateUnreadableError, encodeState, entryRef, readTargetState, repoLabel, stateName, statesOfRepo,
  updateTargetState, writeTargetState, type InventoryEntry, type TargetState,
} from './state.js';
export { DEFAULT_LEASE_SECONDS, LeaseBusyError, LeaseLostError, acquireLease, isExpired, withLease, type HeldLease, type LeaseOptions } from './lease.js';
export { removePointer } from './jsonpointer.js';
export { STAGE_NAMES, compareForApply, stageOf, type Stage } from './ordering.js';
export { FIELD_MANAGER, MANAGED_BY_LABEL, PRUNE_ANNOTATION, SYSTEM_NAMESPACE, TARGET_LABEL, canonicalJson, desiredHash, isOwnedBy, ownerLabels } from './owner.js';
export { dryRunItem, plan, type PlanAction, type PlanItem, type PlanOptions } from './plan.js';
export { ignoredPaths, prepare, type DesiredObject, type PrepareOptions } from './prepare.js';
export { prune, type PruneOutcome } from './prune.js';
export { mapLimit } from './concurrency.js';
