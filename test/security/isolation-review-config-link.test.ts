import { symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import { readTargetState } from '../../shared/state/index.js';
import type { QueueMessage } from '../../shared/model/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, oneTarget, testEngine, yamlDocs } from '../helpers/engine.js';
import { awsConfig, createFifoQueue, deliverBatch, testClusterSetting } from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';

/**
 * Repository B commits tidegate.yaml (or, in a Flux layout, clusters/x/zero.yaml) as a symbolic
 * link to /dev/zero. configAt reads it with readFileSync (no size check before the read, links
 * followed): the worker reads an endless device. Safe: B's message fails alone, the worker stays
 * under its memory, repository A's sync in the same batch is applied.
 */
describe('a tidegate.yaml (or Flux layout file) that is a link to /dev/zero', () => {
  let worker: LambdaFunction;
  let queueUrl = '';
  let queue: SqsQueue;
  const { client } = testEngine();
  let a: Awaited<ReturnType<typeof gitopsRepo>>;
  let b: Awaited<ReturnType<typeof gitopsRepo>>;
  let c: Awaited<ReturnType<typeof gitopsRepo>>;
  const nsA = uniqueName('r30-a');

  beforeAll(async () => {
    a = await gitopsRepo('r30-a', { owner: 'acme' });
    b = await gitopsRepo('r30-b', { owner: 'acme' });
    c = await gitopsRepo('r30-c', { owner: 'acme' });
    queueUrl = await createFifoQueue('r30cfg');
    queue = new SqsQueue(new SQSClient(awsConfig()), queueUrl);
    worker = await startFunction('sync-worker', {
      settings: {
        repositories: [a, b, c].map((r) => ({ url: r.url, branch: 'main' })),
        clusters: { test: testClusterSetting() },
        webhookSecret: { value: 'unused' },
      },
      queueUrl,
    });
  }, 60_000);
  afterAll(async () => worker?.stop());

  const work = async (...messages: QueueMessage[]) => {
    await queue.send(messages);
    for (let i = 0; i < 6; i++) {
      const { received } = await deliverBatch(queueUrl, (e) => worker.invoke(e)).catch(() => ({ received: ['x'] }));
      if (received.length === 0) break;
    }
  };

  async function check(attacker: typeof b, link: string) {
    const shaA = await a.commit({
      'tidegate.yaml': oneTarget(nsA, 'apps'),
      'apps/cm.yaml': yamlDocs(configMap('a', { v: String(Date.now()) })),
    });
    mkdirSync(join(attacker.ws.dir, link, '..'), { recursive: true });
    symlinkSync('/dev/zero', join(attacker.ws.dir, link));
    const shaB = await attacker.commit({ 'README.md': 'b\n' });
    const before = worker.invocations().length;
    await work(
      { type: 'push', repo: attacker.url, ref: 'refs/heads/main', sha: shaB, paths: null, reason: 'push' },
      { type: 'sync', repo: a.url, target: nsA, revision: { ref: 'refs/heads/main', sha: shaA }, reason: 'push' },
    );
    const reports = worker.invocations().slice(before);
    expect(reports.filter((r) => r.killed)).toEqual([]);
    expect(Math.max(...reports.map((r) => r.peakRssMiB))).toBeLessThan(worker.memorySizeMiB);
    const last = (await readTargetState(client, nsA)).history.at(-1);
    expect(last?.revision.sha).toBe(shaA);
    expect(last?.outcome).toBe('applied');
  }

  it('tidegate.yaml -> /dev/zero: B fails alone, A is applied, the worker is not killed', async () => {
    await check(b, 'tidegate.yaml');
    expect(worker.output()).toMatch(
      /"message":"message failed".*tidegate\.yaml: a symbolic link to a path outside the repository/,
    );
  }, 300_000);

  it('clusters/x/zero.yaml -> /dev/zero (Flux layout, no tidegate.yaml): B fails alone, A is applied', async () => {
    await check(c, 'clusters/x/zero.yaml');
  }, 300_000);
});
