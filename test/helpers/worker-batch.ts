import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import { handler as syncWorker } from '../../functions/sync-worker/handler.js';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import type { KubeClient } from '../../shared/cluster/index.js';
import type { SyncMessage } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { awsConfig, createFifoQueue, deliverBatch, testClusterSetting, useMotoEnv } from './lambda.js';

/**
 * Sends sync messages of commit `sha` of a repository (each a target, or a dependsOn chain) to a new
 * FIFO queue, and delivers them to the sync worker's handler as one batch, with these deploy-time
 * settings besides the repository, the test cluster and the queue. The handler builds its runtime
 * once per module, as Lambda does once per container: call this once per test file.
 */
export async function syncBatch(
  repoUrl: string,
  sha: string,
  chains: string[][],
  settings: Record<string, unknown>,
): Promise<{ received: string[]; failures: string[] }> {
  const queueUrl = await createFifoQueue('batch');
  useMotoEnv({
    repositories: [{ url: repoUrl, branch: 'main' }],
    clusters: { test: testClusterSetting() },
    queueUrl,
    ...settings,
  });
  await new SqsQueue(new SQSClient(awsConfig()), queueUrl).send(
    chains.map(([target, ...rest]): SyncMessage => ({
      type: 'sync',
      repo: repoUrl,
      target: target ?? '',
      ...(rest.length > 0 ? { chain: [target ?? '', ...rest] } : {}),
      revision: { ref: 'refs/heads/main', sha },
      reason: 'push',
    })),
  );
  const context = {
    functionName: 'tidegate-sync-worker',
    awsRequestId: `req-${sha.slice(0, 8)}`,
    getRemainingTimeInMillis: () => 120_000,
  } as unknown as Context;
  return deliverBatch(queueUrl, (event) => syncWorker(event, context));
}

/** When each target's first sync started and ended (ms), each checked to have applied. */
export function syncSpans(
  client: KubeClient,
  targets: readonly string[],
): Promise<Array<{ start: number; end: number }>> {
  return Promise.all(
    targets.map(async (t) => {
      const [h] = (await readTargetState(client, t)).history;
      expect(h?.outcome).toBe('applied');
      const start = Date.parse(h?.startedAt ?? '');
      return { start, end: start + (h?.durationMs ?? 0) };
    }),
  );
}

/** A tidegate.yaml of these targets, the i-th at apps/<i> in a namespace of its own name, on the test cluster. */
export const targetPerApp = (names: readonly string[]): string =>
  stringify({
    targets: names.map((name, i) => ({ name, cluster: 'test', path: `apps/${i}`, targetNamespace: name })),
  });
