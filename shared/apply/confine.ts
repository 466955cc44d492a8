import type { KubeClient } from '../cluster/index.js';
import { TidegateError, formatRef, groupOf, refOf, type KubeObject } from '../model/index.js';
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

const RBAC = 'rbac.authorization.k8s.io';

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs?: string[];
}

const meets = (list: readonly string[] | undefined, wanted: readonly string[]): boolean =>
  (list ?? []).some((x) => wanted.includes(x));

/**
 * What a rule granted inside a preview's namespace could do beyond it: write the namespace object
 * itself (its labels decide Pod Security and whose preview it is: the apiserver authorizes a
 * change of namespace X as a request in X), or bind and escalate (grant itself such a rule).
 */
function escapes(rule: PolicyRule): string | undefined {
  const core = meets(rule.apiGroups, ['', '*']);
  // namespaces, namespaces/status and namespaces/finalize all change labels; "*" and "*/status" cover them.
  const namespaces = (rule.resources ?? []).some((r) => ['namespaces', '*'].includes(r.split('/')[0] ?? ''));
  if (core && namespaces && meets(rule.verbs, ['create', 'update', 'patch', 'delete', 'deletecollection', '*']))
    return 'may change its own namespace (and so its Pod Security level)';
  if (meets(rule.verbs, ['bind', 'escalate']) || (meets(rule.verbs, ['*']) && meets(rule.apiGroups, [RBAC, '*'])))
    return 'may bind or escalate roles';
  return undefined;
}

/** Why a Role or RoleBinding of a preview would give its pods more than their namespace, if it would. */
async function rbacEscape(object: KubeObject, client: KubeClient, signal?: AbortSignal): Promise<string | undefined> {
  if (groupOf(object.apiVersion) !== RBAC) return undefined;
  const firstEscape = (rules: unknown): string | undefined =>
    (Array.isArray(rules) ? (rules as PolicyRule[]) : []).map(escapes).find(Boolean);
  if (object.kind === 'Role') return firstEscape(object['rules']);
  if (object.kind !== 'RoleBinding') return undefined;
  const roleRef = object['roleRef'] as { kind?: string; name?: string } | undefined;
  if (roleRef?.kind !== 'ClusterRole') return undefined; // a Role of the preview's namespace: checked as a Role
  const role = await client.get(`${RBAC}/v1`, 'ClusterRole', '', roleRef.name ?? '', signal);
  if (!role) return `binds ClusterRole ${roleRef.name ?? ''}, which does not exist`;
  const why = firstEscape(role['rules']);
  return why && `binds ClusterRole ${roleRef.name ?? ''}, which ${why}`;
}

/**
 * Keeps a render inside one namespace. A Namespace object naming the preview's namespace or one
 * it stands for is left out (tidegate creates the preview's namespace itself); any other
 * cluster-scoped object, any object naming another namespace, and any Role or RoleBinding that
 * would let the preview's pods change their namespace or grant themselves more, is a problem: the
 * whole set is then refused before anything is dry-run or applied. Kinds neither discovery nor a CRD of the set
 * knows are left to prepare, which refuses them.
 */
export async function confine(
  rendered: readonly RenderedObject[],
  client: KubeClient,
  c: Confinement,
  signal?: AbortSignal,
): Promise<{ objects: RenderedObject[]; problems: ObjectProblem[] }> {
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
    else {
      const escape = await rbacEscape(object, client, signal);
      if (escape) refuse(r, escape);
      else objects.push(r);
    }
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
