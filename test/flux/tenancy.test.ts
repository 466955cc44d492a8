import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeObject } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { localSettings, serviceAccountOf, type TargetSpec } from '../../shared/config/index.js';
import { loadConfig } from '../../shared/usecases/index.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';
import { fluxTree } from './fixture.js';

const ROOT = fileURLToPath(new URL('./tenancy-fixture', import.meta.url));

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );

/**
 * The platform repository in the layout of fluxcd/flux2-multi-tenancy: clusters/production syncs
 * tenants/production, which gives the tenant dev-team a namespace, a ServiceAccount bound to admin
 * in that namespace only, and a Kustomization (serviceAccountName: dev-team) of the tenant's
 * files (dev-team/). __ID__ keeps names apart on the shared apiserver.
 */
function platformFiles(id: string, platformRepo: string): Record<string, string> {
  return Object.fromEntries(
    filesUnder(ROOT).map((f) => [
      relative(ROOT, f),
      readFileSync(f, 'utf8').replaceAll('__ID__', id).replaceAll('__PLATFORM_REPO__', platformRepo),
    ]),
  );
}

const inNamespace = (obj: KubeObject, namespace: string): KubeObject => ({
  ...obj,
  metadata: { ...obj.metadata, namespace },
});

/**
 * Multi-tenancy as Flux does it: tidegate applies a tenant's Kustomization as the ServiceAccount it
 * names (Kubernetes impersonation), so the tenant can change its namespace and nothing else, while
 * the platform's own Kustomizations apply as tidegate. Runs on the RBAC-enforcing test apiserver;
 * tidegate itself is the cluster-admin-equivalent user here (the platform applies the tenant's
 * Namespace and RoleBinding), so every refusal below is the ServiceAccount's.
 */
