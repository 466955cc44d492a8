import { setImmediate as nextTurn } from 'node:timers/promises';
import type { KubeClient } from '../cluster/index.js';
import { TidegateError, errorMessage, refKey, refOf, type KubeObject, type ObjectRef } from '../model/index.js';
import {
  PATTERN_LIMITS,
  RELOADER,
  hasReloadAnnotations,
  loadPatternEngine,
  reloadDecision,
  type SourceKind,
} from './annotations.js';
import type { Steps } from './matcher.js';
import { contentHash } from './hash.js';
import { containerUsing, envVarName, referencedSources } from './references.js';
import { policyHold, reloadDigest, stricter, type HoldKind, type ReloadPolicy } from './policy.js';
import { WORKLOADS, atTemplatePath, podTemplateOf, type PodTemplate, type WorkloadAdapter } from './workloads.js';

/** Field manager of every reload patch; the sync's own apply (manager "tidegate") never removes its fields. */
export const RELOAD_FIELD_MANAGER = 'tidegate-reloader';
/** On the workload (not its template, so writing it rolls nothing): the source hashes last seen. */
export const BASELINE_ANNOTATION = 'tidegate.dev/reload-baseline';
/** On the pod template (annotations strategy): changes whenever a relevant source changes, which rolls the pods. */
export const RELOADED_HASH_ANNOTATION = 'tidegate.dev/reloaded-hash';
export const RELOADED_FROM_ANNOTATION = 'tidegate.dev/reloaded-from';
/**
 * On the workload, beside the baseline: the revision its target had applied when the baseline was
 * last written (a roll, or hashes first recorded). The commits since are those that can have
 * changed its sources from Git: who made one may not approve its held reload by comment.
 */
export const RELOAD_REVISION_ANNOTATION = 'tidegate.dev/reload-revision';
/** The reloader's own record on a workload: never taken from Git (a manifest cannot set what was last rolled). */
export const RELOAD_STATE_ANNOTATIONS = [BASELINE_ANNOTATION, RELOAD_REVISION_ANNOTATION] as const;

export type ReloadStrategy = 'annotations' | 'env-vars';

export interface ReloadScope {
  /** Namespaces to look at; undefined: every namespace (one cluster-wide LIST per kind). */
  namespaces?: readonly string[] | undefined;
  ignoreNamespaces?: readonly string[] | undefined;
  /** Label selector for ConfigMaps and Secrets that may trigger reloads. */
  resourceSelector?: string | undefined;
}

export interface ReloadOptions extends ReloadScope {
  strategy: ReloadStrategy;
  signal?: AbortSignal | undefined;
  /**
   * Out-of-band changes are coalesced: a workload whose changed sources were last written less
   * than this long ago waits for the next pass, which rolls it once for all of them.
   */
  debounceMs?: number | undefined;
  /** At most this many workloads rolled in one pass (a mass change of Secrets rolls in waves); the rest wait for the next. */
  maxRolls?: number | undefined;
  /**
   * Reads what policyOf answers from, awaited (once per pass) before policyOf is first asked: a pass
   * that decides nothing about any workload (nothing changed, nothing new, nothing deferred) reads
   * nothing. Every write of the pass comes after it, so a failure fails the pass before it wrote.
   */
  preparePolicies?: (() => Promise<void>) | undefined;
  /** The policy a workload's reloads follow, and the target that applied it; undefined: they roll. */
  policyOf?:
    | ((workload: KubeObject) => { target?: string | undefined; policy: ReloadPolicy; revision?: string | undefined })
    | undefined;
  /**
   * A stricter policy a held reload carries from before (the one it was held under, or that of the
   * target a workload is taken over from): the reload follows the stricter of it and its own.
   */
  carried?: ((workload: ObjectRef, digest: string) => ReloadPolicy | undefined) | undefined;
  /** Approved reloads, by approvalKey. */
  approved?: ReadonlySet<string> | undefined;
  now?: (() => Date) | undefined;
}

/** How an approval names a held reload: its target and its digest. */
export const approvalKey = (target: string | undefined, digest: string): string => `${target ?? ''}/${digest}`;

export interface HeldReload {
  workload: ObjectRef;
  target?: string | undefined;
  sources: string[];
  /** What an approval names (reloadDigest): the workload and its changed sources' hashes now. */
  digest: string;
  kind: HoldKind;
  reason: string;
  /** The policy it is held under (what a later pass keeps it under while its sources stay so). */
  policy: ReloadPolicy;
}

