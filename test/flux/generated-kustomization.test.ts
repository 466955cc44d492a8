import { describe, expect, it } from 'vitest';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import { renderInputs, renderTarget } from '../../shared/render/index.js';
import { fluxTree } from './fixture.js';

const deployment = (name: string) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec: { containers: [{ name: app, image: ghcr.io/acme/${name}:1.0.0 }] }
`;

/**
 * A Kustomization's path without a kustomization.yaml, in the layout of stefanprodan/gitops-istio
 * (apps/ holds a namespace and one directory per app, each with a kustomization and a JSON 6902
 * patch file): Flux generates a kustomization of the path, so each directory holding a kustomization
 * is built whole, and the patch files in it are patches, not manifests.
 */
describe('a path without a kustomization.yaml, rendered as Flux generates one', () => {
  const dir = fluxTree(
    {
      'clusters/my-cluster/apps.yaml': `apiVersion: kustomize.toolkit.fluxcd.io/v1beta2
kind: Kustomization
metadata: { name: apps, namespace: flux-system }
spec: { interval: 30m0s, path: ./apps, prune: true, sourceRef: { kind: GitRepository, name: flux-system } }
`,
      'apps/namespace.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata: { name: prod }\n',
      'apps/backend/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: prod
resources: [deployment.yaml, ../../shared/hpa]
patches:
  - path: deployment.patch.yaml
    target: { kind: Deployment, name: backend }
`,
      'apps/backend/deployment.yaml': deployment('backend'),
      'apps/backend/deployment.patch.yaml': `- op: add
  path: /spec/template/metadata/annotations
  value: { sidecar.istio.io/inject: "true" }
`,
      // A directory without a kustomization: its manifests are read one by one.
      'apps/sidecar/default.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: sidecar, namespace: prod }\n',
      'shared/hpa/kustomization.yaml': 'resources: [hpa.yaml]\n',
      'shared/hpa/hpa.yaml':
        'apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: { name: backend }\nspec: { scaleTargetRef: { apiVersion: apps/v1, kind: Deployment, name: backend }, maxReplicas: 4 }\n',
    },
    'flux-generated-',
  );

  it("builds each directory holding a kustomization whole (its patch applied, its bases read), reads the other manifests, and counts the bases as the target's inputs", async () => {
    const read = await readFlux(dir, [{ path: 'clusters/my-cluster', cluster: 'my-cluster' }], localSettings());
    expect(read.unsupported).toEqual([]);
    const apps = read.targets.find((t) => t.name === 'apps');
    if (!apps) throw new Error('no target apps');
    const { objects } = await renderTarget(apps, dir, localSettings());
    expect(
      objects.map((o) => `${o.object.kind}/${o.object.metadata.namespace ?? ''}/${o.object.metadata.name}`).sort(),
    ).toEqual([
      'ConfigMap/prod/sidecar',
      'Deployment/prod/backend',
      'HorizontalPodAutoscaler/prod/backend',
      'Namespace//prod',
    ]);
    const backend = objects.find((o) => o.object.kind === 'Deployment')?.object as unknown as {
      spec: { template: { metadata: { annotations?: Record<string, string> } } };
    };
    expect(backend.spec.template.metadata.annotations).toEqual({ 'sidecar.istio.io/inject': 'true' });
    // A change of the base the app's kustomization reads (outside the path) changes the target.
    expect(renderInputs(dir, apps)).toContain('shared/hpa');
    // Said explicitly (render: yaml), the path is read file by file: the patch file is no manifest.
    await expect(renderTarget({ ...apps, render: 'yaml' }, dir, localSettings())).rejects.toThrow(
      /apps\/backend\/deployment\.patch\.yaml.*is not a mapping/,
    );
  });
});
