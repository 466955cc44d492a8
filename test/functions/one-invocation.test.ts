import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';
import type { QueueMessage } from '../../shared/model/index.js';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { acquireLease, readTargetState } from '../../shared/state/index.js';
import { deployedPath } from '../helpers/deployed.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { deliverBatch, drain, sqsEvent, syncedInFanOut } from '../helpers/lambda.js';

/**
 * A push is fanned out and its first sync run by the same worker invocation (built bundles, SQS in
 * moto): one invocation per push to one target; other targets still go through the queue, and a
 * sync that cannot run there (its lease held) is queued, not lost.
 */
describe('one worker invocation per push', () => {
  const h = deployedPath('one-inv');
  const [a, b] = [uniqueName('one-a'), uniqueName('one-b')];
  const target = (name: string) => ({ name, cluster: 'test', path: name, targetNamespace: name, wait: false });
  const lastOf = async (name: string) => (await readTargetState(h.repo.engine.client, name)).history.at(-1);
  const invocations = () => h.worker.invocations().length;

  it('a push to one target: fanned out and synced in one invocation of one message', async () => {
    const sha0 = await h.repo.commit({
      'tidegate.yaml': stringify({ targets: [target(a), target(b)] }),
      [`${a}/cm.yaml`]: yamlDocs(configMap('cm', { v: '0' })),
      [`${b}/cm.yaml`]: yamlDocs(configMap('cm', { v: '0' })),
    });
    await h.push(sha0, ['tidegate.yaml']);
    await h.work();
    expect((await lastOf(a))?.revision.sha).toBe(sha0);

    const sha1 = await h.repo.commit({ [`${a}/cm.yaml`]: yamlDocs(configMap('cm', { v: '1' })) });
    const [before, from] = [invocations(), h.worker.output().length];
    await h.push(sha1, [`${a}/cm.yaml`]);
    const first = await deliverBatch(h.queueUrl, (e) => h.worker.invoke<SQSBatchResponse>(e));
    expect(first.received).toHaveLength(1); // the push message alone
    expect(first.failures).toEqual([]);
    expect(await lastOf(a)).toMatchObject({ revision: { sha: sha1 }, outcome: 'applied' });
    await h.work(); // nothing else was queued
    expect(invocations() - before).toBe(1);
    expect(syncedInFanOut(h.worker.output().slice(from))).toEqual([[a]]);
    // Its metrics per cluster only (metrics.perTarget is off by default: each target would be billed).
    expect(h.worker.output()).toContain('"Dimensions":[["service","Cluster"]]');
    expect(h.worker.output()).not.toContain('"Target"]]');
  });

  it('a push to two targets: one synced in the fan-out, the other through the queue', async () => {
    const sha = await h.repo.commit({
      [`${a}/cm.yaml`]: yamlDocs(configMap('cm', { v: '2' })),
      [`${b}/cm.yaml`]: yamlDocs(configMap('cm', { v: '2' })),
    });
    const before = invocations();
    await h.push(sha, [`${a}/cm.yaml`, `${b}/cm.yaml`]);
    await h.work();
    expect(invocations() - before).toBe(2);
    for (const t of [a, b]) expect(await lastOf(t)).toMatchObject({ revision: { sha }, outcome: 'applied' });
  });

  it('the target’s lease held by another writer: the sync is queued at once (the push is not held back), and applied from the queue once the lease is free', async () => {
    const { client } = h.repo.engine;
    const lease = await acquireLease(client, a, { holder: 'an operator', waitMs: 0 });
    const sha = await h.repo.commit({ [`${a}/cm.yaml`]: yamlDocs(configMap('cm', { v: '3' })) });
    let queued: SQSRecord[] | undefined;
    try {
      await h.push(sha, [`${a}/cm.yaml`]);
      const first = await deliverBatch(h.queueUrl, (e) => h.worker.invoke<SQSBatchResponse>(e));
      expect(first.failures).toEqual([]);
      expect((await lastOf(a))?.revision.sha).not.toBe(sha);
      queued = await drain(h.queueUrl);
      expect(queued.map((r) => JSON.parse(r.body) as QueueMessage)).toMatchObject([{ type: 'sync', target: a }]);
    } finally {
      await lease.release();
    }
    await h.worker.invoke<SQSBatchResponse>(sqsEvent(queued ?? []));
    expect(await lastOf(a)).toMatchObject({ revision: { sha }, outcome: 'applied' });
  });
});
