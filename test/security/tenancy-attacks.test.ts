import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { localSettings } from '../../shared/config/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { loadConfig, syncRepo } from '../../shared/usecases/index.js';
import { deployEnvironment } from '../../shared/usecases/preview-env.js';
import { configMap, gitopsRepo, testEngine, yamlDocs } from '../helpers/engine.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { shippedRbac, tenantNamespace } from '../helpers/tenancy.js';

/**
 * Attacks on tenancy (serviceAccountName, the repository lockdown serviceAccount, the shipped
 * impersonate-only RBAC) by a writer of a tenant's repository, each asserting the safe behaviour.
 * The first five broke the first cut of tenancy (each failed on it): a lockdown whose namespace the
 * target chose, Flux objects a tenant declares in its own path applied as tidegate, and previews
 * reading cluster values as tidegate.
 */
const admin = testEngine();
const rbac = { apiGroup: 'rbac.authorization.k8s.io' };
const config = (targets: Array<Record<string, unknown>>): string => stringify({ targets });

describe('tenancy attacks: the lockdown (repositories[].serviceAccount) and serviceAccountName', () => {
  const tenant = uniqueName('tna-tenant');
  const victim = uniqueName('tna-victim');

  beforeAll(async () => {
    for (const obj of shippedRbac()) await admin.client.apply(obj, { fieldManager: 'cluster-admin', force: true });
    // Two tenant namespaces set up exactly as the README says (step 5): a deployer ServiceAccount
    // with admin in its own namespace, and the RoleBinding of tidegate-impersonate "in each tenant namespace".
    await tenantNamespace(tenant, { impersonate: true });
    await tenantNamespace(victim, { impersonate: true });
    await admin.client.create({
      ...configMap('victim-settings', { A: 'orig' }),
      metadata: { name: 'victim-settings', namespace: victim },
    });
  });

  /**
   * ATTACK (tidegate with its default EKS access, cluster-admin): the tenant repository is locked down
   * with `defaultServiceAccount: deployer`. Its writer adds a target with `namespace: kube-system` and
   * `serviceAccountName: generic-garbage-collector`. serviceAccountOf (shared/config/schema.ts) takes
   * the ServiceAccount's namespace from the target's own namespace/targetNamespace, which the tenant
   * chooses freely, and nothing ties a repository (or its floor) to a namespace. tidegate then
   * impersonates kube-system's garbage-collector ServiceAccount, which the bootstrap RBAC gives
   * get/list/patch/update/delete on every resource of every group, and rewrites (server-side apply =
   * patch) an object of another tenant's namespace. Any kube-system controller ServiceAccount is
   * reachable the same way (clusterrole-aggregation-controller: escalate on ClusterRoles, see below).
   * Safe: the floor-locked repository's sync writes nothing outside what `<its namespace>:deployer` may.
   */
  it('a locked-down repository naming kube-system/generic-garbage-collector gets a ServiceAccount of its own namespace: another tenant’s object is not rewritten', async () => {
    const repo = await gitopsRepo('tna-gc');
    const target = uniqueName('tna-gc');
    const engine = {
      ...repo.engine,
      repositories: [{ url: repo.url, branch: 'main', serviceAccount: { namespace: tenant, name: 'deployer' } }],
    };
    const sha = await repo.commit({
      'tidegate.yaml': config([
        {
          name: target,
          cluster: 'test',
          path: 'app',
          namespace: 'kube-system',
          serviceAccountName: 'generic-garbage-collector',
          wait: false,
        },
      ]),
      'app/cm.yaml': [
        {
          ...configMap('victim-settings', { A: 'owned-by-tenant' }),
          metadata: { name: 'victim-settings', namespace: victim },
        },
      ],
    });
    const results = await syncRepo(engine, { repo: repo.url, revision: { ref: 'refs/heads/main', sha } });
    expect((await admin.client.get('v1', 'ConfigMap', victim, 'victim-settings'))?.['data']).toEqual({ A: 'orig' });
    const result = results.find((r) => r.target === target);
    expect(result?.outcome).toBe('failed');
    // The lockdown's namespace, not the one the target named: a ServiceAccount of that name there has no rights.
    expect(result?.error).toContain(`system:serviceaccount:${tenant}:generic-garbage-collector`);
    expect((await readTargetState(admin.client, target)).serviceAccount).toBeUndefined();
  });

  /**
   * ATTACK (same floor-locked repository, default cluster-admin tidegate): the target applies as
   * kube-system:clusterrole-aggregation-controller, whose bootstrap ClusterRole has `escalate` (and
   * patch/update) on ClusterRoles: the tenant rewrites an existing ClusterRole bound to its own
   * deployer (here one made by the cluster admin, `tna-tenant-role`) to `*` on `*`: cluster-admin
   * for the tenant's ServiceAccount from then on.
   * Safe: the ClusterRole keeps its rules.
   */
  it('a locked-down repository naming kube-system/clusterrole-aggregation-controller cannot escalate a ClusterRole', async () => {
    const role = uniqueName('tna-tenant-role');
    await admin.client.create({
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: role },
      rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
    } as KubeObject);
    const repo = await gitopsRepo('tna-agg');
    const target = uniqueName('tna-agg');
    const engine = {
      ...repo.engine,
      repositories: [{ url: repo.url, branch: 'main', serviceAccount: { namespace: tenant, name: 'deployer' } }],
    };
    const sha = await repo.commit({
      'tidegate.yaml': config([
        {
          name: target,
          cluster: 'test',
          path: 'app',
          namespace: 'kube-system',
          serviceAccountName: 'clusterrole-aggregation-controller',
          wait: false,
        },
      ]),
      'app/role.yaml': [
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRole',
          metadata: { name: role },
          rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
        } as KubeObject,
      ],
    });
    const [result] = await syncRepo(engine, { repo: repo.url, revision: { ref: 'refs/heads/main', sha } });
    expect(result?.outcome).toBe('failed');
    expect(result?.error).toContain(`system:serviceaccount:${tenant}:clusterrole-aggregation-controller`);
    const live = await admin.client.get('rbac.authorization.k8s.io/v1', 'ClusterRole', '', role);
    expect(live?.['rules']).toEqual([{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]);
  });

  /**
   * ATTACK under the RBAC tidegate ships (tidegate-scoped, impersonate bound in each tenant
   * namespace as the README says): tenant A's repository is locked with `defaultServiceAccount:
   * deployer`. Its writer points a target at B's namespace (`targetNamespace: <victim>`) and names
   * no ServiceAccount: the floor resolves to `<victim>:deployer` (serviceAccountOf), which tidegate
   * may impersonate, so A writes into B's namespace with B's rights. refuseForeignNamespaces does
   * not stop it: B's namespace was made by the cluster admin (no tidegate owner labels), as the
   * README's namespace-scoped setup has it.
   * Safe: A's sync writes nothing into B's namespace.
   */
  it('under the shipped RBAC, tenant A’s locked-down repository pointing a target at tenant B’s namespace writes nothing there (A’s deployer, not B’s)', async () => {
    const { scoped } = testEnv().kube;
    const repo = await gitopsRepo('tna-cross', { token: scoped.token });
    const target = uniqueName('tna-cross');
    const engine = {
      ...repo.engine,
      repositories: [{ url: repo.url, branch: 'main', serviceAccount: { namespace: tenant, name: 'deployer' } }],
    };
    const sha = await repo.commit({
      'tidegate.yaml': config([{ name: target, cluster: 'test', path: 'app', targetNamespace: victim, wait: false }]),
      'app/cm.yaml': [configMap('planted-by-a', { A: '1' })],
    });
    const [result] = await syncRepo(engine, { repo: repo.url, revision: { ref: 'refs/heads/main', sha } });
    expect(result?.outcome).toBe('failed');
    expect(result?.error).toContain(`system:serviceaccount:${tenant}:deployer`);
    expect(await admin.client.get('v1', 'ConfigMap', victim, 'planted-by-a')).toBeUndefined();
  });
});

