import { ApplyError, applyPlan, prune, type ObjectProblem } from '../apply/index.js';
import { createdNamespace, parseDuration, type TargetSpec } from '../config/index.js';
import { waitForHealth, type HealthReport } from '../health/index.js';
import {
  ENTRY_LIMITS,
  countChanges,
  hasChanges,
  isTransient,
  refKey,
  type Approval,
  type Change,
  type HistoryEntry,
  type KubeObject,
  type SyncOutcome,
  type SyncResult,
} from '../model/index.js';
import { reloadPass } from '../reload/index.js';
import { encodeState } from '../state/index.js';
import type { Planned } from './plan-target.js';
import { NO_HEALTH, inventoryOf, mergeInventory, sameInventory, type SyncRun } from './run.js';

/** Reloader semantics right after apply: a ConfigMap changed in Git rolls its workloads in this same sync. */
const RELOAD_KINDS = new Set(['ConfigMap', 'Secret', 'Deployment', 'StatefulSet', 'DaemonSet', 'CronJob']);

async function reloadAfterApply(run: SyncRun, changes: readonly Change[]): Promise<NonNullable<SyncResult['reloads']>> {
  const { spec, signal, reloadScope: scope } = run.input;
  const client = run.targetClient;
  // Only where this sync wrote a source or a workload (out-of-band changes are the scheduled
  // pass's job), and only within the deploy-time scope, as the scheduled pass.
  const ignored = new Set(scope?.ignoreNamespaces ?? []);
  const inScope = (ns: string): boolean => (scope?.namespaces?.includes(ns) ?? true) && !ignored.has(ns);
  const namespaces = [
    ...new Set(
      changes
        .filter((c) => (c.action === 'created' || c.action === 'configured') && RELOAD_KINDS.has(c.ref.kind))
        .map((c) => c.ref.namespace)
        .filter((ns) => ns && inScope(ns)),
    ),
  ];
  if (!spec.reload.enabled || namespaces.length === 0) return [];
  const strategy = run.input.reloadStrategy ?? 'annotations';
  const resourceSelector = scope?.resourceSelector;
  return (await reloadPass(client, { namespaces, resourceSelector, strategy, signal })).rolled;
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

/** Staged apply, prune, health, record (with the sign-offs that let the revision through). */
export async function applyTarget(run: SyncRun, planned: Planned, approvals: Approval[]): Promise<SyncResult> {
  const { spec, signal } = run.input;
  // The target's objects are written and read as the target (its ServiceAccount, if any); its state as tidegate.
  const client = run.targetClient;
  assertStateFits(run, planned);
  await reserveInventory(run, planned);
  const progress = run.input.onProgress;
  const outcome = await applyPlan(planned.items, client, {
    ...planned.planOpts,
    drift: spec.drift,
    ...(progress ? { onApplied: (done, total) => progress({ target: spec.name, phase: 'apply', done, total }) } : {}),
  });
  const nsId = targetNamespaceId(spec);
  const applied = inventoryOf(outcome.inCluster).filter((e) => e.id !== nsId);
  if (outcome.error) {
    // Keep every object that may now exist in the inventory, and prune nothing.
    return run.record(
      run.result('failed', outcome.changes, NO_HEALTH, outcome.error),
      mergeInventory(run.state.inventory, applied),
    );
  }
  const pruned = await prune(planned.stale, client, { target: spec.name, signal });
  const changes = [...outcome.changes, ...pruned.changes];
  const inventory = mergeInventory(applied, pruned.retained);
  const reloads = await reloadAfterApply(run, outcome.changes);
  const timeoutMs = spec.wait ? (parseDuration(spec.timeout) ?? 300_000) : 0;
  // A read that fails after its retries, or at the deadline, leaves the object as last seen: the
  // sync then records "progressing" (what was applied is kept) and a later pass looks again.
  const read = (obj: KubeObject) =>
    client.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name, signal).catch((err: unknown) => {
      if (signal?.aborted || isTransient(err)) return obj;
      throw err;
    });
  const health = await waitForHealth([...outcome.objects.values()], read, {
    timeoutMs,
    signal,
    ...(progress ? { onWait: (waitingFor) => progress({ target: spec.name, phase: 'health', waitingFor }) } : {}),
  });
  const { outcome: syncOutcome, error } = verdict(spec, changes, health, pruned.problems);
  let result = run.result(syncOutcome, changes, health, error);
  if (approvals.length > 0) result = { ...result, approvals };
  if (reloads.length > 0)
    result = { ...result, reloads, ...(result.outcome === 'unchanged' ? { outcome: 'applied' as const } : {}) };
  return run.record(
    result,
    result.outcome === 'unchanged' && sameInventory(run.state.inventory, inventory) ? undefined : inventory,
  );
}
