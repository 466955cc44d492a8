import {
  ApplyError,
  HookFailedError,
  applyPlan,
  hooksOf,
  prune,
  runHooks,
  type ApplyOptions,
  type ApplyOutcome,
  type ObjectProblem,
  type PlanItem,
} from '../apply/index.js';
import { createdNamespace, hooksDisabled, type HookAction, type TargetSpec } from '../config/index.js';
import { waitForHealth, type HealthReport } from '../health/index.js';
import {
  ENTRY_LIMITS,
  countChanges,
  hasChanges,
  isTransient,
  parseRefKey,
  refKey,
  refOf,
  type Approval,
  type Change,
  type HistoryEntry,
  type InventoryEntry,
  type KubeObject,
  type SyncOutcome,
  type SyncResult,
} from '../model/index.js';
import { RELOAD_FIELD_MANAGER } from '../reload/index.js';
import { reloadWithPolicies } from './reload.js';
import { encodeState } from '../state/index.js';
import type { HookPhase } from '../render/index.js';
import { changesOf, type Planned } from './plan-target.js';
import {
  NO_HEALTH,
  inventoryOf,
  mergeInventory,
  recordedPolicy,
  sameInventory,
  timeoutOf,
  type SyncRun,
} from './run.js';

/** Reloader semantics right after apply: a ConfigMap changed in Git rolls its workloads in this same sync. */
const RELOAD_KINDS = new Set(['ConfigMap', 'Secret', 'Deployment', 'StatefulSet', 'DaemonSet', 'CronJob']);

/**
 * The namespaces the pass after the apply looks at, within the deploy-time scope: where this sync
 * wrote a source or a workload (out-of-band changes are the scheduled pass's job); and, when the
 * sync changes the target's reload policy, every namespace of its workloads, so that what is
 * pending is held under the stricter of the two before the new policy is recorded.
 */
function reloadNamespaces(run: SyncRun, changes: readonly Change[], policyChanges: boolean): string[] {
  const scope = run.input.reloadScope;
  const ignored = new Set(scope?.ignoreNamespaces ?? []);
  const inScope = (ns: string): boolean => (scope?.namespaces?.includes(ns) ?? true) && !ignored.has(ns);
  const written = changes
    .filter((c) => (c.action === 'created' || c.action === 'configured') && RELOAD_KINDS.has(c.ref.kind))
    .map((c) => c.ref.namespace);
  const workloads = policyChanges
    ? run.state.inventory
        .map((e) => parseRefKey(e.id))
        .filter((r) => RELOAD_KINDS.has(r.kind))
        .map((r) => r.namespace)
    : [];
  return [...new Set([...written, ...workloads].filter((ns) => ns && inScope(ns)))];
}

async function reloadAfterApply(
  run: SyncRun,
  planned: Planned,
  changes: readonly Change[],
): Promise<Pick<SyncResult, 'reloads' | 'reloadsHeld'>> {
  const { spec, signal, reloadScope: scope } = run.input;
  const client = run.targetClient;
  const policyChanges = JSON.stringify(recordedPolicy(spec)) !== JSON.stringify(run.state.reload);
  const namespaces = reloadNamespaces(run, changes, policyChanges);
  if ((!spec.reload.enabled && !policyChanges) || namespaces.length === 0) return {};
  const { report, fresh, unrecorded } = await reloadWithPolicies(client, {
    namespaces,
    resourceSelector: scope?.resourceSelector,
    strategy: run.input.reloadStrategy ?? 'annotations',
    // A target whose reloads are off rolls nothing here: the pass only records what its policy holds.
    ...(spec.reload.enabled ? {} : { maxRolls: 0 }),
    floor: run.input.reloadFloor,
    applying: {
      target: spec.name,
      setting: spec.reload,
      revision: run.input.revision.sha,
      carried: planned.reloadCarried,
    },
    stateClient: run.input.client,
    signal,
  });
  for (const { target, reason } of unrecorded)
    run.input.logger?.warn('held reloads not recorded', { target: target ?? '', reason });
  const isFresh = new Set(fresh.map((h) => `${refKey(h.workload)} ${h.digest}`));
  const held = (report.held ?? [])
    .filter((h) => h.target === spec.name)
    .map(({ workload, sources, digest, kind, reason }) => ({
      workload,
      sources,
      digest,
      kind,
      reason,
      ...(isFresh.has(`${refKey(workload)} ${digest}`) ? { fresh: true } : {}),
    }));
  return { reloads: report.rolled, ...(held.length ? { reloadsHeld: held } : {}) };
}

