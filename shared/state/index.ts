export {
  HISTORY_LIMIT, STATE_LIMIT, StateConflictError, StateTooLargeError, StateUnreadableError, encodeState, readTargetState, stateName, statesOfRepo,
  updateTargetState, writeTargetState, type TargetState,
} from './state.js';
export { LeaseBusyError, acquireLease, withLease, type LeaseOptions } from './lease.js';
export { refuseOtherOwner } from './owner.js';
