import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient, CreateQueueCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  GitWorkspace,
  createBareRepo,
  pushImage,
  startGitServer,
  startKube,
  startRegistry,
  type GitServer,
  type KubeCluster,
  type Registry,
} from '../../devenv/index.js';
import { readTargetState, type TargetState } from '../../shared/state/index.js';
import { EndpointAuth, KubeClient } from '../../shared/cluster/index.js';
import { localSettings } from '../../shared/config/index.js';
import { handleMessage, syncRepo, type EngineContext } from '../../shared/usecases/index.js';
import { refKey, type KubeObject, type QueueMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { awsConfig } from '../helpers/lambda.js';

/**
 * Faults injected into the real servers. Each case starts servers of its own where it stops
 * them, so the rest of the suite never sees the outage. After each fault the next sync
 * converges, the inventory lists every object in the cluster, nothing is pruned by mistake and
 * the history is intact.
 */

const dirs: string[] = [];
const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const manyConfigMaps = (count: number, value: string): Record<string, string> => {
  const files: Record<string, string> = {};
  for (let f = 0; f < count / 50; f++) {
    files[`apps/cm-${f}.yaml`] = yamlDocs(
      Array.from({ length: 50 }, (_, i) => configMap(`cm-${f * 50 + i}`, { value })),
    );
  }
  return files;
};

// A short lease: the sync cut off by the outage cannot release its lease, so the next one waits for it to expire.
const engineOn = (client: KubeClient): EngineContext => ({
  settings: localSettings(),
  connect: () => Promise.resolve(client),
  gitSource: (url) => ({ url }),
  lease: { holder: 'faults-test', waitMs: 30_000, durationSeconds: 5, clockSkewSeconds: 0 },
});

/** Every object in the namespace is listed in the inventory: nothing can be orphaned. */
function expectInventoryCovers(state: TargetState, live: KubeObject[]): void {
  const ids = new Set(state.inventory.map((e) => e.id));
  const missing = live.filter(
    (o) =>
      o.metadata.name !== 'kube-root-ca.crt' &&
      !ids.has(refKey({ group: '', kind: 'ConfigMap', namespace: o.metadata.namespace ?? '', name: o.metadata.name })),
  );
  expect(missing.map((o) => o.metadata.name)).toEqual([]);
}

describe('the apiserver stops mid-apply, and a sync is cut off by its deadline', () => {
  let kube: KubeCluster;
  let client: KubeClient;
  beforeAll(async () => {
    kube = await startKube(join(tempDir('tidegate-fault-kube-'), 'kube'));
    client = new KubeClient(new EndpointAuth({ server: kube.server, caPem: kube.caPem, token: kube.token }));
  }, 120_000);
  afterAll(() => kube?.stop());

  /** Starts a sync of 400 ConfigMaps and runs `cut` once 40 of them exist. */
  async function interruptedSync(cut: () => Promise<void> | void, signal?: AbortSignal) {
    const ns = uniqueName('fault');
    const repo = await gitopsRepo('fault');
    const ctx = engineOn(client);
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/first.yaml': yamlDocs(configMap('first', { v: '1' })),
    });
    const [first] = await syncRepo(ctx, { repo: repo.url });
    expect(first?.outcome).toBe('applied');
    await repo.commit(manyConfigMaps(400, 'big'));
    const running = syncRepo(ctx, { repo: repo.url, signal });
    const watcher = new KubeClient(new EndpointAuth({ server: kube.server, caPem: kube.caPem, token: kube.token }));
    await expect
      .poll(async () => (await watcher.list('v1', 'ConfigMap', { namespace: ns }).catch(() => [])).length, {
        timeout: 30_000,
        interval: 10,
      })
      .toBeGreaterThanOrEqual(40);
    await cut();
    const cutOff = await running.then(
      () => undefined,
      (err: unknown) => err,
    );
    return { ns, repo, ctx, cutOff };
  }

  it('kube-apiserver killed mid-apply: the sync throws (the queue retries it), the inventory already listed every object, the next sync converges and prunes exactly', async () => {
    const { ns, repo, ctx, cutOff } = await interruptedSync(() => kube.killApiserver());
    expect(cutOff).toBeInstanceOf(Error);
    // After its retries; or, when the outage outlasts the (short) lease, the lease it could not renew.
    expect((cutOff as Error).message).toMatch(/cannot reach 127\.0\.0\.1:\d+: ECONNREFUSED|lost the lease/);
    await kube.restartApiserver();
    const live = await client.list('v1', 'ConfigMap', { namespace: ns });
    expect(live.length).toBeLessThan(401); // really cut off part-way
    expectInventoryCovers(await readTargetState(client, ns), live);

    const [again] = await syncRepo(ctx, { repo: repo.url });
    expect(again?.outcome).toBe('applied');
    expect(
      (await client.list('v1', 'ConfigMap', { namespace: ns })).filter((c) => c.metadata.name !== 'kube-root-ca.crt'),
    ).toHaveLength(401);
    await repo.commit({ 'apps/cm-0.yaml': null, 'apps/cm-1.yaml': null });
    const [pruned] = await syncRepo(ctx, { repo: repo.url });
    expect(pruned?.changeSet.changes.filter((c) => c.action === 'deleted')).toHaveLength(100);
    const state = await readTargetState(client, ns);
    expect(state.inventory).toHaveLength(301);
    expect(state.history.map((h) => h.outcome)).toEqual(['applied', 'applied', 'applied']); // the cut-off sync could not record; none was lost
    expect(state.history[0]?.revision.sha).not.toBe(state.history[2]?.revision.sha);
  });

  it('a sync aborted by its deadline (AbortSignal, as at a Lambda timeout): it throws (the message goes back to the queue), nothing orphaned, the next sync converges', async () => {
    const deadline = new AbortController();
    const { ns, repo, ctx, cutOff } = await interruptedSync(
      () => deadline.abort(new Error('deadline reached')),
      deadline.signal,
    );
    expect(cutOff).toBeInstanceOf(Error);
    expect((cutOff as Error).message).toBe('deadline reached');
    const live = await client.list('v1', 'ConfigMap', { namespace: ns });
    expect(live.length).toBeLessThan(401);
    expectInventoryCovers(await readTargetState(client, ns), live);
    const [again] = await syncRepo(ctx, { repo: repo.url });
    expect(again?.outcome).toBe('applied');
    expect((await readTargetState(client, ns)).inventory).toHaveLength(401);
  });
});

