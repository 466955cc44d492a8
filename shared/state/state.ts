import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { KubeApiError, type KubeClient } from '../cluster/index.js';
import type { GatePolicy, ReloadPolicySetting } from '../config/index.js';
import type { HelmHook } from '../render/index.js';
import { MANAGED_BY_LABEL, SYSTEM_NAMESPACE, canonicalJson } from '../apply/index.js';
import {
  TidegateError,
  normaliseRepoUrl,
  type Approval,
  type HistoryEntry,
  type InventoryEntry,
  type KubeObject,
  type Pin,
  type Revision,
} from '../model/index.js';

/**
 * The newest revision whose change was signed off under the target's gate (every change of an
 * ungated target is): the next change is judged from here. What the target rendered then is kept,
 * so a commit touching those files later is part of its change.
 */
export interface SignedOff {
  revision: Revision;
  at: string;
  /** Repository paths the target's render read at that revision (its path, bases, values files; tidegate.yaml). */
  inputs: string[];
  /** The GitOps repository's revision then, when the target's files come from another repository or ref. */
  config?: string | undefined;
}

/** Where a target's first change is judged from, before anything of it was signed off (set at its first sync). */
export interface JudgedFrom {
  /** The commits (and their history) that are not part of the change: its repository's last applied revision on the cluster. */
  exclude: string[];
  /** The candidate of the first sync, when nothing of the repository had been applied on the cluster: judged as a whole. */
  first?: string | undefined;
}

/** Who suspended a target, when, and why (`tidegate suspend`). */
export interface Suspension {
  by: string;
  at: string;
  reason: string;
}

/** What must outlive an invocation, per target: kept in a ConfigMap in tidegate-system. */
/** A release's delete hooks (placed), and how long each may take. */
export interface DeleteHooks {
  timeoutMs: number;
  hooks: Array<{ object: KubeObject; source: string; hook: HelmHook }>;
}

export interface TargetState {
  inventory: InventoryEntry[];
  history: HistoryEntry[];
  lastApplied?: Revision | undefined;
  lastHealthy?: Revision | undefined;
  pin?: Pin | undefined;
  /** Manual approvals not yet used (a revision applied with them moves them into its history entry). */
  approvals?: Approval[] | undefined;
  /** The gate of tidegate.yaml at the last signed-off revision: a later revision cannot lower it for itself. */
  gate?: GatePolicy | undefined;
  signedOff?: SignedOff | undefined;
  judgedFrom?: JudgedFrom | undefined;
  /** Suspended by an operator (an incident): no writer changes the target until it is resumed. */
  suspended?: Suspension | undefined;
  /** The repository that owns this target name on this cluster (target names are cluster-wide). */
  repo?: string | undefined;
  /** Whether a target removed from tidegate.yaml has its objects deleted: as last applied, its deletionPolicy (delete, orphan), else its prune setting. */
  prune?: boolean | undefined;
  /** The user the target's objects were last applied as (`system:serviceaccount:<ns>:<name>`), when not tidegate: a removed target is pruned as it. */
  serviceAccount?: string | undefined;
  /** Set when the target left tidegate.yaml and its objects were pruned: the history stays as an archive. */
  removed?: { at: string; revision: Revision } | undefined;
  /** The digest of the chart's hooks as last applied (a change of them is a change from Git). */
  hooks?: string | undefined;
  /** The chart's pre-delete and post-delete hooks as last applied: run when the target leaves tidegate.yaml. */
  deleteHooks?: DeleteHooks | undefined;
  /** The target's reload policy (windows, notify, approve) as last applied; absent: its reloads roll. Read by the reload pass. */
  reload?: ReloadPolicySetting | undefined;
  /**
   * The policies the target had before its policy last changed, combined (the strictest), and the
   * revision that changed it: a workload that has not rolled since every target of the repository
   * applied that revision still follows them.
   */
  reloadBefore?: { policy: ReloadPolicySetting; revision: string } | undefined;
  /** The ConfigMap's resourceVersion when it was read: the precondition of the next write. */
  resourceVersion?: string | undefined;
}

export const HISTORY_LIMIT = 20;

export const stateName = (target: string): string => `tidegate-target-${target}`;

/** Label on every state ConfigMap: which target it holds. */
export const STATE_OF_LABEL = 'tidegate.dev/state-of';
/** Label on every state ConfigMap: a hash of the repository that owns the target (URLs do not fit in labels). */
export const STATE_REPO_LABEL = 'tidegate.dev/repo';

export const repoLabel = (url: string): string =>
  createHash('sha256').update(normaliseRepoUrl(url)).digest('hex').slice(0, 16);

/**
 * A ConfigMap holds at most 1 MiB (data and binaryData together). Inventories whose JSON passes
 * COMPRESS_FROM are stored gzipped (about 20 bytes an object); past STATE_LIMIT the write is
 * refused with the counts, before anything is applied.
 */
const COMPRESS_FROM = 256 * 1024;
export const STATE_LIMIT = 1024 * 1024 - 64 * 1024;

