import type { ChangeWindow, GatePolicy, VerifyMode } from '../config/index.js';

/** Where a gate comes from: the revision's tidegate.yaml, the last applied one's, or the cluster's floor. */
export interface GateSource {
  from: string;
  policy: GatePolicy;
}

/** The strictest combination of every source: no source can lower what another requires. */
export interface EffectiveGate {
  approvals: { count: number; from: string };
  manual: { required: boolean; from: string };
  /** Deny windows of every source. */
  deny: Array<ChangeWindow & { from: string }>;
  /** Per source that sets allow windows: the sync must fall inside one of them, for each such source. */
  allow: Array<{ from: string; windows: ChangeWindow[] }>;
  /** Signature verification: the union of the sources' modes (HEAD + Tag = TagAndHEAD); the key names of the most trusted source naming any. */
  verify?: { mode: VerifyMode; keys: string[]; from: string } | undefined;
}

/**
 * Modes only add up (HEAD + Tag = TagAndHEAD). The trusted keys are those of the most trusted
 * source that sets verify (sources run from least to most trusted): a revision cannot add a key to
 * the set it is verified against once the last applied tidegate.yaml or the floor names keys.
 */
function stronger(a: EffectiveGate['verify'], b: GatePolicy['verify'], from: string): EffectiveGate['verify'] {
  if (!b) return a;
  if (!a) return { ...b, from };
  const modes = new Set([a.mode, b.mode].flatMap((m) => (m === 'TagAndHEAD' ? ['Tag', 'HEAD'] : [m])));
  const mode = modes.size === 2 ? 'TagAndHEAD' : b.mode;
  return { mode, keys: b.keys, from: mode === b.mode ? from : `${a.from} and ${from}` };
}

/** Sources run from least to most trusted: the revision's tidegate.yaml, the last applied one's, the floor. */
export function strictest(sources: readonly GateSource[]): EffectiveGate {
  const gate: EffectiveGate = {
    approvals: { count: 0, from: '' },
    manual: { required: false, from: '' },
    deny: [],
    allow: [],
  };
  for (const { from, policy } of sources) {
    if (policy.approvals > gate.approvals.count) gate.approvals = { count: policy.approvals, from };
    if (policy.manual && !gate.manual.required) gate.manual = { required: true, from };
    gate.deny.push(...policy.windows.filter((w) => w.deny).map((w) => ({ ...w, from })));
    const allow = policy.windows.filter((w) => w.allow);
    if (allow.length > 0) gate.allow.push({ from, windows: allow });
    gate.verify = stronger(gate.verify, policy.verify, from);
  }
  return gate;
}

export const isOpen = (gate: EffectiveGate): boolean =>
  gate.approvals.count === 0 &&
  !gate.manual.required &&
  gate.deny.length === 0 &&
  gate.allow.length === 0 &&
  !gate.verify;