describe('the git server is down, then slow', () => {
  let git: GitServer;
  beforeAll(async () => {
    git = await startGitServer({ root: join(tempDir('tidegate-fault-git-'), 'repos') });
  });
  afterAll(() => git?.stop());

  it('down: the sync throws (the queue retries), the cluster and history stay; back up: it converges; slow: it still converges', async () => {
    const ns = uniqueName('gitdown');
    const url = await createBareRepo(git, uniqueName('gitdown'));
    const ws = await GitWorkspace.clone(git, url);
    const client = new KubeClient(
      new EndpointAuth({ server: testEnv().kube.server, caPem: testEnv().kube.caPem, token: testEnv().kube.token }),
    );
    const ctx = engineOn(client);
    const cfg = stringify({ targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false }] });
    await ws.commit(
      { 'tidegate.yaml': cfg, 'apps/a.yaml': yamlDocs([configMap('a', { v: '1' }), configMap('b', { v: '1' })]) },
      'one',
    );
    expect((await syncRepo(ctx, { repo: url }))[0]?.outcome).toBe('applied');
    const sha = await ws.commit({ 'apps/a.yaml': yamlDocs(configMap('a', { v: '2' })) }, 'two');

    await git.down();
    await expect(syncRepo(ctx, { repo: url, revision: { ref: 'refs/heads/main', sha } })).rejects.toThrow(
      /ECONNREFUSED|cannot (fetch|clone|reach|resolve)/i,
    );
    expect((await client.get('v1', 'ConfigMap', ns, 'b'))?.data).toEqual({ v: '1' }); // nothing pruned
    expect((await readTargetState(client, ns)).history).toHaveLength(1);

    await git.up();
    const [back] = await syncRepo(ctx, { repo: url, revision: { ref: 'refs/heads/main', sha } });
    expect(back?.error).toBeUndefined();
    expect(back).toMatchObject({ outcome: 'applied', revision: { sha } });
    expect(await client.get('v1', 'ConfigMap', ns, 'b')).toBeUndefined();

    const sha3 = await ws.commit({ 'apps/a.yaml': yamlDocs(configMap('a', { v: '3' })) }, 'three');
    git.slow(300);
    const started = Date.now();
    const [slow] = await syncRepo(ctx, { repo: url });
    git.slow(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(600); // at least two round trips, each delayed
    expect(slow).toMatchObject({ outcome: 'applied', revision: { sha: sha3 } });
    expect((await client.get('v1', 'ConfigMap', ns, 'a'))?.data).toEqual({ v: '3' });
    expect((await readTargetState(client, ns)).history.map((h) => h.outcome)).toEqual([
      'applied',
      'applied',
      'applied',
    ]);
    ws.remove();
  });
});

