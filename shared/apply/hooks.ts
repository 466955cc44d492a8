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
import { FIELD_MANAGER } from './owner.js';
import { waitFor } from './apply.js';

/** A hook as the sync runs it: the object (placed in the release's namespace) and its annotations read. */
export interface RunnableHook {
  object: KubeObject;
  source: string;
  hook: HelmHook;
}

export interface HookOptions {
  /** The release's namespace: a namespaced hook without one is created there, as Helm does. */
  namespace: string;
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

/** Helm's order: weight, then the kind's install order, then the name. */
export function hookOrder(a: RunnableHook, b: RunnableHook): number {
  return (
    a.hook.weight - b.hook.weight ||
    kindRank(a.object.kind) - kindRank(b.object.kind) ||
    a.object.metadata.name.localeCompare(b.object.metadata.name)
  );
}

/** The hooks of a phase, in the order they run. */
export const hooksOf = <T extends RunnableHook>(hooks: readonly T[], phase: HookPhase): T[] =>
  hooks.filter((h) => h.hook.phases.includes(phase)).sort(hookOrder);

function placed(hook: RunnableHook, client: KubeClient, opts: HookOptions): KubeObject {
  const info = client.resourceFor(hook.object.apiVersion, hook.object.kind);
  const metadata = hook.object.metadata;
  return {
    ...hook.object,
    metadata: {
      ...metadata,
      ...(info?.namespaced !== false && !metadata.namespace ? { namespace: opts.namespace } : {}),
      annotations: { ...metadata.annotations, [HOOK_OF_ANNOTATION]: opts.target },
    },
  };
}

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

/**
 * Runs one phase's hooks one after another, as Helm does: each deleted first when its policy says
 * `before-hook-creation` (the default), created, and waited for (a Job complete, a Pod succeeded,
 * anything else ready) within the timeout; deleted after when `hook-succeeded` or `hook-failed`
 * says so. The first that fails ends the phase (HookFailedError): no hook after it is created.
 * Hooks are never part of the target's inventory.
 */
export async function runHooks(
  phase: HookPhase,
  hooks: readonly RunnableHook[],
  client: KubeClient,
  opts: HookOptions,
): Promise<HookRecord[]> {
  const ran: HookRecord[] = [];
  for (const hook of hooksOf(hooks, phase)) {
    const obj = placed(hook, client, opts);
    const name = formatRef(refOf(obj));
    const policies = hook.hook.deletePolicies;
    let failure: string | undefined;
    try {
      if (policies.includes('before-hook-creation')) await remove(client, obj, opts, true);
      const created = await client.apply(obj, { fieldManager: FIELD_MANAGER, force: true, signal: opts.signal });
      const read = (o: KubeObject) =>
        client.get(o.apiVersion, o.kind, o.metadata.namespace, o.metadata.name, opts.signal);
      const health = await waitForHealth([created], read, { timeoutMs: opts.timeoutMs, signal: opts.signal });
      const why = health.notReady[0]?.message ?? '';
      if (health.status === 'failed') failure = why;
      else if (health.status !== 'healthy')
        failure = `not complete within ${Math.round(opts.timeoutMs / 1000)} s (the target's timeout): ${why}`;
    } catch (err) {
      // The apiserver failing for now, or the deadline: the queue runs the sync (and its hooks) again.
      if (opts.signal?.aborted || isTransient(err)) throw err;
      failure = errorMessage(err);
    }
    const deleted = policies.includes(failure === undefined ? 'hook-succeeded' : 'hook-failed');
    if (deleted) await remove(client, obj, opts, false);
    ran.push({
      phase,
      ref: refOf(obj),
      outcome: failure === undefined ? 'succeeded' : 'failed',
      ...(deleted ? { deleted } : {}),
      ...(failure !== undefined ? { message: failure } : {}),
    });
    if (failure !== undefined) throw new HookFailedError(phase, name, failure, ran);
  }
  return ran;
}
