export type { EngineContext } from './context.js';
export { loadConfig, headTarget } from './repo-config.js';
export { syncCheckout, syncRepo } from './sync-repo.js';
export { MemoryQueue, messageKeys, type Queue } from './queue.js';
export { handleMessage, type WorkOutcome } from './worker.js';
export { pollRepositories, receiveGithubWebhook, receiveRegistryWebhook } from './webhooks.js';
export { release, rollback } from './rollback.js';
export { approve } from './approve.js';
export { recover } from './recover.js';