/** The reload fields that rode in workloads' writes, applied again as the reloader's: same values, no rollout, its own fields. */
async function keepReloaderFields(run: SyncRun, planned: Planned, written: ReadonlySet<string>): Promise<void> {
  for (const patch of planned.reloadPatches) {
    if (!written.has(refKey(refOf(patch)))) continue;
    await run.targetClient.apply(patch, {
      fieldManager: RELOAD_FIELD_MANAGER,
      force: true,
      ...(run.input.signal ? { signal: run.input.signal } : {}),
    });
  }
}

/**
 * The reloads of a sync: those that rode in a workload's own write (reported once it was written;
 * their fields then taken as the reloader's), then what the pass after the apply rolled or holds.
 * Only the fields that have entries.
 */
async function reloadsOf(
  run: SyncRun,
  planned: Planned,
  changes: readonly Change[],
): Promise<Pick<SyncResult, 'reloads' | 'reloadsHeld'>> {
  const written = new Set(changes.filter((c) => c.action === 'configured').map((c) => refKey(c.ref)));
  await keepReloaderFields(run, planned, written);
  const after = await reloadAfterApply(run, planned, changes);
  const reloads = [...planned.reloads.filter((r) => written.has(refKey(r.workload))), ...(after.reloads ?? [])];
  return { ...(reloads.length ? { reloads } : {}), ...(after.reloadsHeld ? { reloadsHeld: after.reloadsHeld } : {}) };
}

/** Outcome and error of an applied sync, from prune problems, health and the change set. */
function verdict(
  spec: TargetSpec,
  changes: readonly Change[],
  health: HealthReport,
  pruneProblems: ObjectProblem[],
): { outcome: SyncOutcome; error?: unknown } {
  if (pruneProblems.length > 0) return { outcome: 'failed', error: new ApplyError('apply', pruneProblems) };
  if (health.status === 'failed')
    return {
      outcome: 'failed',
      error: `health check failed: ${health.notReady.map((h) => `${h.ref.kind}/${h.ref.name}: ${h.message}`).join('; ')}`,
    };
  if (health.status === 'progressing' && spec.wait) return { outcome: 'progressing' };
  return { outcome: hasChanges({ changes: [...changes] }) ? 'applied' : 'unchanged' };
}

/** The namespace created for targetNamespace is never part of the inventory, so never pruned. */
const targetNamespaceId = (spec: TargetSpec): string => {
  const created = createdNamespace(spec);
  return created ? refKey({ group: '', kind: 'Namespace', namespace: '', name: created }) : '';
};

/**
 * Write-ahead: before anything new is created, the stored inventory already lists it (with no
 * hash, so nothing is taken as applied). A sync cut off mid-apply (apiserver gone, deadline,
 * Lambda timeout) can then never leave an object behind that no later sync knows to prune.
 */
async function reserveInventory(run: SyncRun, planned: Planned): Promise<void> {
  const { spec } = run.input;
  const known = new Set([...run.state.inventory.map((e) => e.id), targetNamespaceId(spec)]);
  const fresh = inventoryOf(planned.items)
    .filter((e) => !known.has(e.id))
    .map((e) => ({ ...e, h: '' }));
  if (fresh.length === 0) return;
  await run.save((state) => ({
    ...state,
    inventory: mergeInventory(fresh, state.inventory),
    repo: state.repo ?? run.input.repo,
  }));
}

/**
 * The state this sync will record must fit its ConfigMap: checked before anything is applied,
 * with every object's hash and the largest history entry it could add (StateTooLargeError).
 */
