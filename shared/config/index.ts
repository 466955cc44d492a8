export { localSettings, type LocalSettings } from './local.js';
export { parseDuration } from './duration.js';
export { configJsonSchema, configSchema, targetSchema, type IgnoreRule, type SourceRef, type TargetSpec, type TidegateConfig } from './schema.js';
export { ConfigError, findCycle, orderTargets, parseConfig, type ConfigProblem } from './load.js';