const FIXTURE = fileURLToPath(new URL('../flux/tenancy-fixture', import.meta.url));
const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
const platformFiles = (id: string, platformRepo: string): Record<string, string> =>
  Object.fromEntries(
    filesUnder(FIXTURE).map((f) => [
      relative(FIXTURE, f),
      readFileSync(f, 'utf8').replaceAll('__ID__', id).replaceAll('__PLATFORM_REPO__', platformRepo),
    ]),
  );

describe('tenancy attacks: Flux objects inside a tenant Kustomization’s path', () => {
  /**
   * ATTACK (the fluxcd/flux2-multi-tenancy layout of test/flux/tenancy-fixture; tidegate is
   * cluster-admin, as there): the tenant dev-team writes dev-team/, which the Kustomization
   * apps-<id>/dev-team (serviceAccountName: dev-team) applies as its ServiceAccount. The tenant adds
   * a Flux Kustomization of its own to dev-team/ (no serviceAccountName, path ./escape). tidegate
   * never applies Flux objects, so no RBAC check is made on it (in Flux, the tenant's ServiceAccount
   * would have to create it, and the lockdown's --default-service-account would apply it); the
   * reader (shared/flux/read.ts readKustomizations → reader.readPath) turns it into a target of its
   * own, with no ServiceAccount (nothing is inherited from the declaring Kustomization), so
   * run.targetClient is tidegate's own client. Its path holds a ClusterRoleBinding making the
   * tenant's ServiceAccount cluster-admin.
   * Safe: nothing of the nested Kustomization is applied as tidegate; no ClusterRoleBinding.
   */
  it('a Kustomization a tenant declares in its path without serviceAccountName is never applied as tidegate (no ClusterRoleBinding to cluster-admin)', async () => {
    const id = randomBytes(3).toString('hex');
    const ns = `apps-${id}`;
    const platform = await gitopsRepo('tna-flux');
    const prefix = `t${id}-`;
    const crb = `tenant-escape-${id}`;
    await platform.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/production', cluster: 'test', prefix }] }),
      ...platformFiles(id, platform.url),
      'dev-team/app.yaml': yamlDocs([
        { ...configMap('settings', { LOG: 'info' }), metadata: { name: 'settings', namespace: ns } },
      ]),
      // Written by the tenant, in its own path.
      'dev-team/escape.yaml': stringify({
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: 'escape', namespace: ns },
        spec: { interval: '5m', path: './escape', prune: true, sourceRef: { kind: 'GitRepository', name: 'dev-team' } },
      }),
      'escape/crb.yaml': yamlDocs([
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: crb },
          roleRef: { ...rbac, kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [{ kind: 'ServiceAccount', name: 'dev-team', namespace: ns }],
        } as KubeObject,
      ]),
    });
    const results = await platform.sync();
    // The tenant's own target worked as its ServiceAccount (the setup is right).
    expect(results.find((r) => r.target === `${prefix}${ns}-dev-team`)?.outcome).toBe('applied');
    // The Kustomization it declared applies as the ServiceAccount of the one declaring it: refused by the apiserver.
    const escape = results.find((r) => r.target === `${prefix}${ns}-escape`);
    expect(escape?.outcome).toBe('failed');
    expect(escape?.error).toContain(`system:serviceaccount:${ns}:dev-team`);
    expect(await admin.client.get('rbac.authorization.k8s.io/v1', 'ClusterRoleBinding', '', crb)).toBeUndefined();
  });

  /**
   * ATTACK, same layout: the tenant's HelmRelease (a local chart in the repository, no
   * serviceAccountName) declared in dev-team/ with `metadata.namespace: kube-system`: the reader maps
   * it to a target applied as tidegate; its chart renders a ConfigMap into another namespace.
   * Safe: nothing of it is applied as tidegate.
   */
  it('a HelmRelease a tenant declares in its path in another namespace fails: its ServiceAccount may not create it; nothing of it is applied', async () => {
    const id = randomBytes(3).toString('hex');
    const ns = `apps-${id}`;
    const other = `other-${id}`;
    await admin.client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } });
    const platform = await gitopsRepo('tna-fluxhr');
    const prefix = `t${id}-`;
    await platform.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/production', cluster: 'test', prefix }] }),
      ...platformFiles(id, platform.url),
      'dev-team/app.yaml': yamlDocs([
        { ...configMap('settings', { LOG: 'info' }), metadata: { name: 'settings', namespace: ns } },
      ]),
      'dev-team/release.yaml': stringify({
        apiVersion: 'helm.toolkit.fluxcd.io/v2',
        kind: 'HelmRelease',
        metadata: { name: 'sneaky', namespace: other },
        spec: {
          interval: '5m',
          chart: {
            spec: { chart: './charts/sneaky', sourceRef: { kind: 'GitRepository', name: 'dev-team', namespace: ns } },
          },
        },
      }),
      'charts/sneaky/Chart.yaml': 'apiVersion: v2\nname: sneaky\nversion: 0.1.0\n',
      'charts/sneaky/templates/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: planted-by-tenant }\ndata: { A: "1" }\n',
    });
    const results = await platform.sync();
    expect(results.find((r) => r.target === `${prefix}${ns}-dev-team`)?.outcome).toBe('applied');
    // In Flux the tenant's ServiceAccount would create it: the apiserver says it may not, so nothing of it is applied.
    const sneaky = results.find((r) => r.target === `${prefix}${other}-sneaky`);
    expect(sneaky?.outcome).toBe('failed');
    expect(sneaky?.error).toContain(
      `HelmRelease ${other}/sneaky (dev-team/release.yaml) is declared by a Kustomization applying as ServiceAccount ${ns}/dev-team, and User "system:serviceaccount:${ns}:dev-team" may not create helmreleases.helm.toolkit.fluxcd.io in namespace ${other}`,
    );
    expect(await admin.client.get('v1', 'ConfigMap', other, 'planted-by-tenant')).toBeUndefined();
  });
});

