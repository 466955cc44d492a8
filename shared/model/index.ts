export {
  NETWORK_ERROR_CODES,
  RevisionError,
  TargetNotFoundError,
  TargetOwnedElsewhereError,
  TidegateError,
  UnknownClusterError,
  awsCall,
  errorMessage,
  isNetworkFailure,
  isTidegateError,
  isTransient,
} from './errors.js';
export {
  globPattern,
  normaliseRepoUrl,
  originOf,
  redactUrl,
  sameOrigin,
  tokenReaches,
  type TokenSource,
} from './urls.js';
export {
  entryRef,
  formatRef,
  groupOf,
  isFluxApiVersion,
  parseRefKey,
  refKey,
  refOf,
  type InventoryEntry,
  type KubeObject,
  type ObjectRef,
} from './objects.js';
export { countChanges, hasChanges, type Change, type ValueChange } from './changes.js';
export {
  DIRTY_SUFFIX,
  ENTRY_LIMITS,
  WORKTREE_SUFFIX,
  clip,
  formatRevision,
  isDirtyRevision,
  isLocalRevision,
  shortSha,
  type Approval,
  type ChartVersion,
  type CommitInfo,
  type HealthStatus,
  type HistoryEntry,
  type HookRecord,
  type Pin,
  type ObjectHealth,
  type Revision,
  type SyncOutcome,
  type SyncProgress,
  type SyncResult,
} from './sync.js';
export type {
  ApproveMessage,
  ImageMessage,
  PreviewMessage,
  PreviewSweepMessage,
  PushMessage,
  QueueMessage,
  ReloadMessage,
  RemoveMessage,
  SyncMessage,
} from './messages.js';
export { PREVIEW_LABEL, isPreviewTarget, previewBase, previewTarget } from './previews.js';
export { boundedBody, within } from './http.js';
export { MessageLoad, loadChanged, memoryTurn, withLoad } from './load.js';
