import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { run } from '../../devenv/index.js';
import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { stateName } from '../../shared/state/state.js';
import type { KubeClient } from '../../shared/cluster/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo } from '../helpers/engine.js';

const config = (targets: Array<Record<string, unknown>>): string => stringify({ targets });

/** resourceVersion of every object in a namespace, by kind/name. */
async function versions(client: KubeClient, ns: string): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const [v, k] of [
    ['v1', 'ConfigMap'],
    ['v1', 'Secret'],
    ['apps/v1', 'Deployment'],
    ['v1', 'Service'],
  ] as const) {
    for (const o of await client.list(v, k, { namespace: ns }))
      out[`${k}/${o.metadata.name}`] = o.metadata.resourceVersion;
  }
  return out;
}

describe('engine.sync against the real apiserver', () => {
  it('applies a revision, then a second sync of the same revision writes nothing', async () => {
    const ns = uniqueName('noop');
    const repo = await gitopsRepo('noop');
    const sha = await repo.commit({
      'tidegate.yaml': config([{ name: 'app', cluster: 'test', path: 'apps/app', targetNamespace: ns, wait: false }]),
      'apps/app/config.yaml': configMap('settings', { LOG: 'info' }),
      'apps/app/deploy.yaml': deployment('web', { replicas: 2 }),
      'apps/app/secret.yaml': {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds' },
        stringData: { password: 'hunter2' },
      },
    });
    const [first] = await repo.sync('app', sha);
    expect(first?.outcome).toBe('applied');
    expect(first?.changeSet.changes.map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`)).toEqual([
      'created Namespace/' + ns,
      'created Secret/creds',
      'created ConfigMap/settings',
      'created Deployment/web',
    ]);
    const { client } = repo.engine;
    const live = await client.get('apps/v1', 'Deployment', ns, 'web');
    expect(live?.metadata.labels).toMatchObject({
      'app.kubernetes.io/managed-by': 'tidegate',
      'tidegate.dev/target': 'app',
    });
    expect(live?.metadata.managedFields?.map((f) => f.manager)).toContain('tidegate');

    const before = await versions(client, ns);
    const stateBefore = (await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, stateName('app')))?.metadata
      .resourceVersion;
    const [second] = await repo.sync('app', sha);
    expect(second?.outcome).toBe('unchanged');
    expect(second?.changeSet.changes.every((c) => c.action === 'unchanged')).toBe(true);
    expect(await versions(client, ns)).toEqual(before);
    // Only dry-runs were sent, and only for what the fast path cannot prove unchanged: a Secret
    // written with stringData (it reads back as data). The target namespace exists, so it is left
    // alone; not even the recorded state was rewritten.
    const patches = client.requestCounts['PATCH'] ?? 0;
    const [third] = await repo.sync('app', sha);
    expect((client.requestCounts['PATCH'] ?? 0) - patches).toBe(1);
    expect(third?.outcome).toBe('unchanged');
    expect(await versions(client, ns)).toEqual(before);
    expect((await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, stateName('app')))?.metadata.resourceVersion).toBe(
      stateBefore,
    );
    const state = await readTargetState(client, 'app');
    expect(state.inventory).toHaveLength(3); // the target namespace itself is never in the inventory
    expect(state.history.map((h) => h.outcome)).toEqual(['applied']);
  });

  it('prunes exactly the object whose file left Git', async () => {
    const ns = uniqueName('prune');
    const repo = await gitopsRepo('prune');
    await repo.commit({
      'tidegate.yaml': config([{ name: 'p', cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }]),
      'apps/a.yaml': configMap('a', { k: '1' }),
      'apps/b.yaml': configMap('b', { k: '2' }),
      'apps/keep.yaml': configMap('keep', { k: '3' }, { annotations: { 'tidegate.dev/prune': 'disabled' } }),
    });
    await repo.sync('p');
    const { client } = repo.engine;
    await client.apply(configMap('unmanaged', { k: 'x' }, { namespace: ns }), { fieldManager: 'someone-else' });
    const sha = await repo.commit({ 'apps/b.yaml': null, 'apps/keep.yaml': null });
    const [res] = await repo.sync('p', sha);
    expect(
      res?.changeSet.changes
        .filter((c) => c.action !== 'unchanged')
        .map((c) => `${c.action} ${c.ref.name}${c.reason ? ` (${c.reason})` : ''}`),
    ).toEqual(['deleted b', 'skipped keep (not pruned: tidegate.dev/prune is disabled)']);
    const names = (await client.list('v1', 'ConfigMap', { namespace: ns })).map((o) => o.metadata.name).sort();
    expect(names).toEqual(['a', 'keep', 'unmanaged']); // no controller-manager here, so no kube-root-ca.crt
  });

  it('applies nothing of the stage and prunes nothing when one manifest is invalid, naming file and object', async () => {
    const ns = uniqueName('invalid');
    const repo = await gitopsRepo('invalid');
    await repo.commit({
      'tidegate.yaml': config([{ name: 'inv', cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }]),
      'apps/old.yaml': configMap('old', { k: '1' }),
    });
    await repo.sync('inv');
    const bad: KubeObject = {
      ...deployment('broken'),
      spec: { replicas: 'many', selector: { matchLabels: { app: 'x' } } },
    };
    const sha = await repo.commit({
      'apps/old.yaml': null,
      'apps/new.yaml': configMap('new', { k: '2' }),
      'apps/z-broken.yaml': bad,
    });
    const [res] = await repo.sync('inv', sha);
    expect(res?.outcome).toBe('failed');
    expect(res?.error).toMatch(/^Deployment\.apps\/.+\/broken \(apps\/z-broken\.yaml\): /);
    const names = (await repo.engine.client.list('v1', 'ConfigMap', { namespace: ns })).map((o) => o.metadata.name);
    expect(names).toContain('old'); // not pruned
    expect(names).not.toContain('new'); // nothing of the stage applied
    const state = await readTargetState(repo.engine.client, 'inv');
    expect(state.inventory.map((e) => e.id.split('_')[1])).toEqual(['old']);
    expect(state.history.at(-1)?.outcome).toBe('failed');
  });

  it('fails on a render error without touching the cluster', async () => {
    const ns = uniqueName('render');
    const repo = await gitopsRepo('render');
    await repo.commit({
      'tidegate.yaml': config([{ name: 'r', cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }]),
      'apps/a.yaml': configMap('a', { k: '1' }),
    });
    await repo.sync('r');
    const sha = await repo.commit({
      'apps/a.yaml': null,
      'apps/bad.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n',
    });
    const [res] = await repo.sync('r', sha);
    expect(res?.outcome).toBe('failed');
    expect(res?.error).toBe('apps/bad.yaml (document 1): metadata.name is missing');
    expect(await repo.engine.client.get('v1', 'ConfigMap', ns, 'a')).toBeDefined();
  });

  it('refuses to prune everything after an empty render unless allowEmpty', async () => {
    const ns = uniqueName('empty');
    const repo = await gitopsRepo('empty');
    await repo.commit({
      'tidegate.yaml': config([{ name: 'e', cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }]),
      'apps/a.yaml': configMap('a', { k: '1' }),
    });
    await repo.sync('e');
    const sha = await repo.commit({ 'apps/a.yaml': null, 'apps/README.md': 'nothing here' });
    const [res] = await repo.sync('e', sha);
    expect(res?.outcome).toBe('failed');
    expect(res?.error).toMatch(/rendered no objects; refusing to prune/);
    expect(await repo.engine.client.get('v1', 'ConfigMap', ns, 'a')).toBeDefined();
    const sha2 = await repo.commit({
      'tidegate.yaml': config([
        { name: 'e', cluster: 'test', path: 'apps', targetNamespace: ns, wait: false, allowEmpty: true },
      ]),
    });
    const [res2] = await repo.sync('e', sha2);
    expect(res2?.changeSet.changes.map((c) => `${c.action} ${c.ref.name}`)).toContain('deleted a');
  });

  it('applies a CRD and a custom resource of it in one sync', async () => {
    const ns = uniqueName('crd');
    const group = `${uniqueName('g')}.example.com`;
    const crd: KubeObject = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
              },
            },
          },
        ],
      },
    };
    const repo = await gitopsRepo('crd');
    const sha = await repo.commit({
      'tidegate.yaml': config([{ name: 'crd', cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }]),
      'apps/crd.yaml': crd,
      'apps/widget.yaml': { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 3 } },
    });
    const [diff] = await repo.sync('crd', sha, true);
    expect(diff?.changeSet.changes.find((c) => c.ref.kind === 'Widget')).toMatchObject({
      action: 'created',
      reason: expect.stringContaining('its CRD'),
    });
    const [res] = await repo.sync('crd', sha);
    expect(res?.outcome).toBe('applied');
    const widget = await repo.engine.client.get(`${group}/v1`, 'Widget', ns, 'w1');
    expect(widget?.['spec']).toEqual({ size: 3 });
  });

  it('reverts a kubectl edit of a managed field, and only reports it in warn mode', async () => {
    const ns = uniqueName('drift');
    const repo = await gitopsRepo('drift');
    const target = (drift: string) =>
      config([{ name: 'd', cluster: 'test', path: 'apps', targetNamespace: ns, wait: false, drift }]);
    await repo.commit({ 'tidegate.yaml': target('correct'), 'apps/deploy.yaml': deployment('web', { replicas: 2 }) });
    await repo.sync('d');
    const { kube, tools } = testEnv();
    const edit = async (from: number, to: number) =>
      run(
        tools.kubectl,
        ['--kubeconfig', kube.kubeconfigPath, '--context', 'tidegate-test', 'edit', 'deployment/web', '-n', ns],
        {
          env: { ...process.env, KUBE_EDITOR: `sed -i s/replicas:\\ ${from}/replicas:\\ ${to}/` },
        },
      );
    await edit(2, 5);
    const replicas = async () =>
      ((await repo.engine.client.get('apps/v1', 'Deployment', ns, 'web'))?.['spec'] as { replicas: number }).replicas;
    expect(await replicas()).toBe(5);
    const [fixed] = await repo.sync('d');
    expect(fixed?.changeSet.changes.find((c) => c.ref.kind === 'Deployment')).toMatchObject({
      action: 'configured',
      drift: true,
      reason: 'drift corrected',
      fields: ['spec.replicas'],
    });
    expect(await replicas()).toBe(2);

    await repo.commit({ 'tidegate.yaml': target('warn') });
    await repo.sync('d');
    await edit(2, 7);
    const [warned] = await repo.sync('d');
    expect(warned?.changeSet.changes.find((c) => c.ref.kind === 'Deployment')).toMatchObject({
      action: 'skipped',
      drift: true,
      reason: 'drifted from Git; not corrected (drift: warn)',
    });
    expect(await replicas()).toBe(7);
  });

  it('leaves ignored fields to their other owner (HPA-managed replicas)', async () => {
    const ns = uniqueName('ignore');
    const repo = await gitopsRepo('ignore');
    await repo.commit({
      'tidegate.yaml': config([
        {
          name: 'i',
          cluster: 'test',
          path: 'apps',
          targetNamespace: ns,
          wait: false,
          ignore: [{ paths: ['/spec/replicas'], target: { kind: 'Deployment' } }],
        },
      ]),
      'apps/deploy.yaml': deployment('web', { replicas: 2 }),
    });
    await repo.sync('i');
    const { client } = repo.engine;
    await client.apply(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: ns }, spec: { replicas: 9 } },
      { fieldManager: 'hpa-controller', force: true },
    );
    const sha = await repo.commit({
      'apps/deploy.yaml': deployment('web', { replicas: 2, image: 'registry.example/app:2.0.0' }),
    });
    await repo.sync('i', sha);
    const live = await client.get('apps/v1', 'Deployment', ns, 'web');
    expect((live?.['spec'] as { replicas: number }).replicas).toBe(9);
    expect(JSON.stringify(live?.['spec'])).toContain('app:2.0.0');
  });

  it('reports an immutable-field change per object, and recreates the object with force', async () => {
    const ns = uniqueName('immutable');
    const repo = await gitopsRepo('immutable');
    const cfg = (force: boolean) =>
      config([{ name: 'm', cluster: 'test', path: 'apps', targetNamespace: ns, wait: false, force }]);
    await repo.commit({
      'tidegate.yaml': cfg(false),
      'apps/deploy.yaml': deployment('web', { labels: { app: 'web' } }),
    });
    await repo.sync('m');
    const uid = (await repo.engine.client.get('apps/v1', 'Deployment', ns, 'web'))?.metadata.uid;
    await repo.commit({ 'apps/deploy.yaml': deployment('web', { labels: { app: 'web', tier: 'front' } }) });
    const [refused] = await repo.sync('m');
    expect(refused?.outcome).toBe('failed');
    expect(refused?.error).toMatch(
      /Deployment\.apps\/.*\/web \(apps\/deploy\.yaml\): .*immutable.*\(set force: true to recreate it\)/,
    );
    await repo.commit({ 'tidegate.yaml': cfg(true) });
    const [forced] = await repo.sync('m');
    expect(forced?.changeSet.changes.find((c) => c.ref.kind === 'Deployment')).toMatchObject({
      action: 'configured',
      reason: 'recreated: an immutable field changed',
    });
    const after = await repo.engine.client.get('apps/v1', 'Deployment', ns, 'web');
    expect(after?.metadata.uid).not.toBe(uid);
  });

  it('syncs all targets in dependency order and skips dependants of a failed target', async () => {
    const [nsA, nsB, nsC] = [uniqueName('deps-a'), uniqueName('deps-b'), uniqueName('deps-c')];
    const [app, infra, broken, afterBroken] = ['app', 'infra', 'broken', 'after-broken'].map((n) => uniqueName(n)); // target names are cluster-wide
    const repo = await gitopsRepo('deps');
    await repo.commit({
      'tidegate.yaml': config([
        { name: app, cluster: 'test', path: 'b', targetNamespace: nsB, wait: false, dependsOn: [infra] },
        { name: infra, cluster: 'test', path: 'a', targetNamespace: nsA, wait: false },
        { name: broken, cluster: 'test', path: 'missing', targetNamespace: nsC, wait: false },
        { name: afterBroken, cluster: 'test', path: 'a', targetNamespace: nsC, wait: false, dependsOn: [broken] },
      ]),
      'a/cm.yaml': configMap('a', { k: '1' }),
      'b/cm.yaml': configMap('b', { k: '1' }),
    });
    const results = await repo.sync();
    expect(results.map((r) => `${r.target}:${r.outcome}`)).toEqual([
      `${infra}:applied`,
      `${app}:applied`,
      `${broken}:failed`,
      `${afterBroken}:failed`,
    ]);
    expect(results[3]?.error).toBe(`not synced: dependency ${broken} failed`);
  });
});