describe('tenancy attacks: reads as tidegate', () => {
  /**
   * ATTACK: a floor-locked repository (its targets may read only what `<ns>:deployer` may) has a
   * target with a preview and `substituteFrom` a ConfigMap of a namespace its ServiceAccount cannot
   * read (kube-system-like platform configuration; here a namespace of its own with a ConfigMap the
   * cluster admin wrote). Its main sync fails (as the ServiceAccount: forbidden), but a pull
   * request's preview is synced with `serviceAccountName: undefined` and without the floor
   * (previewSpecOf / deployEnvironment in shared/usecases/preview-env.ts pass no
   * defaultServiceAccount), so readClusterInputs reads the ConfigMap as tidegate and substitutes its
   * value into objects in the preview namespace, where the pull request's own pods (or its URL) show
   * it. Only Secrets are kept from previews; ConfigMaps are read.
   * Safe: the preview reads nothing the ServiceAccount may not (its preview is refused or the value is not there).
   */
  it('a preview of a target applying as a ServiceAccount that reads cluster values is refused: nothing is read as tidegate', async () => {
    const tenant = uniqueName('tna-prev-tenant');
    const platformNs = uniqueName('tna-prev-platform');
    await tenantNamespace(tenant, { impersonate: false });
    await admin.client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: platformNs } });
    await admin.client.create({
      ...configMap('platform-config', { DB_PASSWORD: 'platform-only-value-9f3' }),
      metadata: { name: 'platform-config', namespace: platformNs },
    });
    const repoUrl = `https://git.example/${uniqueName('tna-prev')}.git`;
    const target = uniqueName('tna-prev');
    const dir = mkdtempSync(join(tmpdir(), 'tna-prev-'));
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    write(
      'tidegate.yaml',
      config([
        {
          name: target,
          cluster: 'test',
          path: 'app',
          targetNamespace: tenant,
          wait: false,
          substituteFrom: [{ kind: 'ConfigMap', name: 'platform-config', namespace: platformNs }],
          preview: { enabled: true },
        },
      ]),
    );
    write('app/cm.yaml', yamlDocs([configMap('leak', { got: '${DB_PASSWORD}' })]));
    const spec = (await loadConfig(dir, localSettings())).targets[0]!;
    const ctx = {
      ...admin,
      repositories: [{ url: repoUrl, branch: 'main', serviceAccount: { namespace: tenant, name: 'deployer' } }],
    };
    const report = await deployEnvironment(ctx, {
      repo: repoUrl,
      pullRequest: 4242,
      spec,
      dir,
      head: { ref: 'refs/pull/4242/head', sha: 'a'.repeat(40) },
    });
    expect(report.status).toBe('refused');
    expect('reason' in report ? report.reason : '').toMatch(
      /applies as ServiceAccount .*\/deployer and reads values from the cluster \(ConfigMap platform-config\)/,
    );
    const leaked = report.namespace ? await admin.client.get('v1', 'ConfigMap', report.namespace, 'leak') : undefined;
    expect(JSON.stringify(leaked?.['data'] ?? {})).not.toContain('platform-only-value-9f3');
  });
});

