import type { KubeClient } from '../cluster/index.js';
import type { IgnoreRule } from '../config/index.js';
import { groupOf, refKey, refOf, type KubeObject, type ObjectRef } from '../model/index.js';
import type { RandomField, RenderedObject } from '../render/index.js';
import type { ObjectProblem } from './errors.js';
import { setAt } from './jsonpointer.js';
import { compareForApply, stageOf, type Stage } from './ordering.js';
import { SYSTEM_NAMESPACE, desiredHash, ownerLabels } from './owner.js';

/** An object ready to apply: namespaced as the cluster requires, labelled, hashed, staged. */
export interface DesiredObject {
  object: KubeObject;
  ref: ObjectRef;
  id: string;
  source: string;
  hash: string;
  stage: Stage;
  /** Set when the object can be dry-run only after an earlier stage is applied (its CRD or namespace is new). */
  waitsFor?: string;
  /** Strings the chart generates at random: a live value of their shape is kept (see plan). */
  random?: RandomField[];
  /**
   * A workload whose write also carries its reload: the ConfigMaps and Secrets (Kind/name) whose
   * change it rolls for. What differs from the live object for them is no drift.
   */
  reload?: string[];
}

/**
 * What the hash of the desired state is taken of: the object, and for one with random fields, the
 * object with each of them replaced by its shape, and the digest of what the render read. The hash
 * then stays the same from one render to the next while Git and the chart do not change.
 */
function hashed(object: KubeObject, random: readonly RandomField[] | undefined, inputs: string | undefined): unknown {
  if (!random) return object;
  const shapes = random.reduce<KubeObject>((o, f) => setAt(o, f.path, '<random>'), object);
  return { ...shapes, '~inputs': inputs ?? '' };
}

export interface PrepareOptions {
  target: string;
  targetNamespace?: string | undefined;
  /** Where namespaced objects that name no namespace go (a Helm release's namespace); "default" when unset. */
  namespace?: string | undefined;
  /** A digest of what the render read: part of the hash of objects with random fields (their values are not). */
  inputs?: string | undefined;
}

interface CrdDefinition {
  namespaced: boolean;
}

/** Kinds defined by CRDs in the same set: group/kind → scope. */
export function crdsInSet(objects: readonly RenderedObject[]): Map<string, CrdDefinition> {
  const defs = new Map<string, CrdDefinition>();
  for (const { object } of objects) {
    if (object.kind !== 'CustomResourceDefinition') continue;
    const spec = object['spec'] as { group?: string; names?: { kind?: string }; scope?: string } | undefined;
    if (spec?.group && spec.names?.kind)
      defs.set(`${spec.group}/${spec.names.kind}`, { namespaced: spec.scope !== 'Cluster' });
  }
  return defs;
}

/** Whether objects of this kind live in a namespace (discovery, else a CRD of the set); undefined for a kind neither knows. */
export function isNamespaced(
  object: KubeObject,
  client: KubeClient,
  crds: ReadonlyMap<string, CrdDefinition>,
): boolean | undefined {
  return (
    client.resourceFor(object.apiVersion, object.kind) ?? crds.get(`${groupOf(object.apiVersion)}/${object.kind}`)
  )?.namespaced;
}

/** The namespaces the objects land in once placed: targetNamespace, else their own, else "default". */
export function namespacesOf(
  rendered: readonly RenderedObject[],
  client: KubeClient,
  opts: PrepareOptions,
): Set<string> {
  const crds = crdsInSet(rendered);
  const names = new Set<string>();
  for (const { object } of rendered) {
    if (isNamespaced(object, client, crds)) names.add(namespaceOf(object, opts));
  }
  return names;
}

/**
 * Turns rendered objects into desired objects: resolves each kind's scope through discovery (or a
 * CRD in the same set), sets namespaces (targetNamespace overrides, else "default"), adds owner
 * labels, orders them for apply. Unknown kinds are problems. `existingNamespaces` decides which
 * objects must wait for their namespace to be created first.
 */
