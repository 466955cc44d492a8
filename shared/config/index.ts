export { localSettings, type LocalSettings } from './local.js';
export { parseDuration } from './duration.js';
export { configJsonSchema, configSchema, gateSchema, imagePolicySchema, targetSchema, type ChangeWindow, type GatePolicy, type VerifyMode, type IgnoreRule, type ImagePolicySpec, type SourceRef, type TargetSpec, type TidegateConfig } from './schema.js';
export { ConfigError, findCycle, orderTargets, parseConfig, type ConfigProblem } from './load.js';
export { awsEndpoint, awsRegion, deploySettings, deploySettingsSchema, type DeploySettings, type SecretRef } from './deploy.js';
export { SecretStore, type SecretClients } from './secrets.js';
