import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { run } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { render } from '../../shared/render/render.js';
import { substituteVariables } from '../../shared/render/substitute.js';
import type { RenderOptions } from '../../shared/render/render.js';
import type { KubeObject } from '../../shared/model/index.js';
import { RenderError } from '../../shared/render/errors.js';
import { testEnv } from '../helpers/env.js';
import { tempTree } from '../helpers/files.js';

const repo = (files: Record<string, string>): string => tempTree(files, 'render-');

const opts = (root: string, extra: Partial<RenderOptions> = {}): RenderOptions => ({
  root,
  path: '.',
  mode: 'auto',
  substitute: {},
  defaultReleaseName: 'app',
  settings: localSettings(),
  ...extra,
});

const cm = (name: string, extra = ''): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${extra}`;

async function problems(p: Promise<unknown>): Promise<string[]> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RenderError);
  return (err as RenderError).problems.map((x) => `${x.file}${x.object ? ` (${x.object})` : ''}: ${x.message}`);
}

describe('render: plain YAML', () => {
  it('reads every manifest recursively, multi-document, and ignores files that are not Kubernetes objects', async () => {
    const root = repo({
      'a.yaml': `${cm('one')}---\n${cm('two')}`,
      'sub/dir/b.yml': cm('three'),
      'sub/values.yaml': 'replicas: 3\nimage: x\n',
      'README.md': '# not yaml',
      '.github/workflows/ci.yaml': 'on: push\njobs: {}\n',
      'list.json': JSON.stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [{ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } }],
      }),
    });
    const out = await render(opts(root));
    expect(out.mode).toBe('yaml');
    expect(out.objects.map((o) => `${o.source}:${o.object.kind}/${o.object.metadata.name}`)).toEqual([
      'a.yaml:ConfigMap/one',
      'a.yaml:ConfigMap/two',
      'list.json:Secret/s',
      'sub/dir/b.yml:ConfigMap/three',
    ]);
  });

  it.each([
    [
      'a missing kind',
      'apiVersion: v1\nmetadata: { name: x }\n',
      'bad.yaml (document 1): kind is missing or not a string',
    ],
    [
      'a missing name',
      'apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n',
      'bad.yaml (document 1): metadata.name is missing',
    ],
    [
      'an invalid name',
      cm('Not_Valid'),
      'bad.yaml (ConfigMap/Not_Valid): metadata.name "Not_Valid" is not a valid object name',
    ],
    ['broken YAML', 'apiVersion: v1\nkind: [\n', 'bad.yaml (document 1): invalid YAML: '],
    [
      'a YAML alias bomb',
      `a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: bomb }\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n`,
      'bad.yaml (document 1): invalid YAML: Excessive alias count',
    ],
  ])('names the file and object for %s', async (_case, text, expected) => {
    const root = repo({ 'good.yaml': cm('fine'), 'bad.yaml': text });
    const found = await problems(render(opts(root)));
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(expected);
  });

  it('reports duplicate objects with both files', async () => {
    const root = repo({ 'a.yaml': cm('same'), 'b.yaml': cm('same') });
    expect(await problems(render(opts(root)))).toEqual(['b.yaml (ConfigMap/same): duplicate object (also in a.yaml)']);
  });

  it('refuses a target path or a symlink leading out of the repository', async () => {
    const outside = repo({ 'secret.yaml': cm('outside') });
    const root = repo({ 'apps/a.yaml': cm('a') });
    symlinkSync(join(outside, 'secret.yaml'), join(root, 'apps', 'link.yaml'));
    expect(await problems(render(opts(root, { path: 'apps' })))).toEqual([
      'apps/link.yaml: symbolic link points outside the repository',
    ]);
    symlinkSync(outside, join(root, 'escape'));
    expect(await problems(render(opts(root, { path: 'escape' })))).toEqual([
      'escape: path resolves outside the repository',
    ]);
    expect(await problems(render(opts(root, { path: 'missing' })))).toEqual([
      'missing: path does not exist in the repository',
    ]);
  });

  it('handles a 10,000-document file', async () => {
    const text = Array.from({ length: 10_000 }, (_, i) => cm(`cm-${i}`)).join('---\n');
    const out = await render(opts(repo({ 'many.yaml': text })));
    expect(out.objects).toHaveLength(10_000);
  });
});

describe('render: substitution', () => {
  it.each([
    ['${A}', { A: '1' }, '1', []],
    ['${A:=fallback}', {}, 'fallback', []],
    ['${A:=fallback}', { A: 'set' }, 'set', []],
    ['$${A}', { A: 'x' }, '${A}', []],
    ['${MISSING}', { A: 'x' }, '${MISSING}', ['MISSING']],
    ['$A and ${ A }', { A: 'x' }, '$A and ${ A }', []],
  ])('%s with %j → %s', (text, vars, expected, missing) => {
    expect(substituteVariables(text, vars)).toEqual({ text: expected, missing });
  });

  it('substitutes typed values and honours the per-object opt-out', async () => {
    const root = repo({
      'deploy.yaml':
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web-${CLUSTER}\nspec:\n  replicas: ${REPLICAS:=2}\n',
      'script.yaml': cm(
        'script',
        '  annotations: { tidegate.dev/substitute: disabled }\ndata:\n  run.sh: echo ${HOME}\n',
      ),
    });
    const out = await render(opts(root, { substitute: { CLUSTER: 'prod' } }));
    expect(out.objects.map((o) => o.object)).toEqual([
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web-prod' }, spec: { replicas: 2 } },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'script', annotations: { 'tidegate.dev/substitute': 'disabled' } },
        data: { 'run.sh': 'echo ${HOME}' },
      },
    ]);
  });

  it('fails on an undeclared variable without a default, naming the object', async () => {
    const root = repo({ 'a.yaml': cm('x', 'data:\n  k: ${NOPE}\n') });
    expect(await problems(render(opts(root, { substitute: { OTHER: '1' } })))).toEqual([
      'a.yaml (ConfigMap/x): variable ${NOPE} not declared in substitute and without a default (write $${…} for a literal ${…})',
    ]);
  });
});

describe('render: kustomize and helm produce exactly what the tools print', () => {
  const fixture = (p: string): string => fileURLToPath(new URL(`../fixtures/${p}`, import.meta.url));
  const docs = (text: string) =>
    parseAllDocuments(text)
      .map((d) => d.toJS() as unknown)
      .filter(Boolean);

  it('kustomize overlay', async () => {
    const out = await render(opts(fixture('kustomize'), { path: 'overlays/prod' }));
    expect(out.mode).toBe('kustomize');
    const expected = docs(await run(testEnv().tools.kubectl, ['kustomize', fixture('kustomize/overlays/prod')]));
    expect(out.objects.map((o) => o.object)).toEqual(expected);
  });

  it('helm chart with a values file and --set', async () => {
    const root = fixture('.');
    const out = await render(
      opts(root, {
        path: 'chart',
        helm: { values: ['values-prod.yaml'], set: { image: 'registry.example/app:2.0.0' } },
        namespace: 'web',
      }),
    );
    expect(out.mode).toBe('helm');
    const expected = docs(
      await run(testEnv().tools.helm, [
        'template',
        'app',
        fixture('chart'),
        '--include-crds',
        '--namespace',
        'web',
        '--values',
        fixture('chart/values-prod.yaml'),
        '--set-string',
        'image=registry.example/app:2.0.0',
      ]),
    );
    // helm template's objects, marked as helm install marks what it installs (the release owns them).
    const owned = (expected as KubeObject[]).map((o) => ({
      ...o,
      metadata: {
        ...o.metadata,
        labels: { ...o.metadata.labels, 'app.kubernetes.io/managed-by': 'Helm' },
        annotations: {
          ...o.metadata.annotations,
          'meta.helm.sh/release-name': 'app',
          'meta.helm.sh/release-namespace': 'web',
        },
      },
    }));
    expect(out.objects.map((o) => o.object)).toEqual(owned);
    expect(out.objects[0]?.object).toMatchObject({
      spec: { replicas: 5, template: { spec: { containers: [{ image: 'registry.example/app:2.0.0' }] } } },
    });
  });

  it("reads numbers and words as Helm and kustomize do: `0755` is octal (a volume's defaultMode), `yes` a string", async () => {
    const volume = (mode: string) => `apiVersion: v1
kind: Pod
metadata:
  name: p
  labels:
    keep: yes
spec:
  containers: [{ name: c, image: busybox }]
  volumes:
    - name: v
      configMap:
        name: c
        defaultMode: ${mode}
`;
    const root = tempTree({
      'chart/Chart.yaml': 'apiVersion: v2\nname: c\nversion: 0.1.0\n',
      'chart/templates/pod.yaml': volume('0755'),
      'plain/pod.yaml': volume('0644'),
    });
    for (const [path, mode] of [
      ['chart', 0o755],
      ['plain', 0o644],
    ] as const) {
      const [pod] = (await render(opts(root, { path }))).objects;
      expect(pod?.object['spec']).toMatchObject({ volumes: [{ configMap: { defaultMode: mode } }] });
      expect(pod?.object.metadata.labels?.['keep']).toBe('yes');
    }
  });

  it('reports a kustomize failure as a render error naming the path', async () => {
    const root = repo({ 'k/kustomization.yaml': 'resources:\n  - missing.yaml\n' });
    const found = await problems(render(opts(root, { path: 'k' })));
    expect(found[0]).toMatch(/^kustomize build k: .*missing\.yaml/);
  });
});
