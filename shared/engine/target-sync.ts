import {
  ApplyError, HISTORY_LIMIT, StateConflictError, applyPlan, encodeState, plan, prepare, prune, readTargetState, updateTargetState, valueChanges, withLease, writeTargetState,
  type InventoryEntry, type LeaseOptions, type ObjectProblem, type PlanItem, type PlanOptions, type TargetState,
} from '../apply/index.js';
import type { KubeClient } from '../cluster/index.js';
import { parseDuration, type LocalSettings, type TargetSpec } from '../config/index.js';
import { waitForHealth, type HealthReport } from '../health/index.js';
import {
  ENTRY_LIMITS, TidegateError, clip, countChanges, formatRevision, isTransient, hasChanges, refKey,
  type Approval, type Change, type CommitInfo, type HistoryEntry, type KubeObject, type Revision, type SyncOutcome, type SyncResult,
} from '../model/index.js';
import { render, type RenderedObject } from '../render/index.js';
import { silentLogger, type Logger } from '../telemetry/index.js';
import { reloadPass, type ReloadStrategy } from '../reload/index.js';
import type { GateVerdict } from '../gates/index.js';
import { refuseOtherOwner } from './context.js';

export interface TargetSyncInput {
  spec: TargetSpec;
  /** Directory holding the files of `revision`. */
  dir: string;
  revision: Revision;
  client: KubeClient;
  settings: LocalSettings;
  /** How the reload pass after apply rolls workloads (when the target's reload is enabled). */
  reloadStrategy?: ReloadStrategy;
  /** Plan only: dry-run everything, write nothing (what `tidegate diff` shows). */
  dryRun?: boolean;
  /** The commit's author and subject, for history. */
  commit?: CommitInfo | undefined;
  /** The repository the target is declared in: a target name is owned by one repository per cluster. */
  repo?: string | undefined;
  /** A rollback applies a pinned target's revision and pins it there (after it applied). */
  rollback?: { kind: 'rollback' | 'auto-rollback'; by: string; reason: string; forced?: boolean } | undefined;
  /** The target's lease: who takes it, and how long to wait while another writer holds it. */
  lease: Omit<LeaseOptions, 'signal' | 'logger'>;
  /** The target's sign-off gate, evaluated after planning with the target's state; a hold applies nothing. */
  gate?: ((state: TargetState) => Promise<GateVerdict>) | undefined;
  signal?: AbortSignal | undefined;
  logger?: Logger;
  now?: () => Date;
}

class EmptyRenderError extends TidegateError {
  constructor(target: string) {
    super('EmptyRender', `target ${target} rendered no objects; refusing to prune everything it applied before (set allowEmpty: true to allow)`);
  }
}

const NO_HEALTH: HealthReport = { status: 'unknown', notReady: [] };

const inventoryOf = (items: readonly PlanItem[]): InventoryEntry[] => items.map((i) => ({ id: i.desired.id, v: i.body.apiVersion, h: i.desired.hash }));

function mergeInventory(...lists: InventoryEntry[][]): InventoryEntry[] {
  const byId = new Map<string, InventoryEntry>();
  for (const list of lists) for (const e of list) byId.set(e.id, e);
  return [...byId.values()];
}

function sameInventory(a: readonly InventoryEntry[], b: readonly InventoryEntry[]): boolean {
  const byId = new Map(a.map((e) => [e.id, e]));
  return a.length === b.length && b.every((e) => byId.get(e.id)?.h === e.h && byId.get(e.id)?.v === e.v);
}

/** The namespace a target renders into, created (never pruned) when it does not exist. */
function targetNamespaceObject(spec: TargetSpec): RenderedObject[] {
  return spec.targetNamespace ? [{ object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: spec.targetNamespace } }, source: 'targetNamespace' }] : [];
}

/** How long the final state write may take once the sync's deadline has passed. */
const RECORD_TIMEOUT_MS = 3_000;

/** Outcomes after which the revision is what runs: it becomes lastApplied. */
const RUNS = new Set<SyncOutcome>(['applied', 'unchanged', 'progressing']);

/** Result building and recording for one sync. */
class SyncRun {
  readonly started: Date;
  private current: TargetState = { inventory: [], history: [] };
  /** Every inventory id this sync has seen in the state (read, or added by it). */
  readonly known = new Set<string>();

