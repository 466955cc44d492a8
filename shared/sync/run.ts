import {
  HISTORY_LIMIT,
  StateConflictError,
  updateTargetState,
  writeTargetState,
  type LeaseOptions,
  type TargetState,
} from '../state/index.js';
import { canonicalJson, type Confinement, type PlanItem } from '../apply/index.js';
import type { KubeClient } from '../cluster/index.js';
import {
  hooksDisabled,
  parseDuration,
  serviceAccountOf,
  type LocalSettings,
  type TargetSpec,
  type TenantLockdown,
  type ReloadPolicySetting,
} from '../config/index.js';
import type { HealthReport } from '../health/index.js';
import {
  ENTRY_LIMITS,
  clip,
  countChanges,
  errorMessage,
  type Change,
  type ChartVersion,
  type CommitInfo,
  type HistoryEntry,
  type HookRecord,
  type InventoryEntry,
  type KubeObject,
  type Revision,
  type SyncOutcome,
  type SyncProgress,
  type SyncResult,
} from '../model/index.js';
import { redactText, redactValue, type HookObject } from '../render/index.js';
import type { RegistryCredentials, TrustedKeys } from '../source/index.js';
import { silentLogger, type Logger } from '../telemetry/index.js';
import { ROLL_SETTING, stricterSetting, type ReloadScope, type ReloadStrategy } from '../reload/index.js';
import type { GateVerdict } from '../gates/index.js';
import type { DeleteHooks, JudgedFrom } from '../state/index.js';

/** A gate's verdict on one target's change, with what its state records of it. */
export interface TargetVerdict extends GateVerdict {
  /** Where the target's first change is judged from, recorded at its first sync. */
  judgedFrom?: JudgedFrom | undefined;
  /** The commits of the change: recorded approvals naming one are used up when it applies signed off. */
  consumed: string[];
}

/** A target's sign-off gate, as the sync uses it (see usecases/gate.ts). */
export interface TargetGate {
  /** The paths the target renders at this revision (recorded when the change is signed off). */
  inputs: string[];
  /** The GitOps repository's revision, when the target's files come from another repository or ref. */
  config?: string | undefined;
  /** Judges the change from the target's last signed-off revision to this one (before rendering). */
  judge(state: TargetState): Promise<TargetVerdict>;
  /**
   * Objects the sync would take from other targets, by owner: why their owners' gates hold that
   * (judging the owner's commits and the taker's own since it last signed off), or nothing; throws
   * when it may never be.
   */
  takeovers(
    owners: ReadonlyMap<string, string[]>,
    taker: { state: TargetState; judgedFrom?: JudgedFrom | undefined },
    signal?: AbortSignal,
  ): Promise<string | undefined>;
}

