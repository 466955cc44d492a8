export { CONFIG_FILE, TargetNotFoundError, loadConfig, syncRepo, type EngineContext, type RepoSyncRequest } from './sync.js';
export { syncTarget, type TargetSyncInput } from './target-sync.js';
