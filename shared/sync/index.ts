export { syncTarget, syncTargetLeased } from './sync-target.js';
export type { TargetGate, TargetVerdict } from './run.js';
