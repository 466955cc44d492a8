import { describe, expect, it } from 'vitest';
import { fluxTree } from './fixture.js';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';

const repository = (files: Record<string, string>): string => fluxTree(files, 'flux-mapping-');

const ROOT = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: flux-system, namespace: flux-system }
spec: { path: ./clusters/prod, prune: true, sourceRef: { kind: GitRepository, name: flux-system } }
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: flux-system, namespace: flux-system }
spec: { url: ssh://git@github.com/acme/fleet, ref: { branch: main } }
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: platform, namespace: flux-system }
spec: { url: https://github.com/acme/platform, ref: { tag: v1.2.0 } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: platform, namespace: flux-system }
spec:
  path: ./deploy
  prune: true
  sourceRef: { kind: GitRepository, name: platform }
  targetNamespace: platform
  patches:
    - patch: '[{"op": "replace", "path": "/spec/replicas", "value": 3}]'
      target: { kind: Deployment, name: api }
  images: [{ name: api, newTag: 1.4.2 }]
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: releases, namespace: flux-system }
spec: { path: ./releases, prune: true, wait: false, healthChecks: [{ kind: Deployment, name: x, namespace: y }], sourceRef: { kind: GitRepository, name: flux-system } }
`;

const RELEASES = `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmChart
metadata: { name: local-chart, namespace: flux-system }
spec: { chart: ./charts/web, sourceRef: { kind: GitRepository, name: flux-system } }
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: web, namespace: flux-system }
spec:
  chartRef: { kind: HelmChart, name: local-chart }
  targetNamespace: web
  install: { crds: Skip }
  driftDetection: { mode: enabled }
  postRenderers:
    - kustomize:
        patches: [{ patch: 'metadata: { name: web }', target: { kind: Service } }]
        images: [{ name: nginx, newTag: '1.27' }]
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: worker, namespace: web }
spec:
  chart: { spec: { chart: ./charts/web, sourceRef: { kind: GitRepository, name: flux-system, namespace: flux-system } } }
  dependsOn: [{ name: web, namespace: flux-system }]
  valuesFrom: [{ kind: Secret, name: worker-values, valuesKey: prod.yaml }, { kind: ConfigMap, name: host, valuesKey: host, targetPath: ingress.host, optional: true }]
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata: { name: web, namespace: flux-system }
spec: { image: ghcr.io/acme/web, interval: 5m }
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata: { name: web, namespace: flux-system }
spec:
  imageRepositoryRef: { name: web }
  filterTags: { pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)', extract: '$ts' }
  policy: { numerical: { order: asc } }
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageUpdateAutomation
metadata: { name: fleet, namespace: flux-system }
spec:
  sourceRef: { kind: GitRepository, name: flux-system }
  git:
    checkout: { ref: { branch: main } }
    commit: { author: { name: fluxbot, email: fluxbot@acme.example } }
    push: { branch: image-updates }
  update: { path: ./releases, strategy: Setters }
`;

/** What each Flux object becomes, field by field (no cluster: the repository is only read). */
describe('Flux objects mapped to targets and image policies', () => {
  const dir = repository({
    'clusters/prod/sync.yaml': ROOT,
    'releases/releases.yaml': RELEASES,
    'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
  });

  it('Kustomizations, HelmReleases (chartRef to a HelmChart, a chart path of this repository), another GitRepository, image policies', async () => {
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(read.unsupported).toEqual([]);
    const byName = new Map(read.targets.map((t) => [t.name, t]));
    expect([...byName.keys()].sort()).toEqual(['flux-system', 'platform', 'releases', 'web', 'web-worker']);
    expect(byName.get('platform')).toMatchObject({
      source: { url: 'https://github.com/acme/platform', ref: { tag: 'v1.2.0' } },
      path: 'deploy',
      targetNamespace: 'platform',
      kustomize: {
        patches: [
          {
            patch: '[{"op": "replace", "path": "/spec/replicas", "value": 3}]',
            target: { kind: 'Deployment', name: 'api' },
          },
        ],
        images: [{ name: 'api', newTag: '1.4.2' }],
      },
      drift: 'correct',
    });
    expect(byName.get('releases')).toMatchObject({ wait: true, prune: true }); // healthChecks: wait for everything
    expect(byName.get('web')).toMatchObject({
      path: 'charts/web',
      render: 'helm',
      namespace: 'web',
      helm: { releaseName: 'web-web', crds: 'skip' },
      kustomize: { images: [{ name: 'nginx', newTag: '1.27' }] },
      drift: 'correct',
      dependsOn: ['releases'],
    });
    expect(byName.get('web-worker')).toMatchObject({
      namespace: 'web',
      helm: {
        releaseName: 'worker',
        valuesFrom: [
          { kind: 'Secret', name: 'worker-values', valuesKey: 'prod.yaml', namespace: 'web', optional: false },
          {
            kind: 'ConfigMap',
            name: 'host',
            valuesKey: 'host',
            targetPath: 'ingress.host',
            namespace: 'web',
            optional: true,
          },
        ],
      },
      drift: 'warn', // helm-controller's default: drift detection disabled
      dependsOn: ['releases', 'web'],
    });
    expect(read.images).toEqual([
      expect.objectContaining({
        name: 'web',
        namespace: 'flux-system',
        repository: 'ghcr.io/acme/web',
        policy: { numerical: { order: 'asc' } },
        filterTags: { pattern: '^main-[a-f0-9]+-(?P<ts>[0-9]+)', extract: '$ts' },
        writeBack: 'pullRequest',
      }),
    ]);
    expect(read.author).toEqual({ name: 'fluxbot', email: 'fluxbot@acme.example' });
    expect(read.notes.map((n) => `${n.object} ${n.field}`)).toContain(
      'ImageUpdateAutomation flux-system/fleet spec.git.push.branch',
    );
  });
});