/** The state ConfigMap of a target changed since it was read (another writer), or exists though it was absent. */
export class StateConflictError extends TidegateError {
  constructor(target: string, options?: { cause?: unknown }) {
    super('StateConflict', `the state of target ${target} was changed by another writer since it was read`, {
      ...options,
      transient: true,
    });
  }
}

/** A state ConfigMap that cannot be read back: nothing derived from it may be written. */
export class StateUnreadableError extends TidegateError {
  constructor(target: string, key: string, cause: unknown) {
    super(
      'StateUnreadable',
      `the state of target ${target} (ConfigMap ${SYSTEM_NAMESPACE}/${stateName(target)}, key ${key}) cannot be read; fix or delete that key`,
      { cause },
    );
  }
}

/** The state would not fit in one ConfigMap. */
export class StateTooLargeError extends TidegateError {
  constructor(target: string, objects: number, bytes: number) {
    super(
      'StateTooLarge',
      `the state of target ${target} (${objects} objects) takes ${bytes} bytes compressed, more than the ${STATE_LIMIT} bytes one ConfigMap can hold; split the target`,
    );
  }
}

function parseKey<T>(target: string, data: Record<string, string>, key: string): T | undefined {
  const text = data[key];
  if (text === undefined || text === '') return undefined;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new StateUnreadableError(target, key, err);
  }
}

function readInventory(target: string, cm: KubeObject): InventoryEntry[] {
  const packed = (cm['binaryData'] as Record<string, string> | undefined)?.['inventory.gz'];
  if (packed === undefined)
    return parseKey<InventoryEntry[]>(target, (cm['data'] ?? {}) as Record<string, string>, 'inventory') ?? [];
  try {
    return JSON.parse(gunzipSync(Buffer.from(packed, 'base64')).toString('utf8')) as InventoryEntry[];
  } catch (err) {
    throw new StateUnreadableError(target, 'inventory.gz', err);
  }
}

/** Reads a target's state; an absent ConfigMap is the empty state (first sync). Unreadable content throws. */
export async function readTargetState(client: KubeClient, target: string, signal?: AbortSignal): Promise<TargetState> {
  const cm = await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, stateName(target), signal);
  if (!cm) return { inventory: [], history: [] };
  return decodeState(target, cm);
}

export function decodeState(target: string, cm: KubeObject): TargetState {
  const data = (cm['data'] ?? {}) as Record<string, string>;
  const key = <T>(k: string): T | undefined => parseKey<T>(target, data, k);
  return {
    inventory: readInventory(target, cm),
    history: key<HistoryEntry[]>('history') ?? [],
    lastApplied: key<Revision>('lastApplied'),
    lastHealthy: key<Revision>('lastHealthy'),
    pin: key<Pin>('pin'),
    approvals: key<Approval[]>('approvals'),
    gate: key<GatePolicy>('gate'),
    signedOff: key<SignedOff>('signedOff'),
    judgedFrom: key<JudgedFrom>('judgedFrom'),
    suspended: key<Suspension>('suspended'),
    repo: data['repo'],
    prune: key<boolean>('prune'),
    serviceAccount: data['serviceAccount'],
    removed: key<TargetState['removed']>('removed'),
    hooks: data['hooks'],
    deleteHooks: key<DeleteHooks>('deleteHooks'),
    reload: key<ReloadPolicySetting>('reload'),
    reloadBefore: key<TargetState['reloadBefore']>('reloadBefore'),
    resourceVersion: cm.metadata.resourceVersion,
  };
}

/** The ConfigMap holding a state, size-checked. */
export function encodeState(target: string, state: TargetState): KubeObject {
  const json = <T>(k: string, v: T | undefined): Record<string, string> =>
    v === undefined ? {} : { [k]: JSON.stringify(v) };
  const inventory = JSON.stringify(state.inventory);
  const packed = Buffer.byteLength(inventory) > COMPRESS_FROM ? gzipSync(inventory).toString('base64') : undefined;
  const data: Record<string, string> = {
    ...(packed === undefined ? { inventory } : {}),
    history: JSON.stringify(state.history.slice(-HISTORY_LIMIT)),
    ...json('lastApplied', state.lastApplied),
    ...json('lastHealthy', state.lastHealthy),
    ...json('pin', state.pin),
    ...(state.approvals?.length ? json('approvals', state.approvals) : {}),
    ...json('gate', state.gate),
    ...json('signedOff', state.signedOff),
    ...json('judgedFrom', state.judgedFrom),
    ...json('suspended', state.suspended),
    ...(state.repo ? { repo: state.repo } : {}),
    ...json('prune', state.prune),
    ...(state.serviceAccount ? { serviceAccount: state.serviceAccount } : {}),
    ...json('removed', state.removed),
    ...(state.hooks ? { hooks: state.hooks } : {}),
    ...json('deleteHooks', state.deleteHooks),
    ...json('reload', state.reload),
    ...json('reloadBefore', state.reloadBefore),
  };
  const bytes =
    Object.values(data).reduce((n, v) => n + Buffer.byteLength(v), 0) +
    (packed === undefined ? 0 : (packed.length * 3) / 4);
  if (bytes > STATE_LIMIT) throw new StateTooLargeError(target, state.inventory.length, Math.round(bytes));
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: stateName(target),
      namespace: SYSTEM_NAMESPACE,
      labels: {
        [MANAGED_BY_LABEL]: 'tidegate',
        [STATE_OF_LABEL]: target,
        ...(state.repo ? { [STATE_REPO_LABEL]: repoLabel(state.repo) } : {}),
      },
      ...(state.resourceVersion ? { resourceVersion: state.resourceVersion } : {}),
    },
    data,
    ...(packed === undefined ? {} : { binaryData: { 'inventory.gz': packed } }),
  };
}