export interface ReloadReport {
  /** Rolled workloads; with the approval a held reload was released by (approvalKey). */
  rolled: Array<{ workload: ObjectRef; sources: string[]; approval?: string }>;
  /** Workloads seen for the first time: hashes recorded, nothing rolled. */
  recorded: ObjectRef[];
  skipped: Array<{ workload: ObjectRef; reason: string }>;
  /** Workloads the pass could not handle (a malformed annotation, a refused patch): the others went on. */
  failed: Array<{ workload: ObjectRef; reason: string }>;
  /**
   * Workloads this pass did not get to: their namespace spent its share of the pass's pattern
   * time, or the pass its own. The next pass starts with them. Absent when there are none.
   */
  deferred?: Array<{ workload: ObjectRef; reason: string; target?: string | undefined }>;
  /** Workloads whose sources changed within the debounce: rolled by a later pass, once. Absent when none. */
  debounced?: Array<{ workload: ObjectRef; sources: string[]; until: string; target?: string | undefined }>;
  /** Reloads a policy holds (reload.mode notify, reload.approve, reload.windows): not rolled. Absent when none. */
  held?: HeldReload[];
}

export interface Source {
  kind: SourceKind;
  name: string;
  namespace: string;
  annotations: Record<string, string>;
  hash: string;
  /** When it was last written (the newest of its managedFields' times), in ms; 0 when unknown. */
  changedAt?: number;
}

/** When an object was last written: the newest time any manager wrote it (the apiserver keeps seconds). */
function lastWritten(o: KubeObject): number {
  return Math.max(0, ...(o.metadata.managedFields ?? []).map((f) => (f.time ? Date.parse(f.time) || 0 : 0)));
}

export const short = (hash: string): string => hash.slice(0, 32);
export const key = (kind: SourceKind, name: string): string => `${kind}/${name}`;

async function listScoped(
  client: KubeClient,
  apiVersion: string,
  kind: string,
  scope: ReloadScope,
  labelSelector?: string,
  signal?: AbortSignal,
): Promise<KubeObject[]> {
  const opts = { ...(labelSelector ? { labelSelector } : {}), ...(signal ? { signal } : {}) };
  const lists = scope.namespaces
    ? await Promise.all(scope.namespaces.map((namespace) => client.list(apiVersion, kind, { ...opts, namespace })))
    : [await client.list(apiVersion, kind, opts)];
  const ignored = new Set(scope.ignoreNamespaces ?? []);
  return lists.flat().filter((o) => !ignored.has(o.metadata.namespace ?? ''));
}

/** A namespace's ConfigMaps and Secrets, in list order, and where each is by kind/name. */
export interface Sources {
  all: Source[];
  at: Map<string, number>;
}

export async function readSources(client: KubeClient, opts: ReloadOptions, pace: Pace): Promise<Map<string, Sources>> {
  const byNamespace = new Map<string, Sources>();
  for (const kind of ['ConfigMap', 'Secret'] as const) {
    for (const o of await listScoped(client, 'v1', kind, opts, opts.resourceSelector, opts.signal)) {
      await pace.pause(); // hashing many large ConfigMaps is a synchronous stretch too
      const data = o['data'] as Record<string, string> | undefined;
      const binaryData = o['binaryData'] as Record<string, string> | undefined;
      const ns = o.metadata.namespace ?? '';
      const set = byNamespace.get(ns) ?? { all: [], at: new Map<string, number>() };
      set.at.set(key(kind, o.metadata.name), set.all.length);
      set.all.push({
        kind,
        name: o.metadata.name,
        namespace: ns,
        annotations: o.metadata.annotations ?? {},
        hash: contentHash(data, binaryData),
        changedAt: lastWritten(o),
      });
      byNamespace.set(ns, set);
    }
  }
  return byNamespace;
}

export const NO_SOURCES: Sources = { all: [], at: new Map() };

/**
 * The sources worth asking about: every one when the workload names sources (names may be
 * patterns), else only those its pod spec references (auto and search/match need a reference),
 * in list order. A pass is then linear in workloads and references, not their product.
 */
