import type { KubeClient } from '../cluster/index.js';
import { TidegateError, formatRef, refOf, type KubeObject } from '../model/index.js';
import type { RenderedObject } from '../render/index.js';
import type { ObjectProblem } from './errors.js';
import { crdsInSet, isNamespaced } from './prepare.js';

/** Where a preview environment may write: one namespace, into which the namespaces its manifests may name are moved. */
export interface Confinement {
  namespace: string;
  /** Namespaces a manifest may name (the target's own targetNamespace): placed in `namespace` like unnamed ones. */
  from: readonly string[];
}

const isNamespaceObject = (o: KubeObject): boolean => o.apiVersion === 'v1' && o.kind === 'Namespace';

/**
 * Keeps a render inside one namespace. A Namespace object naming the preview's namespace or one
 * it stands for is left out (tidegate creates the preview's namespace itself); any other
 * cluster-scoped object, and any object naming another namespace, is a problem: the whole set is
 * then refused before anything is dry-run or applied. Kinds neither discovery nor a CRD of the set
 * knows are left to prepare, which refuses them.
 */
export function confine(
  rendered: readonly RenderedObject[],
  client: KubeClient,
  c: Confinement,
): { objects: RenderedObject[]; problems: ObjectProblem[] } {
  const crds = crdsInSet(rendered);
  const allowed = new Set([c.namespace, ...c.from]);
  const objects: RenderedObject[] = [];
  const problems: ObjectProblem[] = [];
  const refuse = (r: RenderedObject, message: string) =>
    problems.push({ ref: refOf(r.object), source: r.source, message });
  for (const r of rendered) {
    const { object } = r;
    if (isNamespaceObject(object) && allowed.has(object.metadata.name)) continue;
    const namespaced = isNamespaced(object, client, crds);
    if (namespaced === false) refuse(r, 'cluster-scoped');
    else if (namespaced && object.metadata.namespace && !allowed.has(object.metadata.namespace))
      refuse(r, `names namespace ${object.metadata.namespace}`);
    else objects.push(r);
  }
  return { objects, problems };
}

/** Objects of a preview that would land outside its namespace: the whole set is refused, each listed on a line of its own. */
export class ConfinementError extends TidegateError {
  readonly problems: readonly ObjectProblem[];

  constructor(namespace: string, problems: ObjectProblem[]) {
    super(
      'PreviewRefused',
      [
        `${problems.length} object(s) would leave the preview namespace ${namespace}; nothing was applied`,
        ...problems.map((p) => `${formatRef(p.ref)} (${p.source}): ${p.message}`),
      ].join('\n'),
    );
    this.problems = problems;
  }
}
