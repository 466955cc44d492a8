import type { ChangeWindow, GatePolicy } from '../config/index.js';

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
}

export function strictest(sources: readonly GateSource[]): EffectiveGate {
  const gate: EffectiveGate = { approvals: { count: 0, from: '' }, manual: { required: false, from: '' }, deny: [], allow: [] };
  for (const { from, policy } of sources) {
    if (policy.approvals > gate.approvals.count) gate.approvals = { count: policy.approvals, from };
    if (policy.manual && !gate.manual.required) gate.manual = { required: true, from };
    gate.deny.push(...policy.windows.filter((w) => w.deny).map((w) => ({ ...w, from })));
    const allow = policy.windows.filter((w) => w.allow);
    if (allow.length > 0) gate.allow.push({ from, windows: allow });
  }
  return gate;
}

export const isOpen = (gate: EffectiveGate): boolean => gate.approvals.count === 0 && !gate.manual.required && gate.deny.length === 0 && gate.allow.length === 0;