function candidates(
  workloadAnn: Record<string, string>,
  templateAnn: Record<string, string>,
  spec: PodTemplate['spec'],
  sources: Sources,
): Source[] {
  const names = [RELOADER.configmapReload, RELOADER.secretReload].some((k) => k in workloadAnn || k in templateAnn);
  if (names) return sources.all;
  return referencedSources(spec ?? {})
    .flatMap((r) => sources.at.get(key(r.kind, r.name)) ?? [])
    .sort((a, b) => a - b)
    .map((i) => sources.all[i] as Source);
}

export interface Relevant {
  source: Source;
  container: string | undefined;
}

/** The sources whose change reloads this workload, with the container that carries the env var (in steps). */
export function* relevantSources(obj: KubeObject, template: PodTemplate, sources: Sources): Steps<Relevant[]> {
  const workloadAnn = obj.metadata.annotations ?? {};
  const templateAnn = template.metadata?.annotations ?? {};
  const spec = template.spec ?? {};
  const out: Relevant[] = [];
  const budget = { leftMs: PATTERN_LIMITS.budgetMs };
  for (const source of candidates(workloadAnn, templateAnn, spec, sources)) {
    const decision = yield* reloadDecision(source, workloadAnn, templateAnn, budget);
    if (!decision.reload) continue;
    const using = containerUsing(spec, source.kind, source.name);
    // auto and search/match need a reference; a named reload uses the first container otherwise (as Reloader does).
    if (decision.auto && using === undefined) continue;
    out.push({ source, container: using ?? spec.containers?.[0]?.name });
  }
  return out;
}

/** Template annotations this manager owns: kept as they are, replaced when something changed (annotations strategy). */
function templateAnnotations(
  template: PodTemplate,
  relevant: readonly Relevant[],
  changed: readonly Relevant[],
  strategy: ReloadStrategy,
): Record<string, string> {
  const live = template.metadata?.annotations ?? {};
  const out: Record<string, string> = {};
  for (const k of [RELOADED_HASH_ANNOTATION, RELOADED_FROM_ANNOTATION]) if (live[k] !== undefined) out[k] = live[k];
  if (changed.length > 0 && strategy === 'annotations') {
    out[RELOADED_HASH_ANNOTATION] = short(
      contentHash(
        Object.fromEntries(relevant.map((r) => [key(r.source.kind, r.source.name), r.source.hash])),
        undefined,
      ),
    );
    out[RELOADED_FROM_ANNOTATION] = changed.map((r) => key(r.source.kind, r.source.name)).join(',');
  }
  return out;
}

/** STAKATER_* env vars this manager owns, per container: kept, and set for what changed (env-vars strategy). */
function envVars(
  template: PodTemplate,
  changed: readonly Relevant[],
  strategy: ReloadStrategy,
): Map<string, Array<{ name: string; value: string }>> {
  const byContainer = new Map<string, Array<{ name: string; value: string }>>();
  for (const c of template.spec?.containers ?? []) {
    const ours =
      (c as { env?: Array<{ name: string; value?: string }> }).env?.filter(
        (e) => e.name.startsWith('STAKATER_') && e.value !== undefined,
      ) ?? [];
    if (ours.length)
      byContainer.set(
        c.name,
        ours.map((e) => ({ name: e.name, value: e.value ?? '' })),
      );
  }
  if (strategy !== 'env-vars') return byContainer;
  for (const r of changed) {
    if (!r.container) continue;
    const name = envVarName(r.source.name, r.source.kind);
    byContainer.set(r.container, [
      ...(byContainer.get(r.container) ?? []).filter((e) => e.name !== name),
      { name, value: short(r.source.hash) },
    ]);
  }
  return byContainer;
}

/** The reload fields this manager owns, as a partial object to server-side apply (always complete: SSA drops what is left out). */
export function reloadPatch(
  obj: KubeObject,
  adapter: WorkloadAdapter,
  template: PodTemplate,
  baseline: Record<string, string>,
  relevant: readonly Relevant[],
  changed: readonly Relevant[],
  how: { strategy: ReloadStrategy; revision?: string | undefined },
): KubeObject {
  const { strategy } = how;
  const annotations = templateAnnotations(template, relevant, changed, strategy);
  const env = envVars(template, changed, strategy);
  // The revision is written with the baseline it goes with; kept as it is when not known here.
  const revision = how.revision ?? obj.metadata.annotations?.[RELOAD_REVISION_ANNOTATION];
  const partial: PodTemplate = {
    ...(Object.keys(annotations).length ? { metadata: { annotations } } : {}),
    ...(env.size ? { spec: { containers: [...env].map(([name, list]) => ({ name, env: list })) } } : {}),
  };
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      annotations: {
        [BASELINE_ANNOTATION]: JSON.stringify(baseline),
        ...(revision ? { [RELOAD_REVISION_ANNOTATION]: revision } : {}),
      },
    },
    ...(Object.keys(partial).length ? atTemplatePath(adapter, partial) : {}),
  };
}