function assertStateFits(run: SyncRun, planned: Planned): void {
  const { spec, revision } = run.input;
  const long = (n: number): string => 'x'.repeat(n);
  const largest: HistoryEntry = {
    revision,
    commit: { author: long(ENTRY_LIMITS.commitAuthor), message: long(ENTRY_LIMITS.commitMessage) },
    kind: 'sync',
    outcome: 'progressing',
    health: 'progressing',
    counts: countChanges({ changes: [] }),
    startedAt: run.started.toISOString(),
    durationMs: 0,
    error: long(ENTRY_LIMITS.error),
    heldFor: long(ENTRY_LIMITS.heldFor),
  };
  encodeState(spec.name, {
    ...run.state,
    inventory: mergeInventory(run.state.inventory, inventoryOf(planned.items)),
    history: [...run.state.history, largest],
  });
}

/**
 * The hook points of this sync, as Helm's action would have them: install for a release never
 * applied, rollback for a tidegate rollback, else upgrade. None for a preview environment, for a
 * sync that changes nothing Git says (a no-op, a drift correction), or when the target disables them.
 */
function hookPoints(run: SyncRun, planned: Planned): { pre: HookPhase; post: HookPhase } | undefined {
  const { spec, rollback, confine } = run.input;
  if (run.hooks.length === 0 || confine) return undefined;
  const installed = run.state.lastApplied !== undefined;
  if (installed && !changesOf(planned).git) return undefined;
  const action: HookAction = rollback ? 'rollback' : installed ? 'upgrade' : 'install';
  if (hooksDisabled(spec, action)) return undefined;
  return { pre: `pre-${action}`, post: `post-${action}` };
}

/** One hook point; the hooks it ran are the result's. A failed hook ends the sync, as HookFailedError. */
async function hookPoint(run: SyncRun, phase: HookPhase): Promise<void> {
  const { spec, signal } = run.input;
  const opts = {
    timeoutMs: timeoutOf(spec),
    target: spec.name,
    signal,
  };
  try {
    run.ranHooks.push(...(await runHooks(phase, run.hooks, run.targetClient, opts)));
  } catch (err) {
    if (err instanceof HookFailedError) run.ranHooks.push(...err.ran);
    throw err;
  }
}

/** What a failed stage of the apply leaves: every object that may now exist stays in the inventory, and nothing is pruned. */
function failedApply(run: SyncRun, changes: Change[], applied: InventoryEntry[], error: unknown): Promise<SyncResult> {
  return run.record(run.result('failed', changes, NO_HEALTH, error), mergeInventory(run.state.inventory, applied));
}

/** Two outcomes of applying parts of one plan, as one. */
const joined = (a: ApplyOutcome, b: ApplyOutcome): ApplyOutcome => ({
  changes: [...a.changes, ...b.changes],
  inCluster: [...a.inCluster, ...b.inCluster],
  objects: new Map([...a.objects, ...b.objects]),
  ...(b.error ? { error: b.error } : {}),
});

/**
 * The plan applied around the pre hooks: as Helm creates the namespace and installs CRDs before
 * pre-install hooks, Namespaces and CRDs are applied first, then the hooks run, then the rest.
 */
async function applyAroundHooks(
  run: SyncRun,
  planned: Planned,
  opts: ApplyOptions,
  pre: HookPhase | undefined,
): Promise<Omit<ApplyOutcome, 'error'> & { error?: ApplyError | HookFailedError }> {
  if (!pre) return applyPlan(planned.items, run.targetClient, opts);
  const first = (i: PlanItem) => FOUNDATION.has(i.desired.object.kind);
  const foundation = await applyPlan(planned.items.filter(first), run.targetClient, opts);
  if (foundation.error) return foundation;
  try {
    await hookPoint(run, pre);
  } catch (err) {
    if (!(err instanceof HookFailedError)) throw err;
    return { ...foundation, error: err };
  }
  return joined(
    foundation,
    await applyPlan(
      planned.items.filter((i) => !first(i)),
      run.targetClient,
      opts,
    ),
  );
}

