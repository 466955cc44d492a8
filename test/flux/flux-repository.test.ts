import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startHelmRepo, type HelmRepo } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { testEnv } from '../helpers/env.js';
import { fluxRepository, publishFixtureChart } from './fixture.js';
import { randomBytes } from 'node:crypto';

/**
 * A Flux repository in the layout of fluxcd/flux2-kustomize-helm-example, synced by tidegate
 * unchanged: clusters/production holds the Kustomizations, infrastructure/controllers a
 * HelmRepository and a HelmRelease whose chart installs a CRD, infrastructure/configs an object of
 * that CRD, apps/base a HelmRelease that apps/production patches. No Flux CRD exists on the cluster.
 */
describe('a Flux repository read as configuration', () => {
  let helm: HelmRepo;
  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
  });
  afterAll(() => helm?.stop());

  async function fleet() {
    const id = randomBytes(3).toString('hex');
    for (const [chart, version] of [
      ['widget-operator', '1.0.0'],
      ['widget-operator', '1.1.0'],
      ['podinfo', '1.0.0'],
    ] as const)
      await publishFixtureChart(helm, chart, version, id);
    const repo = await gitopsRepo('flux-fleet');
    const prefix = `f${id}-`;
    await repo.commit({
      ...fluxRepository(id, helm.url),
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/production', cluster: 'test', prefix }] }),
    });
    const settings = localSettings();
    const ctx = {
      ...repo.engine,
      settings: { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } },
    };
    const sync = () => syncRepo(ctx, { repo: repo.url });
    const client = repo.engine.client;
    return { id, prefix, repo, sync, client, names: (n: string) => `${prefix}${n}` };
  }

  it('syncs end to end in dependency order (the CRD chart, then the configs using it, then the apps), applies none of the Flux objects, and a second sync writes nothing', async () => {
    const f = await fleet();
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