/** The source hashes recorded on a workload; a value that is not an object of strings is refused, naming the annotation. */
export function baselineOf(workload: KubeObject): Record<string, string> | undefined {
  const raw = workload.metadata.annotations?.[BASELINE_ANNOTATION];
  if (raw === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (
    !parsed ||
    typeof parsed !== 'object' ||
    Array.isArray(parsed) ||
    Object.values(parsed).some((v) => typeof v !== 'string')
  )
    throw new TidegateError(
      'ReloadBaselineInvalid',
      `annotation ${BASELINE_ANNOTATION} is not a JSON object of hashes; remove it to record them afresh`,
    );
  return parsed as Record<string, string>;
}

/** Whether the changed sources' last change is within the debounce: reported as debounced. */
function debounced(
  workload: KubeObject,
  changed: readonly Relevant[],
  opts: ReloadOptions,
  now: Date,
  report: ReloadReport,
): boolean {
  const settles = Math.max(0, ...changed.map((r) => r.source.changedAt ?? 0)) + (opts.debounceMs ?? 0);
  if (!opts.debounceMs || settles <= now.getTime()) return false;
  (report.debounced ??= []).push({
    workload: refOf(workload),
    sources: changed.map((r) => key(r.source.kind, r.source.name)),
    until: new Date(settles).toISOString(),
    ...targetOf(workload, opts),
  });
  return true;
}

/** The target whose policy a workload follows, as a report entry's field (none when no target's). */
function targetOf(workload: KubeObject, opts: ReloadOptions): { target?: string } {
  const target = opts.policyOf?.(workload).target;
  return target ? { target } : {};
}

/** Whether the workload's policy holds this reload (reported as held); else the approval that released it, if one did. */
function policyWaits(
  workload: KubeObject,
  changed: readonly Relevant[],
  opts: ReloadOptions,
  now: Date,
  report: ReloadReport,
): { waits: boolean; approval?: string } {
  const governed = opts.policyOf?.(workload);
  if (!governed) return { waits: false };
  const ref = refOf(workload);
  const hashes = Object.fromEntries(changed.map((r) => [key(r.source.kind, r.source.name), short(r.source.hash)]));
  const digest = reloadDigest(refKey(ref), hashes);
  const carried = opts.carried?.(ref, digest);
  const policy = carried ? stricter(governed.policy, carried) : governed.policy;
  const wanted = approvalKey(governed.target, digest);
  const approved = opts.approved?.has(wanted) ?? false;
  const hold = policyHold(policy, now, approved);
  if (!hold) return approved && policy.approve ? { waits: false, approval: wanted } : { waits: false };
  const sources = Object.keys(hashes);
  (report.held ??= []).push({ workload: ref, target: governed.target, sources, digest, policy, ...hold });
  return { waits: true };
}

/**
 * Whether a roll for these changed sources waits: while their last change is within the debounce;
 * while its policy holds it; a Deferral when the pass has rolled its maximum. Else the roll goes
 * ahead, with the approval that released it if any.
 */
function rollWaits(
  workload: KubeObject,
  changed: readonly Relevant[],
  opts: ReloadOptions,
  report: ReloadReport,
): { waits: boolean; approval?: string } {
  const now = opts.now?.() ?? new Date();
  if (debounced(workload, changed, opts, now, report)) return { waits: true };
  const policy = policyWaits(workload, changed, opts, now, report);
  if (policy.waits) return policy;
  if (opts.maxRolls !== undefined && report.rolled.length >= opts.maxRolls)
    throw new Deferral(
      `reload.maxConcurrent (${opts.maxRolls}) workloads rolled in this pass; the next pass rolls this one`,
    );
  return policy;
}

/** One workload: record hashes the first time, roll when a relevant source changed, else nothing. */
async function reconcile(
  client: KubeClient,
  adapter: WorkloadAdapter,
  workload: KubeObject,
  sources: Sources,
  opts: ReloadOptions,
  report: ReloadReport,
  run: <T>(steps: Steps<T>) => Promise<T>,
): Promise<void> {
  const template = podTemplateOf(workload, adapter);
  const relevant = await run(relevantSources(workload, template, sources));
  const current = Object.fromEntries(relevant.map((r) => [key(r.source.kind, r.source.name), short(r.source.hash)]));
  const baseline = baselineOf(workload);
  const ref = refOf(workload);
  const recorded = (k: string): string | undefined => baseline?.[k];
  const changed = baseline
    ? relevant.filter(
        (r) =>
          recorded(key(r.source.kind, r.source.name)) !== undefined &&
          recorded(key(r.source.kind, r.source.name)) !== short(r.source.hash),
      )
    : [];
  const added = !baseline || relevant.some((r) => recorded(key(r.source.kind, r.source.name)) === undefined);
  // Whatever follows asks policyOf (a roll's policy, a baseline's revision); an unchanged workload does not.
  if (changed.length > 0 || added) await opts.preparePolicies?.();
  const roll = changed.length > 0 ? rollWaits(workload, changed, opts, report) : { waits: false };
  if (roll.waits) return;
  if (changed.length === 0 && !added) {
    if (relevant.length === 0)
      report.skipped.push({ workload: ref, reason: 'no referenced or named ConfigMap/Secret qualifies' });
    return;
  }
  const revision = opts.policyOf?.(workload).revision;
  const patch = reloadPatch(workload, adapter, template, { ...baseline, ...current }, relevant, changed, {
    strategy: opts.strategy,
    revision,
  });
  await client.apply(patch, {
    fieldManager: RELOAD_FIELD_MANAGER,
    force: true,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (changed.length > 0)
    report.rolled.push({
      workload: ref,
      sources: changed.map((r) => key(r.source.kind, r.source.name)),
      ...(roll.approval ? { approval: roll.approval } : {}),
    });
  else report.recorded.push(ref);
}

/** Past this much synchronous work the pass yields to the event loop and looks at its signal. */
const SLICE_MS = 20;

/** Where the pass yields to the event loop (after SLICE_MS of work) and looks at its signal (every time). */
export class Pace {
  private lastTurn = performance.now();
  constructor(private readonly signal: AbortSignal | undefined) {}

  async pause(): Promise<void> {
    this.signal?.throwIfAborted();
    if (performance.now() - this.lastTurn < SLICE_MS) return;
    await nextTurn();
    this.lastTurn = performance.now();
    this.signal?.throwIfAborted();
  }
}

/** A workload left for the next pass: its namespace's share, or the pass's pattern time, is spent. */
class Deferral extends Error {}

/** Pattern time a namespace spent in this pass. */
interface Spent {
  ns: string;
  ms: number;
  /** When the namespace was last served (round-robin among namespaces that spent alike). */
  turn: number;
}

interface Queue {
  spent: Spent;
  /** The namespace's workloads, in namespaceOrder, and the next one to take. */
  items: Pending[];
  next: number;
}

/**
 * The namespaces with workloads left, the next one served first: the one that has spent the
 * least pattern time in this pass (in classes of SLICE_MS, so namespaces whose workloads cost next
 * to nothing take turns), and among equals the one served longest ago (a binary heap).
 */
class Fairness {
  private readonly heap: Queue[] = [];
  private served = 0;
  constructor(queues: Queue[]) {
    for (const q of queues) this.push(q);
  }

  private static before(a: Queue, b: Queue): boolean {
    const [ca, cb] = [Math.floor(a.spent.ms / SLICE_MS), Math.floor(b.spent.ms / SLICE_MS)];
    return ca < cb || (ca === cb && a.spent.turn < b.spent.turn);
  }

  push(q: Queue): void {
    q.spent.turn = this.served++;
    const h = this.heap;
    h.push(q);
    for (let i = h.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!Fairness.before(h[i] as Queue, h[parent] as Queue)) break;
      [h[i], h[parent]] = [h[parent] as Queue, h[i] as Queue];
      i = parent;
    }
  }

  pop(): Queue | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length === 0 || !last) return top;
    h[0] = last;
    for (let i = 0; ;) {
      const [l, r] = [2 * i + 1, 2 * i + 2];
      let m = i;
      if (l < h.length && Fairness.before(h[l] as Queue, h[m] as Queue)) m = l;
      if (r < h.length && Fairness.before(h[r] as Queue, h[m] as Queue)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m] as Queue, h[i] as Queue];
      i = m;
    }
    return top;
  }
}

