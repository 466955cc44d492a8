import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, startHelmRepo, startRegistry, type HelmRepo } from '../../devenv/index.js';
import type { RegistryAccess } from '../../shared/images/index.js';
import { localSettings } from '../../shared/config/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { gitopsRepo, testEngine } from '../helpers/engine.js';
import type { KubeObject } from '../../shared/model/index.js';
import { testEnv } from '../helpers/env.js';
import { fluxRepository, publishFixtureChart } from './fixture.js';
import { randomBytes } from 'node:crypto';

/**
 * A Flux repository in the layout of fluxcd/flux2-kustomize-helm-example, synced by tidegate
 * unchanged: clusters/production holds the Kustomizations, infrastructure/controllers a
 * HelmRepository and a HelmRelease whose chart installs a CRD, infrastructure/configs an object of
 * that CRD, apps/base a HelmRelease that apps/production patches. No Flux CRD exists on the cluster.
 */
const CHARTS = [
  ['widget-operator', '1.0.0'],
  ['widget-operator', '1.1.0'],
  ['podinfo', '1.0.0'],
] as const;

/**
 * The fixture committed to a new repository, its charts published (to the HTTP repository, or by
 * `oci` to an OCI registry the HelmRepositories then name with type: oci), and a sync of it.
 */
async function fleet(
  helm: HelmRepo,
  oci?: { url: string; push: (archive: string) => Promise<void>; registry: RegistryAccess },
  id = randomBytes(3).toString('hex'),
) {
  for (const [chart, version] of CHARTS) {
    const archive = await publishFixtureChart(helm, chart, version, id);
    await oci?.push(archive);
  }
  const repo = await gitopsRepo('flux-fleet');
  const prefix = `f${id}-`;
  const files = Object.entries(fluxRepository(id, oci?.url ?? helm.url)).map(([path, text]) => [
    path,
    oci ? text.replace(/^ {2}url: oci:/m, '  type: oci\n  insecure: true\n  url: oci:') : text,
  ]);
  await repo.commit({
    ...Object.fromEntries(files),
    'tidegate.yaml': stringify({ flux: [{ path: 'clusters/production', cluster: 'test', prefix }] }),
  });
  const settings = localSettings();
  const ctx = {
    ...repo.engine,
    settings: { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } },
    ...(oci ? { registry: oci.registry } : {}),
  };
  const sync = () => syncRepo(ctx, { repo: repo.url });
  const client = repo.engine.client;
  return { id, prefix, repo, ctx, sync, client, names: (n: string) => `${prefix}${n}` };
}

describe('a Flux repository read as configuration', () => {
  let helm: HelmRepo;
  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
  });
  afterAll(() => helm?.stop());

  it('syncs end to end in dependency order (the CRD chart, then the configs using it, then the apps), applies none of the Flux objects, and a second sync writes nothing', async () => {
    const f = await fleet(helm);
    const results = await f.sync();
    const byName = new Map(results.map((r) => [r.target, r]));
    const order = results.map((r) => r.target);
    for (const r of results) expect(r.outcome, `${r.target}: ${r.error ?? ''}`).toMatch(/applied|unchanged/);
    const operator = f.names(`widgets-${f.id}-widget-operator`);
    const podinfo = f.names(`podinfo-${f.id}-podinfo`);
    expect([...byName.keys()].sort()).toEqual(
      [
        f.names('flux-system'),
        f.names('infra-controllers'),
        f.names('infra-configs'),
        f.names('apps'),
        operator,
        podinfo,
      ].sort(),
    );
    expect(order.indexOf(operator)).toBeLessThan(order.indexOf(f.names('infra-configs')));
    expect(order.indexOf(f.names('infra-configs'))).toBeLessThan(order.indexOf(f.names('apps')));
    expect(order.indexOf(f.names('apps'))).toBeLessThan(order.indexOf(podinfo));

    // The chart's CRD, and the configs' object of it.
    expect(
      await f.client.get('apiextensions.k8s.io/v1', 'CustomResourceDefinition', '', `widgets.t${f.id}.example.dev`),
    ).toBeDefined();
    expect(await f.client.get(`t${f.id}.example.dev/v1`, 'Widget', `widgets-${f.id}`, 'default-widget')).toBeDefined();
    // Values of the HelmRelease over the chart's defaults; the version the range resolved to.
    const config = await f.client.get('v1', 'ConfigMap', `widgets-${f.id}`, 'widget-operator-config');
    expect(config?.['data']).toEqual({ version: '1.0.0', logLevel: 'info' });
    expect(byName.get(operator)?.chart).toMatchObject({ name: 'widget-operator', version: '1.0.0' });
    // apps/production's patch of the HelmRelease's values.
    const deployment = await f.client.get('apps/v1', 'Deployment', `podinfo-${f.id}`, 'podinfo');
    expect((deployment?.['spec'] as { replicas: number }).replicas).toBe(2);
    expect(JSON.stringify(deployment)).toContain('hello from production');
    // No test hook, no Flux object, none of Flux's own components.
    const pods = await f.client.list('v1', 'Pod', { namespace: `podinfo-${f.id}` });
    expect(pods.map((p) => p.metadata.name)).toEqual([]);
    expect(await f.client.get('apps/v1', 'Deployment', 'flux-system', 'kustomize-controller')).toBeUndefined();
    // The apps Kustomization applies its namespace; its HelmRepository and HelmRelease are configuration.
    expect((await readTargetState(f.client, f.names('apps'))).inventory.map((e) => e.id)).toEqual([
      `_podinfo-${f.id}__Namespace`,
    ]);

    const second = await f.sync();
    expect(second.map((r) => [r.target, r.outcome])).toEqual(results.map((r) => [r.target, 'unchanged']));
  });
});

