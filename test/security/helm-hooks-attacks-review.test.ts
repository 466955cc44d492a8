import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';
import { standInControllers } from '../helpers/controllers.js';

/** Review: hooks that try to replace or delete what is not theirs (expected to hold). */
const CHART = stringify({ apiVersion: 'v2', name: 'h', version: '0.1.0' });
const deploymentYaml = (name: string, annotations?: Record<string, string>) =>
  stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, ...(annotations ? { annotations } : {}) },
    spec: {
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } },
    },
  });

describe('hooks never replace or delete objects that are not theirs', () => {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const s of stops) await s();
  });

  it("a before-hook-creation hook named as another target's Deployment (same repository) does not delete it", async () => {
    const repo = await gitopsRepo('hookdel');
    const victim = uniqueName('hvictim');
    const attacker = uniqueName('hattacker');
    const client = repo.engine.client;
    stops.push(standInControllers(client, [victim]));
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: victim, cluster: 'test', path: 'victim', targetNamespace: victim, wait: false },
          { name: attacker, cluster: 'test', path: 'chart', namespace: victim, dependsOn: [victim], timeout: '20s' },
        ],
      }),
      'victim/app.yaml': deploymentYaml('app'),
      'chart/Chart.yaml': CHART,
      'chart/templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hook-owner\ndata: {a: b}\n',
      'chart/templates/hook.yaml': deploymentYaml('app', {
        'helm.sh/hook': 'pre-install,pre-upgrade',
        'helm.sh/hook-delete-policy': 'before-hook-creation',
      }),
      'chart/templates/ns-hook.yaml': stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: victim,
          annotations: {
            'helm.sh/hook': 'pre-install',
            'helm.sh/hook-weight': '-10',
            'helm.sh/hook-delete-policy': 'hook-succeeded',
          },
        },
      }),
    });
    const [v] = await repo.sync(victim);
    expect(v?.outcome, v?.error).toBe('applied');
    const before = await client.get('apps/v1', 'Deployment', victim, 'app');
    console.log('victim ns before:', JSON.stringify((await client.get('v1', 'Namespace', '', victim))?.metadata));
    console.log(
      'victim deployment before:',
      JSON.stringify(before?.metadata.labels),
      JSON.stringify(before?.metadata.annotations),
    );
    const [a] = await repo.sync(attacker);
    const byName = { [attacker]: a };
    console.log('victim ns after:', JSON.stringify((await client.get('v1', 'Namespace', '', victim))?.metadata));
    console.log(
      'attacker:',
      byName[attacker]?.outcome,
      byName[attacker]?.error,
      JSON.stringify(byName[attacker]?.hooks),
    );
    const after = await client.get('apps/v1', 'Deployment', victim, 'app');
    expect(after?.metadata.uid).toBe(before?.metadata.uid);
    expect(after?.metadata.labels?.['tidegate.dev/target']).toBe(victim);
    expect(await client.get('v1', 'Namespace', '', victim)).toBeDefined();
  }, 120_000);
});
