import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pushImage } from '../../devenv/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { handleMessage, type Queue, type WorkOutcome } from '../../shared/usecases/index.js';
import type { QueueMessage } from '../../shared/model/index.js';
import { cli } from '../helpers/cli.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, markedDeployment } from '../helpers/engine.js';
import { awsConfig, deliverBatch, motoEnv, testClusterSetting } from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';

/**
 * Controls for an incident, from a terminal: suspend a target (every writer stops, saying who and
 * why), resume it; ask the deployed worker to sync now; look at and redrive the deployed queue; and
 * a rollback to the revision already live pins it.
 */
describe('incident controls: suspend, resume, reconcile, queue, rollback to the live revision', () => {
  const kube = testEnv().kube;
  const functions: LambdaFunction[] = [];
  afterAll(async () => Promise.all(functions.map((f) => f.stop())));

  /** A repository with one target (a ConfigMap, and a Deployment whose image follows a policy), synced once. */
  async function setup() {
    const reg = testEnv().registry;
    const image = `${reg.host}/apps/${uniqueName('inc')}`;
    await pushImage(reg, image.slice(reg.host.length + 1), '1.0.0');
    const name = uniqueName('inc');
    const repo = await gitopsRepo('inc');
    const k = ['--repo', repo.url, '--kubeconfig', kube.kubeconfigPath, '--context', 'tidegate-test'];
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'x', path: 'apps', targetNamespace: name, wait: false }],
        images: [{ name: 'web', repository: image, insecure: true, policy: { semver: { range: '>=1.0.0' } } }],
      }),
      'apps/a.yaml': stringify(configMap('a', { v: '1' })),
      'apps/deploy.yaml': markedDeployment(`${image}:1.0.0`, 'flux-system:web'),
    });
    expect((await cli('sync', name, ...k)).code).toBe(0);
    const ctx = { ...repo.engine, repositories: [{ url: repo.url, branch: 'main' }] };
    const queued: QueueMessage[] = [];
    const queue: Queue = { send: (m) => Promise.resolve(void queued.push(...m)) };
    /** A push (or poll) of the head, fanned out and synced as the worker does. */
    const deliver = async (reason: 'push' | 'poll'): Promise<WorkOutcome[]> => {
      const sha = (await repo.ws.git('rev-parse', 'HEAD')).trim();
      queued.length = 0;
      const out = [
        await handleMessage(
          ctx,
          { type: 'push', repo: repo.url, ref: 'refs/heads/main', sha, paths: null, reason, bucket: Date.now() },
          queue,
        ),
      ];
      for (const m of [...queued]) if (m.type === 'sync') out.push(await handleMessage(ctx, m, queue));
      return out;
    };
    const value = async () => (await repo.engine.client.get('v1', 'ConfigMap', name, 'a'))?.['data'];
    return { name, repo, k, ctx, queue, deliver, value, image, reg };
  }

  it('suspend holds a push, a poll and an image update, each saying who suspended it and why; resume releases', async () => {
    const s = await setup();
    const suspended = await cli('suspend', s.name, '--reason', 'incident 42: database failover', ...s.k);
    expect(suspended.code, suspended.err).toBe(0);
    expect(suspended.out).toContain(`suspended ${s.name} (incident 42: database failover)`);
    expect(
      (await cli('status', s.name, '--kubeconfig', kube.kubeconfigPath, '--context', 'tidegate-test')).out,
    ).toMatch(/SUSPENDED by \S+ since \S+: incident 42: database failover/);

    await s.repo.commit({ 'apps/a.yaml': stringify(configMap('a', { v: '2' })) });
    const push = (await s.deliver('push')).at(-1);
    expect(push).toMatchObject({
      kind: 'synced',
      result: {
        outcome: 'suspended',
        error: expect.stringMatching(
          /^suspended by \S+ since \S+ \(incident 42: database failover\); `tidegate resume /,
        ),
      },
    });
    await s.repo.commit({ 'apps/a.yaml': stringify(configMap('a', { v: '3' })) });
    expect((await s.deliver('poll')).at(-1)).toMatchObject({ kind: 'synced', result: { outcome: 'suspended' } });
    expect(await s.value()).toEqual({ v: '1' });
    const history = (await readTargetState(s.repo.engine.client, s.name)).history;
    expect(history.filter((h) => h.outcome === 'suspended')).toHaveLength(2); // the push's revision and the poll's

    // An image push writes nothing into the suspended target's files.
    const before = (await s.repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0];
    await pushImage(s.reg, s.image.slice(s.reg.host.length + 1), '2.0.0');
    await handleMessage(
      s.ctx,
      {
        type: 'image',
        registry: s.reg.host,
        repository: s.image.slice(s.reg.host.length + 1),
        tag: '2.0.0',
        source: 'distribution',
      },
      s.queue,
    );
    expect((await s.repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0]).toBe(before);

    const resumed = await cli('resume', s.name, ...s.k);
    expect(resumed.out).toBe(`resumed ${s.name}: the next push or poll applies the branch again\n`);
    expect((await s.deliver('poll')).at(-1)).toMatchObject({ kind: 'synced', result: { outcome: 'applied' } });
    expect(await s.value()).toEqual({ v: '3' });
    expect((await cli('resume', s.name, ...s.k)).out).toBe(`${s.name} was not suspended\n`);
    expect((await cli('suspend', s.name, ...s.k)).code).toBe(2); // no reason: refused
  });

  it('reconcile asks the deployed worker through its queue (with the caller’s AWS credentials), and the built worker syncs; queue shows and redrives dead letters', async () => {
    const s = await setup();
    const sqs = new SQSClient(awsConfig());
    const dlq = await sqs.send(
      new CreateQueueCommand({ QueueName: `${uniqueName('dlq')}.fifo`, Attributes: { FifoQueue: 'true' } }),
    );
    const dlqArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.['QueueArn'];
    const queueUrl =
      (
        await sqs.send(
          new CreateQueueCommand({
            QueueName: `${uniqueName('main')}.fifo`,
            Attributes: {
              FifoQueue: 'true',
              VisibilityTimeout: '2',
              RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 1 }),
            },
          }),
        )
      ).QueueUrl ?? '';
    const worker = await startFunction('sync-worker', {
      settings: {
        repositories: [{ url: s.repo.url, branch: 'main' }],
        clusters: { x: testClusterSetting() },
        webhookSecret: { value: 'unused' },
      },
      queueUrl,
    });
    functions.push(worker);
    Object.assign(process.env, {
      ...motoEnv(),
    });
    // Drift, corrected only once someone asks: the deployed worker, through the queue.
    await s.repo.engine.client.apply(
      { ...configMap('a', { v: 'hand edit' }), metadata: { name: 'a', namespace: s.name } },
      { fieldManager: 'kubectl', force: true },
    );
    const asked = await cli('reconcile', s.name, ...s.k, '--queue-url', queueUrl);
    expect(asked.code, asked.err).toBe(0);
    expect(asked.out).toMatch(new RegExp(`^asked the deployed worker to sync ${s.name} at [0-9a-f]{12}`));
    for (let i = 0; i < 5; i++) {
      const { received } = await deliverBatch(queueUrl, (e) => worker.invoke(e));
      if (received.length === 0) break;
    }
    expect(await s.value()).toEqual({ v: '1' });

    const idle = await cli('queue', '--queue-url', queueUrl);
    expect(idle).toMatchObject({
      code: 0,
      out: expect.stringMatching(/: 0 waiting, 0 in flight\ndead letters .*: 0\n$/),
    });
    // A message dead-lettered earlier (SQS moved it there after its receives): queue says so (exit 1), --redrive moves it back.
    const { SendMessageCommand } = await import('@aws-sdk/client-sqs');
    const dead = {
      type: 'sync',
      repo: s.repo.url,
      target: s.name,
      revision: { ref: 'refs/heads/main', sha: '0'.repeat(40) },
      reason: 'push',
    };
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: dlq.QueueUrl,
        MessageBody: JSON.stringify(dead),
        MessageGroupId: `target:${s.name}`,
        MessageDeduplicationId: uniqueName('d'),
      }),
    );
    const stuck = await cli('queue', '--queue-url', queueUrl);
    expect(stuck.code, `${stuck.out}${worker.output().slice(-2000)}`).toBe(1);
    expect(stuck.out).toMatch(/dead letters .*: 1 \(tidegate queue --redrive moves them back/);
    const redriven = await cli('queue', '--queue-url', queueUrl, '--redrive');
    expect(redriven.out).toMatch(
      /^moved 1 dead-lettered message\(s\) back to the queue\n.*: 1 waiting, 0 in flight\ndead letters .*: 0\n$/s,
    );
    expect(redriven.code).toBe(0);
  });

  it('a rollback to the revision already live pins it: the next push is refused as pinned', async () => {
    const s = await setup();
    const live = (await s.repo.ws.git('rev-parse', 'HEAD')).trim();
    const rb = await cli('rollback', s.name, '--to', live.slice(0, 10), ...s.k);
    expect(rb.code, rb.err).toBe(0);
    expect((await readTargetState(s.repo.engine.client, s.name)).pin?.revision.sha).toBe(live);
    await s.repo.commit({ 'apps/a.yaml': stringify(configMap('a', { v: '2' })) });
    expect((await s.deliver('push')).at(-1)).toMatchObject({ kind: 'synced', result: { outcome: 'pinned' } });
    expect(await s.value()).toEqual({ v: '1' });
  });
});
