import { secretSources } from '../config/index.js';
import { errorMessage, formatRevision, isTransient, type SyncResult } from '../model/index.js';
import { readTargetState, refuseOtherOwner, withLease } from '../state/index.js';
import { silentLogger } from '../telemetry/index.js';
import { applyTarget } from './apply-target.js';
import { changesOf, ownersOf, planTarget, preview, type Planned } from './plan-target.js';
import { NO_HEALTH, SyncRun, type TargetSyncInput } from './run.js';

/** Before planning: a target name owned by another repository, or a pin on another revision, stops the sync. */
function refusal(run: SyncRun): SyncResult | undefined {
  const { input, state } = run;
  // Two repositories declaring the same target name would prune each other's objects.
  try {
    refuseOtherOwner(state, input.repo, input.spec.name);
  } catch (err) {
    return run.result('failed', [], NO_HEALTH, err);
  }
  // An operator's suspension stops every writer but their own rollback.
  const suspended = state.suspended;
  if (suspended && !input.rollback)
    return run.result(
      'suspended',
      [],
      NO_HEALTH,
      `suspended by ${suspended.by} since ${suspended.at} (${suspended.reason}); \`tidegate resume ${input.spec.name}\` lifts it`,
    );
  const pin = state.pin;
  if (pin && pin.revision.sha !== input.revision.sha && !input.rollback) {
    return run.result(
      'pinned',
      [],
      NO_HEALTH,
      `pinned at ${formatRevision(pin.revision)} by ${pin.by} (${pin.reason}) since ${pin.at}; \`tidegate release ${input.spec.name}\` lifts the pin`,
    );
  }
  return undefined;
}

/**
 * Why a planned sync may not apply: a change window (for any change, drift corrections too); for a
 * change Git made (objects created, changed in Git, pruned, taken from another target), a missing
 * sign-off of this target's gate or of the gate of a target it takes objects from.
 */
async function holdOf(run: SyncRun, planned: Planned): Promise<string | undefined> {
  const { input, verdict } = run;
  const changes = changesOf(planned);
  if (changes.git) {
    const takeover = input.gate
      ? await input.gate.takeovers(
          ownersOf(planned, input.spec.name),
          { state: run.state, judgedFrom: verdict?.judgedFrom },
          input.signal,
        )
      : undefined;
    const why = [verdict?.windows, verdict?.missing, takeover].filter(Boolean);
    return why.length ? why.join('; ') : undefined;
  }
  return changes.drift ? verdict?.windows : undefined;
}

/** Errors the queue should retry rather than record: the apiserver failing for now, the deadline, a lost lease. */
const mustRetry = (err: unknown, signal: AbortSignal | undefined): boolean =>
  isTransient(err) || signal?.aborted === true;

/** Judge the change, render and plan it (without Secret values when not signed off), then hold it or apply it. */
async function judgedSync(run: SyncRun): Promise<SyncResult> {
  const { input } = run;
  // The change is judged before anything is rendered: one not signed off is rendered without Secret values.
  run.verdict = input.gate && !input.dryRun ? await input.gate.judge(run.state) : undefined;
  run.withheld =
    secretSources(input.spec).length > 0 && (input.untrusted === true || run.verdict?.missing !== undefined);
  const planned = await planTarget(run, { withholdSecrets: run.withheld });
  if (input.dryRun) return preview(run, planned);
  const hold = await holdOf(run, planned);
  if (hold)
    return run.record({ ...(await preview(run, planned)), outcome: 'held', heldFor: run.redact(hold) }, undefined);
  return applyTarget(run, planned, run.verdict?.approvals ?? []);
}

/** Under the lease: read the state, plan, gate, apply, record. */
async function leasedSync(run: SyncRun): Promise<SyncResult> {
  const { input } = run;
  await input.client.discover(input.signal);
  // A failed read throws: nothing derived from it is ever written.
  run.state = await readTargetState(input.client, input.spec.name, input.signal);
  const refused = refusal(run);
  // A suspension is recorded (once per revision and reason): every writer it stopped says so in history.
  if (refused?.outcome === 'suspended') return run.record(refused, undefined);
  if (refused) return refused;
  try {
    return await judgedSync(run);
  } catch (err) {
    if (mustRetry(err, input.signal)) throw err;
    (input.logger ?? silentLogger).warn('sync failed', {
      target: input.spec.name,
      error: run.redact(errorMessage(err)),
    });
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
  return withLease(input.client, input.spec.name, lease, (signal, lost) => syncTargetLeased(input, signal, lost));
}

/** The same sync for a caller that holds the target's lease already (its signals: aborted at its deadline, and when the lease is lost). */
export function syncTargetLeased(input: TargetSyncInput, signal: AbortSignal, lost: AbortSignal): Promise<SyncResult> {
  return leasedSync(new SyncRun({ ...input, signal }, lost));
}