  get state(): TargetState {
    return this.current;
  }

  set state(state: TargetState) {
    this.current = state;
    for (const e of state.inventory) this.known.add(e.id);
  }

  /** @param lost aborts when the lease is lost: from then on nothing is written */
  constructor(readonly input: TargetSyncInput, private readonly lost?: AbortSignal) {
    this.started = this.now();
  }

  now(): Date {
    return this.input.now?.() ?? new Date();
  }

  result(outcome: SyncOutcome, changes: Change[], health: HealthReport, error?: unknown): SyncResult {
    return {
      target: this.input.spec.name,
      revision: this.input.revision,
      outcome,
      changeSet: { changes },
      health,
      ...(error !== undefined ? { error: error instanceof Error ? error.message : String(error) } : {}),
      startedAt: this.started.toISOString(),
      durationMs: this.now().getTime() - this.started.getTime(),
    };
  }

  /** A repeated no-op sync (or the same hold) of the same revision is not recorded again. */
  private isRepeat(res: SyncResult, inventory: InventoryEntry[] | undefined): boolean {
    const last = this.state.history.at(-1);
    if (last?.revision.sha !== this.input.revision.sha || inventory !== undefined) return false;
    if (res.outcome === 'held') return last.outcome === 'held' && last.heldFor === res.heldFor;
    return res.outcome === 'unchanged' && (last.outcome === 'applied' || last.outcome === 'unchanged') && last.health === res.health.status;
  }

  private entry(res: SyncResult): HistoryEntry {
    const rb = this.input.rollback;
    return {
      revision: this.input.revision, ...(this.input.commit ? { commit: this.input.commit } : {}), kind: rb?.kind ?? 'sync', outcome: res.outcome, health: res.health.status,
      counts: countChanges(res.changeSet), startedAt: res.startedAt, durationMs: res.durationMs, ...(res.error ? { error: clip(res.error, ENTRY_LIMITS.error) } : {}), ...(rb ? { by: rb.by } : {}),
      ...(rb?.forced ? { forced: true } : {}), ...(res.heldFor ? { heldFor: clip(res.heldFor, ENTRY_LIMITS.heldFor) } : {}), ...(res.approvals?.length ? { approvals: res.approvals } : {}),
    };
  }

  /**
   * The state after this result, as a change of whatever state is current (so it can be made again
   * on top of another writer's). A held or failed revision never becomes lastApplied, and only a
   * sync of what the branch says moves the gate ratchet (a rollback never lowers it).
   */
  private recorded(res: SyncResult, inventory: InventoryEntry[] | undefined): (state: TargetState) => TargetState {
    const { revision, spec, rollback: rb } = this.input;
    const runs = RUNS.has(res.outcome);
    const entry = this.entry(res);
    const ours = new Set(inventory?.map((e) => e.id));
    // Objects another writer listed since this sync read the state are kept: this sync never pruned them.
    const merged = (state: TargetState): InventoryEntry[] => (inventory ? [...inventory, ...state.inventory.filter((e) => !ours.has(e.id) && !this.known.has(e.id))] : state.inventory);
    const pin = rb && runs ? { revision, reason: clip(rb.reason, ENTRY_LIMITS.pinReason), at: res.startedAt, by: rb.by } : undefined;
    return (state) => ({
      ...state,
      inventory: merged(state),
      history: [...state.history, entry].slice(-HISTORY_LIMIT),
      lastApplied: runs ? revision : state.lastApplied,
      lastHealthy: res.health.status === 'healthy' ? revision : state.lastHealthy,
      pin: pin ?? state.pin,
      // Manual approvals of a revision that went through are used up (they live on in its history entry).
      approvals: res.approvals?.length && runs ? state.approvals?.filter((a) => a.sha !== revision.sha) : state.approvals,
      gate: runs && !rb ? spec.gate : state.gate,
      repo: state.removed ? (this.input.repo ?? state.repo) : (state.repo ?? this.input.repo),
      prune: runs ? spec.prune : state.prune,
      removed: undefined,
    });
  }

