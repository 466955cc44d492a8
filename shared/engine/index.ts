export { CONFIG_FILE, TargetNotFoundError, loadConfig, syncCheckout, syncRepo, type CheckoutSyncRequest, type EngineContext, type RepoSyncRequest } from './sync.js';
export { syncTarget, type TargetSyncInput } from './target-sync.js';