/** Creates tidegate-system; one that exists already is fine. */
export async function ensureSystemNamespace(client: KubeClient, signal?: AbortSignal): Promise<void> {
  await client
    .create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: SYSTEM_NAMESPACE } }, signal)
    .catch((err: unknown) => {
      if (!(err instanceof KubeApiError && err.isConflict)) throw err;
    });
}

/**
 * Writes a state with optimistic concurrency: replaced only if the ConfigMap is still at the
 * resourceVersion it was read at, created only if it does not exist (tidegate-system is created
 * when missing). Returns the state with its new resourceVersion; StateConflictError when another
 * writer came first.
 */
export async function writeTargetState(
  client: KubeClient,
  target: string,
  state: TargetState,
  signal?: AbortSignal,
): Promise<TargetState> {
  const cm = encodeState(target, state);
  if (!client.resourceFor('v1', 'ConfigMap')) await client.discover(signal);
  try {
    const written = state.resourceVersion ? await client.replace(cm, signal) : await createState(client, cm, signal);
    return { ...state, resourceVersion: written.metadata.resourceVersion };
  } catch (err) {
    if (!(err instanceof KubeApiError && (err.isConflict || (state.resourceVersion && err.isNotFound)))) throw err;
    // Our own write whose answer was lost, sent again by the client's retry: the content is already ours.
    const now = await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, stateName(target), signal);
    if (now && sameContent(now, cm)) return { ...state, resourceVersion: now.metadata.resourceVersion };
    throw new StateConflictError(target, { cause: err });
  }
}

const sameContent = (a: KubeObject, b: KubeObject): boolean =>
  canonicalJson([a['data'] ?? {}, a['binaryData'] ?? {}]) === canonicalJson([b['data'] ?? {}, b['binaryData'] ?? {}]);

async function createState(client: KubeClient, cm: KubeObject, signal?: AbortSignal): Promise<KubeObject> {
  try {
    return await client.create(cm, signal);
  } catch (err) {
    if (!(err instanceof KubeApiError && err.isNotFound)) throw err;
    await ensureSystemNamespace(client, signal);
    return client.create(cm, signal);
  }
}

/**
 * Read, change, write with the read's resourceVersion as precondition; on a conflict the change
 * is made again on what the other writer left. `change` returns undefined to write nothing.
 */
export async function updateTargetState(
  client: KubeClient,
  target: string,
  change: (state: TargetState) => TargetState | undefined,
  signal?: AbortSignal,
): Promise<TargetState> {
  for (let attempt = 1; ; attempt++) {
    const current = await readTargetState(client, target, signal);
    const next = change(current);
    if (!next) return current;
    try {
      return await writeTargetState(client, target, { ...next, resourceVersion: current.resourceVersion }, signal);
    } catch (err) {
      if (!(err instanceof StateConflictError) || attempt >= 5) throw err;
    }
  }
}

/** Every target state on a cluster owned by a repository (by its label), with the ConfigMap's uid (the same object seen through two aliases has one). */
export function statesOfRepo(
  client: KubeClient,
  repo: string,
  signal?: AbortSignal,
): Promise<Array<{ target: string; uid: string; state: TargetState }>> {
  return statesOn(client, `${STATE_REPO_LABEL}=${repoLabel(repo)}`, signal);
}

/** Every target state on a cluster (the status page). */
export function allTargetStates(
  client: KubeClient,
  signal?: AbortSignal,
): Promise<Array<{ target: string; uid: string; state: TargetState }>> {
  return statesOn(client, STATE_OF_LABEL, signal);
}

async function statesOn(
  client: KubeClient,
  labelSelector: string,
  signal?: AbortSignal,
): Promise<Array<{ target: string; uid: string; state: TargetState }>> {
  if (!client.resourceFor('v1', 'ConfigMap')) await client.discover(signal);
  const list = await client.list('v1', 'ConfigMap', {
    namespace: SYSTEM_NAMESPACE,
    labelSelector,
    ...(signal ? { signal } : {}),
  });
  return list.flatMap((cm) => {
    const target = cm.metadata.labels?.[STATE_OF_LABEL];
    return target ? [{ target, uid: cm.metadata.uid ?? '', state: decodeState(target, cm) }] : [];
  });
}

/** Deletes a state (a preview's, once its environment is torn down); one that is gone already is fine. */
export async function deleteTargetState(client: KubeClient, target: string, signal?: AbortSignal): Promise<void> {
  await client.delete(
    { apiVersion: 'v1', group: '', kind: 'ConfigMap', namespace: SYSTEM_NAMESPACE, name: stateName(target) },
    signal ? { signal } : {},
  );
}