  /**
   * Writes a change of the state with the resourceVersion it was read at. Another writer in between
   * (one that did not take the lease) makes this read the state again and make the change on it.
   */
  async save(change: (state: TargetState) => TargetState): Promise<void> {
    const { client, spec } = this.input;
    // Past the deadline the state is still written (a sync cut short by it records "progressing"), within a bound of its own.
    if (this.lost?.aborted) throw this.lost.reason;
    const signal = this.input.signal?.aborted ? AbortSignal.timeout(RECORD_TIMEOUT_MS) : this.input.signal;
    try {
      this.state = await writeTargetState(client, spec.name, change(this.state), signal);
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
      if (this.lost?.aborted) throw this.lost.reason; // the lease ran out: the other writer is the one that may write
      (this.input.logger ?? silentLogger).warn('state changed by another writer; recording on top of it', { target: spec.name });
      this.state = await updateTargetState(client, spec.name, change, signal);
    }
  }

  /** Appends history and writes state; a repeated no-op sync of the same revision writes nothing. */
  async record(res: SyncResult, inventory: InventoryEntry[] | undefined): Promise<SyncResult> {
    if (this.input.dryRun || this.isRepeat(res, inventory)) return res;
    await this.save(this.recorded(res, inventory));
    return res;
  }
}

interface Planned {
  items: PlanItem[];
  stale: InventoryEntry[];
  planOpts: PlanOptions;
}

/** Render, prepare and dry-run the whole set. Throws on any problem; nothing is written here. */
async function planTarget(run: SyncRun): Promise<Planned> {
  const { spec, client, signal } = run.input;
  const rendered = await render({
    root: run.input.dir, path: spec.path, mode: spec.render, substitute: spec.substitute, helm: spec.helm,
    defaultReleaseName: spec.name, namespace: spec.targetNamespace, settings: run.input.settings, signal,
  });
  (run.input.logger ?? silentLogger).info('rendered', { target: spec.name, mode: rendered.mode, objects: rendered.objects.length });
  if (rendered.objects.length === 0 && !spec.allowEmpty && run.state.inventory.length > 0) throw new EmptyRenderError(spec.name);
  const namespaces = new Set((await client.list('v1', 'Namespace', signal ? { signal } : {})).map((n) => n.metadata.name));
  const { desired, problems } = prepare([...targetNamespaceObject(spec), ...rendered.objects], client, { target: spec.name, targetNamespace: spec.targetNamespace }, namespaces);
  if (problems.length > 0) throw new ApplyError('plan', problems);
  const planOpts: PlanOptions = { ignore: spec.ignore, previousHashes: new Map(run.state.inventory.map((e) => [e.id, e.h])), force: spec.force, signal, ...(run.input.dryRun ? { keepPlanned: true } : {}) };
  const items = await plan(desired, client, planOpts);
  const wanted = new Set(desired.map((d) => d.id));
  return { items, stale: spec.prune ? run.state.inventory.filter((e) => !wanted.has(e.id)) : [], planOpts };
}

/** What `tidegate diff` reports: the plan, and what prune would delete (a dry-run delete). */
async function preview(run: SyncRun, planned: Planned): Promise<SyncResult> {
  const { spec, client, signal } = run.input;
  const pruned = await prune(planned.stale, client, { target: spec.name, dryRun: true, signal });
  const actionOf = (i: PlanItem): Change['action'] => {
    if (i.action === 'unchanged') return 'unchanged';
    if (i.action === 'create' || i.action === 'deferred') return 'created';
    return i.drift && spec.drift === 'warn' ? 'skipped' : 'configured';
  };
  const changes: Change[] = [
    ...planned.items.map((i) => ({
      ref: i.desired.ref,
      action: actionOf(i),
      ...(i.drift ? { drift: true } : {}),
      ...(i.fields.length ? { fields: i.fields } : {}),
      ...(i.planned && i.live ? { values: valueChanges(i.live, i.planned) } : {}),
      ...(i.action === 'deferred' && i.desired.waitsFor ? { reason: `validated once ${i.desired.waitsFor}` } : {}),
    })),
    ...pruned.changes,
  ];
  return run.result(hasChanges({ changes }) ? 'applied' : 'unchanged', changes, NO_HEALTH);
}

/** Reloader semantics right after apply: a ConfigMap changed in Git rolls its workloads in this same sync. */
const RELOAD_KINDS = new Set(['ConfigMap', 'Secret', 'Deployment', 'StatefulSet', 'DaemonSet', 'CronJob']);

