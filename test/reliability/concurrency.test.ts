import { setTimeout as sleep } from 'node:timers/promises';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { handler as githubWebhook } from '../../functions/github-webhook/handler.js';
import { handler as scheduledPoll } from '../../functions/scheduled-poll/handler.js';
import { handler as syncWorker } from '../../functions/sync-worker/handler.js';
import { readTargetState } from '../../shared/state/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';
import {
  apiEvent,
  awsConfig,
  createFifoQueue,
  githubHeaders,
  lambdaContext,
  pushPayload,
  sqsEvent,
  sqsRecord,
  testClusterSetting,
  useMotoEnv,
} from '../helpers/lambda.js';

const SECRET = 'burst-secret';

/**
 * Lambda's SQS event source, several at once: each poller receives a batch, invokes the worker,
 * deletes what succeeded and makes the failures visible again. SQS FIFO (moto) withholds a
 * message group while one of its messages is in flight, which is what serialises a target.
 */
function pollers(queueUrl: string, count: number) {
  const sqs = new SQSClient(awsConfig());
  let done = false;
  let busy = 0;
  let failures = 0;
  const loop = async (): Promise<void> => {
    for (;;) {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
          VisibilityTimeout: 120,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      const messages = out.Messages ?? [];
      if (messages.length === 0) {
        if (done && busy === 0) return;
        await sleep(30);
        continue;
      }
      busy++;
      try {
        const res = await syncWorker(sqsEvent(messages.map(sqsRecord)), lambdaContext());
        const failed = new Set(res.batchItemFailures.map((f) => f.itemIdentifier));
        failures += failed.size;
        for (const m of messages) {
          if (failed.has(m.MessageId ?? ''))
            await sqs.send(
              new ChangeMessageVisibilityCommand({
                QueueUrl: queueUrl,
                ReceiptHandle: m.ReceiptHandle,
                VisibilityTimeout: 0,
              }),
            );
          else await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }));
        }
      } finally {
        busy--;
      }
    }
  };
  const running = Promise.all(Array.from({ length: count }, loop));
  return {
    finish: async () => {
      done = true;
      await running;
      return { failures };
    },
  };
}

describe('concurrency: a burst of pushes to one target, racing the scheduled poll (Lambda functions, SQS FIFO on moto)', () => {
  it("20 pushes in quick succession: the target's syncs never overlap, never go back, and end at the last revision", async () => {
    const ns = uniqueName('burst');
    const repo = await gitopsRepo('burst');
    const queueUrl = await createFifoQueue('burst');
    useMotoEnv({
      repositories: [{ url: repo.url, branch: 'main' }],
      clusters: { test: testClusterSetting() },
      queueUrl,
      webhookSecret: { value: SECRET },
      driftInterval: '1s',
    });
    const base = await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/cm.yaml': configMap('burst', { n: '0' }),
    });
    const shas = [base];
    const workers = pollers(queueUrl, 3);
    const deliveries: Array<Promise<unknown>> = [];
    const deliver = (sha: string) => {
      const body = pushPayload(repo.url, sha, ['apps/cm.yaml']);
      deliveries.push(
        githubWebhook(apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body), lambdaContext()),
      );
    };
    for (let n = 1; n <= 20; n++) {
      shas.push(await repo.commit({ 'apps/cm.yaml': configMap('burst', { n: String(n) }) }, `burst ${n}`));
      if (n % 2 === 0) deliver(shas[n] ?? ''); // GitHub does not promise order: the even ones now, the odd ones last, newest first
      if (n % 5 === 0) deliveries.push(scheduledPoll({}, lambdaContext())); // the poll races the webhooks
    }
    for (let n = 19; n >= 1; n -= 2) deliver(shas[n] ?? '');
    const answers = await Promise.all(deliveries);
    expect(
      answers
        .filter((a) => (a as { statusCode?: number }).statusCode !== undefined)
        .map((a) => (a as { statusCode: number }).statusCode),
    ).toEqual(Array(20).fill(202));
    const { failures } = await workers.finish();
    expect(failures).toBe(0);

    const { client } = repo.engine;
    expect((await client.get('v1', 'ConfigMap', ns, 'burst'))?.data).toEqual({ n: '20' });
    const state = await readTargetState(client, ns);
    expect(state.lastApplied?.sha).toBe(shas[20]);
    const history = state.history.filter((h) => h.kind === 'sync');
    for (let i = 1; i < history.length; i++) {
      const prev = history[i - 1]!;
      const next = history[i]!;
      expect(
        Date.parse(prev.startedAt) + prev.durationMs,
        `sync ${i} started before sync ${i - 1} ended`,
      ).toBeLessThanOrEqual(Date.parse(next.startedAt));
      expect(
        shas.indexOf(next.revision.sha),
        `sync ${i} went back from ${prev.revision.sha} to ${next.revision.sha}`,
      ).toBeGreaterThanOrEqual(shas.indexOf(prev.revision.sha));
    }
    expect(history.at(-1)?.revision.sha).toBe(shas[20]);
  });
});
