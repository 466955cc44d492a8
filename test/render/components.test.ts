import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { run } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { render, type RenderOptions } from '../../shared/render/render.js';
import { renderInputs } from '../../shared/render/index.js';
import { RenderError } from '../../shared/render/errors.js';
import { testEnv } from '../helpers/env.js';
import { tempTree } from '../helpers/files.js';

/**
 * A target's components (a Flux Kustomization's spec.components) are added to the kustomization of
 * its path, as kustomize-controller adds them: the render equals `kubectl kustomize` of the same
 * tree with the components written into that kustomization (or into the one Flux generates).
 */
const deployment = (name: string) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  replicas: 1
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec: { containers: [{ name: app, image: nginx }] }
`;

const HA = {
  'components/ha/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources: [pdb.yaml]
patches:
  - target: { kind: Deployment }
    patch: |
      - op: replace
        path: /spec/replicas
        value: 3
`,
  'components/ha/pdb.yaml': `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: { name: web }
spec: { minAvailable: 1, selector: { matchLabels: { app: web } } }
`,
};

const opts = (root: string, extra: Partial<RenderOptions> = {}): RenderOptions => ({
  root,
  path: 'apps/web',
  mode: 'auto',
  substitute: {},
  defaultReleaseName: 'app',
  settings: localSettings(),
  ...extra,
});

const docs = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter(Boolean);

const kustomize = async (dir: string) => docs(await run(testEnv().tools.kubectl, ['kustomize', dir]));

async function problems(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RenderError);
  return (err as RenderError).problems.map((x) => `${x.file}: ${x.message}`);
}

