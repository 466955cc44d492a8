export { evaluateGate, type GateInput, type GateVerdict } from './evaluate.js';
export { isOpen, strictest, type EffectiveGate, type GateSource } from './policy.js';
