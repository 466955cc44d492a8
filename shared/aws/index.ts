export { lambdaHandler } from './handler.js';
export { processSqsBatch, type BatchOptions } from './sqs-batch.js';
export { SqsQueue } from './sqs-queue.js';
export { createRuntime, lazyRuntime, type Runtime } from './runtime.js';
