export { syncTarget, syncTargetLeased } from './sync-target.js';
