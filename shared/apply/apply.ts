import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeClient } from '../cluster/index.js';
import { waitForHealth } from '../health/index.js';
import { errorMessage, refKey, type Change, type KubeObject } from '../model/index.js';
import { mapLimit } from './concurrency.js';
import { ApplyError, notAboutTheObject, type ObjectProblem } from './errors.js';
import type { Stage } from './ordering.js';
import { FIELD_MANAGER } from './owner.js';
import { dryRunItem, recordedGenerated, type PlanItem, type PlanOptions } from './plan.js';

export interface ApplyOptions extends PlanOptions {
  drift: 'correct' | 'warn';
  /** Upper bound for waiting on CRDs to be established and recreated objects to be gone. */
  settleTimeoutMs?: number;
  /** Called after each object is applied (or found unchanged), with how many are done. */
  onApplied?: (done: number, total: number) => void;
}

export interface ApplyOutcome {
  changes: Change[];
  /** Items now in the cluster as desired (applied or unchanged): what the inventory records. */
  inCluster: PlanItem[];
  /** The object as the apiserver returned it, by id (for health checks). */
  objects: Map<string, KubeObject>;
  error?: ApplyError;
}

/** Polls `check` until it holds, within the timeout. */
export async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(delay, undefined, signal ? { signal } : {});
  }
}

/** New CRDs established, judged by the readiness rules of health/ (Established, names accepted), within the settle bound. */
async function crdsEstablished(client: KubeClient, crds: readonly KubeObject[], opts: ApplyOptions): Promise<void> {
  const read = (o: KubeObject) => client.get(o.apiVersion, o.kind, undefined, o.metadata.name, opts.signal);
  const report = await waitForHealth(crds, read, {
    timeoutMs: opts.settleTimeoutMs ?? 30_000,
    intervalMs: 50,
    signal: opts.signal,
  });
  if (report.status !== 'healthy')
    throw new Error(
      `CRDs not established within ${opts.settleTimeoutMs ?? 30_000} ms: ${report.notReady.map((h) => `${h.ref.name} (${h.message})`).join(', ')}`,
    );
}

function changeOf(item: PlanItem, action: Change['action'], reason?: string): Change {
  return {
    ref: item.desired.ref,
    action,
    ...(reason ? { reason } : {}),
    ...(item.drift ? { drift: true } : {}),
    ...(item.fields.length ? { fields: item.fields } : {}),
  };
}

/** Why an applied object changed, when it is not Git's change: recreated, drift corrected, or a reload it carries. */
function reasonOf(item: PlanItem): string | undefined {
  if (item.action === 'recreate') return 'recreated: an immutable field changed';
  if (item.drift) return 'drift corrected';
  return item.desired.reload ? `reloaded: ${item.desired.reload.join(', ')} changed` : undefined;
}

/** Applies one item; returns its change, or the problem when the apiserver refused it. */
async function applyItem(
  item: PlanItem,
  client: KubeClient,
  opts: ApplyOptions,
  out: ApplyOutcome,
): Promise<ObjectProblem | undefined> {
  if (item.action === 'unchanged') {
    out.changes.push(changeOf(item, 'unchanged'));
    out.inCluster.push(item);
    if (item.live) out.objects.set(item.desired.id, item.live);
    return undefined;
  }
  if (item.action === 'update' && item.drift && opts.drift === 'warn') {
    out.changes.push(changeOf(item, 'skipped', 'drifted from Git; not corrected (drift: warn)'));
    // Not applied: what tidegate applied before stays on record (and the live values are not taken as its own).
    const { generated: _notApplied, ...rest } = item;
    const before = recordedGenerated(opts, item.desired.id);
    out.inCluster.push({ ...rest, ...(before ? { generated: before } : {}) });
    return undefined;
  }
  const signal = opts.signal ? { signal: opts.signal } : {};
  try {
    if (item.action === 'recreate') {
      // Background: the object goes at once and the garbage collector removes its dependents (as kubectl replace --force does).
      await client.delete(
        { ...item.desired.ref, apiVersion: item.body.apiVersion },
        { propagationPolicy: 'Background', ...signal },
      );
      await waitFor(
        async () =>
          (await client.get(
            item.body.apiVersion,
            item.body.kind,
            item.body.metadata.namespace,
            item.body.metadata.name,
            opts.signal,
          )) === undefined,
        opts.settleTimeoutMs ?? 30_000,
        opts.signal,
        `${item.desired.id} to be deleted`,
      );
    }
    const result = await client.apply(item.body, { fieldManager: FIELD_MANAGER, force: true, ...signal });
    out.objects.set(item.desired.id, result);
    out.inCluster.push(item);
    out.changes.push(changeOf(item, item.action === 'create' ? 'created' : 'configured', reasonOf(item)));
    return undefined;
  } catch (err) {
    if (notAboutTheObject(err, opts.signal)) throw err;
    return { ref: item.desired.ref, source: item.desired.source, message: errorMessage(err) };
  }
}