export interface TargetSyncInput {
  spec: TargetSpec;
  /** Directory holding the files of `revision`. */
  dir: string;
  revision: Revision;
  client: KubeClient;
  settings: LocalSettings;
  /** How the reload pass after apply rolls workloads (when the target's reload is enabled). */
  reloadStrategy?: ReloadStrategy;
  /** The deploy-time reload scope (namespaces, ignoreNamespaces, resourceSelector): the pass after apply keeps within it. */
  reloadScope?: ReloadScope | undefined;
  /** The deploy-time reload policy: the floor under the target's (windows, notify, approve). */
  reloadFloor?: ReloadPolicySetting | undefined;
  /** Plan only: dry-run everything, write nothing (what `tidegate diff` shows). */
  dryRun?: boolean;
  /** The commit's author and subject, for history. */
  commit?: CommitInfo | undefined;
  /** The repository the target is declared in: a target name is owned by one repository per cluster. */
  repo?: string | undefined;
  /** The cluster-scoped kinds the repository's targets may apply (deploy-time settings); undefined: every kind. */
  clusterResources?: readonly string[] | undefined;
  /** The repository's tenant lockdown (deploy-time `repositories[].serviceAccount`): its targets apply as ServiceAccounts of one namespace. */
  lockdown?: TenantLockdown | undefined;
  /** A rollback applies a pinned target's revision and pins it there (after it applied). */
  rollback?: { kind: 'rollback' | 'auto-rollback'; by: string; reason: string; forced?: boolean } | undefined;
  /** The target's lease: who takes it, and how long to wait while another writer holds it. */
  lease: Omit<LeaseOptions, 'signal' | 'logger'>;
  /** How far the sync has come (a terminal's progress line). */
  onProgress?: ((p: SyncProgress) => void) | undefined;
  /** Credentials for registries by host (charts from OCI registries). */
  registryCredentials?: RegistryCredentials | undefined;
  /** Trusted keys by name: the cosign public keys a chart's verify names. */
  trustedKeys?: TrustedKeys | undefined;
  /** The objects to apply, once placed (namespace, labels), before the dry-run. */
  onPrepared?:
    | ((
        target: string,
        objects: ReadonlyArray<{ object: KubeObject; source: string }>,
        hooks: readonly HookObject[],
      ) => void)
    | undefined;
  /** When the push behind this sync was received: history records push→applied latency. */
  triggeredAt?: string | undefined;
  /** The files come from an unreviewed head (a pull request's preview): values the target reads from Secrets are never read, results show no values. */
  untrusted?: boolean | undefined;
  /** A preview environment: every object must land in this one namespace, or nothing is applied. */
  confine?: Confinement | undefined;
  /** The target's sign-off gate: a change it does not sign off applies nothing. */
  gate?: TargetGate | undefined;
  signal?: AbortSignal | undefined;
  logger?: Logger;
  now?: () => Date;
}

/** The target's timeout (default 5 minutes): what a wait for its objects, or for one hook, may take. */
export const timeoutOf = (spec: TargetSpec): number => parseDuration(spec.timeout) ?? 300_000;

export const NO_HEALTH: HealthReport = { status: 'unknown', notReady: [] };

/**
 * The inventory entries of items: `h` is the desired-state hash, followed by `:` and the digest of the
 * generated values the item put in the cluster when it has any (read back by plan: only those are kept).
 */
export const inventoryOf = (items: readonly PlanItem[]): InventoryEntry[] =>
  items.map((i) => ({
    id: i.desired.id,
    v: i.body.apiVersion,
    h: i.generated ? `${i.desired.hash}:${i.generated}` : i.desired.hash,
  }));

export function mergeInventory(...lists: InventoryEntry[][]): InventoryEntry[] {
  const byId = new Map<string, InventoryEntry>();
  for (const list of lists) for (const e of list) byId.set(e.id, e);
  return [...byId.values()];
}

export function sameInventory(a: readonly InventoryEntry[], b: readonly InventoryEntry[]): boolean {
  const byId = new Map(a.map((e) => [e.id, e]));
  return a.length === b.length && b.every((e) => byId.get(e.id)?.h === e.h && byId.get(e.id)?.v === e.v);
}

/** How long the final state write may take once the sync's deadline has passed. */
const RECORD_TIMEOUT_MS = 3_000;

/** Outcomes after which the revision is what runs: it becomes lastApplied. */
/** Two outcomes that tell the same (a rollout progressing, then applied, is one "applied"). */
const sameEnd = (a: SyncOutcome, b: SyncOutcome): boolean => {
  const as = (o: SyncOutcome): SyncOutcome => (o === 'progressing' ? 'applied' : o);
  return as(a) === as(b);
};

/**
 * A result beside the entry recorded before it: a rollout that settled since; a failure of this
 * revision the same way as before (recorded for its time, but no news); the same ending again.
 */
function compared(last: HistoryEntry | undefined, res: SyncResult): Pick<SyncResult, 'settled' | 'repeat' | 'seen'> {
  if (last?.revision.sha !== res.revision.sha) return {};
  const settled = last.outcome === 'progressing' && res.outcome !== 'progressing';
  const repeat =
    res.outcome === 'failed' && last.outcome === 'failed' && last.error === clip(res.error ?? '', ENTRY_LIMITS.error);
  return {
    ...(settled ? { settled: true } : {}),
    ...(repeat ? { repeat: true } : {}),
    ...(sameEnd(last.outcome, res.outcome) ? { seen: true } : {}),
  };
}