const shareReason = (ns: string): string =>
  `namespace ${ns} spent its share of the pass's pattern time (${PATTERN_LIMITS.namespaceMs} ms); the next pass starts with this workload`;
const passReason = `the pass spent its pattern time (${PATTERN_LIMITS.passMs} ms); the next pass starts with this workload`;

interface Pending {
  adapter: WorkloadAdapter;
  workload: KubeObject;
}

/**
 * The order of a namespace's workloads in a pass: first those with a roll pending (a source whose
 * hash their baseline records has changed: work a pass deferred, or new work), then those seen
 * for the first time, then the rest; by kind and name within each, rotated by `turn` so that a
 * workload that is always costly does not always come first. The baseline a roll writes takes a
 * workload out of the first group: the next pass goes on with what is left, no cursor kept.
 */
function namespaceOrder(items: readonly Pending[], sources: Sources, turn: number): Pending[] {
  const group = ({ workload }: Pending): number => {
    let baseline: Record<string, string> | undefined;
    try {
      baseline = baselineOf(workload);
    } catch {
      return 2; // malformed: reported when its turn comes
    }
    if (!baseline) return 1;
    const pending = Object.entries(baseline).some(([k, hash]) => {
      const at = sources.at.get(k);
      return at !== undefined && short((sources.all[at] as Source).hash) !== hash;
    });
    return pending ? 0 : 2;
  };
  const groups: Pending[][] = [[], [], []];
  for (const item of items) groups[group(item)]?.push(item);
  return groups.flatMap((g) => {
    g.sort((a, b) =>
      `${a.workload.kind}/${a.workload.metadata.name}`.localeCompare(`${b.workload.kind}/${b.workload.metadata.name}`),
    );
    const from = g.length ? turn % g.length : 0;
    return [...g.slice(from), ...g.slice(0, from)];
  });
}

