import type { KubeClient } from '../cluster/index.js';
import type { ReloadPolicySetting } from '../config/index.js';
import { appliedBy } from '../apply/index.js';
import { errorMessage, refKey, refOf, type KubeObject, type ObjectRef } from '../model/index.js';
import {
  RELOAD_REVISION_ANNOTATION,
  approvalKey,
  reloadPass,
  reloadPolicy,
  stricter,
  type HeldReload,
  type ReloadOptions,
  type ReloadPolicy,
  type ReloadReport,
} from '../reload/index.js';
import {
  allTargetStates,
  readReloadRegister,
  updateTargetReloads,
  type RegisteredHold,
  type ReloadRegister,
  type TargetState,
} from '../state/index.js';

export interface PolicyReloadOptions extends Omit<ReloadOptions, 'policyOf' | 'approved'> {
  /** The deploy-time reload policy: the floor of every target's, and the policy of workloads no target applied. */
  floor?: ReloadPolicySetting | undefined;
  /** Where target states and the register are read and written (tidegate's own), when not the client the pass writes workloads with (a target's ServiceAccount). */
  stateClient?: KubeClient | undefined;
  /**
   * The target a sync is applying: the policy of the revision it applies counts beside the one
   * last applied (the stricter wins: a commit cannot lower the policy its own reloads follow);
   * `carried`, the policies of the targets it takes workloads over from (by refKey), still count
   * for them.
   */
  applying?:
    | {
        target: string;
        setting: ReloadPolicySetting;
        /** The revision the sync applies (recorded with baselines when nothing of the repository was applied before). */
        revision: string;
        carried?: ReadonlyMap<string, ReloadPolicy> | undefined;
      }
    | undefined;
}

export const FLOOR_SOURCE = 'the deploy-time settings';
const targetSource = (target: string): string => `tidegate.yaml of ${target}`;

type StateOf = { target: string; state: TargetState };

/** When each revision was first applied on the cluster, by any target (its earliest history entry). */
function appliedTimes(states: readonly StateOf[]): Map<string, string> {
  const times = new Map<string, string>();
  for (const { state } of states)
    for (const e of state.history) {
      const t = times.get(e.revision.sha);
      if (!t || e.startedAt < t) times.set(e.revision.sha, e.startedAt);
    }
  return times;
}

/**
 * The revision recorded with a baseline (tidegate.dev/reload-revision): the oldest revision the
 * repository's targets have applied, so that every commit whose change can be pending is after
 * it (one commit is applied by several targets one after the other).
 */
export function settledRevision(
  states: readonly StateOf[],
  repo: string | undefined,
  applying?: string,
): string | undefined {
  const times = appliedTimes(states);
  const applied = states
    .filter(({ state }) => !state.removed && state.repo === repo && state.lastApplied)
    .map(({ state }) => state.lastApplied?.sha as string);
  // Nothing of the repository applied yet: the first sync's revision (all it brings is in the baseline).
  return applied.sort((a, b) => (times.get(a) ?? '').localeCompare(times.get(b) ?? ''))[0] ?? applying;
}

/**
 * The policy a target had before its policy last changed, for a workload that has not rolled
 * since that revision was applied by every target (the revision recorded on it is older, or none):
 * lowering a policy releases only what changes after it.
 */
export function policyBefore(
  target: string,
  state: TargetState,
  workload: KubeObject,
  states: readonly StateOf[],
): ReloadPolicy | undefined {
  const before = state.reloadBefore;
  if (!before) return undefined;
  const times = appliedTimes(states);
  const rolledAt = workload.metadata.annotations?.[RELOAD_REVISION_ANNOTATION];
  const rolled = rolledAt ? times.get(rolledAt) : undefined;
  const changed = times.get(before.revision);
  if (rolled && (!changed || rolled >= changed)) return undefined;
  return reloadPolicy([
    { from: `tidegate.yaml of ${target} before ${before.revision.slice(0, 12)}`, setting: before.policy },
  ]);
}

interface Governing {
  /** Reads every target's state (once): what `of` answers from. */
  read: () => Promise<void>;
  /** The target whose policy a workload follows, if any, that policy, and the revision the target applied (after `read`). */
  of: (workload: KubeObject) => { target?: string | undefined; policy: ReloadPolicy; revision?: string | undefined };
}

type Owners = Map<
  string,
  { policy: ReloadPolicy; listed: Set<string>; revision?: string | undefined; state: TargetState }
>;

/**
 * Which policy each workload follows: that of the target whose inventory lists it and whose owner
 * label it carries (as last applied, under the floor); a workload no live target lists (not
 * applied by tidegate, or left behind by a removed target) follows the floor alone. A label alone
 * decides nothing: another repository's target of the same name does not list the workload.
 */
