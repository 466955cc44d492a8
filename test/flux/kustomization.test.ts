import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeObject } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { gitopsRepo } from '../helpers/engine.js';

/**
 * A Flux Kustomization's postBuild (substitute, substituteFrom a ConfigMap and a Secret in its
 * namespace, read at sync time), patches and images, synced by tidegate.
 */
describe("a Flux Kustomization's postBuild, patches and images", () => {
  it('variables from substitute, a ConfigMap and a Secret (substitute wins), patches and image overrides applied; substitution disabled per object; a missing ConfigMap that is not optional fails that target with nothing applied', async () => {
    const id = randomBytes(3).toString('hex');
    const repo = await gitopsRepo('flux-postbuild');
    const client = repo.engine.client;
    const ns = `web-${id}`;
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'flux-system' } } as KubeObject, {
      fieldManager: 'test',
    });
    await client.apply(
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `vars-${id}`, namespace: 'flux-system' },
        data: { region: 'eu-west-1', greeting: 'overridden' },
      } as KubeObject,
      { fieldManager: 'test' },
    );
    await client.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `secret-vars-${id}`, namespace: 'flux-system' },
        stringData: { token: 's3cr3t-substitution-value' },
      } as KubeObject,
      { fieldManager: 'test' },
    );
    const kustomization = (name: string, extra: Record<string, unknown>) => ({
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name, namespace: 'flux-system' },
      spec: {
        interval: '10m',
        path: `./${name}`,
        prune: true,
        sourceRef: { kind: 'GitRepository', name: 'flux-system' },
        ...extra,
      },
    });
    const root = kustomization('flux-system', { path: './clusters/x' });
    const web = kustomization('web', {
      targetNamespace: ns,
      postBuild: {
        substitute: { greeting: 'hello' },
        substituteFrom: [
          { kind: 'ConfigMap', name: `vars-${id}` },
          { kind: 'Secret', name: `secret-vars-${id}` },
          { kind: 'ConfigMap', name: `absent-${id}`, optional: true },
        ],
      },
      patches: [
        {
          patch: '[{"op": "replace", "path": "/spec/replicas", "value": 3}]',
          target: { kind: 'Deployment', name: 'web' },
        },
      ],
      images: [{ name: 'nginx', newTag: '1.27.1' }],
    });
    const broken = kustomization('broken', {
      targetNamespace: ns,
      postBuild: { substituteFrom: [{ kind: 'ConfigMap', name: `missing-${id}` }] },
    });
    const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: { name: web }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: web
          image: nginx:1.0
          env:
            - { name: GREETING, value: "\${greeting}" }
            - { name: REGION, value: "\${region}" }
            - { name: TOKEN, value: "\${token}" }
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: script
  annotations: { kustomize.toolkit.fluxcd.io/substitute: disabled }
