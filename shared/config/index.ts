export {
  DEFAULT_BUDGETS,
  DEFAULT_RENDER_LIMITS,
  ageIdentities,
  localSettings,
  type LocalSettings,
  type SopsKeys,
  type RenderLimits,
} from './local.js';
export { parseDuration } from './duration.js';
export {
  configJsonSchema,
  createdNamespace,
  fluxEntrySchema,
  hooksDisabled,
  secretSources,
  serviceAccountOf,
  imagePolicySchema,
  targetSchema,
  type ChangeWindow,
  type ReloadPolicySetting,
  type ClusterSource,
  type FluxEntry,
  type HookAction,
  type TargetOrigin,
  type ValuesFrom,
  type FloorPolicy,
  type GatePolicy,
  type PreviewSpec,
  type VerifyMode,
  type IgnoreRule,
  type ImagePolicySpec,
  type SourceRef,
  type TargetSpec,
  type TargetServiceAccount,
  type TenantLockdown,
  type TidegateConfig,
} from './schema.js';
export {
  CONFIG_LIMIT_BYTES,
  ConfigError,
  orderTargets,
  parseConfig,
  targetProblems,
  type ConfigProblem,
} from './load.js';
export {
  NOTIFY_EVENTS,
  awsEndpoint,
  awsRegion,
  settingsJsonSchema,
  type DeploySettings,
  type NotifyEventKind,
  type SecretRef,
} from './deploy.js';
export { SecretStore } from './secrets.js';
export { PACKAGED_SETTINGS, SETTINGS_FILE, checkSettings, deploySettings, settingsSource } from './settings-file.js';