/** The workloads with reload annotations, by namespace, and their place in list order (the report keeps it). */
async function listWorkloads(
  client: KubeClient,
  opts: ReloadOptions,
): Promise<{ byNamespace: Map<string, Pending[]>; listed: Map<string, number> }> {
  const byNamespace = new Map<string, Pending[]>();
  const listed = new Map<string, number>();
  for (const adapter of WORKLOADS) {
    for (const obj of await listScoped(client, adapter.apiVersion, adapter.kind, opts, undefined, opts.signal)) {
      const workload = { ...obj, apiVersion: adapter.apiVersion, kind: adapter.kind };
      const template = podTemplateOf(workload, adapter);
      if (!hasReloadAnnotations(workload.metadata.annotations ?? {}, template.metadata?.annotations ?? {})) continue;
      const ns = obj.metadata.namespace ?? '';
      const items = byNamespace.get(ns) ?? [];
      items.push({ adapter, workload });
      byNamespace.set(ns, items);
      listed.set(refKey(refOf(workload)), listed.size);
    }
  }
  return { byNamespace, listed };
}

/** Why no more of this namespace's workloads are taken in this pass, if so. */
function stopReason(pass: { ms: number }, spent: Spent): string | undefined {
  if (pass.ms >= PATTERN_LIMITS.passMs) return passReason;
  if (spent.ms >= PATTERN_LIMITS.namespaceMs) return shareReason(spent.ns);
  return undefined;
}

/**
 * Drives a workload's pattern work step by step: charges each step's time to the namespace and
 * the pass, yields to the event loop between steps (Pace), throws when the signal is aborted, and
 * defers the workload when the namespace's share or the pass's time is spent.
 */
function metered(spent: Spent, pass: { ms: number }, pace: Pace) {
  return async <T>(steps: Steps<T>): Promise<T> => {
    try {
      for (;;) {
        const began = performance.now();
        let step: IteratorResult<void, T>;
        try {
          step = steps.next();
        } finally {
          const ms = performance.now() - began;
          spent.ms += ms;
          pass.ms += ms;
        }
        if (step.done) return step.value;
        const stop = stopReason(pass, spent);
        if (stop) throw new Deferral(stop);
        await pace.pause();
      }
    } finally {
      steps.return(undefined as T);
    }
  };
}

