import type { KubeClient } from '../cluster/index.js';
import type { ReloadPolicySetting } from '../config/index.js';
import { appliedBy } from '../apply/index.js';
import { refKey, type ObjectRef } from '../model/index.js';
import {
  approvalKey,
  reloadPass,
  reloadPolicy,
  type ReloadOptions,
  type ReloadPolicy,
  type ReloadReport,
} from '../reload/index.js';
import {
  allTargetStates,
  readReloadRegister,
  updateReloadRegister,
  type RegisteredHold,
  type ReloadRegister,
} from '../state/index.js';

export interface PolicyReloadOptions extends Omit<ReloadOptions, 'policyOf' | 'approved'> {
  /** The deploy-time reload policy: the floor of every target's, and the policy of workloads no target applied. */
  floor?: ReloadPolicySetting | undefined;
  /** Where target states and the register are read and written (tidegate's own), when not the client the pass writes workloads with (a target's ServiceAccount). */
  stateClient?: KubeClient | undefined;
  /** A target whose policy is not recorded yet (the sync applying it): its tidegate.yaml's. */
  applying?: { target: string; setting: ReloadPolicySetting } | undefined;
}

export const FLOOR_SOURCE = 'the deploy-time settings';
const targetSource = (target: string): string => `tidegate.yaml of ${target}`;

/** Each target's policy on the cluster (as last applied, under the floor), and the floor's alone. */
async function policies(
  client: KubeClient,
  opts: PolicyReloadOptions,
): Promise<(target: string | undefined) => ReloadPolicy> {
  const floor = { from: FLOOR_SOURCE, setting: opts.floor };
  const byTarget = new Map<string, ReloadPolicy>();
  for (const { target, state } of await allTargetStates(opts.stateClient ?? client, opts.signal))
    byTarget.set(target, reloadPolicy([{ from: targetSource(target), setting: state.reload }, floor]));
  if (opts.applying)
    byTarget.set(
      opts.applying.target,
      reloadPolicy([{ from: targetSource(opts.applying.target), setting: opts.applying.setting }, floor]),
    );
  const floorOnly = reloadPolicy([floor]);
  return (target) => (target ? (byTarget.get(target) ?? floorOnly) : floorOnly);
}

/**
 * The register after a pass: holds and approvals of the workloads the pass decided on are
 * replaced by what it found; those of workloads it did not get to (another namespace, deferred,
 * debounced) are kept. An approval is used up by the roll it released, and void once its reload
 * is no longer held (its sources changed again: that is another reload).
 */
function afterPass(
  register: ReloadRegister,
  report: ReloadReport,
  opts: PolicyReloadOptions,
  now: Date,
): ReloadRegister {
  const waiting = new Set([...(report.deferred ?? []), ...(report.debounced ?? [])].map((d) => refKey(d.workload)));
  const untouched = (workload: string, namespace: string): boolean =>
    waiting.has(workload) || (opts.namespaces !== undefined && !opts.namespaces.includes(namespace));
  const held = report.held ?? [];
  const heldNow = new Set(held.map((h) => approvalKey(h.target, h.digest)));
  const used = new Set(report.rolled.flatMap((r) => (r.approval ? [r.approval] : [])));
  const since = new Map(register.holds.map((h) => [holdId(h), h.since]));
  return {
    holds: [
      ...register.holds.filter((h) => untouched(refKey(h.workload), h.workload.namespace)),
      ...held.map((h) => ({
        ...h,
        since: since.get(holdId(h)) ?? now.toISOString(),
      })),
    ],
    approvals: register.approvals.filter((a) => {
      const k = approvalKey(a.target, a.digest);
      if (used.has(k)) return false;
      return heldNow.has(k) || untouched(refKey(a.workload), a.workload.namespace);
    }),
  };
}

/** One hold: the workload, what it waits with (its digest), and for what. */
const holdId = (h: { workload: ObjectRef; digest: string; kind: string }): string =>
  `${refKey(h.workload)} ${h.digest} ${h.kind}`;

const sameRegister = (a: ReloadRegister, b: ReloadRegister): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * A reload pass under the reload policies: each workload follows the policy of the target that
 * applied it (its owner labels), under the deploy-time floor; a workload no target applied follows
 * the floor. Held reloads and unused approvals are kept in the register (tidegate-system); the
 * holds this pass found first are returned as `fresh` (what to notify).
 */
export async function reloadWithPolicies(
  client: KubeClient,
  opts: PolicyReloadOptions,
): Promise<{ report: ReloadReport; fresh: RegisteredHold[] }> {
  const now = opts.now ?? (() => new Date());
  const states = opts.stateClient ?? client;
  const register = await readReloadRegister(states, opts.signal);
  const policyFor = await policies(client, opts);
  const approved = new Set(register.approvals.map((a) => approvalKey(a.target, a.digest)));
  const { stateClient: _states, applying: _applying, floor: _floor, ...passOpts } = opts;
  const report = await reloadPass(client, {
    ...passOpts,
    now,
    approved,
    policyOf: (workload) => {
      const target = appliedBy(workload.metadata.labels);
      return { target, policy: policyFor(target) };
    },
  });
  const known = new Set(register.holds.map(holdId));
  const next = afterPass(register, report, opts, now());
  if (!sameRegister(next, register))
    await updateReloadRegister(
      states,
      (current) => {
        const changed = afterPass(current, report, opts, now());
        return sameRegister(changed, current) ? undefined : changed;
      },
      opts.signal,
    );
  const fresh = next.holds.filter((h) => !known.has(holdId(h)));
  return { report, fresh };
}
