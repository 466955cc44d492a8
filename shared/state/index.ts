export {
  HISTORY_LIMIT,
  StateConflictError,
  encodeState,
  readTargetState,
  statesOfRepo,
  updateTargetState,
  writeTargetState,
  type TargetState,
} from './state.js';
export { LeaseBusyError, acquireLease, withLease, type LeaseOptions } from './lease.js';
export { refuseOtherOwner } from './owner.js';