describe('a Flux repository with an OCI HelmRepository', () => {
  let helm: HelmRepo;
  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
  });
  afterAll(() => helm?.stop());

  it('pulls the charts from the registry with token auth (the credentials of its host), in the same order, and a second sync writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flux-oci-'));
    const user = { username: 'flux-charts', password: 'flux-chart-registry-password' };
    const registry = await startRegistry(dir, { tokenAuth: user });
    try {
      const url = `oci://${registry.host}/charts`;
      const push = (archive: string) =>
        run(testEnv().tools.helm, [
          'push',
          archive,
          url,
          '--plain-http',
          '--username',
          user.username,
          '--password',
          user.password,
        ]).then(() => undefined);
      const f = await fleet(helm, {
        url,
        push,
        registry: { credentials: (host) => (host === registry.host ? user : undefined) },
      });
      const requestsBefore = helm.requests.length;
      const results = await f.sync();
      for (const r of results) expect(r.outcome, `${r.target}: ${r.error ?? ''}`).toMatch(/applied|unchanged/);
      const operator = f.names(`widgets-${f.id}-widget-operator`);
      expect(results.find((r) => r.target === operator)?.chart).toMatchObject({
        name: 'widget-operator',
        version: '1.0.0',
      });
      expect(
        await f.client.get(`t${f.id}.example.dev/v1`, 'Widget', `widgets-${f.id}`, 'default-widget'),
      ).toBeDefined();
      const deployment = await f.client.get('apps/v1', 'Deployment', `podinfo-${f.id}`, 'podinfo');
      expect((deployment?.['spec'] as { replicas: number }).replicas).toBe(2);
      expect(helm.requests.length).toBe(requestsBefore); // nothing came from the HTTP repository
      const second = await f.sync();
      expect(second.map((r) => [r.target, r.outcome])).toEqual(results.map((r) => [r.target, 'unchanged']));
    } finally {
      await registry.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a Flux repository as it changes', () => {
  let helm: HelmRepo;
  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
  });
  afterAll(() => helm?.stop());

  it('a chart version bump in Git upgrades, a values patch changes the Deployment, valuesFrom a Secret the parent Kustomization applies reaches the chart, and a removed HelmRelease is pruned', async () => {
    const f = await fleet(helm);
    const files = fluxRepository(f.id, helm.url);
    for (const r of await f.sync()) expect(r.outcome, `${r.target}: ${r.error ?? ''}`).toMatch(/applied|unchanged/);
    const operator = f.names(`widgets-${f.id}-widget-operator`);
    const podinfo = f.names(`podinfo-${f.id}-podinfo`);

    const bump = (files['infrastructure/controllers/widget-operator.yaml'] ?? '').replace('"1.0.x"', '"1.1.x"');
    const values = (files['apps/production/podinfo-values.yaml'] ?? '').replace('replicaCount: 2', 'replicaCount: 3');
    await f.repo.commit({
      'infrastructure/controllers/widget-operator.yaml': bump,
      'apps/production/podinfo-values.yaml': `${values}  valuesFrom:\n    - kind: Secret\n      name: podinfo-values\n`,
      'apps/production/podinfo-secret.yaml': `apiVersion: v1\nkind: Secret\nmetadata:\n  name: podinfo-values\n  namespace: podinfo-${f.id}\nstringData:\n  values.yaml: "level: debug"\n`,
      'apps/production/kustomization.yaml': (files['apps/production/kustomization.yaml'] ?? '').replace(
        '  - ../base/podinfo\n',
        '  - ../base/podinfo\n  - podinfo-secret.yaml\n  - canary.yaml\n',
      ),
      // A second release of the chart into a namespace the release creates (targetNamespace, install.createNamespace).
      'apps/production/canary.yaml': `apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: canary\n  namespace: podinfo-${f.id}\nspec:\n  targetNamespace: canary-${f.id}\n  chart:\n    spec:\n      chart: podinfo\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n  install:\n    createNamespace: true\n    disableWait: true\n`,
    });
    const changed = new Map((await f.sync()).map((r) => [r.target, r]));
    expect(changed.get(operator)?.outcome, changed.get(operator)?.error).toBe('applied');
    expect(changed.get(operator)?.chart?.version).toBe('1.1.0');
    const config = await f.client.get('v1', 'ConfigMap', `widgets-${f.id}`, 'widget-operator-config');
    expect((config?.['data'] as Record<string, string>)['version']).toBe('1.1.0');
    expect(changed.get(podinfo)?.outcome, changed.get(podinfo)?.error).toBe('applied');
    const deployment = await f.client.get('apps/v1', 'Deployment', `podinfo-${f.id}`, 'podinfo');
    expect((deployment?.['spec'] as { replicas: number }).replicas).toBe(3);
    expect(JSON.stringify(deployment)).toContain('"name":"PODINFO_LEVEL","value":"debug"');
    // Release name <targetNamespace>-<name>, as helm-controller names it.
    expect(await f.client.get('apps/v1', 'Deployment', `canary-${f.id}`, `canary-${f.id}-canary`)).toBeDefined();
    expect((await readTargetState(f.client, operator)).history.map((e) => e.chart?.version)).toEqual([
      '1.0.0',
      '1.1.0',
    ]);

    await f.repo.commit({
      'apps/base/podinfo/release.yaml': null,
      'apps/production/podinfo-values.yaml': null,
      'apps/production/kustomization.yaml':
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base/podinfo\n  - podinfo-secret.yaml\n',
      'apps/base/podinfo/kustomization.yaml':
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - namespace.yaml\n  - repository.yaml\n',
    });
    const removed = await f.sync();
    expect(removed.find((r) => r.target === podinfo)?.outcome).toBe('applied');
    expect(await f.client.get('apps/v1', 'Deployment', `podinfo-${f.id}`, 'podinfo')).toBeUndefined();
    expect(await f.client.get('v1', 'Namespace', '', `podinfo-${f.id}`)).toBeDefined();
  });
});

