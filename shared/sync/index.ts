export { syncTarget, syncTargetLeased } from './sync-target.js';
export type { TargetGate, TargetVerdict } from './run.js';
export { FLOOR_SOURCE, reloadWithPolicies, type PolicyReloadOptions, type PolicyReloadResult } from './reload.js';