async function reloadAfterApply(run: SyncRun, planned: Planned, changes: readonly Change[]): Promise<NonNullable<SyncResult['reloads']>> {
  const { spec, client, signal } = run.input;
  // Only when this sync wrote a source or a workload: out-of-band changes are the scheduled pass's job.
  const touched = changes.some((c) => (c.action === 'created' || c.action === 'configured') && RELOAD_KINDS.has(c.ref.kind));
  const namespaces = [...new Set(planned.items.map((i) => i.desired.ref.namespace).filter(Boolean))];
  if (!spec.reload.enabled || !touched || namespaces.length === 0) return [];
  return (await reloadPass(client, { namespaces, strategy: run.input.reloadStrategy ?? 'annotations', signal })).rolled;
}

/** Outcome and error of an applied sync, from prune problems, health and the change set. */
function verdict(spec: TargetSpec, changes: readonly Change[], health: HealthReport, pruneProblems: ObjectProblem[]): { outcome: SyncOutcome; error?: unknown } {
  if (pruneProblems.length > 0) return { outcome: 'failed', error: new ApplyError('apply', pruneProblems) };
  if (health.status === 'failed') return { outcome: 'failed', error: `health check failed: ${health.notReady.map((h) => `${h.ref.kind}/${h.ref.name}: ${h.message}`).join('; ')}` };
  if (health.status === 'progressing' && spec.wait) return { outcome: 'progressing' };
  return { outcome: hasChanges({ changes: [...changes] }) ? 'applied' : 'unchanged' };
}

/** The namespace created for targetNamespace is never part of the inventory, so never pruned. */
const targetNamespaceId = (spec: TargetSpec): string => (spec.targetNamespace ? refKey({ group: '', kind: 'Namespace', namespace: '', name: spec.targetNamespace }) : '');

/**
 * Write-ahead: before anything new is created, the stored inventory already lists it (with no
 * hash, so nothing is taken as applied). A sync cut off mid-apply (apiserver gone, deadline,
 * Lambda timeout) can then never leave an object behind that no later sync knows to prune.
 */
async function reserveInventory(run: SyncRun, planned: Planned): Promise<void> {
  const { spec } = run.input;
  const known = new Set([...run.state.inventory.map((e) => e.id), targetNamespaceId(spec)]);
  const fresh = inventoryOf(planned.items).filter((e) => !known.has(e.id)).map((e) => ({ ...e, h: '' }));
  if (fresh.length === 0) return;
  await run.save((state) => ({ ...state, inventory: mergeInventory(fresh, state.inventory), repo: state.repo ?? run.input.repo }));
}

/**
 * The state this sync will record must fit its ConfigMap: checked before anything is applied,
 * with every object's hash and the largest history entry it could add (StateTooLargeError).
 */
function assertStateFits(run: SyncRun, planned: Planned): void {
  const { spec, revision } = run.input;
  const long = (n: number): string => 'x'.repeat(n);
  const largest: HistoryEntry = {
    revision, commit: { author: long(ENTRY_LIMITS.commitAuthor), message: long(ENTRY_LIMITS.commitMessage) }, kind: 'sync', outcome: 'progressing', health: 'progressing',
    counts: countChanges({ changes: [] }), startedAt: run.started.toISOString(), durationMs: 0, error: long(ENTRY_LIMITS.error), heldFor: long(ENTRY_LIMITS.heldFor),
  };
  encodeState(spec.name, { ...run.state, inventory: mergeInventory(run.state.inventory, inventoryOf(planned.items)), history: [...run.state.history, largest] });
}