/** A target's reload policy as the state keeps it: only when it can hold a reload. */
export function recordedPolicy(spec: TargetSpec): ReloadPolicySetting | undefined {
  const { windows, mode, approve } = spec.reload;
  return windows.length || mode !== 'roll' || approve ? { windows, mode, approve } : undefined;
}

/** The reload policy recorded, and when it changes, what it was before (kept, the strictest of all before). */
function reloadPolicyAfter(
  state: TargetState,
  next: ReloadPolicySetting | undefined,
  revision: string,
): Pick<TargetState, 'reload' | 'reloadBefore'> {
  if (canonicalJson(next ?? null) === canonicalJson(state.reload ?? null))
    return { reload: next, reloadBefore: state.reloadBefore };
  const before = stricterSetting(state.reloadBefore?.policy ?? ROLL_SETTING, state.reload ?? ROLL_SETTING);
  const holdsNothing = canonicalJson(before) === canonicalJson(ROLL_SETTING);
  return { reload: next, reloadBefore: holdsNothing ? undefined : { policy: before, revision } };
}

const RUNS = new Set<SyncOutcome>(['applied', 'unchanged', 'progressing']);

/** What else a sync did, for the status page: drifted objects it corrected, workloads the reload pass rolled. */
function activity(res: SyncResult): Pick<HistoryEntry, 'drift' | 'reloads'> {
  const drift = res.changeSet.changes.filter((c) => c.drift && c.action === 'configured').length;
  return { ...(drift ? { drift } : {}), ...(res.reloads?.length ? { reloads: res.reloads.length } : {}) };
}

/** Whether a result tells nothing the last entry of the same revision did not: the same hold or suspension, the same no-op. */
function sameAgain(last: HistoryEntry, res: SyncResult): boolean {
  if (res.outcome === 'held') return last.outcome === 'held' && last.heldFor === res.heldFor;
  if (res.outcome === 'suspended')
    return last.outcome === 'suspended' && last.error === clip(res.error ?? '', ENTRY_LIMITS.error);
  return (
    res.outcome === 'unchanged' &&
    (last.outcome === 'applied' || last.outcome === 'unchanged') &&
    last.health === res.health.status
  );
}

/** Result building and recording for one sync. */
export class SyncRun {
  readonly started: Date;
  private current: TargetState = { inventory: [], history: [] };
  /** Every inventory id this sync has seen in the state (read, or added by it). */
  readonly known = new Set<string>();
  /** The repository chart the render resolved (recorded with the result). */
  chart: ChartVersion | undefined;
  /** Values read from Secrets for this render: a message quoting one (an apiserver refusal) shows *** instead. */
  secrets: readonly string[] = [];
  /** Values read from Secrets were withheld from this render (an unreviewed change): results show no values. */
  withheld = false;
  /** The gate's verdict on this change (undefined: no gate was asked, as for a dry-run). */
  verdict: TargetVerdict | undefined;
  /** The chart's hooks, as rendered: run at their points by the apply, never planned or pruned. */
  hooks: HookObject[] = [];
  /** What a reader of the result should know about how it was made (a preview's chart rendered without lookup). */
  notes: string[] = [];
  /** The hooks this sync ran, in order. */
  ranHooks: HookRecord[] = [];
  /** The digest of the chart's hooks as rendered (recorded once the revision applies). */
  hooksDigest: string | undefined;
  private targetClientOf: KubeClient | undefined;

  /**
   * The client the target's own objects are written and read with: as its ServiceAccount
   * (impersonated) when it names one or the repository has a default, else tidegate's own. Its
   * state, lease and the checks tidegate makes for itself (namespace owners, other repositories'
   * targets) use `input.client`, as tidegate.
   */
  get targetClient(): KubeClient {
    if (!this.targetClientOf) {
      const { spec, client, lockdown } = this.input;
      const sa = serviceAccountOf(spec, lockdown);
      this.targetClientOf = sa ? client.impersonating(sa.user) : client;
    }
    return this.targetClientOf;
  }

  /** A message with every value read from a Secret replaced (values under 4 characters would redact ordinary words, and tell nothing). */
  redact(text: string): string {
    return redactText(text, this.secrets);
  }

