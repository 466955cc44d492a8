import type { KubeObject } from '../model/index.js';

interface DefinedResource {
  name: string;
  singularName: string;
  namespaced: boolean;
  kind: string;
  verbs: string[];
}

/** The resources a render's own CRDs define (the cluster does not serve them yet), by `group/version`. */
export type Definitions = Map<string, DefinedResource[]>;

const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** What CustomResourceDefinitions define: each served version of each, as discovery would list it. */
export function definitionsOf(crds: readonly KubeObject[]): Definitions {
  const defs: Definitions = new Map();
  for (const crd of crds) {
    const spec = isRecord(crd['spec']) ? crd['spec'] : {};
    const names = isRecord(spec['names']) ? spec['names'] : {};
    const [group, plural, kind] = [spec['group'], names['plural'], names['kind']];
    if (typeof group !== 'string' || typeof plural !== 'string' || typeof kind !== 'string') continue;
    for (const version of Array.isArray(spec['versions']) ? spec['versions'] : []) {
      if (!isRecord(version) || typeof version['name'] !== 'string' || version['served'] === false) continue;
      const gv = `${group}/${version['name']}`;
      const resource: DefinedResource = {
        name: plural,
        singularName: typeof names['singular'] === 'string' ? names['singular'] : kind.toLowerCase(),
        namespaced: spec['scope'] !== 'Cluster',
        kind,
        verbs: VERBS,
      };
      defs.set(gv, [...(defs.get(gv) ?? []).filter((r) => r.name !== plural), resource]);
    }
  }
  return defs;
}

/** A legacy `/apis` answer (APIGroupList) with the defined groups and versions the cluster does not serve added. */
export function withDefinedGroups(text: string, defs: Definitions): string {
  const list = JSON.parse(text) as {
    groups?: Array<{ name: string; versions: Array<{ groupVersion: string; version: string }> }>;
  };
  const groups = list.groups ?? [];
  for (const gv of defs.keys()) {
    const [group = '', version = ''] = gv.split('/');
    const entry = { groupVersion: gv, version };
    const known = groups.find((g) => g.name === group);
    if (!known) groups.push({ name: group, versions: [entry], preferredVersion: entry } as (typeof groups)[number]);
    else if (!known.versions.some((v) => v.groupVersion === gv)) known.versions.push(entry);
  }
  return JSON.stringify({ ...list, groups });
}

/** A `/apis/<group>/<version>` answer (APIResourceList) with the defined resources added (made when the cluster has none). */
export function withDefinedResources(gv: string, text: string | undefined, defs: Definitions): string {
  const list = (text ? JSON.parse(text) : { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv }) as {
    resources?: DefinedResource[];
  };
  const served = list.resources ?? [];
  const added = (defs.get(gv) ?? []).filter((r) => !served.some((s) => s.name === r.name));
  return JSON.stringify({ ...list, resources: [...served, ...added] });
}
