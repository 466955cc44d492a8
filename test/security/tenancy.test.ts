import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KubeApiError } from '../../shared/cluster/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { configMap, gitopsRepo, testEngine } from '../helpers/engine.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { shippedRbac, tenantNamespace } from '../helpers/tenancy.js';

/**
 * Tenancy under the RBAC tidegate ships: tidegate syncs as tidegate-scoped (group tidegate), which
 * has infra/namespaced-rbac.yaml as shipped and, in the tenant's namespace, nothing but the
 * documented RoleBinding of its ClusterRole tidegate-impersonate. It has no right of its own to
 * change anything in the tenant's namespace: what a target applies there, it applies as the
 * tenant's ServiceAccount (bound to admin in that namespace only). The apiserver enforces RBAC.
 */
const admin = testEngine();
const config = (targets: Array<Record<string, unknown>>): string => stringify({ targets });
const forbidden = async (p: Promise<unknown>): Promise<string> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KubeApiError);
  expect((err as KubeApiError).status).toBe(403);
  return (err as KubeApiError).message;
};

describe('tenancy: tidegate applies as the target’s ServiceAccount, with the RBAC it ships', () => {
  const { scoped } = testEnv().kube;
  const tenant = uniqueName('tenant');
  const other = uniqueName('not-tenant');

  beforeAll(async () => {
    for (const obj of shippedRbac()) await admin.client.apply(obj, { fieldManager: 'cluster-admin', force: true });
    await tenantNamespace(tenant, { impersonate: true });
    await tenantNamespace(other, { impersonate: false });
  });

  it('the shipped ClusterRole tidegate-impersonate grants impersonate on serviceaccounts and nothing else', () => {
    const role = shippedRbac().find((o) => o.kind === 'ClusterRole' && o.metadata.name === 'tidegate-impersonate');
    expect(role?.['rules']).toEqual([{ apiGroups: [''], resources: ['serviceaccounts'], verbs: ['impersonate'] }]);
    expect(shippedRbac().filter((o) => o.kind === 'ClusterRoleBinding')).toEqual([]);
  });

  it('under the shipped RBAC tidegate may impersonate the tenant’s ServiceAccount, but not system:admin, a user, or a ServiceAccount of a namespace it is not bound in', async () => {
    const client = testEngine(scoped.token).client;
    // Its own identity has no right in the tenant's namespace; as the ServiceAccount it has admin's.
    expect(await forbidden(client.get('v1', 'ConfigMap', tenant, 'anything'))).toMatch(
      /User "tidegate-scoped" cannot get/,
    );
    expect(
      await client.impersonating(`system:serviceaccount:${tenant}:deployer`).get('v1', 'ConfigMap', tenant, 'anything'),
    ).toBeUndefined();
    for (const user of ['system:admin', 'alice', 'system:kube-controller-manager'])
      expect(await forbidden(client.impersonating(user).get('v1', 'ConfigMap', tenant, 'x'))).toMatch(
        new RegExp(`User "tidegate-scoped" cannot impersonate resource "users" in API group "" at the cluster scope`),
      );
    for (const ns of [other, 'kube-system'])
      expect(
        await forbidden(client.impersonating(`system:serviceaccount:${ns}:deployer`).get('v1', 'ConfigMap', ns, 'x')),
      ).toMatch(
        new RegExp(
          `User "tidegate-scoped" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "${ns}"`,
        ),
      );
  });

  it('a tidegate.yaml target with serviceAccountName is applied, synced again without change and pruned as that ServiceAccount; without it, the same target fails naming tidegate’s own identity; one reaching another namespace fails naming the ServiceAccount', async () => {
    const repo = await gitopsRepo('tenancy-yaml', { token: scoped.token });
    const target = uniqueName('tenancy-yaml');
    const spec = { name: target, cluster: 'test', path: 'app', namespace: tenant, serviceAccountName: 'deployer' };
    const first = await repo.commit({
      'tidegate.yaml': config([spec]),
      'app/all.yaml': [configMap('settings', { LOG: 'info' }), configMap('extra', { A: '1' })],
    });
    const [applied] = await repo.sync(target, first);
    expect(applied?.outcome, String(applied?.error)).toBe('applied');
    expect((await admin.client.get('v1', 'ConfigMap', tenant, 'settings'))?.['data']).toEqual({ LOG: 'info' });
    expect((await readTargetState(admin.client, target)).serviceAccount).toBe(
      `system:serviceaccount:${tenant}:deployer`,
    );
    const [again] = await repo.sync(target, first);
    expect(again?.outcome, String(again?.error)).toBe('unchanged');

    const second = await repo.commit({ 'app/all.yaml': [configMap('settings', { LOG: 'debug' })] });
    const [pruned] = await repo.sync(target, second);
    expect(pruned?.outcome, String(pruned?.error)).toBe('applied');
    expect(await admin.client.get('v1', 'ConfigMap', tenant, 'extra')).toBeUndefined();

    const { serviceAccountName: _sa, ...asTidegate } = spec;
    const third = await repo.commit({
      'tidegate.yaml': config([asTidegate]),
      'app/all.yaml': [configMap('settings', { LOG: 'warn' })],
    });
    const [own] = await repo.sync(target, third);
    expect(own?.outcome).toBe('failed');
    expect(String(own?.error)).toMatch(
      /User "tidegate-scoped" cannot list resource "configmaps" in API group "" in the namespace/,
    );

    const fourth = await repo.commit({
      'tidegate.yaml': config([spec]),
      'app/all.yaml': [
        configMap('settings', { LOG: 'warn' }),
        { ...configMap('escape', { A: '1' }), metadata: { name: 'escape', namespace: other } },
      ],
    });
    const [escape] = await repo.sync(target, fourth);
    expect(escape?.outcome).toBe('failed');
    expect(String(escape?.error)).toMatch(
      new RegExp(
        `^ConfigMap/${other}/escape .*User "system:serviceaccount:${tenant}:deployer" cannot list resource "configmaps" in API group "" in the namespace "${other}"`,
      ),
    );
    expect(await admin.client.get('v1', 'ConfigMap', other, 'escape')).toBeUndefined();
    expect((await admin.client.get('v1', 'ConfigMap', tenant, 'settings'))?.['data']).toEqual({ LOG: 'debug' });
  });

  it("the deploy-time lockdown (repositories[].serviceAccount) makes every target apply as a ServiceAccount of the tenant's namespace, whatever namespace it names: one naming none is applied there, one writing elsewhere fails, nothing applied", async () => {
    const repo = await gitopsRepo('tenancy-default', { token: scoped.token });
    const target = uniqueName('tenancy-default');
    const homeless = uniqueName('tenancy-homeless');
    const elsewhere = uniqueName('tenancy-elsewhere');
    const engine = {
      ...repo.engine,
      repositories: [{ url: repo.url, branch: 'main', serviceAccount: { namespace: tenant, name: 'deployer' } }],
    };
    const sha = await repo.commit({
      'tidegate.yaml': config([
        { name: target, cluster: 'test', path: 'app', namespace: tenant },
        { name: homeless, cluster: 'test', path: 'other' },
        { name: elsewhere, cluster: 'test', path: 'elsewhere', targetNamespace: other },
      ]),
      'app/all.yaml': [configMap('floor', { A: '1' })],
      'other/all.yaml': [{ ...configMap('homeless', { A: '1' }), metadata: { name: 'homeless', namespace: tenant } }],
      'elsewhere/all.yaml': [configMap('elsewhere', { A: '1' })],
    });
    const results = new Map(
      (await syncRepo(engine, { repo: repo.url, revision: { ref: 'refs/heads/main', sha } })).map((r) => [r.target, r]),
    );
    for (const t of [target, homeless]) {
      expect(results.get(t)?.outcome, results.get(t)?.error).toBe('applied');
      expect((await readTargetState(admin.client, t)).serviceAccount).toBe(`system:serviceaccount:${tenant}:deployer`);
    }
    expect(await admin.client.get('v1', 'ConfigMap', tenant, 'floor')).toBeDefined();
    expect(await admin.client.get('v1', 'ConfigMap', tenant, 'homeless')).toBeDefined();
    expect(results.get(elsewhere)?.outcome).toBe('failed');
    expect(results.get(elsewhere)?.error).toMatch(
      new RegExp(`User "system:serviceaccount:${tenant}:deployer" cannot \\w+ resource "configmaps"`),
    );
    expect(await admin.client.get('v1', 'ConfigMap', other, 'elsewhere')).toBeUndefined();
  });
});
