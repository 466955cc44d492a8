import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { startFunction as start, type LambdaFunction, type StartOptions } from '../../devenv/lambda.js';
import { testEnv } from './env.js';

export { serverlessYml, type LambdaFunction } from '../../devenv/lambda.js';

/**
 * Starts the built bundle of a function of serverless.yml as Lambda runs it (devenv/lambda.ts), with
 * the test environment's moto (unless other credentials are given) and the kubectl/helm layer.
 */
export const startFunction = (
  dir: string,
  opts: Omit<StartOptions, 'aws' | 'tools'> & { aws?: StartOptions['aws'] },
): Promise<LambdaFunction> => start(dir, { ...opts, aws: opts.aws ?? testEnv().aws, tools: testEnv().tools });

/** The SQS event source mapping's delivery to a started function (see deliverBatch). */
export const asSqsHandler = (fn: LambdaFunction) => (event: SQSEvent) => fn.invoke<SQSBatchResponse>(event);
