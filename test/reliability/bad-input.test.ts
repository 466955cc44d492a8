import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { readTargetState } from '../../shared/state/index.js';
import { createRuntime } from '../../shared/aws/runtime.js';
import { handleMessage, receiveRegistryWebhook, syncRepo, type Queue } from '../../shared/usecases/index.js';
import type { QueueMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';

/**
 * Bad input, each with its exact answer, through the whole engine against the real apiserver:
 * a bad manifest or configuration fails the sync with a message naming the file and object,
 * applies nothing (not even the good objects beside it) and prunes nothing.
 */

/** A YAML "billion laughs": nine levels of nine aliases (387M nodes if expanded). */
const aliasBomb = (): string => {
  const lines = [
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata: { name: bomb }',
    'data:',
    '  l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ];
  for (let i = 1; i < 9; i++)
    lines.push(
      `  l${i}: &l${i} [${Array(9)
        .fill(`*l${i - 1}`)
        .join(',')}]`,
    );
  return `${lines.join('\n')}\n`;
};

const recording = (): Queue & { sent: QueueMessage[] } => {
  const sent: QueueMessage[] = [];
  return { sent, send: (m) => Promise.resolve(void sent.push(...m)) };
};

describe('bad manifests: the sync fails with the reason, applies nothing of the set and prunes nothing', () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    [
      'a YAML alias bomb',
      { 'apps/bomb.yaml': aliasBomb() },
      'apps/bomb.yaml (document 1): invalid YAML: Excessive alias count indicates a resource exhaustion attack',
    ],
    [
      'an unknown kind (no CRD serves it)',
      { 'apps/frob.yaml': 'apiVersion: example.com/v1\nkind: Frobnicator\nmetadata: { name: f, namespace: NS }\n' },
      'Frobnicator.example.com/NS/f (apps/frob.yaml): the cluster does not serve Frobnicator in example.com/v1 and no CRD in this revision defines it',
    ],
    [
      'an object in a namespace that does not exist',
      { 'apps/lost.yaml': yamlDocs(configMap('lost', { a: '1' }, { namespace: 'no-such-namespace' })) },
      'ConfigMap/no-such-namespace/lost (apps/lost.yaml): namespace no-such-namespace does not exist and is not part of this revision',
    ],
    [
      'the same object in two files',
      { 'apps/dup.yaml': yamlDocs(configMap('good', { a: '2' }, { namespace: 'NS' })) },
      'apps/good.yaml (ConfigMap/NS/good): duplicate object (also in apps/dup.yaml)',
    ],
    [
      'a document that is not a mapping',
      { 'apps/list.yaml': '- just\n- a list\n' },
      'apps/list.yaml (document 1): is not a mapping',
    ],
    [
      'invalid YAML',
      { 'apps/broken.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: broken\n' },
      'apps/broken.yaml (document 1): invalid YAML: Flow map in block collection must be sufficiently indented and end with a }',
    ],
  ];

  it.each(cases)('%s', async (_name, files, message) => {
    const ns = uniqueName('bad');
    const inNs = (name: string, data: Record<string, string>) => yamlDocs(configMap(name, data, { namespace: ns }));
    const repo = await gitopsRepo('bad');
    await repo.commit({
      'tidegate.yaml': stringify({ targets: [{ name: ns, cluster: 'c', path: 'apps', wait: false }] }),
      'apps/ns.yaml': yamlDocs({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }),
      'apps/good.yaml': inNs('good', { a: '1' }),
      'apps/keep.yaml': inNs('keep', { a: '1' }),
    });
    expect((await repo.sync())[0]?.outcome).toBe('applied');
    const bad = Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.replaceAll('NS', ns)]));
    const started = Date.now();
    const [res] = await repo.sync(
      undefined,
      await repo.commit({ ...bad, 'apps/good.yaml': inNs('good', { a: 'changed' }), 'apps/keep.yaml': null }),
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(res?.outcome).toBe('failed');
    expect(res?.error).toBe(message.replaceAll('NS', ns));
    const { client } = repo.engine;
    expect((await client.get('v1', 'ConfigMap', ns, 'good'))?.data).toEqual({ a: '1' }); // nothing of the set applied
    expect(await client.get('v1', 'ConfigMap', ns, 'keep')).toBeDefined(); // nothing pruned
    expect((await readTargetState(client, ns)).inventory.map((e) => e.id).sort()).toEqual([
      `_${ns}__Namespace`,
      `${ns}_good__ConfigMap`,
      `${ns}_keep__ConfigMap`,
    ]);
  });
});

