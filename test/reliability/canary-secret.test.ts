import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { statusPageOf, syncRepo } from '../../shared/usecases/index.js';
import { jsonLogger } from '../../shared/telemetry/index.js';
import { cli } from '../helpers/cli.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { gitopsRepo, yamlDocs } from '../helpers/engine.js';

/**
 * A canary: a Secret value placed in Git, then changed, then made invalid. Whatever tidegate
 * writes (logs, sync results, status, history, diff and sync output of the CLI, the status page,
 * the state it keeps in the cluster) is searched for the value in every form it could leak in.
 */
describe('a Secret value in Git never leaks', () => {
  it('not in logs, results, status, history, diff output, the status page or the state in tidegate-system', async () => {
    const canaries = [
      randomBytes(12).toString('hex'),
      randomBytes(12).toString('hex'),
      randomBytes(12).toString('hex'),
    ];
    const forms = canaries.flatMap((c) => [
      c,
      Buffer.from(c).toString('base64'),
      Buffer.from(c).toString('base64').slice(0, 12),
    ]);
    const ns = uniqueName('canary');
    const repo = await gitopsRepo('canary');
    const secret = (value: string, extra: Record<string, unknown> = {}) =>
      yamlDocs({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'db' },
        type: 'Opaque',
        stringData: { password: value },
        data: { token: Buffer.from(value).toString('base64') },
        ...extra,
      });
    const logs: string[] = [];
    const engine = { ...repo.engine, logger: jsonLogger('debug', (l) => void logs.push(l)) };
    const outputs: string[] = [];
    const record = (x: unknown) => void outputs.push(typeof x === 'string' ? x : JSON.stringify(x));

    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/secret.yaml': secret(canaries[0] ?? ''),
    });
    record(await syncRepo(engine, { repo: repo.url }));
    // Changed in Git: diff and sync report the change, not the values.
    await repo.commit({ 'apps/secret.yaml': secret(canaries[1] ?? '') });
    const { kube } = testEnv();
    const k = ['--repo', repo.url, '--kubeconfig', kube.kubeconfigPath, '--context', 'tidegate-test'];
    for (const args of [
      ['diff', ns, ...k],
      ['diff', ns, ...k, '--output', 'json'],
    ]) {
      const res = await cli(...args);
      expect(res.code).toBe(1); // there is a change to show
      record(res.out + res.err);
    }
    record(await syncRepo(engine, { repo: repo.url }));
    // Refused by the apiserver: the error names the object, not the data.
    await repo.commit({ 'apps/secret.yaml': secret(canaries[2] ?? '', { type: 'kubernetes.io/tls' }) });
    const [refused] = await syncRepo(engine, { repo: repo.url });
    expect(refused?.outcome).toBe('failed');
    record(refused);
    for (const args of [
      ['status', ns, ...k],
      ['history', ns, ...k],
      ['history', ns, ...k, '--output', 'json'],
    ]) {
      const res = await cli(...args);
      expect(res.code, res.err).toBe(0);
      record(res.out + res.err);
    }
    const state = await repo.engine.client.list('v1', 'ConfigMap', { namespace: 'tidegate-system' });
    record(state);
    const page = await statusPageOf(engine, [repo.url]);
    expect(page).toContain(ns); // the page shows the target ...
    record(page);

    // The canaries did reach the cluster (so the search is meaningful) ...
    const live = await repo.engine.client.get('v1', 'Secret', ns, 'db');
    expect(Buffer.from((live?.['data'] as Record<string, string>)['password'] ?? '', 'base64').toString()).toBe(
      canaries[1],
    );
    expect(logs.length).toBeGreaterThan(0);
    expect(outputs.join('\n')).toContain(`Secret/${ns}/db`);
    // ... and are nowhere in what tidegate wrote.
    const written = [...logs, ...outputs].join('\n');
    for (const form of forms) expect(written).not.toContain(form);
  });
});
