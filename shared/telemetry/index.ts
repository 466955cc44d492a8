export { jsonLogger, silentLogger, type Logger } from './logger.js';
export { powertoolsLogger } from './powertools.js';
export { powertoolsMetrics, type MetricsSink, type SyncMeasure } from './metrics.js';