/** Staged apply, prune, health, record (with the sign-offs that let the revision through). */
async function applyTarget(run: SyncRun, planned: Planned, approvals: Approval[]): Promise<SyncResult> {
  const { spec, client, signal } = run.input;
  assertStateFits(run, planned);
  await reserveInventory(run, planned);
  const outcome = await applyPlan(planned.items, client, { ...planned.planOpts, drift: spec.drift });
  const nsId = targetNamespaceId(spec);
  const applied = inventoryOf(outcome.inCluster).filter((e) => e.id !== nsId);
  if (outcome.error) {
    // Keep every object that may now exist in the inventory, and prune nothing.
    return run.record(run.result('failed', outcome.changes, NO_HEALTH, outcome.error), mergeInventory(run.state.inventory, applied));
  }
  const pruned = await prune(planned.stale, client, { target: spec.name, signal });
  const changes = [...outcome.changes, ...pruned.changes];
  const inventory = mergeInventory(applied, pruned.retained);
  const reloads = await reloadAfterApply(run, planned, outcome.changes);
  const timeoutMs = spec.wait ? (parseDuration(spec.timeout) ?? 300_000) : 0;
  // A read that fails after its retries, or at the deadline, leaves the object as last seen: the
  // sync then records "progressing" (what was applied is kept) and a later pass looks again.
  const read = (obj: KubeObject) => client.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name, signal).catch((err: unknown) => {
    if (signal?.aborted || isTransient(err)) return obj;
    throw err;
  });
  const health = await waitForHealth([...outcome.objects.values()], read, { timeoutMs, signal });
  const { outcome: syncOutcome, error } = verdict(spec, changes, health, pruned.problems);
  let result = run.result(syncOutcome, changes, health, error);
  if (approvals.length > 0) result = { ...result, approvals };
  if (reloads.length > 0) result = { ...result, reloads, ...(result.outcome === 'unchanged' ? { outcome: 'applied' as const } : {}) };
  return run.record(result, result.outcome === 'unchanged' && sameInventory(run.state.inventory, inventory) ? undefined : inventory);
}

/** Before planning: a target name owned by another repository, or a pin on another revision, stops the sync. */
function refusal(run: SyncRun): SyncResult | undefined {
  const { input, state } = run;
  // Two repositories declaring the same target name would prune each other's objects.
  try {
    refuseOtherOwner(state, input.repo, input.spec.name);
  } catch (err) {
    return run.result('failed', [], NO_HEALTH, err);
  }
  const pin = state.pin;
  if (pin && pin.revision.sha !== input.revision.sha && !input.rollback) {
    return run.result('pinned', [], NO_HEALTH, `pinned at ${formatRevision(pin.revision)} by ${pin.by} (${pin.reason}) since ${pin.at}; \`tidegate release ${input.spec.name}\` lifts the pin`);
  }
  return undefined;
}

/** Errors the queue should retry rather than record: the apiserver failing for now, the deadline, a lost lease. */
const mustRetry = (err: unknown, signal: AbortSignal | undefined): boolean => isTransient(err) || signal?.aborted === true;

/** Under the lease: read the state, plan, gate, apply, record. */
async function leasedSync(run: SyncRun): Promise<SyncResult> {
  const { input } = run;
  await input.client.discover(input.signal);
  // A failed read throws: nothing derived from it is ever written.
  run.state = await readTargetState(input.client, input.spec.name, input.signal);
  const refused = refusal(run);
  if (refused) return refused;
  try {
    const planned = await planTarget(run);
    if (input.dryRun) return await preview(run, planned);
    const verdict = input.gate ? await input.gate(run.state) : undefined;
    if (verdict?.hold) return await run.record({ ...(await preview(run, planned)), outcome: 'held', heldFor: verdict.hold }, undefined);
    return await applyTarget(run, planned, verdict?.approvals ?? []);
  } catch (err) {
    if (mustRetry(err, input.signal)) throw err;
    (input.logger ?? silentLogger).warn('sync failed', { target: input.spec.name, error: err instanceof Error ? err.message : String(err) });
    // Render and plan failures change nothing in the cluster and keep the inventory as it was.
    return run.record(run.result('failed', [], NO_HEALTH, err), undefined);
  }
}

/**
 * One sync of one target at one revision, against one cluster, holding the target's lease:
 * render → prepare → plan (server-side dry-run of everything) → staged apply → prune → health → record.
 * Never prunes after a failed render or plan; an empty render prunes only with allowEmpty.
 * Permanent failures (render, validation, refused objects) are returned as a result with outcome
 * "failed". What may pass on its own (the apiserver throttling or unreachable after retries, the
 * deadline, the lease busy or lost) is thrown, and nothing is recorded: the queue tries again.
 */
export async function syncTarget(input: TargetSyncInput): Promise<SyncResult> {
  const run = new SyncRun(input);
  if (input.spec.suspend) return run.result('suspended', [], NO_HEALTH);
  if (input.dryRun) return leasedSync(run); // writes nothing: no lease needed
  const lease = { ...input.lease, signal: input.signal, logger: input.logger };
  return withLease(input.client, input.spec.name, lease, (signal, lost) => leasedSync(new SyncRun({ ...input, signal }, lost)));
}