function governing(client: KubeClient, opts: PolicyReloadOptions): Governing {
  const floorOnly = reloadPolicy([{ from: FLOOR_SOURCE, setting: opts.floor }]);
  let read: Promise<{ byTarget: Owners; states: StateOf[] }> | undefined;
  let owners: { byTarget: Owners; states: StateOf[] } | undefined;
  return {
    read: async () => {
      owners = await (read ??= allTargetStates(opts.stateClient ?? client, opts.signal).then((states) => ({
        byTarget: ownersOf(states, opts),
        states,
      })));
    },
    of: (workload) => {
      if (!owners) throw new Error('the reload policies were asked before the target states were read');
      const { byTarget, states } = owners;
      const target = appliedBy(workload.metadata.labels);
      const owner = target ? byTarget.get(target) : undefined;
      if (!target || !owner?.listed.has(refKey(refOf(workload)))) return { policy: floorOnly };
      const before = policyBefore(target, owner.state, workload, states);
      return { target, policy: before ? stricter(owner.policy, before) : owner.policy, revision: owner.revision };
    },
  };
}

/** Each live target's policy (as last applied, and as the sync applies it, under the floor), the workloads it lists, its settled revision. */
function ownersOf(states: readonly StateOf[], opts: PolicyReloadOptions): Owners {
  const floor = { from: FLOOR_SOURCE, setting: opts.floor };
  const byTarget: Owners = new Map();
  // Once per repository (each reads every state's history), not once per target: the revision
  // falls back to the one applied (`?? applying`) only when the repository applied nothing.
  const settled = new Map<string | undefined, string | undefined>();
  const settledOf = (repo: string | undefined): string | undefined => {
    if (!settled.has(repo)) settled.set(repo, settledRevision(states, repo));
    return settled.get(repo);
  };
  for (const { target, state } of states) {
    if (state.removed) continue;
    const applying = opts.applying?.target === target ? opts.applying : undefined;
    const policy = reloadPolicy([
      ...(applying ? [{ from: targetSource(target), setting: applying.setting }] : []),
      { from: applying ? `the last applied ${targetSource(target)}` : targetSource(target), setting: state.reload },
      floor,
    ]);
    const revision = settledOf(state.repo) ?? applying?.revision;
    byTarget.set(target, { policy, listed: new Set(state.inventory.map((e) => e.id)), revision, state });
  }
  return byTarget;
}

/** One hold: the workload, what it waits with (its digest), and for what. */
const holdId = (h: { workload: ObjectRef; digest: string; kind: string }): string =>
  `${refKey(h.workload)} ${h.digest} ${h.kind}`;

const sameRegister = (a: ReloadRegister, b: ReloadRegister): boolean => JSON.stringify(a) === JSON.stringify(b);

/** A target's reloads that wait for a later pass (debounced, deferred), as holds would show them. */
function waitsOf(
  report: ReloadReport,
  target: string | undefined,
): Array<Pick<RegisteredHold, 'workload' | 'target' | 'sources' | 'reason'>> {
  const mine = (t: string | undefined): boolean => (t || undefined) === target;
  return [
    ...(report.debounced ?? [])
      .filter((d) => mine(d.target))
      .map((d) => ({
        workload: d.workload,
        target,
        sources: d.sources,
        reason: `changed within reload.debounce: rolls once after ${d.until}`,
      })),
    ...(report.deferred ?? [])
      .filter((d) => mine(d.target))
      .map((d) => ({ workload: d.workload, target, sources: [], reason: d.reason })),
  ];
}

/**
 * One target's register after a pass: holds and approvals of the workloads the pass decided on are
 * replaced by what it found; those of workloads it did not get to (another namespace, deferred,
 * debounced) are kept. A hold keeps when it started, and the policy it is held under. An approval
 * is used up by the roll it released, and void once its reload is no longer held (its sources
 * changed again: that is another reload).
 */
