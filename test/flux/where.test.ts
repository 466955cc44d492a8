import { describe, expect, it } from 'vitest';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import { fluxTree } from './fixture.js';

const kustomization = (ns: string, extra = '') => `apiVersion: v1
kind: Namespace
metadata: { name: ${ns} }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: apps, namespace: ${ns} }
spec:
  interval: 1h
  path: ./deploy/${ns}
  prune: true
  sourceRef: { kind: GitRepository, name: flux-system, namespace: flux-system }
${extra}`;

/** fluxcd/flux2-hub-spoke-example's hub: one Kustomization name per spoke, in namespaces of their own, in files of their own. */
describe('where a Flux object is declared', () => {
  it('of two objects of one kind and name in two namespaces, each is found in the file declaring its namespace', async () => {
    const dir = fluxTree(
      {
        'hub/production.yaml': kustomization('production'),
        'hub/staging.yaml': kustomization('staging', '  kubeConfig: { secretRef: { name: cluster-kubeconfig } }\n'),
        'deploy/production/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a, namespace: production }\n',
        'deploy/staging/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a, namespace: staging }\n',
      },
      'flux-where-',
    );
    const read = await readFlux(dir, [{ path: 'hub', cluster: 'hub' }], localSettings());
    expect(read.unsupported.map((u) => [u.file, u.line, u.object, u.field])).toEqual([
      ['hub/staging.yaml', 5, 'Kustomization staging/apps', 'spec.kubeConfig'],
    ]);
    expect(read.mapped.filter((m) => m.object.startsWith('Kustomization')).map((m) => [m.object, m.file])).toEqual([
      ['Kustomization production/apps', 'hub/production.yaml'],
      ['Kustomization staging/apps', 'hub/staging.yaml'],
    ]);
  });
});

/** A field set by a patch (an overlay's patch file, as fleets patch HelmReleases per cluster): the refusal names the patch. */
describe('where a refused field was written', () => {
  it("names the patch file and line that set it, not the base's file", async () => {
    const dir = fluxTree(
      {
        'clusters/prod/apps.yaml': `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: apps, namespace: flux-system }
spec: { interval: 1h, path: ./apps/production, prune: true, sourceRef: { kind: GitRepository, name: flux-system } }
`,
        'apps/base/release.yaml': `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: web, namespace: web }
spec:
  interval: 1h
  chart:
    spec: { chart: ./charts/web, sourceRef: { kind: GitRepository, name: flux-system, namespace: flux-system } }
`,
        'apps/base/kustomization.yaml': 'resources: [release.yaml]\n',
        'apps/production/kustomization.yaml':
          'resources: [../base]\npatches:\n  - path: release-patch.yaml\n    target: { kind: HelmRelease }\n',
        'apps/production/release-patch.yaml': `# production: run the chart's tests
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: web, namespace: web }
spec:
  test: { enable: true }
`,
        'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
      },
      'flux-patched-',
    );
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(read.unsupported.map((u) => [u.file, u.line, u.object, u.field, u.cluster])).toEqual([
      ['apps/production/release-patch.yaml', 2, 'HelmRelease web/web', 'spec.test', 'prod'],
    ]);
  });
});
