import { describe, expect, it } from 'vitest';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import { fluxTree } from './fixture.js';

/**
 * Flux objects that take a variable of a ConfigMap the repository declares, in the layout of
 * stefanprodan/gitops-istio: clusters/my-cluster holds the ConfigMap istio-version and the
 * Kustomization istio-system whose substituteFrom names it; the HelmReleases under istio/system
 * take their chart version from it.
 */
describe('substituteFrom a ConfigMap in the repository', () => {
  const files = {
    'clusters/my-cluster/istio-version.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: istio-version
  namespace: flux-system
  annotations:
    kustomize.toolkit.fluxcd.io/ssa: merge
data:
  version: 1.19.3
`,
    'clusters/my-cluster/istio.yaml': `apiVersion: kustomize.toolkit.fluxcd.io/v1beta2
kind: Kustomization
metadata: { name: istio-system, namespace: flux-system }
spec:
  interval: 10m0s
  path: ./istio/system
  prune: true
  sourceRef: { kind: GitRepository, name: flux-system }
  postBuild:
    substituteFrom:
      - kind: ConfigMap
        name: istio-version
      - kind: ConfigMap
        name: cluster-settings
        optional: true
`,
    'istio/system/istio.yaml': `apiVersion: source.toolkit.fluxcd.io/v1beta1
kind: HelmRepository
metadata: { name: istio, namespace: istio-system }
spec: { interval: 1h0m0s, url: https://istio-release.storage.googleapis.com/charts }
---
apiVersion: helm.toolkit.fluxcd.io/v2beta1
kind: HelmRelease
metadata: { name: istio-base, namespace: istio-system }
spec:
  releaseName: istio-base
  chart:
    spec:
      version: "\${version}"
      chart: base
      sourceRef: { kind: HelmRepository, name: istio }
  interval: 1h0m0s
`,
  };

  it("reads the Flux objects with the ConfigMap's values from Git (a note says so), and counts its file as an input of the release", async () => {
    const dir = fluxTree(files, 'flux-vars-');
    const read = await readFlux(dir, [{ path: 'clusters/my-cluster', cluster: 'my-cluster' }], localSettings());
    expect(read.unsupported).toEqual([]);
    const base = read.targets.find((t) => t.name === 'istio-system-istio-base');
    expect(base?.chart).toMatchObject({ name: 'base', version: '1.19.3' });
    expect(base?.origin?.inputs).toContain('clusters/my-cluster');
    expect(read.notes).toContainEqual(
      expect.objectContaining({
        object: 'Kustomization flux-system/istio-system',
        field: 'spec.postBuild.substituteFrom',
        message: expect.stringMatching(/ConfigMap flux-system\/istio-version are read from the repository/),
      }),
    );
  });

  it('a variable of a ConfigMap the repository does not declare is still refused, naming it', async () => {
    const { ['clusters/my-cluster/istio-version.yaml']: _declared, ...without } = files;
    const dir = fluxTree(without, 'flux-vars-');
    const read = await readFlux(dir, [{ path: 'clusters/my-cluster', cluster: 'my-cluster' }], localSettings());
    expect(read.unsupported.map((u) => [u.object, u.message])).toContainEqual([
      'HelmRelease istio-system/istio-base',
      expect.stringMatching(
        /uses a variable of Kustomization flux-system\/istio-system that its postBuild.substitute does not declare/,
      ),
    ]);
  });
});
