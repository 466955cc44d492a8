import type { KubeClient } from '../cluster/index.js';
import type { GatePolicy } from '../config/index.js';
import { parseRefKey, type Approval, type HistoryEntry, type KubeObject, type ObjectRef, type Pin, type Revision } from '../model/index.js';
import { FIELD_MANAGER, MANAGED_BY_LABEL, SYSTEM_NAMESPACE } from './owner.js';

/** One object tidegate applied for a target: its ref key, apiVersion and desired-state hash. */
export interface InventoryEntry {
  id: string;
  v: string;
  h: string;
}

/** What must outlive an invocation, per target: kept in a ConfigMap in tidegate-system. */
export interface TargetState {
  inventory: InventoryEntry[];
  history: HistoryEntry[];
  lastApplied?: Revision | undefined;
  lastHealthy?: Revision | undefined;
  pin?: Pin | undefined;
  /** Manual approvals not yet used (a revision applied with them moves them into its history entry). */
  approvals?: Approval[] | undefined;
  /** The gate of tidegate.yaml at the last applied revision: a later revision cannot lower it for itself. */
  gate?: GatePolicy | undefined;
  /** The repository that owns this target name on this cluster (target names are cluster-wide). */
  repo?: string | undefined;
}

export const HISTORY_LIMIT = 20;

export const stateName = (target: string): string => `tidegate-target-${target}`;

export const entryRef = (e: InventoryEntry): ObjectRef & { apiVersion: string } => ({ ...parseRefKey(e.id), apiVersion: e.v });

function parseJson<T>(text: string | undefined, fallback: T): T {
  if (!text) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

export async function readTargetState(client: KubeClient, target: string, signal?: AbortSignal): Promise<TargetState> {
  // Absent (first sync, or no tidegate-system namespace yet): get answers undefined for a 404.
  const cm = await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, stateName(target), signal);
  const data = (cm?.['data'] ?? {}) as Record<string, string>;
  return {
    inventory: parseJson<InventoryEntry[]>(data['inventory'], []),
    history: parseJson<HistoryEntry[]>(data['history'], []),
    lastApplied: parseJson<Revision | undefined>(data['lastApplied'], undefined),
    lastHealthy: parseJson<Revision | undefined>(data['lastHealthy'], undefined),
    pin: parseJson<Pin | undefined>(data['pin'], undefined),
    approvals: parseJson<Approval[] | undefined>(data['approvals'], undefined),
    gate: parseJson<GatePolicy | undefined>(data['gate'], undefined),
    repo: data['repo'],
  };
}

/** Writes the whole state with server-side apply (creating tidegate-system when missing). */
export async function writeTargetState(client: KubeClient, target: string, state: TargetState, signal?: AbortSignal): Promise<void> {
  const opts = { fieldManager: FIELD_MANAGER, force: true, ...(signal ? { signal } : {}) };
  if (!client.resourceFor('v1', 'ConfigMap')) await client.discover(signal);
  await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM_NAMESPACE } }, opts);
  const cm: KubeObject = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: stateName(target), namespace: SYSTEM_NAMESPACE, labels: { [MANAGED_BY_LABEL]: 'tidegate', 'tidegate.dev/state-of': target } },
    data: {
      inventory: JSON.stringify(state.inventory),
      history: JSON.stringify(state.history.slice(-HISTORY_LIMIT)),
      ...(state.lastApplied ? { lastApplied: JSON.stringify(state.lastApplied) } : {}),
      ...(state.lastHealthy ? { lastHealthy: JSON.stringify(state.lastHealthy) } : {}),
      ...(state.pin ? { pin: JSON.stringify(state.pin) } : {}),
      ...(state.approvals?.length ? { approvals: JSON.stringify(state.approvals) } : {}),
      ...(state.gate ? { gate: JSON.stringify(state.gate) } : {}),
      ...(state.repo ? { repo: state.repo } : {}),
    },
  };
  await client.apply(cm, opts);
}
