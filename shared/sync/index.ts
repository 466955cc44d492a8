export { syncTarget } from './sync-target.js';
export type { TargetSyncInput } from './run.js';