describe('tenancy attacks that held: ServiceAccount names with tricks', () => {
  const dirWith = (files: Record<string, string>): string => {
    const dir = mkdtempSync(join(tmpdir(), 'tna-names-'));
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
    return dir;
  };

  /**
   * TRIED: a serviceAccountName (or namespace) with ':' would make the impersonated user
   * `system:serviceaccount:<ns>:<a>:<b>` (not a ServiceAccount: the apiserver takes it as a plain
   * user), or one like `system:admin`. Held: serviceAccountName is a DNS subdomain and namespace a
   * DNS label in the schema, so the configuration is refused.
   */
  it('a tidegate.yaml serviceAccountName or namespace with ":" is refused by the schema', async () => {
    for (const extra of [
      { namespace: 'team-a', serviceAccountName: 'x:admin' },
      { namespace: 'kube-system:x', serviceAccountName: 'deployer' },
    ]) {
      const dir = dirWith({ 'tidegate.yaml': config([{ name: 'n', cluster: 'test', path: '.', ...extra }]) });
      await expect(loadConfig(dir, localSettings())).rejects.toThrow();
    }
  });
});

describe('tenancy attacks that held: reads of an ordinary sync', () => {
  /**
   * TRIED: the same substituteFrom of a ConfigMap the ServiceAccount may not read, in the ordinary
   * sync of a floor-locked repository. Held: readClusterInputs reads it as the ServiceAccount
   * (run.targetClient), the apiserver refuses, the sync fails and nothing is applied.
   */
  it('a locked-down target’s substituteFrom of a ConfigMap its ServiceAccount may not read fails the sync', async () => {
    const tenant = uniqueName('tna-read-tenant');
    const platformNs = uniqueName('tna-read-platform');
    await tenantNamespace(tenant, { impersonate: false });
    await admin.client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: platformNs } });
    await admin.client.create({
      ...configMap('platform-config', { DB_PASSWORD: 'platform-only-value-7c1' }),
      metadata: { name: 'platform-config', namespace: platformNs },
    });
    const repo = await gitopsRepo('tna-read');
    const target = uniqueName('tna-read');
    const engine = {
      ...repo.engine,
      repositories: [{ url: repo.url, branch: 'main', serviceAccount: { namespace: tenant, name: 'deployer' } }],
    };
    const sha = await repo.commit({
      'tidegate.yaml': config([
        {
          name: target,
          cluster: 'test',
          path: 'app',
          targetNamespace: tenant,
          wait: false,
          substituteFrom: [{ kind: 'ConfigMap', name: 'platform-config', namespace: platformNs }],
        },
      ]),
      'app/cm.yaml': [configMap('leak', { got: '${DB_PASSWORD}' })],
    });
    const [result] = await syncRepo(engine, { repo: repo.url, revision: { ref: 'refs/heads/main', sha } });
    expect(result?.outcome).toBe('failed');
    expect(result?.error).toMatch(
      new RegExp(`system:serviceaccount:${tenant}:deployer" cannot get resource "configmaps"`),
    );
    expect(await admin.client.get('v1', 'ConfigMap', tenant, 'leak')).toBeUndefined();
  });
});
