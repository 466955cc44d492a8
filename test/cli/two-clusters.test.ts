import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, testEngine, yamlDocs } from '../helpers/engine.js';
import { cli } from '../helpers/cli.js';

interface KubeConfig {
  clusters: Array<{ name: string; cluster: Record<string, unknown> }>;
  contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
  users: unknown[];
  'current-context': string;
}

/**
 * One command over two clusters, one of them out of reach (its apiserver refuses connections, as
 * one answering 5xx would fail): the reachable cluster's targets are synced, the other's fail saying
 * why, and the command exits 1. Before, the first transient error ended the whole run.
 */
describe('tidegate sync over two clusters, one out of reach', () => {
  it("syncs the reachable cluster's targets, fails the other's saying why, exits 1", async () => {
    const { kube } = testEnv();
    const kc = parse(readFileSync(kube.kubeconfigPath, 'utf8')) as KubeConfig;
    const current = kc.contexts.find((c) => c.name === kc['current-context']);
    if (!current) throw new Error('the test kubeconfig has no current context');
    kc.clusters.push({ name: 'down', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } });
    kc.contexts.push(
      { name: 'up', context: current.context },
      { name: 'down', context: { ...current.context, cluster: 'down' } },
    );
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'two-clusters-')), 'kubeconfig');
    writeFileSync(kubeconfig, stringify(kc));

    const repo = await gitopsRepo('two-clusters');
    const [early, late] = [uniqueName('down-first'), uniqueName('up-second')];
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: early, cluster: 'down', path: 'a', targetNamespace: early, wait: false },
          { name: late, cluster: 'up', path: 'b', targetNamespace: late, wait: false },
        ],
      }),
      'a/cm.yaml': yamlDocs(configMap('a', { v: '1' })),
      'b/cm.yaml': yamlDocs(configMap('b', { v: '1' })),
    });
    const res = await cli('sync', '--repo', repo.url, '--kubeconfig', kubeconfig, '--output', 'json');
    expect(res.code, res.err).toBe(1);
    const results = JSON.parse(res.out) as Array<{ target: string; outcome: string; error?: string }>;
    expect(results.map((r) => [r.target, r.outcome])).toEqual([
      [early, 'failed'],
      [late, 'applied'],
    ]);
    expect(results[0]?.error).toMatch(/127\.0\.0\.1:1[\s\S]*\(this may pass on its own: run again\)/);
    expect((await testEngine().client.get('v1', 'ConfigMap', late, 'b'))?.['data']).toEqual({ v: '1' });
  });
});
