export { lambdaHandler } from './handler.js';
export { processSqsBatch } from './sqs-batch.js';
