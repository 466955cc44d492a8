export { evaluateGate, type GateVerdict } from './evaluate.js';
export { isOpen, signedOff, strictest, type GateSource } from './policy.js';
