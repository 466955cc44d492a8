export { checkApprovals, type ApprovalCheck } from './approvals.js';
export { evaluateGate, type GateInput, type GateVerdict } from './evaluate.js';
export { isOpen, strictest, type EffectiveGate, type GateSource } from './policy.js';
export { windowHold } from './windows.js';
