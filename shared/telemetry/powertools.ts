import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { Logger } from './logger.js';

/** The engine's Logger backed by Powertools (structured JSON, Lambda context, sampling). Built once per container. */
export function powertoolsLogger(serviceName: string): Logger & { powertools: PowertoolsLogger } {
  const powertools = new PowertoolsLogger({ serviceName });
  return {
    powertools,
    debug: (m, f) => powertools.debug(m, f ?? {}),
    info: (m, f) => powertools.info(m, f ?? {}),
    warn: (m, f) => powertools.warn(m, f ?? {}),
    error: (m, f) => powertools.error(m, f ?? {}),
  };
}
