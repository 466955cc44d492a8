export { jsonLogger, silentLogger, type Logger } from './logger.js';
export { powertoolsLogger } from './powertools.js';