const FOUNDATION = new Set(['Namespace', 'CustomResourceDefinition']);

/**
 * The health of the applied objects: waited for within the target's timeout when `wait`, else
 * assessed once. A read that fails after its retries, or at the deadline, leaves the object as last
 * seen: the sync then records "progressing" (what was applied is kept) and a later pass looks again.
 */
function healthOf(run: SyncRun, objects: KubeObject[], wait: boolean): Promise<HealthReport> {
  const { spec, signal, onProgress: progress } = run.input;
  const read = (obj: KubeObject) =>
    run.targetClient
      .get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name, signal)
      .catch((err: unknown) => {
        if (signal?.aborted || isTransient(err)) return obj;
        throw err;
      });
  return waitForHealth(objects, read, {
    timeoutMs: wait ? timeoutOf(spec) : 0,
    signal,
    ...(progress ? { onWait: (waitingFor) => progress({ target: spec.name, phase: 'health', waitingFor }) } : {}),
  });
}

/** The post hooks, once the release is healthy: why they failed or did not run, or undefined. */
async function postHooks(run: SyncRun, post: HookPhase, health: HealthReport): Promise<unknown> {
  if (health.status !== 'healthy')
    return `${post} hooks not run: the release is not healthy (${health.notReady.map((h) => `${h.ref.kind}/${h.ref.name}: ${h.message}`).join('; ')})`;
  try {
    await hookPoint(run, post);
    return undefined;
  } catch (err) {
    if (!(err instanceof HookFailedError)) throw err;
    return err;
  }
}

/** Staged apply (between the chart's hooks), prune, health, record (with the sign-offs that let the revision through). */
export async function applyTarget(run: SyncRun, planned: Planned, approvals: Approval[]): Promise<SyncResult> {
  const { spec, signal } = run.input;
  // The target's objects are written and read as the target (its ServiceAccount, if any); its state as tidegate.
  const client = run.targetClient;
  assertStateFits(run, planned);
  await reserveInventory(run, planned);
  const progress = run.input.onProgress;
  const points = hookPoints(run, planned);
  const onApplied = (done: number, total: number) => progress?.({ target: spec.name, phase: 'apply', done, total });
  const outcome = await applyAroundHooks(
    run,
    planned,
    { ...planned.planOpts, drift: spec.drift, onApplied },
    points?.pre,
  );
  const nsId = targetNamespaceId(spec);
  const applied = inventoryOf(outcome.inCluster).filter((e) => e.id !== nsId);
  // Keep every object that may now exist in the inventory, and prune nothing.
  if (outcome.error) return failedApply(run, outcome.changes, applied, outcome.error);
  const pruned = await prune(planned.stale, client, { target: spec.name, signal });
  const changes = [...outcome.changes, ...pruned.changes];
  const inventory = mergeInventory(applied, pruned.retained);
  const reloaded = await reloadsOf(run, planned, outcome.changes);
  // Post hooks run once the release's objects are healthy: the wait is then the target's timeout, wait or not.
  const post = points && hooksOf(run.hooks, points.post).length > 0 ? points.post : undefined;
  const health = await healthOf(run, [...outcome.objects.values()], spec.wait || post !== undefined);
  const postFailed = post ? await postHooks(run, post, health) : undefined;
  if (postFailed) return failedApply(run, changes, inventory, postFailed);
  const { outcome: syncOutcome, error } = verdict(spec, changes, health, pruned.problems);
  // Rolled workloads, or hooks that ran (a change of the hooks alone), are a sync that did something.
  const acted = reloaded.reloads !== undefined || run.ranHooks.length > 0;
  const result = {
    ...run.result(syncOutcome === 'unchanged' && acted ? 'applied' : syncOutcome, changes, health, error),
    ...(approvals.length > 0 ? { approvals } : {}),
    ...reloaded,
  };
  return run.record(
    result,
    result.outcome === 'unchanged' && sameInventory(run.state.inventory, inventory) ? undefined : inventory,
  );
}
