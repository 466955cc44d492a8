import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { handler as syncWorker } from '../../functions/sync-worker/handler.js';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import type { SyncMessage } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { awsConfig, createFifoQueue, deliverBatch, testClusterSetting, useMotoEnv } from '../helpers/lambda.js';
import { kubeClient } from '../helpers/state.js';

/**
 * dependsOn chains in one invocation: a chain is one message that renders once per target. After its
 * first, small target has rendered (1 document) the batch starts the next message; each then goes on
 * to its big target (30 documents; render.maxDocuments 40, 20 held together). Each render waits for
 * its turn (model/load.ts memoryTurn): the second big one renders only once the first one's message
 * has ended. (Found by a review with write access: the rule was checked only when a message started,
 * and the two held 60 documents side by side.)
 */
const direct = kubeClient();

describe('one invocation, dependsOn chains: each render waits for its turn', () => {
  it('the big targets of two chains never render and apply side by side', async () => {
    const [d1, t1, d2, t2] = ['d1', 't1', 'd2', 't2'].map((n) => uniqueName(`ch${n}`)) as [
      string,
      string,
      string,
      string,
    ];
    const repo = await gitopsRepo('chains');
    const target = (name: string, dependsOn: string[] = []) => ({
      name,
      cluster: 'test',
      path: `apps/${name}`,
      targetNamespace: name,
      dependsOn,
    });
    const files: Record<string, string> = {
      'tidegate.yaml': stringify({ targets: [target(d1), target(t1, [d1]), target(d2), target(t2, [d2])] }),
    };
    for (const d of [d1, d2]) files[`apps/${d}/cm.yaml`] = yamlDocs(configMap('cm', { v: '1' }));
    for (const t of [t1, t2])
      files[`apps/${t}/cm.yaml`] = yamlDocs(Array.from({ length: 30 }, (_, k) => configMap(`cm${k}`, { v: '1' })));
    const sha = await repo.commit(files);
    const queueUrl = await createFifoQueue('chains');
    useMotoEnv({
      repositories: [{ url: repo.url, branch: 'main' }],
      clusters: { test: testClusterSetting() },
      queueUrl,
      render: { maxDocuments: 40 },
      worker: { concurrency: 4 },
    });
    // What a push touching all four makes: one message per chain, each in its set's group.
    await new SqsQueue(new SQSClient(awsConfig()), queueUrl).send(
      [
        [d1, t1],
        [d2, t2],
      ].map((chain): SyncMessage => ({
        type: 'sync',
        repo: repo.url,
        target: chain[0] as string,
        chain,
        revision: { ref: 'refs/heads/main', sha },
        reason: 'push',
      })),
    );
    const context = {
      functionName: 'tidegate-sync-worker',
      awsRequestId: 'req-chains',
      getRemainingTimeInMillis: () => 120_000,
    } as unknown as Context;
    // When each target rendered: the worker's "rendered" log lines.
    const renderedAt = new Map<string, number>();
    const write = process.stdout.write.bind(process.stdout);
    const spy = vi
      .spyOn(process.stdout, 'write')
      .mockImplementation((chunk: string | Uint8Array, ...rest: unknown[]) => {
        for (const line of String(chunk).split('\n'))
          if (line.includes('"message":"rendered"')) {
            const l = JSON.parse(line) as { target: string; timestamp: string };
            renderedAt.set(l.target, Date.parse(l.timestamp));
          }
        return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
      });
    const delivery = await deliverBatch(queueUrl, (event) => syncWorker(event, context)).finally(() =>
      spy.mockRestore(),
    );
    expect(delivery.received).toHaveLength(2);
    expect(delivery.failures).toEqual([]);
    const spans = await Promise.all(
      [t1, t2].map(async (t) => {
        const [h] = (await readTargetState(direct, t)).history;
        expect(h?.outcome).toBe('applied');
        const start = Date.parse(h?.startedAt ?? '');
        return { rendered: renderedAt.get(t) ?? NaN, end: start + (h?.durationMs ?? 0) };
      }),
    );
    const [first, second] = spans.sort((x, y) => x.rendered - y.rendered);
    // The second big target rendered after the first one's sync had ended (its render waited for its turn).
    expect(second?.rendered).toBeGreaterThanOrEqual(first?.end ?? Infinity);
  });
});