/**
 * After the cluster definitions stage: new CRDs established, and discovery refreshed when anything
 * waits for them. The CRDs that did not settle, as an error; undefined when all did.
 */
async function settleDefinitions(
  client: KubeClient,
  stageItems: readonly PlanItem[],
  anyDeferred: boolean,
  applied: ReadonlyMap<string, KubeObject>,
  opts: ApplyOptions,
): Promise<ApplyError | undefined> {
  const newCrds = stageItems.filter(
    (i) => i.desired.object.kind === 'CustomResourceDefinition' && i.action !== 'unchanged',
  );
  if (newCrds.length === 0 && !anyDeferred) return undefined;
  try {
    if (newCrds.length > 0)
      await crdsEstablished(
        client,
        newCrds.map((c) => applied.get(c.desired.id) ?? c.body),
        opts,
      );
    await client.discover(opts.signal);
    return undefined;
  } catch (err) {
    if (notAboutTheObject(err, opts.signal)) throw err;
    return new ApplyError(
      'apply',
      newCrds.map((c) => ({ ref: c.desired.ref, source: c.desired.source, message: errorMessage(err) })),
    );
  }
}

/**
 * Applies a plan stage by stage with server-side apply (field manager "tidegate", force: Git
 * wins). After the cluster definitions stage, waits for new CRDs to be established, refreshes
 * discovery and dry-runs the objects that waited for them; if any is refused, later stages are
 * not written. Never throws for refused objects: the outcome carries the error and what was applied.
 * Throws when the apiserver stays unreachable or the deadline passes (the queue retries the sync).
 */
export async function applyPlan(
  items: readonly PlanItem[],
  client: KubeClient,
  opts: ApplyOptions,
): Promise<ApplyOutcome> {
  const out: ApplyOutcome = { changes: [], inCluster: [], objects: new Map() };
  let pending = [...items];
  let done = 0;
  for (const stage of [0, 1, 2] as Stage[]) {
    const deferred = pending.filter((i) => i.action === 'deferred');
    if (stage > 0 && deferred.length > 0) {
      const checked = await mapLimit(deferred, opts.concurrency ?? 8, (i) => dryRunItem(i, client, opts));
      const problems = checked.filter((r): r is ObjectProblem => !('desired' in r));
      if (problems.length > 0) return { ...out, error: new ApplyError('apply', problems) };
      const byId = new Map((checked as PlanItem[]).map((i) => [i.desired.id, i]));
      pending = pending.map((i) => byId.get(i.desired.id) ?? i);
    }
    const stageItems = pending.filter((i) => i.desired.stage === stage);
    const problems: ObjectProblem[] = [];
    // Objects within a stage do not depend on each other: apply them with bounded parallelism.
    const applied = async (i: PlanItem): Promise<ObjectProblem | undefined> => {
      const p = await applyItem(i, client, opts, out);
      opts.onApplied?.(++done, items.length);
      return p;
    };
    for (const p of await mapLimit(stageItems, opts.concurrency ?? 8, applied)) if (p) problems.push(p);
    if (problems.length > 0) return { ...out, error: new ApplyError('apply', problems) };
    const unsettled =
      stage === 0 ? await settleDefinitions(client, stageItems, deferred.length > 0, out.objects, opts) : undefined;
    if (unsettled) return { ...out, error: unsettled };
  }
  const order = new Map(items.map((i, n) => [i.desired.id, n]));
  const key = (c: Change): number => order.get(refKey(c.ref)) ?? 0;
  out.changes.sort((a, b) => key(a) - key(b));
  return out;
}
