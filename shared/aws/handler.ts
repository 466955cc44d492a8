import type { Context } from 'aws-lambda';
import { errorMessage } from '../model/index.js';
import { powertoolsLogger } from '../telemetry/index.js';
import { lazyRuntime, type Runtime } from './runtime.js';

/**
 * The one shell of every function: the runtime built once per container (deploy-time settings,
 * clients made on first use), the Lambda context in every log line (request id, cold start,
 * function), and an uncaught error logged once with that context before Lambda sees it.
 */
export function lambdaHandler<E, R>(
  service: string,
  fn: (event: E, rt: Runtime, context: Context) => Promise<R>,
): (event: E, context: Context) => Promise<R> {
  const runtime = lazyRuntime(service);
  let fallback: ReturnType<typeof powertoolsLogger> | undefined;
  return async (event, context) => {
    let logger = fallback;
    try {
      const rt = await runtime();
      logger = rt.logger;
      if (context) rt.logger.powertools.addContext(context);
      return await fn(event, rt, context);
    } catch (err) {
      // A runtime that cannot be built (settings invalid) still logs, with the same context.
      logger ??= fallback ??= powertoolsLogger(service);
      if (context) logger.powertools.addContext(context);
      logger.error('invocation failed', { error: errorMessage(err) });
      throw err;
    }
  };
}