describe('render: components', () => {
  it("are appended to the path's kustomization: the same objects as kustomize build with them written in (the path's namespace reaches the component's objects)", async () => {
    const tree = (components: string) => ({
      ...HA,
      'apps/web/kustomization.yaml': `namespace: web\nresources: [deployment.yaml]\n${components}`,
      'apps/web/deployment.yaml': deployment('web'),
      'components/extra/kustomization.yaml':
        'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonLabels: { tier: extra }\n',
    });
    const root = tempTree(tree('components: [../../components/extra]\n'), 'components-');
    const written = tempTree(tree('components: [../../components/extra, ../../components/ha]\n'), 'components-');
    const out = await render(opts(root, { components: ['../../components/ha'] }));
    const expected = await kustomize(join(written, 'apps/web'));
    expect(out.objects.map((o) => o.object)).toEqual(expected);
    expect(out.objects.map((o) => [o.object.kind, o.object.metadata.namespace])).toEqual([
      ['Deployment', 'web'],
      ['PodDisruptionBudget', 'web'],
    ]);
    expect(out.objects[0]?.object).toMatchObject({ spec: { replicas: 3 }, metadata: { labels: { tier: 'extra' } } });
    // Without components, the path renders as before.
    expect((await render(opts(root))).objects.map((o) => o.object.kind)).toEqual(['Deployment']);
  });

  it('a path without a kustomization gets the one Flux generates (its manifests, and the directories holding a kustomization), with the components', async () => {
    const files = {
      ...HA,
      'apps/web/deployment.yaml': deployment('web'),
      'apps/web/more/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: more }\ndata: { v: "${v}" }\n',
      'apps/web/base/kustomization.yaml': 'resources: [worker.yaml]\n',
      'apps/web/base/worker.yaml': deployment('worker'),
    };
    const root = tempTree(files, 'components-');
    const written = tempTree(
      {
        ...files,
        'apps/web/kustomization.yaml':
          'resources: [./base, ./deployment.yaml, ./more/cm.yaml]\ncomponents: [../../components/ha]\n',
      },
      'components-',
    );
    const out = await render(opts(root, { components: ['../../components/ha'], substitute: { v: 'x' } }));
    const expected = (await kustomize(join(written, 'apps/web'))) as Array<Record<string, unknown>>;
    expect(expected.find((o) => o['kind'] === 'ConfigMap')).toMatchObject({ data: { v: '${v}' } });
    // Substitution runs on the build, as Flux's postBuild does.
    const substituted = JSON.parse(JSON.stringify(expected).replaceAll('${v}', 'x')) as unknown;
    expect(out.objects.map((o) => o.object)).toEqual(substituted);
    expect(out.objects.map((o) => `${o.object.kind}/${o.object.metadata.name}`).sort()).toEqual([
      'ConfigMap/more',
      'Deployment/web',
      'Deployment/worker',
      'PodDisruptionBudget/web',
    ]);
  });

  it('a component leading out of the repository is refused before kustomize runs: by its path, through a link, or by what it names', async () => {
    const outside = tempTree({ 'kustomization.yaml': 'kind: Component\n' }, 'outside-');
    const root = tempTree(
      {
        ...HA,
        'apps/web/kustomization.yaml': 'resources: [deployment.yaml]\n',
        'apps/web/deployment.yaml': deployment('web'),
        'components/sneaky/kustomization.yaml': `apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [../../../secret.yaml]\n`,
      },
      'components-',
    );
    symlinkSync(outside, join(root, 'components/linked'));
    expect(await problems(render(opts(root, { components: ['../../../x'] })))).toEqual([
      'apps/web: ../../../x is outside the repository',
    ]);
    expect(await problems(render(opts(root, { components: ['../../components/linked'] })))).toEqual([
      'apps/web: ../../components/linked: symbolic link points outside the repository',
    ]);
    expect(await problems(render(opts(root, { components: ['../../components/sneaky'] })))).toEqual([
      'components/sneaky/kustomization.yaml: ../../../secret.yaml is outside the repository',
    ]);
    // A plain path's generated kustomization is held to the same check.
    mkdirSync(join(root, 'plain'));
    writeFileSync(join(root, 'plain/cm.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\n');
    expect(await problems(render(opts(root, { path: 'plain', components: ['../..'] })))).toEqual([
      'plain: ../.. is outside the repository',
    ]);
  });

  it('a chart gets no components (refused)', async () => {
    const root = tempTree(
      { 'apps/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 1.0.0\n', ...HA },
      'components-',
    );
    expect(await problems(render(opts(root, { components: ['../../components/ha'] })))).toEqual([
      'apps/web: components are added to a kustomize build, not to a chart',
    ]);
  });

  it("are inputs of the target: a change in a component's files changes what the target renders", () => {
    const root = tempTree(
      { ...HA, 'apps/web/deployment.yaml': deployment('web'), 'components/ha/extra/x.yaml': 'x: 1\n' },
      'components-',
    );
    const inputs = renderInputs(root, { path: 'apps/web', render: 'auto', components: ['../../components/ha'] });
    expect(inputs).toEqual(expect.arrayContaining(['apps/web', 'components/ha', 'components/ha/pdb.yaml']));
    expect(renderInputs(root, { path: 'apps/web', render: 'auto' })).not.toContain('components/ha');
  });
});

describe('render: commonMetadata', () => {
  it('sets labels and annotations on every object over its own, after patches (as Flux does after the build)', async () => {
    const root = tempTree(
      {
        'apps/web/deployment.yaml': deployment('web'),
        'apps/web/cm.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c, labels: { team: old, keep: yes } }\n',
      },
      'metadata-',
    );
    const out = await render(
      opts(root, {
        kustomize: {
          patches: [{ patch: 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c, labels: { team: patched } }\n' }],
          images: [],
        },
        commonMetadata: { labels: { team: 'platform' }, annotations: { 'example.com/owner': 'ops' } },
      }),
    );
    expect(out.objects.map((o) => [o.object.kind, o.object.metadata.labels, o.object.metadata.annotations])).toEqual([
      ['ConfigMap', { team: 'platform', keep: 'yes' }, { 'example.com/owner': 'ops' }],
      ['Deployment', { team: 'platform' }, { 'example.com/owner': 'ops' }],
    ]);
    // The pod template is not an object of the build: left as it is, as in Flux.
    expect(out.objects[1]?.object).toMatchObject({ spec: { template: { metadata: { labels: { app: 'web' } } } } });
  });
});
