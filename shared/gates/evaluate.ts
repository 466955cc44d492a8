import type { VerifyMode } from '../config/index.js';
import type { GitHub, RepoName } from '../github/index.js';
import type { Approval, Revision } from '../model/index.js';
import { checkApprovals } from './approvals.js';
import type { EffectiveGate } from './policy.js';
import { windowHold } from './windows.js';

export interface GateInput {
  gate: EffectiveGate;
  revision: Revision;
  now: Date;
  /** Manual approvals recorded for this target. */
  manualApprovals: readonly Approval[];
  /** The GitHub repository the revision comes from (approvals are read there). */
  github?: { client: GitHub; repo: RepoName } | undefined;
  /** Checks the revision's signatures in a mode against the named trusted keys; says why not, or nothing. */
  verify?: ((mode: VerifyMode, keys: string[]) => Promise<string | undefined>) | undefined;
}

export interface GateVerdict {
  /** The first check that holds, in order (windows, signatures, approvals, manual); undefined: the revision may apply. */
  hold?: string;
  /** Sign-offs that let it through, for history. */
  approvals: Approval[];
}

/** Evaluates the gate's checks in order; the first that holds stops the evaluation and says why. */
export async function evaluateGate(input: GateInput): Promise<GateVerdict> {
  const { gate, revision } = input;
  const inWindow = windowHold(gate, input.now);
  if (inWindow) return { hold: inWindow, approvals: [] };
  if (gate.verify) {
    const untrusted = input.verify
      ? await input.verify(gate.verify.mode, gate.verify.keys)
      : 'signature verification is not available here';
    if (untrusted)
      return { hold: `signature required (${gate.verify.mode}, ${gate.verify.from}): ${untrusted}`, approvals: [] };
  }
  const approvals: Approval[] = [];
  if (gate.approvals.count > 0) {
    if (!input.github)
      return {
        hold: `needs ${gate.approvals.count} approval(s) (${gate.approvals.from}), but the repository has no GitHub API access to check them`,
        approvals,
      };
    const branch = revision.ref.replace(/^refs\/heads\//, '');
    const checked = await checkApprovals(
      input.github.client,
      input.github.repo,
      branch,
      revision.sha,
      gate.approvals.count,
    );
    if (checked.hold) return { hold: `${checked.hold} (${gate.approvals.from})`, approvals };
    approvals.push(...checked.approvals);
  }
  if (gate.manual.required) {
    const manual = input.manualApprovals.filter((a) => a.sha === revision.sha);
    if (manual.length === 0)
      return {
        hold: `waiting for a manual approval of ${revision.sha.slice(0, 12)} (${gate.manual.from}): tidegate approve <target> ${revision.sha.slice(0, 12)}`,
        approvals,
      };
    approvals.push(...manual);
  }
  return { approvals };
}
