import { parse } from 'yaml';
import type { KubeClient } from '../cluster/index.js';
import type { ClusterSource, TargetSpec, ValuesFrom } from '../config/index.js';
import { TargetOwnedElsewhereError, errorMessage, redactUrl, type KubeObject } from '../model/index.js';
import { RenderError, type ClusterInputs } from '../render/index.js';
import { ownerTarget, readNamespace, type foreignRepository } from './foreign.js';

type Foreign = ReturnType<typeof foreignRepository>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The data of a ConfigMap or Secret (Secret values decoded); undefined when it does not exist. */
function dataOf(src: ClusterSource, obj: KubeObject | undefined): Record<string, string> | undefined {
  if (!obj) return undefined;
  const data = isRecord(obj['data']) ? obj['data'] : {};
  return Object.fromEntries(
    Object.entries(data).map(([k, v]) => [
      k,
      src.kind === 'Secret' ? Buffer.from(String(v), 'base64').toString('utf8') : String(v),
    ]),
  );
}

/** What stands in for each value of a Secret that is withheld from a render (an unreviewed change). */
export const WITHHELD = 'tidegate-withheld-secret-value';

/** `a.b.c` = value, as a nested object. */
const atPath = (path: string, value: string): Record<string, unknown> =>
  path
    .split('.')
    .reverse()
    .reduce<unknown>((inner, key) => ({ [key]: inner }), value) as Record<string, unknown>;

const where = (spec: TargetSpec, src: ClusterSource) =>
  src.namespace ?? spec.namespace ?? spec.targetNamespace ?? 'default';
const label = (src: ClusterSource, namespace: string) => `${src.kind} ${namespace}/${src.name}`;

/** One valuesFrom entry as chart values: the key's YAML, or its text at targetPath. Values never appear in errors. */
function valuesOf(entry: ValuesFrom, data: Record<string, string>, what: string): Record<string, unknown> {
  const text = data[entry.valuesKey];
  if (text === undefined) {
    if (entry.optional) return {};
    throw new Error(`${what} has no key ${entry.valuesKey}`);
  }
  if (entry.targetPath) return atPath(entry.targetPath, text);
  if (text === WITHHELD) return {}; // a withheld values file: the chart's defaults stand in
  let values: unknown;
  try {
    values = parse(text);
  } catch {
    throw new Error(`${what}: key ${entry.valuesKey} is not valid YAML`);
  }
  if (values !== null && !isRecord(values)) throw new Error(`${what}: key ${entry.valuesKey} is not a YAML mapping`);
  return values ?? {};
}

/**
 * The object a target reads, unless another repository's target created its namespace or applied it
 * (owner labels): a repository's targets read nothing of another repository's, so a Secret of one
 * never reaches another's objects, errors or previews. Refused before the object is read. The
 * namespace is read as tidegate (`client`), the object as the target (`reader`: its
 * ServiceAccount, when it applies as one), so a target reads nothing its ServiceAccount may not.
 */
function ownReader(spec: TargetSpec, client: KubeClient, reader: KubeClient, foreign: Foreign, signal?: AbortSignal) {
  const refuse = (what: string, owner: string | undefined, url: string) =>
    new TargetOwnedElsewhereError(
      `target ${spec.name} reads ${what}, which belongs to target ${owner} of another repository (${redactUrl(url)}); a target reads ConfigMaps and Secrets of its own repository or of namespaces no repository's target created`,
    );
  return async (src: ClusterSource, namespace: string, what: string): Promise<KubeObject | undefined> => {
    const ns = ownerTarget((await readNamespace(client, namespace, signal)).object);
    const nsRepo = await foreign(ns);
    if (nsRepo) throw refuse(what, ns, nsRepo);
    const obj = await reader.get('v1', src.kind, namespace, src.name, signal);
    const objOwner = ownerTarget(obj);
    const objRepo = await foreign(objOwner);
    if (objRepo) throw refuse(what, objOwner, objRepo);
    return obj;
  };
}

/**
 * What a target takes from the cluster before it renders: variables (substituteFrom, later entries
 * winning) and chart values (valuesFrom, in order). A missing object that is not optional fails the
 * render, so nothing is applied or pruned on a guess.
 */
export async function readClusterInputs(
  spec: TargetSpec,
  client: KubeClient,
  signal: AbortSignal | undefined,
  opts: { withholdSecrets?: boolean; foreign: Foreign; reader?: KubeClient },
): Promise<ClusterInputs> {
  if (spec.substituteFrom.length === 0 && (spec.helm?.valuesFrom.length ?? 0) === 0) return {};
  const secrets: string[] = [];
  const readOwn = ownReader(spec, client, opts.reader ?? client, opts.foreign, signal);
  /**
   * A Secret's values are kept for redaction (a name or value from an earlier sync may hold them);
   * withheld, the render gets a placeholder for each instead.
   */
  const read = async (src: ClusterSource): Promise<{ data: Record<string, string>; what: string } | undefined> => {
    const namespace = where(spec, src);
    const what = label(src, namespace);
    const data = dataOf(src, await readOwn(src, namespace, what));
    if (data && src.kind === 'Secret') {
      secrets.push(...Object.values(data), ...Object.values(data).flatMap(leaves));
      if (opts.withholdSecrets) return { data: Object.fromEntries(Object.keys(data).map((k) => [k, WITHHELD])), what };
    }
    if (data) return { data, what };
    if (src.optional) return undefined;
    throw new RenderError([{ file: 'tidegate.yaml', object: spec.name, message: `${what} does not exist` }]);
  };
  const substitute: Record<string, string> = {};
  for (const src of spec.substituteFrom) Object.assign(substitute, (await read(src))?.data);
  const values: Array<Record<string, unknown>> = [];
  for (const entry of spec.helm?.valuesFrom ?? []) {
    const found = await read(entry);
    if (!found) continue;
    try {
      values.push(valuesOf(entry, found.data, found.what));
    } catch (err) {
      throw new RenderError([{ file: 'tidegate.yaml', object: spec.name, message: errorMessage(err) }]);
    }
  }
  return { substitute, values, secrets };
}

/** The strings of a YAML text's values (a Secret's values file), for redaction. */
function leaves(text: string): string[] {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return [];
  }
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string' || typeof v === 'number') out.push(String(v));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (isRecord(v)) Object.values(v).forEach(walk);
  };
  walk(doc);
  return out;
}
