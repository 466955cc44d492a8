import type { KubeClient } from '../cluster/index.js';
import { refOf, type KubeObject } from '../model/index.js';
import { hasReloadAnnotations, loadPatternEngine } from './annotations.js';
import { contentHash } from './hash.js';
import { drain } from './matcher.js';
import {
  NO_SOURCES,
  Pace,
  baselineOf,
  key,
  readSources,
  relevantSources,
  reloadPatch,
  short,
  type ReloadOptions,
  type ReloadReport,
  type Relevant,
  type Source,
  type Sources,
} from './pass.js';
import { WORKLOADS, podTemplateOf, type PodTemplate, type WorkloadAdapter } from './workloads.js';

type Container = { name: string; env?: Array<{ name: string; value?: string }> };

/** A Secret's data as the apiserver will hold it: stringData folded into data, base64-encoded. */
function secretData(obj: KubeObject): Record<string, string> | undefined {
  const data = obj['data'] as Record<string, string> | undefined;
  const stringData = obj['stringData'] as Record<string, string> | undefined;
  if (!stringData) return data;
  return {
    ...data,
    ...Object.fromEntries(Object.entries(stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  };
}

/**
 * The namespace's sources as they will be once the sync has applied: the live ones, replaced by
 * those it applies. With a resource selector only the live ones (those it selected) are replaced:
 * a source new to the cluster is in no baseline, so it rolls nothing either way.
 */
function afterApply(live: Sources, desired: readonly KubeObject[], ns: string, selected: boolean): Sources {
  const sources: Sources = { all: [...live.all], at: new Map(live.at) };
  for (const obj of desired) {
    if (obj.apiVersion !== 'v1' || (obj.kind !== 'ConfigMap' && obj.kind !== 'Secret')) continue;
    if ((obj.metadata.namespace ?? '') !== ns) continue;
    const data = obj.kind === 'Secret' ? secretData(obj) : (obj['data'] as Record<string, string> | undefined);
    const source: Source = {
      kind: obj.kind,
      name: obj.metadata.name,
      namespace: ns,
      annotations: obj.metadata.annotations ?? {},
      hash: contentHash(data, obj['binaryData'] as Record<string, string> | undefined),
    };
    const at = sources.at.get(key(source.kind, source.name));
    if (at !== undefined) sources.all[at] = source;
    else if (!selected) {
      sources.at.set(key(source.kind, source.name), sources.all.length);
      sources.all.push(source);
    }
  }
  return sources;
}

/** The desired object with the reload fields of `patch` merged in: workload annotation, template annotations, STAKATER_ env vars. */
function merged(desired: KubeObject, patch: KubeObject, adapter: WorkloadAdapter): KubeObject {
  const out = structuredClone(desired);
  out.metadata.annotations = { ...out.metadata.annotations, ...patch.metadata.annotations };
  const into = podTemplateOf(out, adapter);
  const from = podTemplateOf(patch, adapter);
  const annotations = from.metadata?.annotations;
  if (annotations) into.metadata = { ...into.metadata, annotations: { ...into.metadata?.annotations, ...annotations } };
  for (const c of (from.spec?.containers ?? []) as Container[]) {
    const target = (into.spec?.containers as Container[] | undefined)?.find((d) => d.name === c.name);
    if (!target) continue;
    const names = new Set((c.env ?? []).map((e) => e.name));
    target.env = [...(target.env ?? []).filter((e) => !names.has(e.name)), ...(c.env ?? [])];
  }
  return out;
}

interface Candidate {
  index: number;
  adapter: WorkloadAdapter;
  object: KubeObject;
  template: PodTemplate;
}

/** The desired workloads with Reloader annotations, within the scope. */
function candidatesOf(desired: ReadonlyArray<{ object: KubeObject }>, opts: ReloadOptions): Candidate[] {
  const ignored = new Set(opts.ignoreNamespaces ?? []);
  return desired.flatMap(({ object }, index) => {
    const adapter = WORKLOADS.find((a) => a.kind === object.kind && a.apiVersion === object.apiVersion);
    const ns = object.metadata.namespace ?? '';
    if (!adapter || ignored.has(ns) || (opts.namespaces && !opts.namespaces.includes(ns))) return [];
    const template = podTemplateOf(object, adapter);
    if (!hasReloadAnnotations(object.metadata.annotations ?? {}, template.metadata?.annotations ?? {})) return [];
    return [{ index, adapter, object, template }];
  });
}

/** The live workload and the baseline recorded on it; undefined when it is new, or its baseline malformed (the pass reports that). */
async function liveBaseline(
  client: KubeClient,
  c: Candidate,
  signal: AbortSignal | undefined,
): Promise<{ current: KubeObject; baseline: Record<string, string> | undefined } | undefined> {
  const { apiVersion, kind } = c.adapter;
  const current = await client.get(apiVersion, kind, c.object.metadata.namespace ?? '', c.object.metadata.name, signal);
  if (!current) return undefined;
  let baseline: Record<string, string> | undefined;
  try {
    baseline = baselineOf(current);
  } catch {
    return undefined;
  }
  return { current, baseline };
}

/**
 * One workload's reload fields as they will be: with the new hashes and, for what changed since
 * the baseline, the roll; when a policy holds reloads, as they are (changed: none).
 */
function reloadOf(
  c: Candidate,
  current: KubeObject,
  baseline: Record<string, string> | undefined,
  sources: Sources,
  hold: boolean,
  how: { strategy: ReloadOptions['strategy']; revision?: string | undefined },
): { patch: KubeObject; changed: string[]; moved: boolean } {
  const relevant = drain(relevantSources(c.object, c.template, sources));
  const now = Object.fromEntries(relevant.map((r) => [key(r.source.kind, r.source.name), short(r.source.hash)]));
  const was = (r: Relevant): string | undefined => baseline?.[key(r.source.kind, r.source.name)];
  const changed = hold ? [] : relevant.filter((r) => was(r) !== undefined && was(r) !== short(r.source.hash));
  const moved = !hold && Object.keys(now).some((k) => baseline?.[k] !== now[k]);
  const patch = reloadPatch(
    current,
    c.adapter,
    podTemplateOf(current, c.adapter),
    hold ? { ...baseline } : { ...baseline, ...now },
    relevant,
    changed,
    // The revision goes with a baseline this write moves; otherwise it stays as it is.
    { strategy: how.strategy, revision: moved ? how.revision : undefined },
  );
  return { patch, changed: changed.map((r) => key(r.source.kind, r.source.name)), moved };
}

/**
 * One commit, one rollout: the reload fields a workload gets for the ConfigMaps and Secrets this sync
 * applies, merged into the workload as the sync applies it, so that one write carries both the
 * workload's change from Git and its reload (the reload pass right after the apply then finds its
 * hashes recorded and writes nothing). The fields a workload already carries are kept as they are
 * (an unchanged sync writes nothing); a workload seen for the first time gets its hashes recorded,
 * nothing rolled, as the pass would. Reloader's annotations and precedence decide, as in the pass.
 * When the target's reload policy holds reloads now (`hold`), the fields stay as they are and the
 * pass after the apply reports the hold. `patches` are the reload fields that moved: the sync
 * applies them again as the reloader's, so that they stay its own.
 */
export async function embedReloads<T extends { object: KubeObject; reload?: string[] }>(
  client: KubeClient,
  desired: readonly T[],
  opts: ReloadOptions & {
    /** Whether a policy holds this workload's reload now (its target's, or that of the target it is taken from). */
    holds?: (current: KubeObject) => Promise<boolean>;
    /** The revision to record with the baselines it moves (tidegate.dev/reload-revision). */
    revision?: () => Promise<string | undefined>;
  },
): Promise<{ desired: T[]; reloads: ReloadReport['rolled']; patches: KubeObject[] }> {
  const reloads: ReloadReport['rolled'] = [];
  const patches: KubeObject[] = [];
  const candidates = candidatesOf(desired, opts);
  if (candidates.length === 0) return { desired: [...desired], reloads, patches };
  await loadPatternEngine();
  const namespaces = [...new Set(candidates.map((c) => c.object.metadata.namespace ?? ''))];
  const live = await readSources(client, { ...opts, namespaces }, new Pace(opts.signal));
  const objects = desired.map((d) => d.object);
  const out = [...desired];
  for (const c of candidates) {
    const ns = c.object.metadata.namespace ?? '';
    const seen = await liveBaseline(client, c, opts.signal);
    const hold = seen && opts.holds ? await opts.holds(seen.current) : false;
    // Created by this sync, a malformed baseline, or (held) none yet: the pass after the apply sees to it.
    if (!seen || (hold && !seen.baseline)) continue;
    const sources = afterApply(live.get(ns) ?? NO_SOURCES, objects, ns, opts.resourceSelector !== undefined);
    const how = { strategy: opts.strategy, revision: opts.revision ? await opts.revision() : undefined };
    const { patch, changed, moved } = reloadOf(c, seen.current, seen.baseline, sources, hold, how);
    if (moved) patches.push(patch);
    out[c.index] = {
      ...(desired[c.index] as T),
      object: merged(c.object, patch, c.adapter),
      ...(changed.length > 0 ? { reload: changed } : {}),
    };
    if (changed.length > 0) reloads.push({ workload: refOf(c.object), sources: changed });
  }
  return { desired: out, reloads, patches };
}
