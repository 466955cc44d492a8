export { evaluateGate, type GateVerdict } from './evaluate.js';
export { isOpen, strictest, type EffectiveGate, type GateSource } from './policy.js';
export { judgeRange, type JudgedCommit, type RangeToJudge, type RangeVerdict } from './signoff.js';
export { windowHold } from './windows.js';
