import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pushImage } from '../../devenv/index.js';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import { repoKey } from '../../shared/source/git.js';
import type { QueueMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { gitopsRepo, markedDeployment } from '../helpers/engine.js';
import { awsConfig, createFifoQueue, deliverBatch, testClusterSetting } from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';

/**
 * One repository can never touch another's, through the built worker bundle as Lambda runs it:
 * repository B's committer links a YAML file into the worker's cached checkout of repository A (the
 * path of Lambda's /tmp is no secret) and gives B an image policy of its own named as A's marker.
 */
describe("isolation: one repository's image automation never writes another's checkout", () => {
  let worker: LambdaFunction;
  let queueUrl = '';
  let queue: SqsQueue;
  const reg = testEnv().registry;
  const image = `${reg.host}/apps/${uniqueName('web')}`;
  let a: Awaited<ReturnType<typeof gitopsRepo>>;
  let b: Awaited<ReturnType<typeof gitopsRepo>>;
  let z: Awaited<ReturnType<typeof gitopsRepo>>;
  const ns = uniqueName('iso-a');

  /** Sends messages and lets the worker take the queue (as the event source mapping does) until it is empty. */
  const work = async (...messages: QueueMessage[]) => {
    await queue.send(messages);
    for (let i = 0; i < 10; i++) {
      const { received, failures } = await deliverBatch(queueUrl, (e) => worker.invoke(e));
      expect(failures, worker.output().slice(-3000)).toEqual([]);
      if (received.length === 0) return;
    }
  };
  const liveImage = async () =>
    ((await a.engine.client.get('apps/v1', 'Deployment', ns, 'podinfo'))?.['spec'] as any)?.template.spec.containers[0]
      .image as string | undefined;

  beforeAll(async () => {
    await pushImage(reg, image.slice(reg.host.length + 1), '1.0.0');
    a = await gitopsRepo('iso-a', { owner: 'acme' });
    b = await gitopsRepo('iso-b', { owner: 'acme' });
    z = await gitopsRepo('iso-z', { owner: 'acme' });
    await z.commit({ 'README.md': 'a repository whose image policy file will be a link to /dev/zero\n' });
    queueUrl = await createFifoQueue('iso');
    queue = new SqsQueue(new SQSClient(awsConfig()), queueUrl);
    worker = await startFunction('sync-worker', {
      settings: {
        repositories: [
          { url: a.url, branch: 'main' },
          { url: b.url, branch: 'main' },
          { url: z.url, branch: 'main' },
        ],
        clusters: { test: testClusterSetting() },
        webhookSecret: { value: 'unused' },
      },
      queueUrl,
    });
  }, 60_000);
  afterAll(async () => {
    await worker?.stop();
  });

  /** A: a Deployment whose image carries a marker (A itself has no image policy), applied; its cached checkout's file. */
  async function repositoryA() {
    const shaA = await a.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/deploy.yaml': markedDeployment(`${image}:1.0.0`, 'flux-system:web'),
    });
    await work({
      type: 'sync',
      repo: a.url,
      target: ns,
      revision: { ref: 'refs/heads/main', sha: shaA },
      reason: 'push',
    });
    expect(await liveImage()).toBe(`${image}:1.0.0`);
    return { shaA, cached: join(worker.tmpDir, 'git', repoKey(a.url), 'trees', shaA, 'apps', 'deploy.yaml') };
  }

  /** B: an image policy named as A's marker, one ConfigMap of its own, and the given links; then the registry push. */
  async function repositoryB(repo: typeof b, links: Record<string, string>, tag: string) {
    const { symlinkSync } = await import('node:fs');
    for (const [file, target] of Object.entries(links)) symlinkSync(target, join(repo.ws.dir, file));
    const sha = await repo.commit({
      'b/cm.yaml': { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'b' }, data: { v: '1' } },
      'tidegate.yaml': stringify({
        targets: [
          { name: uniqueName('iso-b'), cluster: 'test', path: 'b', targetNamespace: uniqueName('iso-b'), wait: false },
        ],
        images: [{ name: 'web', repository: image, insecure: true, policy: { semver: { range: '>=1.0.0' } } }],
      }),
    });
    await pushImage(reg, image.slice(reg.host.length + 1), tag);
    await work({
      type: 'image',
      registry: reg.host,
      repository: image.slice(reg.host.length + 1),
      tag,
      source: 'distribution',
    });
    const report = worker.lastInvocation();
    expect(report?.killed).toBeUndefined();
    expect(report?.peakRssMiB).toBeLessThan(worker.memorySizeMiB);
    // B committed nothing: its links are no files of its own to rewrite.
    expect((await repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0]).toBe(sha);
  }

  it("a symbolic link in B's image-policy files into the worker's cached checkout of A: nothing of A changes (its cached checkout, then its objects at the poll's re-sync)", async () => {
    const { shaA, cached } = await repositoryA();
    const before = readFileSync(cached, 'utf8');
    await repositoryB(b, { 'poison.yaml': cached }, '2.0.0');
    expect(readFileSync(cached, 'utf8')).toBe(before);
    // The poll's re-sync of A's unchanged revision applies what Git holds at it.
    await work({
      type: 'sync',
      repo: a.url,
      target: ns,
      revision: { ref: 'refs/heads/main', sha: shaA },
      reason: 'poll',
      bucket: 1,
    });
    expect(await liveImage()).toBe(`${image}:1.0.0`);
  }, 120_000);

  it("a symbolic link to /dev/zero in B's image-policy files is never read: the image update finishes within the worker's memory", async () => {
    await repositoryB(z, { 'zero.yaml': '/dev/zero' }, '2.1.0');
  }, 120_000);
});