describe('switching a cluster over from Flux', () => {
  let helm: HelmRepo;
  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
  });
  afterAll(() => helm?.stop());

  it('objects helm-controller applied before are taken over in place: diff says configured, the same UIDs, no new generation (no rollout)', async () => {
    const id = randomBytes(3).toString('hex');
    const archive = await publishFixtureChart(helm, 'podinfo', '1.0.0', id);
    // What helm-controller applied for this HelmRelease: the chart with the production values, Helm's labels and annotations.
    const ns = `podinfo-${id}`;
    const client = testEngine().client;
    const rendered = await run(testEnv().tools.helm, [
      'template',
      'podinfo',
      archive,
      '--namespace',
      ns,
      '--skip-tests',
      '--set',
      'replicaCount=2',
      '--set-string',
      'message=hello from production',
    ]);
    const helmObjects = (parseAllDocuments(rendered) as Array<{ toJS(): unknown }>)
      .map((d) => d.toJS() as KubeObject | null)
      .filter((o): o is KubeObject => o !== null);
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as KubeObject, {
      fieldManager: 'kustomize-controller',
    });
    for (const o of helmObjects) {
      o.metadata.namespace = ns;
      o.metadata.labels = {
        ...o.metadata.labels,
        'app.kubernetes.io/managed-by': 'Helm',
        'helm.toolkit.fluxcd.io/name': 'podinfo',
        'helm.toolkit.fluxcd.io/namespace': ns,
      };
      o.metadata.annotations = {
        ...o.metadata.annotations,
        'meta.helm.sh/release-name': 'podinfo',
        'meta.helm.sh/release-namespace': ns,
      };
      await client.apply(o, { fieldManager: 'helm-controller' });
    }
    const before = await client.get('apps/v1', 'Deployment', ns, 'podinfo');
    expect(before).toBeDefined();

    const f = await fleet(helm, undefined, id);
    const podinfo = f.names(`podinfo-${id}-podinfo`);
    const [diff] = await syncRepo(f.ctx, { repo: f.repo.url, target: podinfo, dryRun: true });
    expect(diff?.error).toBeUndefined();
    expect(diff?.changeSet.changes.find((c) => c.ref.kind === 'Deployment')?.action).toBe('configured');
    const results = await f.sync();
    expect(results.find((r) => r.target === podinfo)?.outcome).toBe('applied');
    const after = await client.get('apps/v1', 'Deployment', ns, 'podinfo');
    expect(after?.metadata.uid).toBe(before?.metadata.uid);
    expect(after?.metadata.generation).toBe(before?.metadata.generation);
    // tidegate's target label says who applies it now; a chart's object keeps Helm's marks of its release.
    expect(after?.metadata.labels?.['tidegate.dev/target']).toBe(podinfo);
    expect(after?.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('Helm');
    expect(after?.metadata.annotations?.['meta.helm.sh/release-name']).toBe('podinfo');
  });
});
