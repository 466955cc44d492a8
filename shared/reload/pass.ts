import type { KubeClient } from '../cluster/index.js';
import { TidegateError, errorMessage, refOf, type KubeObject, type ObjectRef } from '../model/index.js';
import {
  PATTERN_LIMITS,
  RELOADER,
  hasReloadAnnotations,
  loadPatternEngine,
  shouldReload,
  type SourceKind,
} from './annotations.js';
import { contentHash } from './hash.js';
import { containerUsing, envVarName, referencedSources } from './references.js';
import { WORKLOADS, atTemplatePath, podTemplateOf, type PodTemplate, type WorkloadAdapter } from './workloads.js';

/** Field manager of every reload patch; the sync's own apply (manager "tidegate") never removes its fields. */
export const RELOAD_FIELD_MANAGER = 'tidegate-reloader';
/** On the workload (not its template, so writing it rolls nothing): the source hashes last seen. */
export const BASELINE_ANNOTATION = 'tidegate.dev/reload-baseline';
/** On the pod template (annotations strategy): changes whenever a relevant source changes, which rolls the pods. */
export const RELOADED_HASH_ANNOTATION = 'tidegate.dev/reloaded-hash';
export const RELOADED_FROM_ANNOTATION = 'tidegate.dev/reloaded-from';

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
}

export interface ReloadReport {
  rolled: Array<{ workload: ObjectRef; sources: string[] }>;
  /** Workloads seen for the first time: hashes recorded, nothing rolled. */
  recorded: ObjectRef[];
  skipped: Array<{ workload: ObjectRef; reason: string }>;
  /** Workloads the pass could not handle (a malformed annotation, a refused patch): the others went on. */
  failed: Array<{ workload: ObjectRef; reason: string }>;
}

interface Source {
  kind: SourceKind;
  name: string;
  namespace: string;
  annotations: Record<string, string>;
  hash: string;
}

const short = (hash: string): string => hash.slice(0, 32);
const key = (kind: SourceKind, name: string): string => `${kind}/${name}`;

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
interface Sources {
  all: Source[];
  at: Map<string, number>;
}

async function readSources(client: KubeClient, opts: ReloadOptions): Promise<Map<string, Sources>> {
  const byNamespace = new Map<string, Sources>();
  for (const kind of ['ConfigMap', 'Secret'] as const) {
    for (const o of await listScoped(client, 'v1', kind, opts, opts.resourceSelector, opts.signal)) {
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
      });
      byNamespace.set(ns, set);
    }
  }
  return byNamespace;
}

const NO_SOURCES: Sources = { all: [], at: new Map() };

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

interface Relevant {
  source: Source;
  container: string | undefined;
}

/** The sources whose change reloads this workload, with the container that carries the env var. */
function relevantSources(obj: KubeObject, template: PodTemplate, sources: Sources): Relevant[] {
  const workloadAnn = obj.metadata.annotations ?? {};
  const templateAnn = template.metadata?.annotations ?? {};
  const spec = template.spec ?? {};
  const out: Relevant[] = [];
  const budget = { leftMs: PATTERN_LIMITS.budgetMs };
  for (const source of candidates(workloadAnn, templateAnn, spec, sources)) {
    const decision = shouldReload(source, workloadAnn, templateAnn, budget);
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
function reloadPatch(
  obj: KubeObject,
  adapter: WorkloadAdapter,
  template: PodTemplate,
  baseline: Record<string, string>,
  relevant: readonly Relevant[],
  changed: readonly Relevant[],
  strategy: ReloadStrategy,
): KubeObject {
  const annotations = templateAnnotations(template, relevant, changed, strategy);
  const env = envVars(template, changed, strategy);
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
      annotations: { [BASELINE_ANNOTATION]: JSON.stringify(baseline) },
    },
    ...(Object.keys(partial).length ? atTemplatePath(adapter, partial) : {}),
  };
}

/** The source hashes recorded on a workload; a value that is not an object of strings is refused, naming the annotation. */
function baselineOf(workload: KubeObject): Record<string, string> | undefined {
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

/** One workload: record hashes the first time, roll when a relevant source changed, else nothing. */
async function reconcile(
  client: KubeClient,
  adapter: WorkloadAdapter,
  workload: KubeObject,
  sources: Sources,
  opts: ReloadOptions,
  report: ReloadReport,
): Promise<void> {
  const template = podTemplateOf(workload, adapter);
  if (!hasReloadAnnotations(workload.metadata.annotations ?? {}, template.metadata?.annotations ?? {})) return;
  const relevant = relevantSources(workload, template, sources);
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
  if (changed.length === 0 && !added) {
    if (relevant.length === 0)
      report.skipped.push({ workload: ref, reason: 'no referenced or named ConfigMap/Secret qualifies' });
    return;
  }
  const patch = reloadPatch(workload, adapter, template, { ...baseline, ...current }, relevant, changed, opts.strategy);
  await client.apply(patch, {
    fieldManager: RELOAD_FIELD_MANAGER,
    force: true,
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (changed.length > 0)
    report.rolled.push({ workload: ref, sources: changed.map((r) => key(r.source.kind, r.source.name)) });
  else report.recorded.push(ref);
}

/**
 * One reload pass: one LIST per kind (ConfigMaps, Secrets, Deployments, StatefulSets, DaemonSets,
 * CronJobs) per namespace in scope, no per-object reads. A workload with Reloader annotations is
 * rolled when a relevant source's hash differs from the one recorded on it; seen for the first
 * time, its hashes are only recorded. Stateless and idempotent: a second pass over the same data
 * writes nothing.
 */
export async function reloadPass(client: KubeClient, opts: ReloadOptions): Promise<ReloadReport> {
  await loadPatternEngine();
  const report: ReloadReport = { rolled: [], recorded: [], skipped: [], failed: [] };
  const sources = await readSources(client, opts);
  for (const adapter of WORKLOADS) {
    for (const obj of await listScoped(client, adapter.apiVersion, adapter.kind, opts, undefined, opts.signal)) {
      const workload = { ...obj, apiVersion: adapter.apiVersion, kind: adapter.kind };
      try {
        await reconcile(
          client,
          adapter,
          workload,
          sources.get(obj.metadata.namespace ?? '') ?? NO_SOURCES,
          opts,
          report,
        );
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        // One workload's bad annotation or refused patch never stops the pass: the others go on.
        report.failed.push({ workload: refOf(workload), reason: errorMessage(err) });
      }
    }
  }
  return report;
}