data: { run.sh: "echo \${HOME}" }
`;
    const prefix = `k${id}-`;
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/x', cluster: 'test', prefix }] }),
      'clusters/x/sync.yaml': [root, web, broken].map((o) => stringify(o)).join('---\n'),
      'web/app.yaml': deployment,
      'broken/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: broken }\ndata: { a: "${anything:=x}" }\n',
    });
    const results = new Map((await repo.sync()).map((r) => [r.target, r]));
    expect(results.get(`${prefix}web`)?.outcome, results.get(`${prefix}web`)?.error).toBe('applied');
    const live = await client.get('apps/v1', 'Deployment', ns, 'web');
    const spec = live?.['spec'] as {
      replicas: number;
      template: { spec: { containers: Array<{ image: string; env: unknown }> } };
    };
    expect(spec.replicas).toBe(3);
    expect(spec.template.spec.containers[0]?.image).toBe('nginx:1.27.1');
    expect(spec.template.spec.containers[0]?.env).toEqual([
      { name: 'GREETING', value: 'hello' },
      { name: 'REGION', value: 'eu-west-1' },
      { name: 'TOKEN', value: 's3cr3t-substitution-value' },
    ]);
    expect((await client.get('v1', 'ConfigMap', ns, 'script'))?.['data']).toEqual({ 'run.sh': 'echo ${HOME}' });

    const failed = results.get(`${prefix}broken`);
    expect(failed?.outcome).toBe('failed');
    expect(failed?.error).toContain(`ConfigMap flux-system/missing-${id} does not exist`);
    expect(await client.get('v1', 'ConfigMap', ns, 'broken')).toBeUndefined();
    // The Secret's value is in no recorded state.
    expect(JSON.stringify(await readTargetState(client, `${prefix}web`))).not.toContain('s3cr3t-substitution-value');
  });
});

/**
 * An app pruned from Git the way Flux users do it: its manifests removed, its Kustomization left in
 * place with an empty path. Flux prunes what it applied; tidegate did not (it refused the empty
 * render: "set allowEmpty", which a Flux layout has no place to set).
 */
describe('a Flux Kustomization emptied by a prune', () => {
  it('prunes what it applied, as Flux does (prune: true); the Kustomization stays a target', async () => {
    const id = randomBytes(3).toString('hex');
    const repo = await gitopsRepo('flux-emptied');
    const client = repo.engine.client;
    const ns = `gone-${id}`;
    const kustomization = (name: string, path: string, extra: Record<string, unknown> = {}) => ({
      apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
      kind: 'Kustomization',
      metadata: { name, namespace: 'flux-system' },
      spec: { interval: '10m', path, prune: true, sourceRef: { kind: 'GitRepository', name: 'flux-system' }, ...extra },
    });
    const prefix = `e${id}-`;
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/x', cluster: 'test', prefix }] }),
      'clusters/x/sync.yaml': [
        kustomization('flux-system', './clusters/x'),
        kustomization('app', './app', { targetNamespace: ns }),
      ]
        .map((o) => stringify(o))
        .join('---\n'),
      'app/kustomization.yaml':
        'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [cm.yaml]\n',
      'app/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\ndata: { a: "1" }\n',
    });
    const first = new Map((await repo.sync()).map((r) => [r.target, r]));
    expect(first.get(`${prefix}app`)?.outcome, first.get(`${prefix}app`)?.error).toBe('applied');
    expect(await client.get('v1', 'ConfigMap', ns, 'settings')).toBeDefined();

    await repo.commit({
      'app/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n',
      'app/cm.yaml': null,
    });
    const second = new Map((await repo.sync()).map((r) => [r.target, r]));
    const app = second.get(`${prefix}app`);
    expect([app?.outcome, app?.error]).toEqual(['applied', undefined]);
    expect(
      app?.changeSet.changes.filter((c) => c.action === 'deleted').map((c) => `${c.ref.kind}/${c.ref.name}`),
    ).toEqual(['ConfigMap/settings']);
    expect(await client.get('v1', 'ConfigMap', ns, 'settings')).toBeUndefined();
  });
});

/**
 * A Kustomization whose GitRepository is this same repository pinned to a tag (a release of the
 * fleet's own manifests): Flux applies the tag. tidegate read the pin in `flux check` but synced the
 * branch head.
 */
describe('a Flux Kustomization sourced from this repository pinned to a tag', () => {
  it('applies the tag, not the branch head', async () => {
    const id = randomBytes(3).toString('hex');
    const repo = await gitopsRepo('flux-pinned');
    const client = repo.engine.client;
    const ns = `pinned-${id}`;
    const prefix = `p${id}-`;
    const cm = (v: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: release }\ndata: { v: "${v}" }\n`;
    const docs = [
      {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: 'flux-system', namespace: 'flux-system' },
        spec: {
          interval: '10m',
          path: './clusters/x',
          prune: true,
          sourceRef: { kind: 'GitRepository', name: 'flux-system' },
        },
      },
      {
        apiVersion: 'source.toolkit.fluxcd.io/v1',
        kind: 'GitRepository',
        metadata: { name: 'release', namespace: 'flux-system' },
        spec: { interval: '10m', url: repo.url, ref: { tag: 'v1' } },
      },
      {
        apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
        kind: 'Kustomization',
        metadata: { name: 'app', namespace: 'flux-system' },
        spec: {
          interval: '10m',
          path: './app',
          prune: true,
          targetNamespace: ns,
          sourceRef: { kind: 'GitRepository', name: 'release' },
        },
      },
    ];
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/x', cluster: 'test', prefix }] }),
      'clusters/x/sync.yaml': docs.map((o) => stringify(o)).join('---\n'),
      'app/cm.yaml': cm('1'),
    });
    await repo.ws.git('tag', 'v1');
    await repo.ws.git('push', 'origin', 'v1');
    await repo.commit({ 'app/cm.yaml': cm('2-work-in-progress') });
    const results = new Map((await repo.sync()).map((r) => [r.target, r]));
    const app = results.get(`${prefix}app`);
    expect([app?.outcome, app?.error]).toEqual(['applied', undefined]);
    expect((await client.get('v1', 'ConfigMap', ns, 'release'))?.['data']).toEqual({ v: '1' });
    expect(app?.revision.ref).toBe('refs/tags/v1');
  });
});
