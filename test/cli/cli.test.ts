import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { SCHEMA_PATH, SETTINGS_SCHEMA_PATH, schemaText, settingsSchemaText } from '../../scripts/schema.js';
import type { SyncResult } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { cli } from '../helpers/cli.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { tempTree } from '../helpers/files.js';

const workTree = (files: Record<string, string>): string => tempTree(files, 'cli-');

describe('tidegate CLI', () => {
  it('validate: accepts a valid file, and names file, line and field otherwise', async () => {
    const ok = workTree({ 'tidegate.yaml': stringify({ targets: [{ name: 'a', cluster: 'c' }] }) });
    expect(await cli('validate', '--dir', ok)).toEqual({
      code: 0,
      out: 'tidegate.yaml is valid: 1 target (a)\n',
      err: '',
    });
    const bad = workTree({ 'tidegate.yaml': 'targets:\n  - name: a\n    cluster: c\n    timeout: soon\n' });
    expect(await cli('validate', '--dir', bad)).toEqual({
      code: 2,
      out: '',
      err: 'tidegate: tidegate.yaml:4: targets[0].timeout: must be a duration such as 90s, 5m or 1h30m\n',
    });
  });

  it('render without a cluster: the objects as rendered with their source files, and a note saying so', async () => {
    const dir = workTree({
      'tidegate.yaml': stringify({ targets: [{ name: 'a', cluster: 'c', path: 'apps' }] }),
      'apps/cm.yaml': yamlDocs(configMap('x', { k: 'v' })),
    });
    const res = await cli('render', 'a', '--dir', dir, '--kubeconfig', '/nonexistent/kubeconfig');
    expect(res).toEqual({
      code: 0,
      out: '# Source: apps/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  k: v\n',
      err: 'tidegate: no cluster for c: cannot read the kubeconfig /nonexistent/kubeconfig (no such file): the objects as rendered, without the namespaces and labels a sync sets\n',
    });
  });

  it("render of a chart without a cluster: its hooks after the release's objects, each saying when it runs", async () => {
    const dir = workTree({
      'tidegate.yaml': stringify({ targets: [{ name: 'a', cluster: 'c', path: 'chart' }] }),
      'chart/Chart.yaml': 'apiVersion: v2\nname: c\nversion: 0.1.0\n',
      'chart/templates/job.yaml':
        'apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\n    helm.sh/hook-weight: "-1"\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{ name: m, image: busybox }]\n',
      'chart/templates/cm.yaml': yamlDocs(configMap('x', { k: 'v' })),
    });
    const res = await cli('render', 'a', '--dir', dir, '--kubeconfig', '/nonexistent/kubeconfig');
    expect(res.code).toBe(0);
    const docs = res.out.split('---\n');
    expect(docs.map((d) => d.split('\n').slice(0, 2).join(' | '))).toEqual([
      '# Source: helm template chart | apiVersion: v1',
      '# Source: helm template chart | # Hook: pre-install, pre-upgrade, weight -1',
    ]);
  });

  it('render with the cluster: exactly what a sync would apply (targetNamespace and its Namespace, labels, substitutions), from --dir or --repo at --revision; nothing written', async () => {
    const ns = uniqueName('render');
    const name = uniqueName('render');
    const k = ['--kubeconfig', testEnv().kube.kubeconfigPath, '--context', 'tidegate-test'];
    const files = (greeting: string) => ({
      'tidegate.yaml': stringify({
        targets: [
          { name, cluster: 'test', path: 'apps', targetNamespace: ns, substitute: { GREETING: greeting }, wait: false },
        ],
      }),
      'apps/cm.yaml': yamlDocs(configMap('x', { k: '${GREETING}' })),
    });
    const expected = (greeting: string) => [
      {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: ns, labels: { 'app.kubernetes.io/managed-by': 'tidegate', 'tidegate.dev/target': name } },
      },
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: 'x',
          namespace: ns,
          labels: { 'app.kubernetes.io/managed-by': 'tidegate', 'tidegate.dev/target': name },
        },
        data: { k: greeting },
      },
    ];
    const docs = (out: string) => parseAllDocuments(out).map((d) => d.toJS() as unknown);
    const local = await cli('render', name, '--dir', workTree(files('hello')), ...k);
    expect(local.err).toBe('');
    expect(local.code).toBe(0);
    expect(local.out).toContain('# Source: targetNamespace\n');
    expect(local.out).toContain('# Source: apps/cm.yaml\n');
    expect(docs(local.out)).toEqual(expected('hello'));

    const repo = await gitopsRepo('render-repo');
    const first = await repo.commit(files('first'));
    await repo.commit(files('second'));
    const atFirst = await cli('render', name, '--repo', repo.url, '--revision', first, ...k);
    expect(atFirst.err).toBe('');
    expect(docs(atFirst.out)).toEqual(expected('first'));
    expect(docs((await cli('render', name, '--repo', repo.url, ...k)).out)).toEqual(expected('second'));
    expect(await repo.engine.client.get('v1', 'Namespace', '', ns)).toBeUndefined();
  });

  it('diff exits 1 with changes and 0 without; sync applies; status reports; bad input exits 2', async () => {
    const ns = uniqueName('cli');
    const { kubeconfigPath } = testEnv().kube;
    const name = uniqueName('cli');
    const dir = workTree({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/cm.yaml': yamlDocs(configMap('x', { k: 'v' })),
    });
    const k = ['--dir', dir, '--kubeconfig', kubeconfigPath, '--context', 'tidegate-test'];

    const before = await cli('diff', name, ...k);
    expect(before.code).toBe(1);
    expect(before.out).toContain(`+ ConfigMap/${ns}/x`);

    const synced = await cli('sync', name, ...k, '--output', 'json');
    expect(synced.code).toBe(0);
    const results = JSON.parse(synced.out) as SyncResult[];
    expect(results.map((r) => [r.target, r.outcome])).toEqual([[name, 'applied']]);

    expect((await cli('diff', name, ...k)).code).toBe(0);
    writeFileSync(join(dir, 'apps/cm.yaml'), yamlDocs(configMap('x', { k: 'VALUE-42' })));
    const changed = await cli('diff', name, ...k);
    expect(changed.code).toBe(1);
    expect(changed.out).toContain(`~ ConfigMap/${ns}/x  would update\n      data.k: v → VALUE-42\n`);

    const status = await cli('status', name, '--kubeconfig', kubeconfigPath, '--context', 'tidegate-test');
    expect(status.out).toMatch(
      new RegExp(`^${name}: applied worktree at .*, health healthy; 1 objects; last healthy worktree\\n$`),
    );

    writeFileSync(join(dir, 'apps/cm.yaml'), 'kind: ConfigMap\n');
    expect((await cli('diff', name, ...k)).code).toBe(2);
    expect((await cli('sync', 'nope', ...k)).err).toBe('tidegate: tidegate.yaml declares no target named "nope"\n');
  });

  it('keeps schema/tidegate.schema.json and schema/settings.schema.json in step with their schemas (npm run schema)', () => {
    expect(readFileSync(SCHEMA_PATH, 'utf8')).toBe(schemaText());
    expect(readFileSync(SETTINGS_SCHEMA_PATH, 'utf8')).toBe(settingsSchemaText());
  });
});
