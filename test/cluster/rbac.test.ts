import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { reloadPass } from '../../shared/reload/index.js';
import { readHeartbeat, readTargetState, recordHeartbeat } from '../../shared/state/index.js';
import { inventoryHealth } from '../../shared/status/index.js';
import { stateName } from '../../shared/state/state.js';
import { configMap, deployment, gitopsRepo, testEngine } from '../helpers/engine.js';
import { testEnv, uniqueName } from '../helpers/env.js';

/**
 * The apiserver authorizes with RBAC only, and tidegate syncs as one of two users bound the way
 * docs/deploy.md (step 5, "EKS access") grants access:
 * - tidegate-cluster-admin: a ClusterRoleBinding to cluster-admin (AmazonEKSClusterAdminPolicy,
 *   cluster scope), the identity every other test syncs as;
 * - tidegate-scoped: the ClusterRole edit bound in each target namespace (AmazonEKSEditPolicy with
 *   a namespace scope), plus infra/namespaced-rbac.yaml as shipped (its Role in tidegate-system,
 *   bound to the group tidegate the access entry gives). No cluster-scoped permission at all: any
 *   cluster-wide read a sync made would fail it.
 */
const admin = testEngine();
const config = (targets: Array<Record<string, unknown>>): string => stringify({ targets });
const role = { apiGroup: 'rbac.authorization.k8s.io' };
const clusterRole = (name: string): KubeObject => ({
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name },
  rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
});

async function namespaceWithEdit(name: string, user: string): Promise<void> {
  await admin.client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await admin.client.create({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'tidegate-edit', namespace: name },
    roleRef: { ...role, kind: 'ClusterRole', name: 'edit' },
    subjects: [{ ...role, kind: 'User', name: user }],
  });
}

