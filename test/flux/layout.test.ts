import { describe, expect, it } from 'vitest';
import { fluxTree } from './fixture.js';
import { localSettings } from '../../shared/config/index.js';
import { loadConfig } from '../../shared/usecases/index.js';

const repository = (files: Record<string, string>): string => fluxTree(files, 'flux-layout-');

const kustomization = (name: string, path: string, extra = '') => `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: ${name}, namespace: flux-system }
spec: { path: ${path}, prune: true, interval: 10m, sourceRef: { kind: GitRepository, name: flux-system }${extra} }
`;

const cluster = (name: string) => ({
  [`clusters/${name}/flux-system/gotk-sync.yaml`]: kustomization('flux-system', `./clusters/${name}`),
  [`clusters/${name}/apps.yaml`]: kustomization(
    'apps',
    `./apps/${name}`,
    ', postBuild: { substitute: { env: ' + name + ' }, substituteFrom: [{ kind: ConfigMap, name: vars }] }',
  ),
  [`apps/${name}/cm.yaml`]: 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: env }\ndata: { env: "${env}" }\n',
});

/** Without a tidegate.yaml, a repository in Flux's layout is read as one flux path per clusters/<name>/. */
describe("a repository in Flux's layout, without tidegate.yaml", () => {
  it('one cluster directory: targets named <cluster>-<Kustomization>, cluster alias the directory name', async () => {
    const config = await loadConfig(repository(cluster('production')), localSettings());
    expect(config.targets.map((t) => [t.name, t.cluster, t.path])).toEqual([
      ['production-flux-system', 'production', 'clusters/production'],
      ['production-apps', 'production', 'apps/production'],
    ]);
    const apps = config.targets[1];
    expect(apps?.substitute).toEqual({ env: 'production' });
    expect(apps?.substituteFrom).toEqual([
      { kind: 'ConfigMap', name: 'vars', namespace: 'flux-system', optional: false },
    ]);
  });

  it('several cluster directories: each its own alias, names prefixed by it; a directory without Flux objects is not a cluster', async () => {
    const config = await loadConfig(
      repository({ ...cluster('staging'), ...cluster('production'), 'clusters/README/notes.yaml': 'a: 1\n' }),
      localSettings(),
    );
    expect(config.targets.map((t) => [t.name, t.cluster]).sort()).toEqual(
      [
        ['production-flux-system', 'production'],
        ['production-apps', 'production'],
        ['staging-flux-system', 'staging'],
        ['staging-apps', 'staging'],
      ].sort(),
    );
  });

  const appsRelease = `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: apps, namespace: apps }
spec: { chart: { spec: { chart: web, sourceRef: { kind: HelmRepository, name: charts } } } }
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: { name: charts, namespace: apps }
spec: { url: https://charts.example.com }
`;

  it('a HelmRelease named as the Kustomization that declares it (an app and its release) is <name>-release; the Kustomization keeps its name', async () => {
    const config = await loadConfig(
      repository({ ...cluster('production'), 'apps/production/release.yaml': appsRelease }),
      localSettings(),
    );
    expect(config.targets.map((t) => [t.name, t.dependsOn])).toEqual([
      ['production-flux-system', []],
      ['production-apps', []],
      ['production-apps-release', ['production-apps']],
    ]);
  });

  it('two objects that would get one target name otherwise are refused, not renamed', async () => {
    // The same HelmRelease beside the Kustomization (both declared by the cluster's root): not its own app's release.
    const dir = repository({ ...cluster('production'), 'clusters/production/release.yaml': appsRelease });
    await expect(loadConfig(dir, localSettings())).rejects.toThrow(
      /clusters\/production\/release\.yaml:1: HelmRelease apps\/apps metadata\.name: its target name production-apps is taken by Kustomization flux-system\/apps: rename one of them/,
    );
  });

  it('neither tidegate.yaml nor a Flux layout: a clear error', async () => {
    await expect(loadConfig(repository({ 'apps/cm.yaml': 'a: 1\n' }), localSettings())).rejects.toThrow(
      /tidegate\.yaml not found at the root of the repository \(nor a Flux layout/,
    );
  });
});