describe('bad configuration', () => {
  it.each([
    [
      'a schema error',
      { targets: [{ name: 'Bad_Name', cluster: 'c' }] },
      'tidegate.yaml:2: targets[0].name: must be a DNS-1123 label (lower case letters, digits, "-")',
    ],
    [
      'a dependency cycle',
      {
        targets: [
          { name: 'a', cluster: 'c', dependsOn: ['b'] },
          { name: 'b', cluster: 'c', dependsOn: ['a'] },
        ],
      },
      'targets[0].dependsOn: dependency cycle: a → b → a',
    ],
    [
      'a path with ..',
      { targets: [{ name: 'a', cluster: 'c', path: '../other' }] },
      'targets[0].path: must be a path inside the repository (relative, without "..")',
    ],
    [
      'a dependency on no target',
      { targets: [{ name: 'a', cluster: 'c', dependsOn: ['ghost'] }] },
      'targets[0].dependsOn[0]: depends on "ghost", which is not a target',
    ],
  ])('%s: nothing is synced, the error names it', async (_name, config, message) => {
    const repo = await gitopsRepo('badcfg');
    await repo.commit({ 'tidegate.yaml': stringify(config), 'apps/a.yaml': yamlDocs(configMap('a', { a: '1' })) });
    await expect(repo.sync()).rejects.toThrow(message);
  });

  it("a target name already used on the cluster by another repository: refused, the other repository's objects untouched", async () => {
    const name = uniqueName('shared-name');
    const [first, second] = [await gitopsRepo('owner-a'), await gitopsRepo('owner-b')];
    const [nsA, nsB] = [uniqueName('owner-a'), uniqueName('owner-b')];
    await first.commit({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'c', path: 'apps', targetNamespace: nsA, wait: false }],
      }),
      'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
    });
    await second.commit({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'c', path: 'apps', targetNamespace: nsB, wait: false }],
      }),
      'apps/b.yaml': yamlDocs(configMap('b', { v: '1' })),
    });
    expect((await first.sync())[0]?.outcome).toBe('applied');
    const [res] = await second.sync();
    expect(res?.outcome).toBe('failed');
    expect(res?.error).toBe(
      `target name ${name} is already used on this cluster by ${first.url}; target names are cluster-wide, rename one of them`,
    );
    expect(await first.engine.client.get('v1', 'ConfigMap', nsA, 'a')).toBeDefined(); // not pruned by the other repository
    expect(await first.engine.client.get('v1', 'ConfigMap', nsB, 'b')).toBeUndefined();
  });

  it('an unknown cluster alias: the target fails with the aliases that exist, other targets still sync', async () => {
    const { kube } = testEnv();
    const ns = uniqueName('cluster');
    const repo = await gitopsRepo('badcluster');
    const rt = await createRuntime('test', {
      TIDEGATE_SETTINGS: JSON.stringify({
        repositories: [{ url: repo.url }],
        clusters: {
          prod: {
            server: kube.server,
            caData: Buffer.from(kube.caPem).toString('base64'),
            token: { value: kube.token },
          },
        },
      }),
      TIDEGATE_QUEUE_URL: 'http://127.0.0.1:1/queue',
      AWS_REGION: 'eu-west-1',
    });
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: `ok-${ns}`, cluster: 'prod', path: 'apps', targetNamespace: ns, wait: false },
          { name: `typo-${ns}`, cluster: 'prdo', path: 'apps', targetNamespace: ns, wait: false },
        ],
      }),
      'apps/a.yaml': yamlDocs(configMap('a', { a: '1' })),
    });
    const results = await syncRepo((await rt.git()).engine, { repo: repo.url });
    expect(results.map((r) => [r.target, r.outcome])).toEqual([
      [`ok-${ns}`, 'applied'],
      [`typo-${ns}`, 'failed'],
    ]);
    expect(results[1]?.error).toBe('cluster alias "prdo" is not in the deploy-time settings (clusters: prod)');
  });
});

describe('registry events for repositories no policy follows', () => {
  it('a registry notification is accepted (the registry retries otherwise) and the worker ignores it, committing nothing', async () => {
    const repo = await gitopsRepo('unknownimg');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: 'a', cluster: 'c', path: 'apps' }],
        images: [{ name: 'web', repository: 'registry.example/team/web', policy: { semver: { range: '*' } } }],
      }),
      'apps/a.yaml': 'x: 1\n',
    });
    const head = (await repo.ws.git('rev-parse', 'HEAD')).trim();
    const queue = recording();
    const envelope = JSON.stringify({
      events: [
        {
          id: '1',
          timestamp: new Date().toISOString(),
          action: 'push',
          target: {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            digest: `sha256:${'a'.repeat(64)}`,
            repository: 'someone/else',
            tag: '9.9.9',
          },
          request: { host: 'registry.example' },
        },
      ],
    });
    const res = await receiveRegistryWebhook(
      {
        method: 'POST',
        path: '/webhooks/registry?token=s',
        headers: { 'content-type': 'application/vnd.docker.distribution.events.v1+json' },
        body: envelope,
      },
      { secret: 's', queue },
    );
    expect(res.status).toBe(202);
    expect(queue.sent).toHaveLength(1);
    const out = await handleMessage(
      { ...repo.engine, repositories: [{ url: repo.url, branch: 'main' }] },
      queue.sent[0]!,
      recording(),
    );
    expect(out).toEqual({ kind: 'ignored', reason: 'no image policy follows registry.example/someone/else' });
    expect((await repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0]).toBe(head);
  });
});
