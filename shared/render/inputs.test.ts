import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderInputs } from './inputs.js';

function repo(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'inputs-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('renderInputs: what a target render reads, so that a push to it syncs the target', () => {
  it('a kustomize overlay: its bases, components, patches and generator files, followed through every local kustomization', () => {
    const root = repo({
      'apps/web/overlays/prod/kustomization.yaml': [
        'resources: [../../base, ../../../../shared/policies, https://github.com/acme/remote//base?ref=v1, github.com/acme/other]',
        'components: [../../../../components/monitoring]',
        'patches: [{ path: patch-replicas.yaml }]',
        'configMapGenerator: [{ name: c, files: [config.json, key=../../../../shared/extra.txt], envs: [env.properties] }]',
      ].join('\n'),
      'apps/web/base/kustomization.yaml': 'resources: [deploy.yaml, ../../../crds]\n',
      'crds/kustomization.yaml': 'resources: [widget.yaml]\n',
      'shared/policies/kustomization.yaml': 'resources: [np.yaml]\n',
      'components/monitoring/kustomization.yaml':
        'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [sm.yaml]\n',
    });
    expect(renderInputs(root, { path: 'apps/web/overlays/prod', render: 'auto' }).sort()).toEqual([
      'apps/web/base',
      'apps/web/base/deploy.yaml',
      'apps/web/overlays/prod',
      'apps/web/overlays/prod/config.json',
      'apps/web/overlays/prod/env.properties',
      'apps/web/overlays/prod/patch-replicas.yaml',
      'components/monitoring',
      'components/monitoring/sm.yaml',
      'crds',
      'crds/widget.yaml',
      'shared/extra.txt',
      'shared/policies',
      'shared/policies/np.yaml',
    ]);
  });

  it('a chart: its path, local dependencies (file://) and values files', () => {
    const root = repo({
      'charts/app/Chart.yaml':
        'apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies: [{ name: common, repository: file://../common }, { name: redis, repository: https://charts.example.com }]\n',
      'charts/common/Chart.yaml': 'apiVersion: v2\nname: common\nversion: 1.0.0\n',
    });
    expect(
      renderInputs(root, {
        path: 'charts/app',
        render: 'auto',
        helm: { values: ['values-prod.yaml'] },
      }).sort(),
    ).toEqual(['charts/app', 'charts/app/values-prod.yaml', 'charts/common']);
  });

  it.each([
    ['plain YAML', { 'apps/a.yaml': 'kind: ConfigMap\n' }, ['apps']],
    [
      'a path outside the repository is never listed',
      { 'apps/kustomization.yaml': 'resources: [../../etc]\n' },
      ['apps'],
    ],
    ['an unreadable kustomization (the render reports it)', { 'apps/kustomization.yaml': 'resources: [\n' }, ['apps']],
    ['a missing path', {}, ['apps']],
  ])('%s', (_name, files, expected) => {
    expect(renderInputs(repo(files), { path: 'apps', render: 'auto' })).toEqual(expected);
  });

  it("symbolic links: where a link in the target path or a base leads is an input, and a linked base's own paths are read from there; a link leaving the repository is not", () => {
    const root = repo({
      'shared/settings.yaml': 'kind: ConfigMap\n',
      'common/base/kustomization.yaml': 'resources: [cm.yaml, ../nested]\n',
      'common/nested/kustomization.yaml': 'resources: [x.yaml]\n',
      'apps/web/own.yaml': 'kind: ConfigMap\n',
      'apps/kust/kustomization.yaml': 'resources: [base]\n',
    });
    symlinkSync('../../shared/settings.yaml', join(root, 'apps/web/settings.yaml'));
    symlinkSync('/etc/hostname', join(root, 'apps/web/outside.yaml'));
    symlinkSync('../../common/base', join(root, 'apps/kust/base'));
    expect(renderInputs(root, { path: 'apps/web', render: 'auto' }).sort()).toEqual([
      'apps/web',
      'shared/settings.yaml',
    ]);
    expect(renderInputs(root, { path: 'apps/kust', render: 'auto' }).sort()).toEqual([
      'apps/kust',
      'apps/kust/base',
      'common/base',
      'common/base/cm.yaml',
      'common/nested',
      'common/nested/x.yaml',
    ]);
  });
});
