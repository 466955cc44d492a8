import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pushImage } from '../../devenv/index.js';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import { readTargetState } from '../../shared/state/index.js';
import type { QueueMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, markedDeployment, oneTarget, testEngine, yamlDocs } from '../helpers/engine.js';
import { awsConfig, createFifoQueue, deliverBatch, testClusterSetting } from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';

/**
 * Image automation of repository B, beside a sync of repository A in the same SQS batch, through the
 * built worker under Lambda's limits (timeout shortened to 90 s so the test is quick; with the
 * deployed 900 s the effect is the same, only later):
 *  1. B's image policy names a registry that accepts the connection and never answers: the image
 *     message has no deadline (handleMessage passes no signal to updateImages, fetch has no timeout).
 *  2. B's image policy has filterTags.pattern `^(a+)+$` and B pushes a tag `aaaa…a-`: the pattern
 *     backtracks exponentially on the event loop.
 *  3. B's registry (answering the tag list) is slow enough that B moves its branch to a commit with a
 *     1280 MiB file of zeros between configAt's metered checkout and the write-back's git.clone,
 *     which is neither metered nor size-checked: the clone inflates the file in memory.
 * Safe: B's message fails alone, the worker is never killed, A is applied.
 */
const MiB = 1024 * 1024;
describe('image automation of one repository never stops the worker for the batch', () => {
  let worker: LambdaFunction;
  let queueUrl = '';
  let queue: SqsQueue;
  const { client } = testEngine();
  const reg = testEnv().registry;
  let a: Awaited<ReturnType<typeof gitopsRepo>>;
  let b1: Awaited<ReturnType<typeof gitopsRepo>>;
  let b2: Awaited<ReturnType<typeof gitopsRepo>>;
  let b3: Awaited<ReturnType<typeof gitopsRepo>>;
  let nsA = uniqueName('r30i-a');
  let server: Server;
  let port = 0;
  let onTags: (path: string, res: ServerResponse) => void = () => undefined;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const m = /^\/v2\/(.+)\/tags\/list/.exec(req.url ?? '');
      if (m) return onTags(m[1] ?? '', res);
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as AddressInfo).port;
    a = await gitopsRepo('r30i-a', { owner: 'acme' });
    b1 = await gitopsRepo('r30i-b1', { owner: 'acme' });
    b2 = await gitopsRepo('r30i-b2', { owner: 'acme' });
    b3 = await gitopsRepo('r30i-b3', { owner: 'acme' });
    queueUrl = await createFifoQueue('r30img');
    queue = new SqsQueue(new SQSClient(awsConfig()), queueUrl);
    worker = await startFunction('sync-worker', {
      settings: {
        repositories: [a, b1, b2, b3].map((r) => ({ url: r.url, branch: 'main' })),
        clusters: { test: testClusterSetting() },
        webhookSecret: { value: 'unused' },
      },
      queueUrl,
      limits: { timeout: 90 },
    });
  }, 60_000);
  afterAll(async () => {
    await worker?.stop();
    server?.closeAllConnections();
    server?.close();
  });

  const work = async (...messages: QueueMessage[]) => {
    // A queue of its own per case: the messages of an earlier case left in flight hold no group of this one.
    queueUrl = await createFifoQueue('r30img');
    queue = new SqsQueue(new SQSClient(awsConfig()), queueUrl);
    await queue.send(messages);
    for (let i = 0; i < 4; i++) {
      const { received } = await deliverBatch(queueUrl, (e) => worker.invoke(e)).catch(() => ({ received: ['x'] }));
      if (received.length === 0) break;
    }
  };

  async function commitA(): Promise<string> {
    nsA = uniqueName('r30i-a');
    return a.commit({
      'tidegate.yaml': oneTarget(nsA, 'apps'),
      'apps/cm.yaml': yamlDocs(configMap('a', { v: String(Date.now()) })),
    });
  }

  async function commitB(repo: typeof b1, repository: string, extra: Record<string, unknown> = {}): Promise<void> {
    const ns = uniqueName('r30i-b');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }],
        images: [{ name: 'web', repository, insecure: true, policy: { semver: { range: '>=1.0.0' } }, ...extra }],
      }),
      'apps/deploy.yaml': markedDeployment(`${repository}:1.0.0`, 'flux-system:web'),
    });
  }

  async function batch(image: QueueMessage) {
    const shaA = await commitA();
    const before = worker.invocations().length;
    await work(image, {
      type: 'sync',
      repo: a.url,
      target: nsA,
      revision: { ref: 'refs/heads/main', sha: shaA },
      reason: 'push',
    });
    const reports = worker.invocations().slice(before);
    expect(reports.filter((r) => r.killed)).toEqual([]);
    expect(Math.max(...reports.map((r) => r.peakRssMiB))).toBeLessThan(worker.memorySizeMiB);
    const last = (await readTargetState(client, nsA)).history.at(-1);
    expect(last?.revision.sha).toBe(shaA);
  }

  it("a registry that never answers the tag list: B's image message fails alone (every registry request within its time limit), A is applied", async () => {
    onTags = () => undefined; // never answered
    const repository = `127.0.0.1:${port}/hang/web`;
    await commitB(b1, repository);
    await batch({ type: 'image', registry: `127.0.0.1:${port}`, repository: 'hang/web', source: 'poll' });
    expect(worker.output()).toMatch(/127\.0\.0\.1:\d+ did not answer within 30 s/);
  }, 400_000);

  it('filterTags ^(a+)+$ against a pushed tag aaaa…a-: matched in linear time (RE2, as Go), A is applied', async () => {
    const path = `apps/${uniqueName('redos')}`;
    await pushImage(reg, path, '1.0.0');
    const tag = `${'a'.repeat(40)}-`;
    await pushImage(reg, path, tag);
    await commitB(b2, `${reg.host}/${path}`, { filterTags: { pattern: '^(a+)+$' } });
    await batch({ type: 'image', registry: reg.host, repository: path, tag, source: 'distribution' });
    expect(worker.output()).toMatch(/no tag of [^ ]+redos[^ ]+ satisfies image policy/);
  }, 400_000);

  it("B moves its branch to a 1280 MiB file while its registry answers: the write-back's clone is held to the checkout limits, A is applied", async () => {
    const repository = `127.0.0.1:${port}/race/web`;
    await commitB(b3, repository);
    // The huge commit, ready on a side branch (the server has its objects; moving main takes a ref update only).
    const ws = b3.ws;
    await ws.git('checkout', '--quiet', '-b', 'big');
    mkdirSync(join(ws.dir, 'data'), { recursive: true });
    writeFileSync(join(ws.dir, 'data/zeros.bin'), '');
    truncateSync(join(ws.dir, 'data/zeros.bin'), 1280 * MiB);
    await ws.git('add', '--all');
    await ws.git('commit', '--quiet', '-m', 'big');
    await ws.git('push', '--quiet', 'origin', 'HEAD:refs/heads/big');
    await ws.git('checkout', '--quiet', 'main');
    onTags = (_p, res) => {
      void ws.git('push', '--quiet', '--force', 'origin', 'big:refs/heads/main').then(() => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name: 'race/web', tags: ['1.0.0', '2.0.0'] }));
      });
    };
    await batch({ type: 'image', registry: `127.0.0.1:${port}`, repository: 'race/web', tag: '2.0.0', source: 'poll' });
    expect(worker.output()).toMatch(
      /is larger than allowed: an object of 1280 MiB, more than 64 MiB \(deploy-time setting source\.maxFileMiB\)/,
    );
  }, 400_000);
});
