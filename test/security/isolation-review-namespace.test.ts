import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, oneTarget, testEngine, yamlDocs } from '../helpers/engine.js';

/**
 * Repository B's target names repository A's namespace (targetNamespace, or metadata.namespace):
 * nothing ties a namespace to the repository whose target created it, so B creates objects there:
 * a RoleBinding giving B's ServiceAccount `admin` over A's namespace (A's Secrets, A's objects), and
 * a ConfigMap named as the one A adds next, which A's next sync then cannot take ("another
 * repository's target"). Safe: B's sync is refused and nothing of B lands in A's namespace.
 */
describe("one repository's target writes into another repository's namespace", () => {
  it("B's RoleBinding (admin) and an object name A has not used yet, in A's namespace: refused, nothing of B lands there, A applies its own object of that name", async () => {
    const { client } = testEngine();
    const a = await gitopsRepo('r30n-a', { owner: 'acme' });
    const b = await gitopsRepo('r30n-b', { owner: 'other' });
    const nsA = uniqueName('r30n-a');
    const nsB = uniqueName('r30n-b');
    await a.commit({
      'tidegate.yaml': oneTarget(nsA, 'apps'),
      'apps/cm.yaml': yamlDocs(configMap('settings', { v: '1' })),
    });
    expect((await a.sync(nsA))[0]?.outcome).toBe('applied');

    await b.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: nsB, cluster: 'test', path: 'b', namespace: nsB, createNamespace: true, wait: false }],
      }),
      'b/own.yaml': yamlDocs(configMap('own', { v: '1' })),
      'b/reach.yaml': yamlDocs([
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'RoleBinding',
          metadata: { name: 'b-admin', namespace: nsA },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' },
          subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: nsB }],
        },
        { ...configMap('next', { from: 'b' }), metadata: { name: 'next', namespace: nsA } },
      ]),
    });
    const [resultB] = await b.sync(nsB);
    expect(resultB?.outcome).toBe('failed');
    expect(resultB?.error).toContain(
      `target ${nsB} would write into another repository's namespace, which no target of another repository does: ConfigMap/${nsA}/next (namespace ${nsA} was created by target ${nsA} of ${a.url})`,
    );
    expect(resultB?.error).toContain(`RoleBinding.rbac.authorization.k8s.io/${nsA}/b-admin`);
    expect(await client.get('rbac.authorization.k8s.io/v1', 'RoleBinding', nsA, 'b-admin')).toBeUndefined();
    expect(await client.get('v1', 'ConfigMap', nsA, 'next')).toBeUndefined();
    expect(await client.get('v1', 'ConfigMap', nsB, 'own')).toBeUndefined(); // nothing of the refused plan applied

    // A adds ConfigMap "next" as its Git says: applied, not refused as another repository's object.
    await a.commit({ 'apps/next.yaml': yamlDocs(configMap('next', { from: 'a' })) });
    const resultA = (await a.sync(nsA))[0];
    expect(resultA?.outcome).toBe('applied');
  }, 120_000);
});
