export { evaluateGate, type GateInput, type GateVerdict } from './evaluate.js';
export { isOpen, signedOff, strictest, type EffectiveGate, type GateSource } from './policy.js';