  /** A change as results show it: no value read from a Secret in its object's name, paths or values; no values at all when Secret values were withheld. */
  private redactChange(c: Change): Change {
    const r = (t: string) => this.redact(t);
    const { values, ...rest } = c;
    return {
      ...rest,
      ref: { ...c.ref, name: r(c.ref.name), namespace: r(c.ref.namespace) },
      ...(c.reason ? { reason: r(c.reason) } : {}),
      ...(c.fields ? { fields: c.fields.map(r) } : {}),
      ...(values && !this.withheld
        ? {
            values: values.map((v) => ({
              path: r(v.path),
              ...(v.from !== undefined ? { from: redactValue(v.from, this.secrets, r) } : {}),
              ...(v.to !== undefined ? { to: redactValue(v.to, this.secrets, r) } : {}),
            })),
          }
        : {}),
    };
  }

  get state(): TargetState {
    return this.current;
  }

  set state(state: TargetState) {
    this.current = state;
    for (const e of state.inventory) this.known.add(e.id);
  }

  /** @param lost aborts when the lease is lost: from then on nothing is written */
  constructor(
    readonly input: TargetSyncInput,
    private readonly lost?: AbortSignal,
  ) {
    this.started = this.now();
  }

  now(): Date {
    return this.input.now?.() ?? new Date();
  }

  result(outcome: SyncOutcome, changes: Change[], health: HealthReport, error?: unknown): SyncResult {
    return {
      target: this.input.spec.name,
      revision: this.input.revision,
      ...(this.chart ? { chart: this.chart } : {}),
      outcome,
      changeSet: { changes: changes.map((c) => this.redactChange(c)) },
      health,
      ...(error !== undefined ? { error: this.redact(errorMessage(error)) } : {}),
      ...(this.notes.length ? { notes: [...this.notes] } : {}),
      ...(this.ranHooks.length ? { hooks: [...this.ranHooks] } : {}),
      startedAt: this.started.toISOString(),
      durationMs: this.now().getTime() - this.started.getTime(),
    };
  }

  /** A repeated no-op sync (or the same hold) of the same revision is not recorded again. */
  private isRepeat(res: SyncResult, inventory: InventoryEntry[] | undefined): boolean {
    const last = this.state.history.at(-1);
    // A rollback always records (its pin), even to the revision already live.
    if (last?.revision.sha !== this.input.revision.sha || inventory !== undefined || this.input.rollback) return false;
    if (this.signsOff(res) && this.state.signedOff?.revision.sha !== this.input.revision.sha) return false;
    return sameAgain(last, res);
  }

  private entry(res: SyncResult): HistoryEntry {
    const rb = this.input.rollback;
    return {
      revision: this.input.revision,
      ...(res.chart ? { chart: res.chart } : {}),
      ...(this.input.commit ? { commit: this.input.commit } : {}),
      kind: rb?.kind ?? 'sync',
      outcome: res.outcome,
      health: res.health.status,
      counts: countChanges(res.changeSet),
      startedAt: res.startedAt,
      durationMs: res.durationMs,
      ...(res.error ? { error: clip(res.error, ENTRY_LIMITS.error) } : {}),
      ...(rb ? { by: rb.by } : {}),
      ...(rb?.forced ? { forced: true } : {}),
      ...(res.heldFor ? { heldFor: clip(res.heldFor, ENTRY_LIMITS.heldFor) } : {}),
      ...(res.approvals?.length ? { approvals: res.approvals } : {}),
      ...activity(res),
      ...(this.input.triggeredAt && RUNS.has(res.outcome)
        ? { latencyMs: Date.parse(res.startedAt) + res.durationMs - Date.parse(this.input.triggeredAt) }
        : {}),
    };
  }

  /** Whether this result moves the target's signed-off revision here: it ran, is no rollback, and its change was signed off (or it has no gate). */
  private signsOff(res: SyncResult): boolean {
    const { gate, rollback } = this.input;
    return RUNS.has(res.outcome) && !rollback && (!gate || (this.verdict !== undefined && !this.verdict.missing));
  }

