export { CONFIG_FILE, TargetNotFoundError, loadConfig, syncCheckout, syncRepo, type CheckoutSyncRequest, type EngineContext, type RepoSyncRequest } from './sync.js';
export { syncTarget, type TargetSyncInput } from './target-sync.js';
export { MemoryQueue, SqsQueue, messageKeys, type Queue } from './queue.js';
export { affectedTargets, handleMessage, type WorkOutcome } from './worker.js';
export { pollRepositories, receiveGithubWebhook, receiveRegistryWebhook } from './webhooks.js';
export { processSqsBatch } from './sqs-batch.js';
export { createRuntime, lazyRuntime, type Runtime } from './runtime.js';
