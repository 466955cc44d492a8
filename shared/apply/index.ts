export { applyPlan } from './apply.js';
export { ConfinementError, confine, type Confinement } from './confine.js';
export { mapLimit } from './concurrency.js';
export { valueChanges } from './diff.js';
export { ApplyError, type ObjectProblem } from './errors.js';
export { MANAGED_BY_LABEL, SYSTEM_NAMESPACE, TARGET_LABEL, canonicalJson, isOwnedBy } from './owner.js';
export { plan, recordedHash, type PlanItem, type PlanOptions } from './plan.js';
export { namespacesOf, prepare } from './prepare.js';
export { prune } from './prune.js';