  /**
   * What the state keeps of the sign-off: a signed-off change moves the signed-off revision here
   * (with the paths the target rendered), uses up the approvals of its commits (they live on in its
   * history entry) and makes this revision's gate the one that judges the next change (a commit
   * cannot lower it for itself). Before any sign-off, where the first change is judged from.
   */
  private signOffOf(
    res: SyncResult,
    signs: boolean,
  ): (state: TargetState) => Pick<TargetState, 'approvals' | 'signedOff' | 'judgedFrom' | 'gate'> {
    const consumed = new Set(this.verdict?.consumed ?? []);
    const { gate, spec, revision } = this.input;
    if (signs)
      return (state) => ({
        approvals: state.approvals?.filter((a) => !consumed.has(a.sha)),
        signedOff: { revision, at: res.startedAt, inputs: gate?.inputs ?? [], config: gate?.config },
        judgedFrom: undefined,
        gate: spec.gate,
      });
    return (state) => ({
      approvals: state.approvals,
      signedOff: state.signedOff,
      judgedFrom: state.signedOff ? undefined : (state.judgedFrom ?? this.verdict?.judgedFrom),
      gate: state.gate,
    });
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
    const merged = (state: TargetState): InventoryEntry[] =>
      inventory
        ? [...inventory, ...state.inventory.filter((e) => !ours.has(e.id) && !this.known.has(e.id))]
        : state.inventory;
    const pin =
      rb && runs
        ? { revision, reason: clip(rb.reason, ENTRY_LIMITS.pinReason), at: res.startedAt, by: rb.by }
        : undefined;
    const signOff = this.signOffOf(res, this.signsOff(res));
    return (state) => ({
      ...state,
      ...signOff(state),
      inventory: merged(state),
      history: [...state.history, entry].slice(-HISTORY_LIMIT),
      lastApplied: runs ? revision : state.lastApplied,
      lastHealthy: res.health.status === 'healthy' ? revision : state.lastHealthy,
      pin: pin ?? state.pin,
      repo: state.removed ? (this.input.repo ?? state.repo) : (state.repo ?? this.input.repo),
      // What a removal from tidegate.yaml does: deletionPolicy, else (mirrorPrune) the prune setting.
      prune: runs ? spec.deletionPolicy === 'delete' || (spec.deletionPolicy !== 'orphan' && spec.prune) : state.prune,
      serviceAccount: runs ? this.targetClient.actingAs : state.serviceAccount,
      hooks: runs ? this.hooksDigest : state.hooks,
      // A rollback never lowers the reload policy: it keeps the one last applied from the branch.
      ...reloadPolicyAfter(state, runs && !rb ? recordedPolicy(spec) : state.reload, revision.sha),
      deleteHooks: runs ? this.deleteHooks() : state.deleteHooks,
      removed: undefined,
    });
  }

  /** The chart's delete hooks as this revision renders them (none when the target disables them), for its removal. */
  private deleteHooks(): DeleteHooks | undefined {
    const { spec } = this.input;
    // A Secret is not kept among them: the state is a ConfigMap.
    const hooks = this.hooks.filter(
      (h) => h.object.kind !== 'Secret' && h.hook.phases.some((p) => p === 'pre-delete' || p === 'post-delete'),
    );
    if (hooks.length === 0 || hooksDisabled(spec, 'delete')) return undefined;
    return {
      timeoutMs: timeoutOf(spec),
      hooks: hooks.map(({ object, source, hook }) => ({ object, source, hook })),
    };
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
      (this.input.logger ?? silentLogger).warn('state changed by another writer; recording on top of it', {
        target: spec.name,
      });
      this.state = await updateTargetState(client, spec.name, change, signal);
    }
  }

  /** Appends history and writes state; a repeated no-op sync of the same revision writes nothing. */
  async record(res: SyncResult, inventory: InventoryEntry[] | undefined): Promise<SyncResult> {
    if (this.input.dryRun) return res;
    if (this.isRepeat(res, inventory)) return { ...res, repeat: true, seen: true };
    const before = compared(this.state.history.at(-1), res);
    await this.save(this.recorded(res, inventory));
    return { ...res, ...before };
  }
}