/**
 * One reload pass: one LIST per kind (ConfigMaps, Secrets, Deployments, StatefulSets, DaemonSets,
 * CronJobs) per namespace in scope, no per-object reads. A workload with Reloader annotations is
 * rolled when a relevant source's hash differs from the one recorded on it; seen for the first
 * time, its hashes are only recorded. Stateless and idempotent: a second pass over the same data
 * writes nothing.
 *
 * Pattern time is bounded per workload, per namespace and per pass (PATTERN_LIMITS). Namespaces
 * are served fairly: the next workload comes from the namespace that has spent the least pattern
 * time in this pass (round-robin among equals), so one namespace's costly patterns never keep
 * another's workloads from being rolled. A namespace that spent its share stops for this pass; its
 * remaining workloads are reported as deferred, and the next pass starts with them (see
 * namespaceOrder). Pattern work runs in steps: between them the pass yields to the event loop
 * and throws as soon as its signal is aborted.
 */
/** Workloads left to the next pass, with the target whose policy each follows. */
async function defer(
  items: ReadonlyArray<{ workload: KubeObject }>,
  reason: string,
  opts: ReloadOptions,
  deferred: NonNullable<ReloadReport['deferred']>,
): Promise<void> {
  if (items.length > 0) await opts.preparePolicies?.();
  for (const { workload } of items) deferred.push({ workload: refOf(workload), reason, ...targetOf(workload, opts) });
}

/**
 * The options of one pass with preparePolicies run at most once; `failed` tells its failure apart
 * (it fails the pass, never just the workload that asked first).
 */
function preparedOnce(opts: ReloadOptions): { opts: ReloadOptions; failed: (err: unknown) => boolean } {
  const prepare = opts.preparePolicies;
  if (!prepare) return { opts, failed: () => false };
  let done: Promise<void> | undefined;
  let failure: { error: unknown } | undefined;
  const once = (): Promise<void> =>
    (done ??= prepare().catch((error: unknown) => {
      failure = { error };
      throw error;
    }));
  return { opts: { ...opts, preparePolicies: once }, failed: (err) => failure !== undefined && err === failure.error };
}

export async function reloadPass(client: KubeClient, options: ReloadOptions): Promise<ReloadReport> {
  const { opts, failed } = preparedOnce(options);
  await loadPatternEngine();
  const pace = new Pace(opts.signal);
  const report: ReloadReport = { rolled: [], recorded: [], skipped: [], failed: [] };
  const deferred: NonNullable<ReloadReport['deferred']> = [];
  const sources = await readSources(client, opts, pace);
  const { byNamespace, listed } = await listWorkloads(client, opts);
  const turn = Math.floor(Date.now() / 60_000); // passes run once a minute at most
  const namespaces = [...byNamespace.keys()].sort();
  const start = namespaces.length ? turn % namespaces.length : 0;
  const open = new Fairness(
    [...namespaces.slice(start), ...namespaces.slice(0, start)].map((ns) => ({
      spent: { ns, ms: 0, turn: 0 },
      items: namespaceOrder(byNamespace.get(ns) ?? [], sources.get(ns) ?? NO_SOURCES, turn),
      next: 0,
    })),
  );
  const pass = { ms: 0 };
  for (let queue = open.pop(); queue; queue = open.pop()) {
    const { spent } = queue;
    const stop = stopReason(pass, spent);
    if (stop) {
      await defer(queue.items.slice(queue.next), stop, opts, deferred);
      continue;
    }
    const { adapter, workload } = queue.items[queue.next++] as Pending;
    const run = metered(spent, pass, pace);
    try {
      await reconcile(client, adapter, workload, sources.get(spent.ns) ?? NO_SOURCES, opts, report, run);
    } catch (err) {
      if (opts.signal?.aborted || failed(err)) throw err;
      if (err instanceof Deferral) await defer([{ workload }], err.message, opts, deferred);
      // One workload's bad annotation or refused patch never stops the pass: the others go on.
      else report.failed.push({ workload: refOf(workload), reason: errorMessage(err) });
    }
    if (queue.next < queue.items.length) open.push(queue);
    await pace.pause();
  }
  const at = (ref: ObjectRef): number => listed.get(refKey(ref)) ?? 0;
  const entries: Array<Array<{ workload: ObjectRef }>> = [
    report.rolled,
    report.skipped,
    report.failed,
    deferred,
    report.held ?? [],
  ];
  for (const list of entries) list.sort((a, b) => at(a.workload) - at(b.workload));
  report.recorded.sort((a, b) => at(a) - at(b));
  if (deferred.length) report.deferred = deferred;
  return report;
}