describe('RBAC: tidegate syncs with the access the README grants, and no more', () => {
  const { scoped } = testEnv().kube;
  const scopedNs = uniqueName('rbac-scoped');

  beforeAll(async () => {
    const shipped = parseAllDocuments(
      readFileSync(new URL('../../infra/namespaced-rbac.yaml', import.meta.url), 'utf8'),
    );
    for (const doc of shipped)
      await admin.client.apply(doc.toJS() as KubeObject, { fieldManager: 'cluster-admin', force: true });
    await namespaceWithEdit(scopedNs, scoped.user);
  });

  it('as the cluster-admin-equivalent user: a namespaced target is applied, its namespace created', async () => {
    const repo = await gitopsRepo('rbac-admin');
    const ns = uniqueName('rbac-admin');
    const target = uniqueName('rbac-admin');
    const sha = await repo.commit({
      'tidegate.yaml': config([{ name: target, cluster: 'test', path: 'app', targetNamespace: ns, wait: false }]),
      'app/all.yaml': [configMap('settings', { LOG: 'info' }), deployment('web')],
    });
    const [result] = await repo.sync(target, sha);
    expect(result?.outcome, String(result?.error)).toBe('applied');
    expect(await admin.client.get('apps/v1', 'Deployment', ns, 'web')).toBeDefined();
  });

  it('as the namespace-scoped user: a target in its namespace is applied, synced again without change, and pruned', async () => {
    const repo = await gitopsRepo('rbac-scoped', { token: scoped.token });
    const target = uniqueName('rbac-scoped');
    const tidegateYaml = config([
      { name: target, cluster: 'test', path: 'app', targetNamespace: scopedNs, wait: false },
    ]);
    const first = await repo.commit({
      'tidegate.yaml': tidegateYaml,
      'app/all.yaml': [configMap('settings', { LOG: 'info' }), configMap('extra', { A: '1' }), deployment('web')],
    });
    const [applied] = await repo.sync(target, first);
    expect(applied?.outcome, String(applied?.error)).toBe('applied');
    expect(applied?.changeSet.changes.map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`).sort()).toEqual([
      'created ConfigMap/extra',
      'created ConfigMap/settings',
      'created Deployment/web',
    ]);
    const [again] = await repo.sync(target, first);
    expect(again?.outcome, String(again?.error)).toBe('unchanged');

    const second = await repo.commit({ 'app/all.yaml': [configMap('settings', { LOG: 'debug' }), deployment('web')] });
    const [pruned] = await repo.sync(target, second);
    expect(pruned?.outcome, String(pruned?.error)).toBe('applied');
    expect(await admin.client.get('v1', 'ConfigMap', scopedNs, 'extra')).toBeUndefined();
    expect((await admin.client.get('v1', 'ConfigMap', scopedNs, 'settings'))?.['data']).toEqual({ LOG: 'debug' });
    // Its state and lock live in tidegate-system, through the shipped Role (a sync that changed nothing writes no history).
    expect((await readTargetState(admin.client, target)).history.map((h) => h.outcome)).toEqual(['applied', 'applied']);
    expect(
      await admin.client.get('coordination.k8s.io/v1', 'Lease', SYSTEM_NAMESPACE, stateName(target)),
    ).toBeUndefined();
  });

  it('as the namespace-scoped user: a target that needs a ClusterRole fails naming the permission, and nothing of it is applied', async () => {
    const repo = await gitopsRepo('rbac-cluster', { token: scoped.token });
    const target = uniqueName('rbac-cluster');
    const name = uniqueName('tidegate-reader');
    const sha = await repo.commit({
      'tidegate.yaml': config([{ name: target, cluster: 'test', path: 'app', targetNamespace: scopedNs, wait: false }]),
      'app/all.yaml': [configMap('needs-role', { A: '1' }), clusterRole(name)],
    });
    const [result] = await repo.sync(target, sha);
    expect(result?.outcome).toBe('failed');
    expect(String(result?.error)).toMatch(
      /User "tidegate-scoped" cannot \w+ resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope/,
    );
    expect(await admin.client.get('v1', 'ConfigMap', scopedNs, 'needs-role')).toBeUndefined();
    expect(await admin.client.get('rbac.authorization.k8s.io/v1', 'ClusterRole', '', name)).toBeUndefined();
    expect((await readTargetState(admin.client, target)).inventory).toEqual([]);
  });

  it('as the namespace-scoped user: a targetNamespace outside its access fails naming the permission', async () => {
    const repo = await gitopsRepo('rbac-newns', { token: scoped.token });
    const target = uniqueName('rbac-newns');
    const ns = uniqueName('rbac-absent');
    const sha = await repo.commit({
      'tidegate.yaml': config([{ name: target, cluster: 'test', path: 'app', targetNamespace: ns, wait: false }]),
      'app/all.yaml': configMap('x', { A: '1' }),
    });
    const [result] = await repo.sync(target, sha);
    expect(result?.outcome).toBe('failed');
    expect(String(result?.error)).toMatch(
      new RegExp(`User "tidegate-scoped" cannot list resource "configmaps" in API group "" in the namespace "${ns}"`),
    );
    expect(await admin.client.get('v1', 'Namespace', '', ns)).toBeUndefined();
  });

  it('as the namespace-scoped user: a reload pass over its namespaces (reload.namespaces) rolls a workload whose ConfigMap changed', async () => {
    const client = testEngine(scoped.token).client;
    const cm = (v: string) => ({
      ...configMap('reload-src', { V: v }),
      metadata: { name: 'reload-src', namespace: scopedNs },
    });
    const web = deployment('reloaded');
    await admin.client.apply(cm('1'), { fieldManager: 'test', force: true });
    await admin.client.apply(
      {
        ...web,
        metadata: {
          ...web.metadata,
          namespace: scopedNs,
          annotations: { 'configmap.reloader.stakater.com/reload': 'reload-src' },
        },
      },
      { fieldManager: 'test', force: true },
    );
    const scope = { namespaces: [scopedNs], strategy: 'annotations' } as const;
    expect((await reloadPass(client, scope)).recorded.map((r) => r.name)).toContain('reloaded');
    await admin.client.apply(cm('2'), { fieldManager: 'test', force: true });
    expect((await reloadPass(client, scope)).rolled.map((r) => r.workload.name)).toEqual(['reloaded']);
    // Left to its default (every namespace), the pass needs a cluster-wide list, and says so.
    await expect(reloadPass(client, { strategy: 'annotations' })).rejects.toThrow(
      /User "tidegate-scoped" cannot list resource "configmaps" in API group "" at the cluster scope/,
    );
  });

  it("as the namespace-scoped user: the worker's pipeline heartbeat is recorded in tidegate-system, and its target's objects are judged (a Secret by its metadata)", async () => {
    const client = testEngine(scoped.token).client;
    const sentAt = new Date().toISOString();
    const beat = { webhook: { source: 'github', type: 'push', sentAt, handledAt: sentAt } };
    await recordHeartbeat(client, { ...beat, message: beat.webhook });
    expect((await readHeartbeat(client)).message?.sentAt ?? '').toBe(sentAt);

    const repo = await gitopsRepo('rbac-objects', { token: scoped.token });
    const target = uniqueName('rbac-objects');
    const sha = await repo.commit({
      'tidegate.yaml': config([{ name: target, cluster: 'test', path: 'app', targetNamespace: scopedNs, wait: false }]),
      'app/all.yaml': [
        configMap('objects-cm', { A: '1' }),
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'objects-secret' }, stringData: { k: 'v' } },
      ],
    });
    const [result] = await repo.sync(target, sha);
    expect(result?.outcome, String(result?.error)).toBe('applied');
    const health = await inventoryHealth(client, await readTargetState(client, target));
    expect(health.map((o) => `${o.ref.kind}/${o.ref.name} ${o.status}`).sort()).toEqual([
      'ConfigMap/objects-cm Healthy',
      'Secret/objects-secret Healthy',
    ]);
  });
});
