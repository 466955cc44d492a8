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
