import type { VerifyMode } from '../config/index.js';
import type { Approval } from '../model/index.js';
import type { EffectiveGate } from './policy.js';
import type { RangeVerdict } from './signoff.js';
import { windowHold } from './windows.js';

export interface GateInput {
  gate: EffectiveGate;
  now: Date;
  /** The change is empty: the candidate is the revision last signed off (a re-sync), only windows apply. */
  unchanged: boolean;
  /** Checks the candidate's signatures in a mode against the named trusted keys; says why not, or nothing. */
  verify?: ((mode: VerifyMode, keys: string[]) => Promise<string | undefined>) | undefined;
  /** Judges the commits of the change (approvals, manual approvals). */
  range?: (() => Promise<RangeVerdict>) | undefined;
}

export interface GateVerdict {
  /** A change window keeps changes out now (re-syncs and drift corrections included). */
  windows?: string | undefined;
  /** Why the change is not signed off: a signature, approvals or a manual approval missing. */
  missing?: string | undefined;
  /** The sign-offs that let it through, for history. */
  approvals: Approval[];
}

/**
 * A gate's verdict on a change: windows (deny wins), then, unless the change is empty, the
 * candidate's signatures and the sign-off of every commit of the change. The first missing sign-off
 * says why.
 */
export async function evaluateGate(input: GateInput): Promise<GateVerdict> {
  const { gate } = input;
  const windows = windowHold(gate, input.now);
  const out = (v: Omit<GateVerdict, 'windows'>): GateVerdict => ({ ...(windows ? { windows } : {}), ...v });
  if (input.unchanged) return out({ approvals: [] });
  if (gate.verify) {
    const untrusted = input.verify
      ? await input.verify(gate.verify.mode, gate.verify.keys)
      : 'signature verification is not available here';
    if (untrusted)
      return out({
        missing: `signature required (${gate.verify.mode}, ${gate.verify.from}): ${untrusted}`,
        approvals: [],
      });
  }
  if (!input.range || (gate.approvals.count === 0 && !gate.manual.required)) return out({ approvals: [] });
  const judged = await input.range();
  return out(judged.missing ? { missing: judged.missing, approvals: [] } : { approvals: judged.approvals });
}