export function prepare(
  rendered: readonly RenderedObject[],
  client: KubeClient,
  opts: PrepareOptions,
  existingNamespaces: ReadonlySet<string>,
): { desired: DesiredObject[]; problems: ObjectProblem[] } {
  const crds = crdsInSet(rendered);
  const newNamespaces = new Set(
    rendered
      .filter((r) => r.object.kind === 'Namespace' && r.object.apiVersion === 'v1')
      .map((r) => r.object.metadata.name),
  );
  const problems: ObjectProblem[] = [];
  const desired: DesiredObject[] = [];
  for (const { object, source, random } of rendered) {
    const namespaced = isNamespaced(object, client, crds);
    if (namespaced === undefined) {
      problems.push({
        ref: refOf(object),
        source,
        message: `the cluster does not serve ${object.kind} in ${object.apiVersion} and no CRD in this revision defines it`,
      });
      continue;
    }
    const fromCrd = !client.resourceFor(object.apiVersion, object.kind);
    const obj = place(object, namespaced, opts);
    const ref = refOf(obj);
    const refused = refusal(obj);
    if (refused) {
      problems.push({ ref, source, message: refused });
      continue;
    }
    const namespace = obj.metadata.namespace;
    let waitsFor: string | undefined;
    if (fromCrd) waitsFor = `its CRD (${object.kind}.${groupOf(object.apiVersion)}) is applied in this sync`;
    else if (namespace && !existingNamespaces.has(namespace)) {
      if (newNamespaces.has(namespace) || namespace === opts.targetNamespace)
        waitsFor = `namespace ${namespace} is created in this sync`;
      else
        problems.push({
          ref,
          source,
          message: `namespace ${namespace} does not exist and is not part of this revision`,
        });
    }
    desired.push({
      object: obj,
      ref,
      id: refKey(ref),
      source,
      hash: desiredHash(hashed(obj, random, opts.inputs) as KubeObject),
      stage: stageOf(obj.kind),
      ...(waitsFor ? { waitsFor } : {}),
      ...(random ? { random } : {}),
    });
  }
  desired.sort((a, b) => compareForApply(a.object, b.object));
  return { desired, problems };
}

/**
 * What no target may apply: anything in tidegate-system, which holds tidegate's own state (target
 * states, locks, the previews register; a target writing there could forge another's pin or gate),
 * or that namespace itself (a prune of it would delete them); and a Secret value that is not a
 * string, which the apiserver would refuse with the value in its message.
 */
function refusal(obj: KubeObject): string | undefined {
  if (
    obj.metadata.namespace === SYSTEM_NAMESPACE ||
    (obj.kind === 'Namespace' && obj.metadata.name === SYSTEM_NAMESPACE)
  )
    return `${SYSTEM_NAMESPACE} holds tidegate's own state (target states, locks, previews): no target may write there`;
  if (obj.kind !== 'Secret' || obj.apiVersion !== 'v1') return undefined;
  for (const field of ['data', 'stringData'] as const) {
    const map = obj[field];
    if (map === undefined || map === null) continue;
    if (typeof map !== 'object' || Array.isArray(map)) return `${field} must be a map of strings`;
    const bad = Object.entries(map).find(([, v]) => typeof v !== 'string');
    if (bad) return `${field}.${bad[0]} is not a string (quote it in YAML); its value is not shown`;
  }
  return undefined;
}

/** Where a namespaced object goes: targetNamespace wins, then the object's own, then the target's namespace, then "default". */
const namespaceOf = (object: KubeObject, opts: PrepareOptions): string =>
  opts.targetNamespace ?? object.metadata.namespace ?? opts.namespace ?? 'default';

/** Sets the namespace the cluster requires and the owner labels. */
function place(object: KubeObject, namespaced: boolean, opts: PrepareOptions): KubeObject {
  const namespace = namespaced ? namespaceOf(object, opts) : undefined;
  const { namespace: _dropped, ...meta } = object.metadata;
  return {
    ...object,
    metadata: {
      ...meta,
      ...(namespace ? { namespace } : {}),
      labels: { ...object.metadata.labels, ...ownerLabels(opts.target, object.metadata.labels) },
    },
  };
}

function matches(rule: IgnoreRule, ref: ObjectRef): boolean {
  const t = rule.target;
  if (!t) return true;
  return (
    (t.group === undefined || t.group === ref.group) &&
    (t.kind === undefined || t.kind === ref.kind) &&
    (t.name === undefined || t.name === ref.name) &&
    (t.namespace === undefined || t.namespace === ref.namespace)
  );
}

/** The JSON pointers an object's ignore rules name. */
export function ignoredPaths(rules: readonly IgnoreRule[], ref: ObjectRef): string[] {
  return rules.filter((r) => matches(r, ref)).flatMap((r) => r.paths);
}