describe('Flux multi-tenancy (fluxcd/flux2-multi-tenancy layout): a tenant Kustomization applies as its serviceAccountName', () => {
  it("the tenant's objects are applied as its ServiceAccount, synced again without change, and pruned under it; an object outside its namespace fails the sync with the apiserver's Forbidden naming it, and nothing of that revision is applied", async () => {
    const id = randomBytes(3).toString('hex');
    const ns = `apps-${id}`;
    const other = `other-${id}`;
    const platform = await gitopsRepo('flux-tenancy');
    const client = platform.engine.client;
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } } as KubeObject, {
      fieldManager: 'test',
    });
    const prefix = `t${id}-`;
    const target = `${prefix}${ns}-dev-team`;
    const app = (objs: KubeObject[]) => ({ 'dev-team/app.yaml': objs.map((o) => stringify(o)).join('---\n') });
    await platform.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/production', cluster: 'test', prefix }] }),
      ...platformFiles(id, platform.url),
      ...app([
        inNamespace(configMap('settings', { LOG: 'info' }), ns),
        inNamespace(configMap('extra', { A: '1' }), ns),
      ]),
    });

    // (a) The platform's Kustomizations as tidegate, the tenant's as system:serviceaccount:<ns>:dev-team.
    const first = new Map((await platform.sync()).map((r) => [r.target, r]));
    expect(first.get(`${prefix}tenants`)?.outcome, first.get(`${prefix}tenants`)?.error).toBe('applied');
    expect(first.get(target)?.outcome, first.get(target)?.error).toBe('applied');
    expect((await client.get('v1', 'ConfigMap', ns, 'settings'))?.['data']).toEqual({ LOG: 'info' });
    expect(await client.get('v1', 'ConfigMap', ns, 'extra')).toBeDefined();
    expect((await readTargetState(client, target)).serviceAccount).toBe(`system:serviceaccount:${ns}:dev-team`);
    expect((await readTargetState(client, `${prefix}tenants`)).serviceAccount).toBeUndefined();

    const again = await platform.sync(target);
    expect(again.map((r) => [r.target, r.outcome])).toEqual([[target, 'unchanged']]);

    // (c) Prune of a tenant object, under the ServiceAccount.
    await platform.commit(app([inNamespace(configMap('settings', { LOG: 'debug' }), ns)]));
    const [pruned] = await platform.sync(target);
    expect(pruned?.outcome, pruned?.error).toBe('applied');
    expect(pruned?.changeSet.changes.map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`).sort()).toEqual([
      'configured ConfigMap/settings',
      'deleted ConfigMap/extra',
    ]);
    expect(await client.get('v1', 'ConfigMap', ns, 'extra')).toBeUndefined();

    // (b) An object in another namespace, then a cluster-scoped one: the ServiceAccount may write neither.
    const sa = `User "system:serviceaccount:${ns}:dev-team"`;
    await platform.commit(
      app([
        inNamespace(configMap('settings', { LOG: 'trace' }), ns),
        inNamespace(configMap('added', { A: '2' }), ns),
        inNamespace(configMap('escape', { A: '3' }), other),
      ]),
    );
    const [elsewhere] = await platform.sync(target);
    expect(elsewhere?.outcome).toBe('failed');
    expect(elsewhere?.error).toMatch(
      new RegExp(
        `^ConfigMap/${other}/escape \\(dev-team/app.yaml\\): configmaps is forbidden: ${sa} cannot list resource "configmaps" in API group "" in the namespace "${other}"`,
      ),
    );
    const role = `tenant-escape-${id}`;
    await platform.commit(
      app([
        inNamespace(configMap('settings', { LOG: 'trace' }), ns),
        inNamespace(configMap('added', { A: '2' }), ns),
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: role },
          rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get'] }],
        } as KubeObject,
      ]),
    );
    const [clusterWide] = await platform.sync(target);
    expect(clusterWide?.outcome).toBe('failed');
    expect(clusterWide?.error).toMatch(
      new RegExp(
        `^ClusterRole.rbac.authorization.k8s.io/${role} \\(dev-team/app.yaml\\): .*${sa} cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope`,
      ),
    );
    expect(await client.get('v1', 'ConfigMap', other, 'escape')).toBeUndefined();
    expect(await client.get('rbac.authorization.k8s.io/v1', 'ClusterRole', '', role)).toBeUndefined();
    // Nothing of the refused revisions is applied, in the tenant's namespace either.
    expect(await client.get('v1', 'ConfigMap', ns, 'added')).toBeUndefined();
    expect((await client.get('v1', 'ConfigMap', ns, 'settings'))?.['data']).toEqual({ LOG: 'debug' });
    expect((await readTargetState(client, target)).inventory.map((e) => e.id)).toEqual([
      expect.stringContaining('settings'),
    ]);
  });

  it('a HelmRelease and a Kustomization with serviceAccountName map to targets that apply as that ServiceAccount of their own namespace', async () => {
    const dir = fluxTree({
      'clusters/c/flux-system/gotk-sync.yaml': stringify({
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: 'flux-system', namespace: 'flux-system' },
        spec: { path: './clusters/c', sourceRef: { kind: 'GitRepository', name: 'flux-system' } },
      }),
      'clusters/c/tenant.yaml': [
        {
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name: 'team', namespace: 'team-a' },
          spec: {
            path: './team',
            targetNamespace: 'team-a-apps',
            serviceAccountName: 'team-a',
            sourceRef: { kind: 'GitRepository', name: 'flux-system', namespace: 'flux-system' },
          },
        },
        {
          apiVersion: 'helm.toolkit.fluxcd.io/v2',
          kind: 'HelmRelease',
          metadata: { name: 'web', namespace: 'team-b' },
          spec: {
            serviceAccountName: 'team-b',
            targetNamespace: 'team-b-apps',
            chart: {
              spec: {
                chart: './charts/web',
                sourceRef: { kind: 'GitRepository', name: 'flux-system', namespace: 'flux-system' },
              },
            },
          },
        },
      ]
        .map((o) => stringify(o))
        .join('---\n'),
      'team/cm.yaml': stringify(configMap('x', { A: '1' })),
      'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
      'charts/web/templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: web }\n',
    });
    const config = await loadConfig(dir, localSettings());
    const targets: TargetSpec[] = config.targets;
    const byOrigin = new Map(targets.map((t) => [`${t.origin?.namespace}/${t.origin?.name}`, t]));
    const team = byOrigin.get('team-a/team');
    const web = byOrigin.get('team-b/web');
    expect(team?.serviceAccountName).toBe('team-a');
    expect(web?.serviceAccountName).toBe('team-b');
    // The ServiceAccount lives in the Flux object's namespace, not in its targetNamespace (Flux's rule).
    expect(team && serviceAccountOf(team)).toEqual({
      namespace: 'team-a',
      name: 'team-a',
      user: 'system:serviceaccount:team-a:team-a',
    });
    expect(web && serviceAccountOf(web)?.user).toBe('system:serviceaccount:team-b:team-b');
    expect(byOrigin.get('flux-system/flux-system')?.serviceAccountName).toBeUndefined();
    expect(config.fluxRead?.unsupported ?? []).toEqual([]);
  });
});
