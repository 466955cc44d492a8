import type { KubeClient } from '../cluster/index.js';
import { waitForHealth } from '../health/index.js';
import {
  TidegateError,
  errorMessage,
  formatRef,
  isTransient,
  refOf,
  type HookRecord,
  type KubeObject,
} from '../model/index.js';
import type { HelmHook, HookPhase } from '../render/index.js';
import { kindRank } from './ordering.js';
import { FIELD_MANAGER, isOwnedBy } from './owner.js';
import { waitFor } from './apply.js';

/** A hook as the sync runs it: the object (placed as the release's objects are) and its annotations read. */
export interface RunnableHook {
  object: KubeObject;
  source: string;
  hook: HelmHook;
}

export interface HookOptions {
  /** How long each hook may take to complete (the target's timeout). */
  timeoutMs: number;
  /** Annotated on every hook: which target ran it. */
  target: string;
  signal?: AbortSignal | undefined;
}

/** A hook failed (or did not complete in time): nothing after it ran. */
export class HookFailedError extends TidegateError {
  constructor(
    readonly phase: HookPhase,
    readonly ref: string,
    readonly reason: string,
    /** The phase's hooks that ran, this one last. */
    readonly ran: readonly HookRecord[],
  ) {
    super('HookFailed', `${phase} hook ${ref} failed: ${reason}`);
  }
}

/** Annotated on each hook tidegate creates: the target whose sync ran it. */
export const HOOK_OF_ANNOTATION = 'tidegate.dev/hook-of';

/** Helm's order: weight, then name; hooks of one weight and name in the kinds' install order. */
export function hookOrder(a: RunnableHook, b: RunnableHook): number {
  return (
    a.hook.weight - b.hook.weight ||
    (a.object.metadata.name < b.object.metadata.name ? -1 : a.object.metadata.name > b.object.metadata.name ? 1 : 0) ||
    kindRank(a.object.kind) - kindRank(b.object.kind)
  );
}

/** The hooks of a phase, in the order they run. */
export const hooksOf = <T extends RunnableHook>(hooks: readonly T[], phase: HookPhase): T[] =>
  hooks.filter((h) => h.hook.phases.includes(phase)).sort(hookOrder);

/** The hook as created: annotated with the target that runs it (placed by the plan already, as the release's objects are). */
const annotated = (hook: RunnableHook, target: string): KubeObject => ({
  ...hook.object,
  metadata: {
    ...hook.object.metadata,
    annotations: { ...hook.object.metadata.annotations, [HOOK_OF_ANNOTATION]: target },
  },
});

async function remove(client: KubeClient, obj: KubeObject, opts: HookOptions, wait: boolean): Promise<void> {
  const ref = { ...refOf(obj), apiVersion: obj.apiVersion };
  const signal = opts.signal ? { signal: opts.signal } : {};
  await client.delete(ref, { propagationPolicy: 'Background', ...signal });
  if (wait)
    await waitFor(
      async () =>
        (await client.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name, opts.signal)) ===
        undefined,
      opts.timeoutMs,
      opts.signal,
      `${formatRef(refOf(obj))} to be deleted`,
    );
}

/** One hook created and waited for; why it failed, or undefined once it succeeded. */
async function runOne(obj: KubeObject, policies: readonly string[], client: KubeClient, opts: HookOptions) {
  try {
    // A hook never replaces or deletes an object that is not this target's (another target's, or nobody's).
    const live = await client.get(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name, opts.signal);
    if (live && live.metadata.annotations?.[HOOK_OF_ANNOTATION] !== opts.target && !isOwnedBy(live, opts.target))
      return `it exists and is not this target's: a hook never replaces or deletes an object it did not create`;
    if (policies.includes('before-hook-creation')) await remove(client, obj, opts, true);
    const created = await client.apply(obj, { fieldManager: FIELD_MANAGER, force: true, signal: opts.signal });
    const read = (o: KubeObject) =>
      client.get(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name, opts.signal);
    const health = await waitForHealth([created], read, { timeoutMs: opts.timeoutMs, signal: opts.signal });
    const why = health.notReady[0]?.message ?? '';
    if (health.status === 'failed') return why;
    if (health.status !== 'healthy')
      return `not complete within ${Math.round(opts.timeoutMs / 1000)} s (the target's timeout): ${why}`;
    return undefined;
  } catch (err) {
    // The apiserver failing for now, or the deadline: the queue runs the sync (and its hooks) again.
    if (opts.signal?.aborted || isTransient(err)) throw err;
    return errorMessage(err);
  }
}

/**
 * Runs one phase's hooks one after another, as Helm does: each deleted first when its policy says
 * `before-hook-creation` (the default), created, and waited for (a Job complete, a Pod succeeded,
 * anything else ready) within the timeout. Once all succeeded, those whose policy says
 * `hook-succeeded` are deleted, last first (a Job's RBAC outlives the Job). The first that fails ends
 * the phase (HookFailedError): no hook after it is created, it is deleted if its policy says
 * `hook-failed`, and the ones before it if theirs says `hook-succeeded`. Hooks are never part of the
 * target's inventory.
 */
export async function runHooks(
  phase: HookPhase,
  hooks: readonly RunnableHook[],
  client: KubeClient,
  opts: HookOptions,
): Promise<HookRecord[]> {
  const ran: Array<{ record: HookRecord; object: KubeObject; policies: readonly string[] }> = [];
  const cleanUp = async (): Promise<HookRecord[]> => {
    for (const { record, object, policies } of [...ran].reverse()) {
      if (!policies.includes(record.outcome === 'succeeded' ? 'hook-succeeded' : 'hook-failed')) continue;
      await remove(client, object, opts, false);
      record.deleted = true;
    }
    return ran.map((r) => r.record);
  };
  for (const hook of hooksOf(hooks, phase)) {
    const object = annotated(hook, opts.target);
    const policies = hook.hook.deletePolicies;
    const failure = await runOne(object, policies, client, opts);
    const record: HookRecord = {
      phase,
      ref: refOf(object),
      outcome: failure === undefined ? 'succeeded' : 'failed',
      ...(failure !== undefined ? { message: failure } : {}),
    };
    ran.push({ record, object, policies });
    if (failure !== undefined) throw new HookFailedError(phase, formatRef(refOf(object)), failure, await cleanUp());
  }
  return cleanUp();
}
