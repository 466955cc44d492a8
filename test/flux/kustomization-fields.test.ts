import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { run } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { testEnv } from '../helpers/env.js';
import { tempTree } from '../helpers/files.js';
import { fluxTree } from './fixture.js';

/**
 * Kustomization spec.components, commonMetadata, deletionPolicy, ignore and healthCheckExprs, and
 * GitRepository spec.ignore: each read as Flux reads it, or accepted with a note saying what differs.
 */
const ROOT = `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: flux-system, namespace: flux-system }
spec: { url: https://github.com/acme/fleet, interval: 1m, ref: { branch: main }, ignore: "/docs/\\n*.md" }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: flux-system, namespace: flux-system }
spec: { path: ./clusters/prod, prune: true, interval: 10m, sourceRef: { kind: GitRepository, name: flux-system } }
`;

const kustomization = (name: string, spec: string) => `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: ${name}, namespace: flux-system }
spec:
  path: ./apps/${name}
  interval: 10m
  sourceRef: { kind: GitRepository, name: flux-system }
${spec
  .trim()
  .split('\n')
  .map((l) => `  ${l}`)
  .join('\n')}
`;

const cm = (name: string, data: Record<string, string>) =>
  stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data });

/** A component: an extra ConfigMap, and a patch of the base's. */
const HA = {
  'components/ha/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [extra.yaml]
patches:
  - target: { kind: ConfigMap, name: settings }
    patch: |
      - op: replace
        path: /data/replicas
        value: "3"
`,
  'components/ha/extra.yaml': cm('ha-extra', { mode: 'ha' }),
};

describe('Kustomization fields read as Flux reads them', () => {
  it.each([
    ['components', 'components: [../../components/ha]', { components: ['../../components/ha'] }],
    [
      'commonMetadata',
      'commonMetadata: { labels: { team: a }, annotations: { owner: ops } }',
      { commonMetadata: { labels: { team: 'a' }, annotations: { owner: 'ops' } } },
    ],
    ['deletionPolicy Orphan', 'deletionPolicy: Orphan', { deletionPolicy: 'orphan' }],
    ['deletionPolicy Delete', 'deletionPolicy: Delete', { deletionPolicy: 'delete' }],
    ['deletionPolicy WaitForTermination', 'deletionPolicy: WaitForTermination', { deletionPolicy: 'delete' }],
    ['deletionPolicy MirrorPrune (prune decides)', 'deletionPolicy: MirrorPrune', { prune: true }],
    [
      'ignore (drift ignore rules)',
      'ignore: [{ paths: [/spec/replicas], target: { kind: Deployment, name: web } }]',
      { ignore: [{ paths: ['/spec/replicas'], target: { kind: 'Deployment', name: 'web' } }] },
    ],
  ])('%s', async (_name, spec, expected) => {
    const dir = fluxTree(
      {
        'clusters/prod/flux-system/gotk-sync.yaml': ROOT,
        'clusters/prod/web.yaml': kustomization('web', `prune: true\n${spec}`),
        'apps/web/cm.yaml': cm('settings', { replicas: '1' }),
        ...HA,
      },
      'flux-kfields-',
    );
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(read.unsupported).toEqual([]);
    const target = read.targets.find((t) => t.name === 'web');
    expect(target).toMatchObject(expected);
    if (spec.includes('MirrorPrune')) expect(target?.deletionPolicy).toBeUndefined();
  });

  it('notes what differs, and refuses a value Flux does not know or a selector tidegate cannot match', async () => {
    const dir = fluxTree(
      {
        'clusters/prod/flux-system/gotk-sync.yaml': ROOT,
        'clusters/prod/web.yaml': kustomization(
          'web',
          `prune: true
deletionPolicy: WaitForTermination
healthCheckExprs: [{ apiVersion: example.com/v1, kind: Widget, current: "status.ready == true" }]`,
        ),
        'clusters/prod/bad.yaml': kustomization(
          'bad',
          'deletionPolicy: Sometimes\nignore: [{ paths: [/data], target: { labelSelector: app=x } }]',
        ),
        'apps/web/cm.yaml': cm('settings', { replicas: '1' }),
        'apps/bad/cm.yaml': cm('bad', { v: '1' }),
      },
      'flux-kfields-',
    );
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    const notes = read.notes.map((n) => [n.object, n.field, n.message]);
    expect(notes).toContainEqual([
      'Kustomization flux-system/web',
      'spec.deletionPolicy',
      expect.stringMatching(/deleted \(as Delete\).*does not wait for them to be gone/),
    ]);
    expect(notes).toContainEqual([
      'Kustomization flux-system/web',
      'spec.healthCheckExprs',
      expect.stringMatching(/^CEL expressions are not evaluated: .*Stalled.*Ready/),
    ]);
    expect(notes).toContainEqual([
      'GitRepository flux-system/flux-system',
      'spec.ignore',
      expect.stringMatching(/not left out/),
    ]);
    expect(read.unsupported.map((u) => [u.object, u.field, u.message])).toEqual([
      [
        'Kustomization flux-system/bad',
        'spec.deletionPolicy',
        'deletionPolicy Sometimes: not one of MirrorPrune, Delete, WaitForTermination, Orphan',
      ],
      ['Kustomization flux-system/bad', 'spec.ignore[0].target.labelSelector', 'not supported yet'],
    ]);
  });

  it('a component path leading out of the repository fails the read of that path, naming it', async () => {
    const dir = fluxTree(
      {
        'clusters/prod/flux-system/gotk-sync.yaml': ROOT,
        'clusters/prod/web.yaml': kustomization('web', 'prune: true\ncomponents: [../../../elsewhere]'),
        'apps/web/cm.yaml': cm('settings', { replicas: '1' }),
      },
      'flux-kfields-',
    );
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(read.unsupported.map((u) => [u.file, u.message])).toEqual([
      ['apps/web', '../../../elsewhere is outside the repository'],
    ]);
  });
});

describe('a Flux layout with components, commonMetadata and deletion policies, synced end to end', () => {
  it("applies the path's build with the components (what kustomize builds with them written in) and the common labels; a second sync writes nothing; removed from Git, Orphan leaves the objects and Delete deletes them though prune is false", async () => {
    const id = randomBytes(3).toString('hex');
    const [web, cache] = [`web-${id}`, `cache-${id}`];
    const app = {
      'apps/web/kustomization.yaml': 'resources: [cm.yaml]\n',
      'apps/web/cm.yaml': cm('settings', { replicas: '1' }),
      ...HA,
    };
    const repo = await gitopsRepo('flux-kfields');
    const prefix = `k${id}-`;
    const apps = [
      kustomization(
        'web',
        `prune: true
targetNamespace: ${web}
components: [../../components/ha]
commonMetadata: { labels: { team: platform }, annotations: { example.com/owner: ops } }
deletionPolicy: Orphan`,
      ),
      kustomization('cache', `prune: false\ntargetNamespace: ${cache}\ndeletionPolicy: Delete`),
    ].join('---\n');
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/prod', cluster: 'test', prefix }] }),
      'clusters/prod/flux-system/gotk-sync.yaml': ROOT,
      'clusters/prod/apps.yaml': apps,
      'apps/cache/cm.yaml': cm('cache', { size: '1Gi' }),
      ...app,
    });
    const first = await repo.sync();
    expect(first.map((r) => [r.target, r.outcome, r.error]).sort()).toEqual(
      [
        [`${prefix}cache`, 'applied', undefined],
        [`${prefix}flux-system`, 'unchanged', undefined], // its path applies only Flux objects: nothing
        [`${prefix}web`, 'applied', undefined],
      ].sort(),
    );
    const client = repo.engine.client;

    // The same objects as kustomize builds with the component written into the kustomization.
    const written = tempTree(
      { ...app, 'apps/web/kustomization.yaml': 'resources: [cm.yaml]\ncomponents: [../../components/ha]\n' },
      'flux-kfields-',
    );
    const expected = parseAllDocuments(await run(testEnv().tools.kubectl, ['kustomize', join(written, 'apps/web')]))
      .map((d) => d.toJS() as KubeObject)
      .filter(Boolean);
    expect(expected.map((o) => o.metadata.name).sort()).toEqual(['ha-extra', 'settings']);
    for (const object of expected) {
      const live = await client.get('v1', 'ConfigMap', web, object.metadata.name);
      expect(live?.['data']).toEqual(object['data']);
      expect(live?.metadata.labels).toMatchObject({ team: 'platform' });
      expect(live?.metadata.annotations).toMatchObject({ 'example.com/owner': 'ops' });
    }
    expect((await client.get('v1', 'ConfigMap', web, 'settings'))?.['data']).toEqual({ replicas: '3' });

    const second = await repo.sync();
    expect(second.map((r) => [r.target, r.outcome])).toEqual(first.map((r) => [r.target, 'unchanged']));

    await repo.commit({ 'clusters/prod/apps.yaml': null });
    const removed = await repo.sync();
    expect(removed.map((r) => [r.target, r.outcome]).sort()).toEqual(
      [
        [`${prefix}cache`, 'applied'],
        [`${prefix}flux-system`, 'unchanged'],
        [`${prefix}web`, 'applied'],
      ].sort(),
    );
    // Orphan (prune: true): left as they are.
    expect(await client.get('v1', 'ConfigMap', web, 'settings')).toBeDefined();
    expect(await client.get('v1', 'ConfigMap', web, 'ha-extra')).toBeDefined();
    // Delete (prune: false): deleted.
    expect(await client.get('v1', 'ConfigMap', cache, 'cache')).toBeUndefined();
  });
});
