import type { KubeClient } from '../cluster/index.js';
import { SYSTEM_NAMESPACE } from '../apply/index.js';
import { TidegateError, type ObjectRef } from '../model/index.js';
import type { HeldReload } from '../reload/index.js';
import { readSystemValue, updateSystemValue, type SystemValue } from './system-configmap.js';

/**
 * A reload a policy holds, as the cluster keeps it: since when it waits (the status page, `tidegate
 * status`). Kind `waiting`: a reload the next passes roll without anyone's action (its sources
 * changed within the debounce, or the pass rolled its maximum); it names no digest.
 */
export interface RegisteredHold extends Omit<HeldReload, 'kind' | 'policy'> {
  kind: HeldReload['kind'] | 'waiting';
  /** The policy it is held under (none for a wait). */
  policy?: HeldReload['policy'] | undefined;
  since: string;
  /** Sources changed beyond those listed (a hold lists at most SOURCES_LISTED). */
  moreSources?: number | undefined;
}

/** An approval of one held reload: its target and digest (the workload and its changed sources' hashes). */
export interface ReloadApproval {
  target: string;
  digest: string;
  workload: ObjectRef;
  by: string;
  at: string;
  via: 'cli' | 'comment';
}

/** The reloads held on a cluster, and the approvals not used yet. */
export interface ReloadRegister {
  holds: RegisteredHold[];
  approvals: ReloadApproval[];
}

/**
 * One ConfigMap of tidegate-system per target (and one for workloads no target applied): what one
 * target's workloads hold can never crowd another target's out of the register.
 */
export const RELOADS_LABEL = 'tidegate.dev/reloads-of';
export const reloadsConfigMap = (target: string | undefined): string =>
  target ? `tidegate-reloads-${target}` : 'tidegate-reloads';
const where = (target: string | undefined): SystemValue => ({ name: reloadsConfigMap(target), key: 'reloads' });

/** Holds kept per target; a hold lists at most this many sources; and the bytes one ConfigMap may take. */
export const HOLDS_PER_TARGET = 300;
export const SOURCES_LISTED = 10;
const SHARD_BYTES = 900 * 1024;

function decode(name: string, text: string | undefined): ReloadRegister {
  if (!text) return { holds: [], approvals: [] };
  try {
    const parsed = JSON.parse(text) as Partial<ReloadRegister>;
    return { holds: parsed.holds ?? [], approvals: parsed.approvals ?? [] };
  } catch (err) {
    throw new TidegateError(
      'ReloadRegisterUnreadable',
      `${SYSTEM_NAMESPACE}/${name} (key reloads) cannot be read; fix or delete it (held reloads are found again by the next pass)`,
      { cause: err },
    );
  }
}

/** Every target's held reloads and approvals on the cluster (one LIST). */
export async function readReloadRegister(client: KubeClient, signal?: AbortSignal): Promise<ReloadRegister> {
  if (!client.resourceFor('v1', 'ConfigMap')) await client.discover(signal);
  const list = await client.list('v1', 'ConfigMap', {
    namespace: SYSTEM_NAMESPACE,
    labelSelector: RELOADS_LABEL,
    ...(signal ? { signal } : {}),
  });
  const out: ReloadRegister = { holds: [], approvals: [] };
  for (const cm of list) {
    const one = decode(cm.metadata.name, (cm['data'] as Record<string, string> | undefined)?.['reloads']);
    out.holds.push(...one.holds);
    out.approvals.push(...one.approvals);
  }
  return out;
}

/** One target's held reloads and approvals (undefined: those of workloads no target applied). */
export async function readTargetReloads(
  client: KubeClient,
  target: string | undefined,
  signal?: AbortSignal,
): Promise<ReloadRegister> {
  return decode(reloadsConfigMap(target), (await readSystemValue(client, where(target), signal)).text);
}

/**
 * Within the bounds of one ConfigMap: waits go first (a later pass rolls them anyway), then the
 * oldest holds; source lists are cut short (the digest still covers them all).
 */
function bounded(register: ReloadRegister): ReloadRegister {
  const over = register.holds.length - HOLDS_PER_TARGET;
  const dropped = new Set(register.holds.filter((h) => h.kind === 'waiting').slice(0, Math.max(0, over)));
  const holds = register.holds
    .filter((h) => !dropped.has(h))
    .slice(-HOLDS_PER_TARGET)
    .map((h) =>
      h.sources.length > SOURCES_LISTED
        ? { ...h, sources: h.sources.slice(0, SOURCES_LISTED), moreSources: h.sources.length - SOURCES_LISTED }
        : h,
    );
  const out = { holds, approvals: register.approvals };
  while (out.holds.length && Buffer.byteLength(JSON.stringify(out)) > SHARD_BYTES) out.holds.shift();
  return out;
}

/**
 * Changes one target's register with the read's resourceVersion as precondition, again on a
 * conflict; `change` returns undefined to write nothing. Returns the register as written (or read).
 */
export function updateTargetReloads(
  client: KubeClient,
  target: string | undefined,
  change: (register: ReloadRegister) => ReloadRegister | undefined,
  signal?: AbortSignal,
): Promise<ReloadRegister> {
  const name = reloadsConfigMap(target);
  const exhausted = () =>
    new TidegateError('ReloadRegisterConflict', `${SYSTEM_NAMESPACE}/${name} kept changing under concurrent writers`, {
      transient: true,
    });
  return updateSystemValue(
    client,
    { ...where(target), attempts: 5, exhausted, labels: { [RELOADS_LABEL]: target ?? '' } },
    (text) => {
      const current = decode(name, text);
      const next = change(current);
      if (!next) return { value: current };
      const kept = bounded(next);
      return { text: JSON.stringify(kept), value: kept };
    },
    signal,
  );
}