function afterPass(
  register: ReloadRegister,
  target: string | undefined,
  held: readonly HeldReload[],
  report: ReloadReport,
  opts: PolicyReloadOptions,
  now: Date,
): ReloadRegister {
  const waiting = waitsOf(report, target);
  const isWaiting = new Set(waiting.map((w) => refKey(w.workload)));
  const untouched = (w: ObjectRef): boolean =>
    isWaiting.has(refKey(w)) || (opts.namespaces !== undefined && !opts.namespaces.includes(w.namespace));
  const heldNow = new Set(held.map((h) => approvalKey(h.target, h.digest)));
  const used = new Set(report.rolled.flatMap((r) => (r.approval ? [r.approval] : [])));
  const before = new Map(register.holds.map((h) => [holdId(h), h]));
  // A reload that waits for a later pass: shown as waiting unless a hold of it is kept already.
  const kept = register.holds.filter((h) => untouched(h.workload) && h.kind !== 'waiting');
  const shown = new Set(kept.map((h) => refKey(h.workload)));
  const waits = waiting
    .filter((w) => !shown.has(refKey(w.workload)))
    .map((w): RegisteredHold => ({
      ...w,
      digest: '',
      kind: 'waiting',
      since: before.get(holdId({ ...w, digest: '', kind: 'waiting' }))?.since ?? now.toISOString(),
    }));
  return {
    holds: [
      ...kept,
      ...register.holds.filter(
        (h) => untouched(h.workload) && h.kind === 'waiting' && !isWaiting.has(refKey(h.workload)),
      ),
      ...waits,
      ...held.map((h): RegisteredHold => ({ ...h, since: before.get(holdId(h))?.since ?? now.toISOString() })),
    ],
    approvals: register.approvals.filter((a) => {
      const k = approvalKey(a.target, a.digest);
      return !used.has(k) && (heldNow.has(k) || untouched(a.workload));
    }),
  };
}

/** A hold a policy made (not a reload waiting for a later pass). */
export type HeldNow = RegisteredHold & { kind: HeldReload['kind'] };

export interface PolicyReloadResult {
  report: ReloadReport;
  /** Holds this pass found first (what to notify). */
  fresh: HeldNow[];
  /** Targets whose register could not be written (the pass itself went through): why. */
  unrecorded: Array<{ target: string | undefined; reason: string }>;
}

/**
 * A reload pass under the reload policies: each workload follows the policy of the target that
 * applied it, under the deploy-time floor (see governing). Held reloads and unused approvals are
 * kept in one register per target (tidegate-system); the holds this pass found first are returned
 * as `fresh`. A register that cannot be written is reported, never a reason to fail the pass.
 */
export async function reloadWithPolicies(client: KubeClient, opts: PolicyReloadOptions): Promise<PolicyReloadResult> {
  const now = opts.now ?? (() => new Date());
  const states = opts.stateClient ?? client;
  const register = await readReloadRegister(states, opts.signal);
  // Read only when the pass asks a policy (see ReloadOptions.preparePolicies): most passes after a
  // sync find every workload's reload already applied with it, and decide nothing.
  const governed = governing(client, opts);
  const { stateClient: _states, applying: _applying, floor: _floor, ...passOpts } = opts;
  // A held reload stays under the policy it was held under while its sources stay so (the same
  // digest): lowering the policy releases only later changes. A workload taken over keeps the
  // policy of the target it came from for this sync.
  const heldUnder = new Map(
    register.holds.flatMap((h) => (h.policy ? [[`${refKey(h.workload)} ${h.digest}`, h.policy] as const] : [])),
  );
  const carried = (ref: ObjectRef, digest: string): ReloadPolicy | undefined => {
    const found = [heldUnder.get(`${refKey(ref)} ${digest}`), opts.applying?.carried?.get(refKey(ref))].filter(
      (p): p is ReloadPolicy => p !== undefined,
    );
    return found.length ? found.reduce(stricter) : undefined;
  };
  const report = await reloadPass(client, {
    ...passOpts,
    now,
    approved: new Set(register.approvals.map((a) => approvalKey(a.target, a.digest))),
    preparePolicies: governed.read,
    policyOf: governed.of,
    carried,
  });
  const known = new Set(register.holds.map(holdId));
  const targets = new Set([
    ...register.holds.map((h) => h.target),
    ...register.approvals.map((a) => a.target),
    ...(report.held ?? []).map((h) => h.target),
    ...(report.debounced ?? []).map((d) => d.target),
    ...(report.deferred ?? []).map((d) => d.target),
  ]);
  const fresh: HeldNow[] = [];
  const unrecorded: PolicyReloadResult['unrecorded'] = [];
  for (const target of targets) {
    const own = <T extends { target?: string | undefined }>(list: readonly T[]): T[] =>
      list.filter((x) => (x.target || undefined) === (target || undefined));
    const held = own(report.held ?? []);
    const mine = { holds: own(register.holds), approvals: own(register.approvals) };
    const next = afterPass(mine, target || undefined, held, report, opts, now());
    fresh.push(...next.holds.filter((h): h is HeldNow => h.kind !== 'waiting' && !known.has(holdId(h))));
    if (sameRegister(next, mine)) continue;
    try {
      await updateTargetReloads(
        states,
        target || undefined,
        (current) => {
          const changed = afterPass(current, target || undefined, held, report, opts, now());
          return sameRegister(changed, current) ? undefined : changed;
        },
        opts.signal,
      );
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      unrecorded.push({ target, reason: errorMessage(err) });
    }
  }
  return { report, fresh, unrecorded };
}