describe('the registry is down', () => {
  let registry: Registry;
  const dir = tempDir('tidegate-fault-reg-');
  afterAll(() => registry?.stop());

  it('an image event fails with the reason and commits nothing; once the registry is back the same event writes the commit', async () => {
    registry = await startRegistry(dir);
    const port = Number(registry.host.split(':')[1]);
    await pushImage(registry, 'team/web', '1.0.0');
    await pushImage(registry, 'team/web', '1.1.0');
    const repo = await gitopsRepo('regdown');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: 'web', cluster: 'c', path: 'apps' }],
        images: [
          {
            name: 'web',
            repository: `${registry.host}/team/web`,
            insecure: true,
            policy: { semver: { range: '>=1.0.0' } },
          },
        ],
      }),
      'apps/web.yaml': `image: ${registry.host}/team/web:1.0.0 # {"$imagepolicy": "ns:web"}\n`,
    });
    const head = async () => (await repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0];
    const before = await head();
    const ctx: EngineContext = { ...repo.engine, repositories: [{ url: repo.url, branch: 'main' }] };
    const sent: QueueMessage[] = [];
    const queue = { send: (m: readonly QueueMessage[]) => Promise.resolve(void sent.push(...m)) };
    const msg: QueueMessage = {
      type: 'image',
      registry: registry.host,
      repository: 'team/web',
      source: 'distribution',
    };

    await registry.stop();
    await expect(handleMessage(ctx, msg, queue)).rejects.toThrow(`cannot reach ${registry.host}`);
    expect(await head()).toBe(before);
    expect(sent).toEqual([]);

    registry = await startRegistry(dir, { port });
    const out = await handleMessage(ctx, msg, queue);
    expect(out.kind).toBe('images-written');
    expect(await head()).not.toBe(before);
    expect(sent).toMatchObject([{ type: 'push', paths: ['apps/web.yaml'] }]);
  });
});

describe('SQS redelivers a message (the worker died before deleting it)', () => {
  it('the second delivery of the same sync writes nothing and records nothing twice', async () => {
    const sqs = new SQSClient(awsConfig());
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: `${uniqueName('redeliver')}.fifo`,
        Attributes: { FifoQueue: 'true', VisibilityTimeout: '1' },
      }),
    );
    const ns = uniqueName('redeliver');
    const repo = await gitopsRepo('redeliver');
    const sha = await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
    });
    const message: QueueMessage = {
      type: 'sync',
      repo: repo.url,
      target: ns,
      revision: { ref: 'refs/heads/main', sha },
      reason: 'push',
    };
    await sqs.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: JSON.stringify(message),
        MessageGroupId: ns,
        MessageDeduplicationId: sha,
      }),
    );
    const receive = async () => {
      for (let i = 0; i < 50; i++) {
        const out = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl,
            MaxNumberOfMessages: 1,
            WaitTimeSeconds: 1,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        const m = out.Messages?.[0];
        if (m) return m;
      }
      throw new Error('no delivery');
    };
    const sent: QueueMessage[] = [];
    const queue = { send: (m: readonly QueueMessage[]) => Promise.resolve(void sent.push(...m)) };

    const first = await receive();
    const out1 = await handleMessage(repo.engine, JSON.parse(first.Body ?? '') as QueueMessage, queue);
    expect(out1).toMatchObject({ kind: 'synced', result: { outcome: 'applied' } });
    const rv = (await repo.engine.client.get('v1', 'ConfigMap', ns, 'a'))?.metadata.resourceVersion;
    const stateRv = (await repo.engine.client.get('v1', 'ConfigMap', 'tidegate-system', `tidegate-target-${ns}`))
      ?.metadata.resourceVersion;

    const second = await receive(); // not deleted: visible again after the visibility timeout
    expect(second.Body).toBe(first.Body);
    expect(second.Attributes?.['ApproximateReceiveCount']).toBe('2');
    const out2 = await handleMessage(repo.engine, JSON.parse(second.Body ?? '') as QueueMessage, queue);
    expect(out2).toMatchObject({ kind: 'synced', result: { outcome: 'unchanged' } });
    expect((await repo.engine.client.get('v1', 'ConfigMap', ns, 'a'))?.metadata.resourceVersion).toBe(rv);
    expect(
      (await repo.engine.client.get('v1', 'ConfigMap', 'tidegate-system', `tidegate-target-${ns}`))?.metadata
        .resourceVersion,
    ).toBe(stateRv);
    expect((await readTargetState(repo.engine.client, ns)).history).toHaveLength(1);
  });
});
