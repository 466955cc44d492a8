export {
  RELOAD_FIELD_MANAGER,
  RELOAD_REVISION_ANNOTATION,
  RELOAD_STATE_ANNOTATIONS,
  approvalKey,
  reloadPass,
  type HeldReload,
  type ReloadOptions,
  type ReloadReport,
  type ReloadScope,
  type ReloadStrategy,
} from './pass.js';
export { embedReloads } from './embed.js';
export {
  ROLL_SETTING,
  policyHold,
  reloadPolicy,
  stricter,
  stricterSetting,
  type HoldKind,
  type ReloadPolicy,
} from './policy.js';
