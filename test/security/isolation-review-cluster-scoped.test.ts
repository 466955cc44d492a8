import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../shared/model/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, oneTarget, secret, yamlDocs } from '../helpers/engine.js';
import { kubeRequest } from '../helpers/previews.js';

/**
 * The isolation checks between repositories look only at namespaced objects: a target may not write
 * into a namespace another repository's target created (refuseForeignNamespaces,
 * shared/sync/plan-target.ts:88) nor take over an object another repository applied (gate.ts:281).
 * Cluster-scoped objects reach every namespace without being "in" one, and nothing refuses them
 * (confine, shared/apply/confine.ts, applies only to previews). A writer of repository B adds to B's
 * own target:
 *  1. a ClusterRole + ClusterRoleBinding giving B's ServiceAccount `get` on Secrets cluster-wide: a
 *     pod of B (or anyone holding that ServiceAccount's token) reads A's Secrets;
 *  2. a ValidatingAdmissionPolicy + binding (in-apiserver CEL, no webhook server needed) that denies
 *     every write to objects labelled `tidegate.dev/target: <A's target>`: A's syncs fail from then on.
 * Safe, with B's repository limited to namespaced objects (deploy-time settings
 * `repositories[].clusterResources: []`, as a platform team sets it for a team's repository): B's
 * sync is refused naming each cluster-scoped object, nothing of it applied; A's Secret stays
 * unreadable to B, A syncs on.
 */
/** B's repository as the settings list it for a team: namespaced objects only. */
const teamRepository = (b: { url: string; engine: { repositories?: unknown } }): void => {
  b.engine.repositories = [{ url: b.url, branch: 'main', clusterResources: [] }];
};
describe('a repository limited to namespaced objects applies no cluster-scoped object that reaches another repository', () => {
  it("B's ClusterRoleBinding does not let B's ServiceAccount read A's Secret: B's sync is refused", async () => {
    const a = await gitopsRepo('r3cs-a', { owner: 'acme' });
    const b = await gitopsRepo('r3cs-b', { owner: 'other' });
    teamRepository(b);
    const nsA = uniqueName('r3cs-a');
    const nsB = uniqueName('r3cs-b');
    await a.commit({
      'tidegate.yaml': oneTarget(nsA, 'apps'),
      'apps/secret.yaml': yamlDocs(secret('db', { password: 'a-private-password' })),
    });
    expect((await a.sync(nsA))[0]?.outcome).toBe('applied');
    const sa = `system:serviceaccount:${nsB}:reader`;
    const readA = () => kubeRequest('GET', `/api/v1/namespaces/${nsA}/secrets/db`, undefined, { as: sa });
    expect((await readA()).status).toBe(403);

    await b.commit({
      'tidegate.yaml': oneTarget(nsB, 'b'),
      'b/rbac.yaml': yamlDocs([
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'reader' } },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: `${nsB}-secrets` },
          rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }],
        },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: `${nsB}-secrets` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${nsB}-secrets` },
          subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: nsB }],
        },
      ] as KubeObject[]),
    });
    const [resultB] = await b.sync(nsB);
    const read = await readA();
    expect(read.body).not.toContain(Buffer.from('a-private-password').toString('base64'));
    expect(read.status).toBe(403);
    expect(resultB?.outcome).toBe('failed');
    expect(resultB?.error).toMatch(
      /applies cluster-scoped objects its repository may not \(deploy-time setting repositories\[\]\.clusterResources: none\): ClusterRole\.rbac\.authorization\.k8s\.io\/\S+ \(b\/rbac\.yaml\); ClusterRoleBinding\./,
    );
    // Its namespaced objects were not applied either: the sync is refused whole.
    expect(await b.engine.client.get('v1', 'ServiceAccount', nsB, 'reader')).toBeUndefined();
  }, 120_000);

  it("B's ValidatingAdmissionPolicy on A's objects does not stall A's syncs: B's sync is refused, A syncs on", async () => {
    const a = await gitopsRepo('r3vap-a', { owner: 'acme' });
    const b = await gitopsRepo('r3vap-b', { owner: 'other' });
    teamRepository(b);
    const nsA = uniqueName('r3vap-a');
    const nsB = uniqueName('r3vap-b');
    await a.commit({
      'tidegate.yaml': oneTarget(nsA, 'apps'),
      'apps/cm.yaml': yamlDocs(configMap('settings', { v: '1' })),
    });
    expect((await a.sync(nsA))[0]?.outcome).toBe('applied');

    await b.commit({
      'tidegate.yaml': oneTarget(nsB, 'b'),
      'b/own.yaml': yamlDocs(configMap('own', { v: '1' })),
      'b/policy.yaml': yamlDocs([
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingAdmissionPolicy',
          metadata: { name: `${nsB}-deny` },
          spec: {
            failurePolicy: 'Fail',
            matchConstraints: {
              resourceRules: [
                { apiGroups: ['*'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['*'] },
              ],
            },
            validations: [{ expression: 'false', message: `${nsB} says no` }],
          },
        },
        {
          apiVersion: 'admissionregistration.k8s.io/v1',
          kind: 'ValidatingAdmissionPolicyBinding',
          metadata: { name: `${nsB}-deny` },
          spec: {
            policyName: `${nsB}-deny`,
            validationActions: ['Deny'],
            matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': nsA } } },
          },
        },
      ] as KubeObject[]),
    });
    const [resultB] = await b.sync(nsB);
    // The apiserver's policy cache takes a moment to see a new binding.
    await new Promise((r) => setTimeout(r, 3000));
    await a.commit({ 'apps/cm.yaml': yamlDocs(configMap('settings', { v: '2' })) });
    const [resultA] = await a.sync(nsA);
    expect(resultA?.error ?? '').not.toContain(`${nsB} says no`);
    expect(resultA?.outcome).toBe('applied');
    expect(resultB?.outcome).toBe('failed');
    expect(resultB?.error).toMatch(/ValidatingAdmissionPolicy/);
  }, 120_000);
});
