import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { handler as githubWebhook } from '../../functions/github-webhook/handler.js';
import { handler as scheduledPoll } from '../../functions/scheduled-poll/handler.js';
import { handler as syncWorker } from '../../functions/sync-worker/handler.js';
import { readTargetState } from '../../shared/state/index.js';
import { messageKeys } from '../../shared/usecases/index.js';
import type { SyncMessage } from '../../shared/model/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo } from '../helpers/engine.js';
import {
  apiEvent,
  createFifoQueue,
  drain,
  githubHeaders,
  lambdaContext,
  pushPayload,
  sqsEvent,
  testClusterSetting,
  useMotoEnv,
} from '../helpers/lambda.js';

const SECRET = 'e2e-secret';

describe('GitHub push → handler → SQS FIFO (moto) → worker → real apiserver', () => {
  let queueUrl = '';
  let repo: Awaited<ReturnType<typeof gitopsRepo>>;
  const [nsWeb, nsApi] = [uniqueName('e2e-web'), uniqueName('e2e-api')];

  beforeAll(async () => {
    repo = await gitopsRepo('e2e');
    queueUrl = await createFifoQueue('e2e');
    useMotoEnv({
      repositories: [{ url: repo.url, branch: 'main' }],
      clusters: { test: testClusterSetting() },
      queueUrl,
      webhookSecret: { value: SECRET },
    });
  });

  const deliver = async (sha: string, paths: string[]) => {
    const body = pushPayload(repo.url, sha, paths);
    return githubWebhook(apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body), lambdaContext());
  };
  const work = async () => syncWorker(sqsEvent(await drain(queueUrl)), lambdaContext());

  it('applies the push to the affected targets only (at the branch head when it moved on), and drops a repeated revision', async () => {
    const first = await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: `web-${nsWeb}`, cluster: 'test', path: 'apps/web', targetNamespace: nsWeb, wait: false },
          { name: `api-${nsApi}`, cluster: 'test', path: 'apps/api', targetNamespace: nsApi, wait: false },
        ],
      }),
      'apps/web/deploy.yaml': deployment('web', { replicas: 1 }),
      'apps/api/cm.yaml': configMap('api', { v: '1' }),
    });
    expect((await deliver(first, ['tidegate.yaml', 'apps/web/deploy.yaml', 'apps/api/cm.yaml'])).statusCode).toBe(202);
    // The push fans out into one sync per target: the first runs in the fan-out, the other is queued.
    expect(await work()).toEqual({ batchItemFailures: [] });
    const syncs = await drain(queueUrl);
    expect(syncs.map((r) => [r.attributes.MessageGroupId, (JSON.parse(r.body) as SyncMessage).revision.sha])).toEqual([
      [expect.stringMatching(new RegExp(`^target:[0-9a-f]{24}:(api-${nsApi}|web-${nsWeb})$`)), first],
    ]);
    // Each target's group is its repository's (messageKeys): another repository's `web` is elsewhere.
    for (const r of syncs)
      expect(r.attributes.MessageGroupId).toBe(messageKeys(JSON.parse(r.body) as SyncMessage).group);
    expect(await syncWorker(sqsEvent(syncs), lambdaContext())).toEqual({ batchItemFailures: [] });
    const { client } = repo.engine;
    expect((await client.get('apps/v1', 'Deployment', nsWeb, 'web'))?.['spec']).toMatchObject({ replicas: 1 });
    expect((await client.get('v1', 'ConfigMap', nsApi, 'api'))?.['data']).toEqual({ v: '1' });

    // A commit that only touches web syncs web only; by the time it is processed main has moved
    // on, so the branch head is applied (a late delivery never moves a target backwards).
    const second = await repo.commit({ 'apps/web/deploy.yaml': deployment('web', { replicas: 3 }) });
    const third = await repo.commit({ 'apps/web/deploy.yaml': deployment('web', { replicas: 4 }) });
    await deliver(second, ['apps/web/deploy.yaml']);
    await deliver(second, ['apps/web/deploy.yaml']); // GitHub redelivery
    const pushes = await drain(queueUrl);
    expect(pushes).toHaveLength(1); // the redelivery dropped as a repeat
    await syncWorker(sqsEvent(pushes), lambdaContext()); // web synced in the fan-out, nothing else queued
    expect(await drain(queueUrl)).toEqual([]);
    expect((await client.get('apps/v1', 'Deployment', nsWeb, 'web'))?.['spec']).toMatchObject({ replicas: 4 });
    expect((await readTargetState(client, `web-${nsWeb}`)).lastApplied?.sha).toBe(third);
    expect((await readTargetState(client, `api-${nsApi}`)).history).toHaveLength(1);
  });

  it('the scheduled poll finds the moved branch and the worker applies its head', async () => {
    await repo.commit({ 'apps/web/deploy.yaml': deployment('web', { replicas: 5 }) }); // no webhook for this one
    expect(await scheduledPoll({}, lambdaContext())).toEqual({ queued: 3 }); // the repository's head, and a reload pass and a previews sweep for cluster test
    await work();
    await work();
    expect((await repo.engine.client.get('apps/v1', 'Deployment', nsWeb, 'web'))?.['spec']).toMatchObject({
      replicas: 5,
    });
  });

  it('reports a message that cannot be processed as a partial batch failure, and the rest of its group with it', async () => {
    const bad = {
      ...(await drain(queueUrl))[0],
      messageId: 'm1',
      body: 'not json',
      attributes: { MessageGroupId: 'g1' },
    };
    const after = {
      ...bad,
      messageId: 'm2',
      body: JSON.stringify({ type: 'image', registry: 'r', repository: 'x', tag: '1', source: 'distribution' }),
    };
    const other = { ...after, messageId: 'm3', attributes: { MessageGroupId: 'g2' } };
    const res = await syncWorker(sqsEvent([bad, after, other] as never), lambdaContext());
    expect(res.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m1', 'm2']);
  });
});
