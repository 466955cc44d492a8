import { setTimeout as sleep } from 'node:timers/promises';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { handler as syncWorker } from '../../functions/sync-worker/handler.js';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import type { KubeObject, PushMessage } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { readyWorkloadStatus } from '../helpers/controllers.js';
import { awsConfig, createFifoQueue, deliverBatch, testClusterSetting, useMotoEnv } from '../helpers/lambda.js';

/**
 * One invocation per push (fanOutAndSync) and dependsOn sets. A sync run in the push's invocation is
 * in the repository's message group, not in the target's set's: a chain of the set in flight in
 * another invocation would not be kept before or after it, and a chain resolves its revision once
 * for all its targets before it takes each Lease. So a set's syncs are never run in the fan-out:
 * they are queued in the set's group. (Found by a review with write access; both tests failed when
 * the fan-out ran a set's sync itself.)
 *
 * Two worker invocations run at once (as Lambda scales out over message groups): W1 handles the
 * queued chain [dep, app] at commit A (dep's rollout takes a while: its health wait); meanwhile
 * commit B changes app alone, and W2 handles push B. Had its fan-out synced app at B at once (the
 * Lease of app free, dep's last record fine), W1 would then have gone on with app at A, the revision
 * it resolved before B existed, or (dep failing) app at B would have gone ahead of dep.
 */

// The handler builds its runtime (the deploy-time settings) once per module: one repository, one queue for the file.
const repo = await gitopsRepo('att3');
const queueUrl = await createFifoQueue('att3', { visibilityTimeout: 600 });
useMotoEnv({
  repositories: [{ url: repo.url, branch: 'main' }],
  clusters: { test: testClusterSetting() },
  queueUrl,
});
const queue = new SqsQueue(new SQSClient(awsConfig()), queueUrl);
const client = repo.engine.client;

const context = (id: string): Context =>
  ({
    functionName: 'tidegate-sync-worker',
    awsRequestId: `${id}-${Math.random().toString(16).slice(2)}`,
    getRemainingTimeInMillis: () => 600_000,
  }) as unknown as Context;
const invoke = (id: string): Promise<{ received: string[]; failures: string[] }> =>
  deliverBatch(queueUrl, (event) => syncWorker(event, context(id)) as Promise<SQSBatchResponse>);
const push = (sha: string, paths: string[] | null): Promise<void> =>
  queue.send([{ type: 'push', repo: repo.url, ref: 'refs/heads/main', sha, paths, reason: 'push' } as PushMessage]);
/** Delivers batches one after another until the queue has nothing visible. */
async function work(): Promise<void> {
  for (let i = 0; i < 20; i++) if ((await invoke(`drain${i}`)).received.length === 0) return;
}
async function until<T>(what: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await sleep(100);
  }
}
const cmValue = async (ns: string): Promise<string | undefined> =>
  ((await client.get('v1', 'ConfigMap', ns, 'cm')) as KubeObject & { data?: { v?: string } })?.data?.v;

async function setUp(prefix: string) {
  const [u, dep, app] = ['u', 'dep', 'app'].map((n) => uniqueName(`${prefix}${n}`)) as [string, string, string];
  const target = (name: string, extra: Record<string, unknown> = {}) => ({
    name,
    cluster: 'test',
    path: name,
    targetNamespace: name,
    wait: false,
    ...extra,
  });
  const sha0 = await repo.commit({
    'tidegate.yaml': stringify({
      // u first: a push touching all three syncs u in its fan-out and queues the chain [dep, app].
      targets: [target(u), target(dep, { wait: true, timeout: '120s' }), target(app, { dependsOn: [dep] })],
    }),
    [`${u}/cm.yaml`]: yamlDocs(configMap('cm', { v: '0' })),
    [`${dep}/cm.yaml`]: yamlDocs(configMap('cm', { v: '0' })),
    [`${app}/cm.yaml`]: yamlDocs(configMap('cm', { v: '0' })),
  });
  await push(sha0, null);
  await work();
  for (const t of [u, dep, app])
    expect((await readTargetState(client, t)).history.at(-1)).toMatchObject({
      outcome: 'applied',
      revision: { sha: sha0 },
    });

  // Commit A: all three change; dep gets a Deployment whose rollout takes a while (no controller here: the test plays it).
  const shaA = await repo.commit({
    [`${u}/cm.yaml`]: yamlDocs(configMap('cm', { v: 'A' })),
    [`${dep}/deploy.yaml`]: yamlDocs(deployment('db')),
    [`${app}/cm.yaml`]: yamlDocs(configMap('cm', { v: 'A' })),
  });
  await push(shaA, [`${u}/cm.yaml`, `${dep}/deploy.yaml`, `${app}/cm.yaml`]);
  expect((await invoke('wA')).failures).toEqual([]); // push A: u synced here, [dep, app]@A queued
  // W1: the queued chain [dep, app]@A, in an invocation of its own; dep waits for its rollout.
  const w1 = invoke('w1');
  const db = await until(() => client.get('apps/v1', 'Deployment', dep, 'db'));

  // Commit B changes app alone; W2 handles push B while W1 is in dep's health wait.
  const shaB = await repo.commit({ [`${app}/cm.yaml`]: yamlDocs(configMap('cm', { v: 'B' })) });
  await push(shaB, [`${app}/cm.yaml`]);
  expect((await invoke('w2')).failures).toEqual([]);
  return { u, dep, app, shaA, shaB, db, w1 };
}

describe('one invocation per push: the fan-out’s sync and a queued sync of the same dependsOn set', () => {
  it('an older commit is never applied after a newer one: app ends at B', async () => {
    const { app, shaA, shaB, db, w1 } = await setUp('ord');
    // dep's rollout completes; W1 goes on to app, at the revision it resolved before B was pushed.
    await client.patchStatus(db, readyWorkloadStatus(db));
    expect((await w1).failures).toEqual([]);
    await work(); // what W2's fan-out queued (app's sync in the set's group) is handled after the chain
    const history = (await readTargetState(client, app)).history;
    const applied = history.filter((h) => h.outcome === 'applied').map((h) => h.revision.sha);
    // Whatever ran first, B (newer) must be what app ends at, and A must never be applied after B.
    expect(applied).toContain(shaB);
    expect(applied.slice(applied.indexOf(shaB))).not.toContain(shaA);
    expect(history.at(-1)?.revision.sha).toBe(shaB);
    expect(await cmValue(app)).toBe('B');
  }, 180_000);

  it('a dependant never goes ahead of its dependency: app at B is not applied while dep’s sync of the same content runs and fails', async () => {
    const { dep, app, shaA, shaB, db, w1 } = await setUp('dep');
    // dep's rollout fails (the content of dep at B is the same as at A).
    await client.patchStatus(db, {
      observedGeneration: db.metadata.generation ?? 1,
      conditions: [
        { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'db did not progress' },
      ],
    });
    expect((await w1).failures).toEqual([]);
    await work();
    const depLast = (await readTargetState(client, dep)).history.at(-1);
    expect(depLast).toMatchObject({ outcome: 'failed', revision: { sha: shaA } });
    // app at B (which holds dep's failing change of A) ran while dep's sync was in flight, and applied:
    // with every sync of the set in its message group, it would have run after dep and been held back.
    const appAtB = (await readTargetState(client, app)).history.find((h) => h.revision.sha === shaB);
    expect(appAtB?.outcome).not.toBe('applied');
  }, 180_000);
});
