export { syncTarget } from './sync-target.js';
