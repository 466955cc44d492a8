import type { KubeClient } from '../cluster/index.js';
import { SYSTEM_NAMESPACE } from '../apply/index.js';
import { TidegateError, type ObjectRef } from '../model/index.js';
import type { HeldReload } from '../reload/index.js';
import { readSystemValue, updateSystemValue, type SystemValue } from './system-configmap.js';

/** A reload a policy holds, as the cluster keeps it: since when it waits (the status page, `tidegate status`). */
export interface RegisteredHold extends HeldReload {
  since: string;
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

/** The reloads held on a cluster, and the approvals not used yet: one ConfigMap of tidegate-system. */
export interface ReloadRegister {
  holds: RegisteredHold[];
  approvals: ReloadApproval[];
}

export const RELOADS_CONFIGMAP = 'tidegate-reloads';
const WHERE: SystemValue = { name: RELOADS_CONFIGMAP, key: 'reloads' };
/** Holds kept at most (a ConfigMap holds 1 MiB); past it the oldest are dropped from the register, never from the pass. */
export const HOLDS_LIMIT = 2000;

function decode(text: string | undefined): ReloadRegister {
  if (!text) return { holds: [], approvals: [] };
  try {
    const parsed = JSON.parse(text) as Partial<ReloadRegister>;
    return { holds: parsed.holds ?? [], approvals: parsed.approvals ?? [] };
  } catch (err) {
    throw new TidegateError(
      'ReloadRegisterUnreadable',
      `${SYSTEM_NAMESPACE}/${RELOADS_CONFIGMAP} (key reloads) cannot be read; fix or delete it (held reloads are found again by the next pass)`,
      { cause: err },
    );
  }
}

export async function readReloadRegister(client: KubeClient, signal?: AbortSignal): Promise<ReloadRegister> {
  return decode((await readSystemValue(client, WHERE, signal)).text);
}

/**
 * Changes the register with the read's resourceVersion as precondition, again on a conflict;
 * `change` returns undefined to write nothing. Returns the register as written (or as read).
 */
export function updateReloadRegister(
  client: KubeClient,
  change: (register: ReloadRegister) => ReloadRegister | undefined,
  signal?: AbortSignal,
): Promise<ReloadRegister> {
  const exhausted = () =>
    new TidegateError(
      'ReloadRegisterConflict',
      `${SYSTEM_NAMESPACE}/${RELOADS_CONFIGMAP} kept changing under concurrent writers`,
      { transient: true },
    );
  return updateSystemValue(
    client,
    { ...WHERE, attempts: 5, exhausted },
    (text) => {
      const current = decode(text);
      const next = change(current);
      if (!next) return { value: current };
      const kept = { ...next, holds: next.holds.slice(-HOLDS_LIMIT) };
      return { text: JSON.stringify(kept), value: kept };
    },
    signal,
  );
}
