export {
  HISTORY_LIMIT,
  StateConflictError,
  allTargetStates,
  deleteTargetState,
  encodeState,
  readTargetState,
  statesOfRepo,
  updateTargetState,
  writeTargetState,
  type JudgedFrom,
  type SignedOff,
  type Suspension,
  type TargetState,
  type DeleteHooks,
} from './state.js';
export { LeaseBusyError, acquireLease, withLease, type LeaseOptions } from './lease.js';
export { refuseOtherOwner } from './owner.js';
export { PREVIEWS_CONFIGMAP, readPreviews, updatePreviews, type PreviewEntry } from './previews.js';
export {
  HEARTBEAT_CONFIGMAP,
  newestHeartbeat,
  readHeartbeat,
  recordHeartbeat,
  type HeartbeatMessage,
  type PipelineHeartbeat,
} from './heartbeat.js';
export {
  readReloadRegister,
  readTargetReloads,
  reloadsConfigMap,
  updateTargetReloads,
  type RegisteredHold,
  type ReloadApproval,
  type ReloadRegister,
} from './reload-register.js';
