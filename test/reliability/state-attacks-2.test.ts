import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { GitWorkspace, createBareRepo, startGitServer, type GitServer } from '../../devenv/index.js';
import { LeaseBusyError, acquireLease, readTargetState } from '../../shared/state/index.js';
import { SYSTEM_NAMESPACE, isOwnedBy } from '../../shared/apply/index.js';
import { processSqsBatch } from '../../shared/aws/index.js';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import { approve, handleMessage, syncRepo, type EngineContext } from '../../shared/usecases/index.js';
import type { KubeObject, QueueMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { awsConfig, deliverBatch } from '../helpers/lambda.js';
import {
  deploymentController,
  engineAt as engine,
  kubeClient as client,
  kubeClient,
  noQueue,
  oneTarget as one,
  outcomeOf,
  statePath,
  useFaultProxy,
} from '../helpers/state.js';

/**
 * Breaks of "target state that nothing can lose" found by a second review (README and code only,
 * with the first review's list in docs/reliability.md), each kept as the test that showed it.
 */

const { kube } = testEnv();
const faults = useFaultProxy();
const direct = kubeClient();

describe('a second review', () => {
  it('an inventory entry whose apiVersion the cluster stopped serving: the object is pruned by a version still served, never orphaned', async () => {
    const [target, ns] = [uniqueName('verdrop'), uniqueName('verdrop')];
    const group = `${uniqueName('w')}.example.com`;
    const schema = {
      openAPIV3Schema: {
        type: 'object',
        properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    };
    const crd = (betaServed: boolean): KubeObject => ({
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: `widgets.${group}` },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          { name: 'v1beta1', served: betaServed, storage: false, schema },
          { name: 'v1', served: true, storage: true, schema },
        ],
      },
    });
    const served = (version: string) =>
      expect.poll(
        async () => {
          await direct.discover();
          return direct.resourceFor(`${group}/${version}`, 'Widget') !== undefined;
        },
        { timeout: 20_000, interval: 200 },
      );
    await direct.apply(crd(true), { fieldManager: 'crd-admin', force: true });
    await served('v1beta1').toBe(true);
    const repo = await gitopsRepo('verdrop');
    const widget = {
      apiVersion: `${group}/v1beta1`,
      kind: 'Widget',
      metadata: { name: 'w1' },
      spec: { size: 1 },
    } as KubeObject;
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, ns)] }),
        'apps/keep.yaml': yamlDocs(configMap('keep', { v: '1' })),
        'apps/widget.yaml': yamlDocs(widget),
      },
      'r0',
    );
    expect((await repo.sync(target))[0]?.outcome).toBe('applied');
    await direct.apply(crd(false), { fieldManager: 'crd-admin', force: true }); // an API deprecation: the object is served as v1 only
    await served('v1beta1').toBe(false);
    await repo.commit({ 'apps/widget.yaml': null }, 'r1: drop the widget');
    const [res] = await repo.sync(target);
    expect(res?.changeSet.changes.filter((c) => c.ref.kind === 'Widget').map((c) => c.action)).toEqual(['deleted']);
    expect(await direct.get(`${group}/v1`, 'Widget', ns, 'w1')).toBeUndefined();
  });

  it("`approve --repo B` of A's held revision is refused and records nothing in A's state", async () => {
    const [target, ns] = [uniqueName('own-appr'), uniqueName('own-appr')];
    const a = await gitopsRepo('own-appr-a');
    const b = await gitopsRepo('own-appr-b');
    await a.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, ns)] }),
        'apps/a.yaml': yamlDocs(configMap('from-a', { v: '0' })),
      },
      'a0',
    );
    expect((await a.sync(target))[0]?.outcome).toBe('applied');
    const a1 = await a.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, ns, { gate: { manual: true } })] }),
        'apps/a.yaml': yamlDocs(configMap('from-a', { v: '1-needs-sign-off' })),
      },
      'a1',
    );
    expect((await a.sync(target))[0]).toMatchObject({ outcome: 'held', revision: { sha: a1 } });
    await b.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, ns)] }),
        'apps/b.yaml': yamlDocs(configMap('from-b', { v: '1' })),
      },
      'b1',
    );
    await expect(
      approve(b.engine, { repo: b.url, target, revision: a1.slice(0, 12), by: 'mallory', via: 'cli' }),
    ).rejects.toThrow(/already used on this cluster by|neither the head of the branch nor in the history/);
    expect((await readTargetState(direct, target)).approvals).toBeUndefined();
    expect((await a.sync(target))[0]?.outcome).toBe('held');
    expect((await direct.get('v1', 'ConfigMap', ns, 'from-a'))?.['data']).toEqual({ v: '0' });
  });

  it('a target last applied with prune: false, then a failed revision saying prune: true, then removed: its objects stay', async () => {
    const [ns, x, y] = [uniqueName('rmprune'), uniqueName('rmprune-x'), uniqueName('rmprune-y')];
    const repo = await gitopsRepo('rmprune');
    const tx = (extra: Record<string, unknown>) => ({ ...one(x, ns), path: 'x', ...extra });
    const ty = { ...one(y, `${ns}-y`), path: 'y' };
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [tx({ prune: false }), ty] }),
        'x/keep.yaml': yamlDocs(configMap('precious', { v: '1' })),
        'y/a.yaml': yamlDocs(configMap('ya', { v: '1' })),
      },
      'r0',
    );
    expect((await repo.sync()).map((r) => r.outcome)).toEqual(['applied', 'applied']);
    await repo.commit(
      { 'tidegate.yaml': stringify({ targets: [tx({ prune: true }), ty] }), 'x/broken.yaml': 'kind: [unclosed\n' },
      'r1: prune on, broken manifest',
    );
    expect((await repo.sync(x))[0]?.outcome).toBe('failed');
    await repo.commit({ 'tidegate.yaml': stringify({ targets: [ty] }), 'x/broken.yaml': null }, 'r2: drop x');
    await repo.sync();
    const state = await readTargetState(direct, x);
    expect(state.removed).toBeDefined();
    expect(state.prune).toBe(false);
    expect((await direct.get('v1', 'ConfigMap', ns, 'precious'))?.['data']).toEqual({ v: '1' });
  });

  it('a semver range no tag satisfies: that target fails with the reason, the targets after it still sync, the worker records no retry loop', async () => {
    const [ns, a, b] = [uniqueName('nosemver'), uniqueName('nosemver-a'), uniqueName('nosemver-b')];
    const repo = await gitopsRepo('nosemver');
    const sha = await repo.commit(
      {
        'tidegate.yaml': stringify({
          targets: [
            { ...one(a, ns), path: 'a', source: { ref: { semver: '>=1.0.0' } } },
            { ...one(b, `${ns}-b`), path: 'b' },
          ],
        }),
        'a/a.yaml': yamlDocs(configMap('a', { v: '1' })),
        'b/b.yaml': yamlDocs(configMap('b', { v: '1' })),
      },
      'r0',
    );
    expect((await repo.sync()).map((s) => `${s.target === a ? 'a' : 'b'}:${s.outcome}`)).toEqual([
      'a:failed',
      'b:applied',
    ]);
    const out = await handleMessage(
      repo.engine,
      { type: 'sync', repo: repo.url, target: a, revision: { ref: 'refs/heads/main', sha }, reason: 'push' },
      noQueue,
    );
    expect(out).toMatchObject({
      kind: 'synced',
      result: { outcome: 'failed', error: expect.stringMatching(/^no tag of \S+ satisfies semver range >=1\.0\.0$/) },
    });
  });

  it('a tracked branch other than main: auto-rollback after a failed health check pins the last healthy revision', async () => {
    const [ns, name] = [uniqueName('prodbr'), uniqueName('prodbr')];
    const repo = await gitopsRepo('prodbr');
    const stop = deploymentController(direct, ns, { stalls: (spec) => spec.includes(':bad') });
    try {
      const cfg = stringify({
        targets: [
          {
            ...one(name, ns),
            cluster: 't',
            wait: true,
            timeout: '20s',
            source: { ref: { branch: 'prod' } },
            rollback: { onFailedHealth: true },
          },
        ],
      });
      await repo.commit(
        {
          'tidegate.yaml': stringify({ targets: [{ name: `${name}-dev`, cluster: 'dev', path: 'apps' }] }),
          'apps/d.yaml': yamlDocs(deployment('web', { image: 'registry.example/web:dev' })),
        },
        'dev line on main',
      );
      const good = await repo.ws.commit(
        { 'tidegate.yaml': cfg, 'apps/d.yaml': yamlDocs(deployment('web', { image: 'registry.example/web:1.0' })) },
        'good',
        'prod',
      );
      const push = (sha: string) =>
        handleMessage(
          repo.engine,
          { type: 'sync', repo: repo.url, target: name, revision: { ref: 'refs/heads/prod', sha }, reason: 'push' },
          noQueue,
        );
      expect(await push(good)).toMatchObject({
        kind: 'synced',
        result: { outcome: 'applied', health: { status: 'healthy' } },
      });
      const bad = await repo.ws.commit(
        { 'apps/d.yaml': yamlDocs(deployment('web', { image: 'registry.example/web:bad' })) },
        'bad',
        'prod',
      );
      expect(await push(bad)).toMatchObject({
        kind: 'synced',
        result: { outcome: 'failed', rolledBackTo: { sha: good } },
      });
      expect((await readTargetState(direct, name)).pin?.revision.sha).toBe(good);
      expect(JSON.stringify((await direct.get('apps/v1', 'Deployment', ns, 'web'))?.['spec'])).toContain('web:1.0');
    } finally {
      await stop();
    }
  });

  it('auto-rollback after a health failure with a 1 MB controller message: pinned at the last healthy revision (the pin reason is bounded)', async () => {
    const [ns, name] = [uniqueName('pinlen'), uniqueName('pinlen')];
    const repo = await gitopsRepo('pinlen');
    const stop = deploymentController(direct, ns, {
      stalls: (spec) => spec.includes(':bad'),
      message: `ReplicaSet failed: ${'x'.repeat(1_000_000)}`,
    });
    try {
      await repo.commit(
        {
          'tidegate.yaml': stringify({
            targets: [
              { ...one(name, ns), cluster: 't', wait: true, timeout: '20s', rollback: { onFailedHealth: true } },
            ],
          }),
          'apps/d.yaml': yamlDocs(deployment('web', { image: 'registry.example/web:1.0' })),
        },
        'good',
      );
      const [first] = await repo.sync(name);
      expect(first?.health.status).toBe('healthy');
      await repo.commit({ 'apps/d.yaml': yamlDocs(deployment('web', { image: 'registry.example/web:bad' })) }, 'bad');
      const [failed] = await repo.sync(name);
      expect(failed).toMatchObject({ outcome: 'failed', rolledBackTo: { sha: first?.revision.sha } });
      const state = await readTargetState(direct, name);
      expect(state.pin?.revision.sha).toBe(first?.revision.sha);
      expect(state.pin?.reason.length).toBeLessThanOrEqual(500);
      expect(state.history.at(-1)).toMatchObject({ kind: 'auto-rollback', outcome: 'applied' });
    } finally {
      await stop();
    }
  });

  it('a removal whose deletes are refused with a 1 MB message: the removal is recorded as failed with a bounded error', async () => {
    const [ns, x, y] = [uniqueName('rmlen'), uniqueName('rmlen-x'), uniqueName('rmlen-y')];
    const repo = await gitopsRepo('rmlen');
    await repo.commit(
      {
        'tidegate.yaml': stringify({
          targets: [
            { ...one(x, ns), path: 'x' },
            { ...one(y, `${ns}-y`), path: 'y' },
          ],
        }),
        'x/a.yaml': yamlDocs(configMap('xa', { v: '1' })),
        'y/a.yaml': yamlDocs(configMap('ya', { v: '1' })),
      },
      'r0',
    );
    expect((await repo.sync()).map((r) => r.outcome)).toEqual(['applied', 'applied']);
    const name = `no-delete-${ns}`;
    await direct.create({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['DELETE'], resources: ['configmaps'] }],
        },
        validations: [{ expression: 'false', message: `deletion protected: ${'y'.repeat(1_000_000)}` }],
      },
    } as KubeObject);
    await direct.create({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: {
        policyName: name,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } },
      },
    } as KubeObject);
    try {
      await direct.create(configMap('probe', { v: '1' }, { namespace: ns }));
      await expect
        .poll(
          () =>
            direct
              .delete(
                { group: '', kind: 'ConfigMap', namespace: ns, name: 'probe', apiVersion: 'v1' },
                { dryRun: true },
              )
              .then(
                () => 'allowed',
                () => 'refused',
              ),
          { timeout: 20_000, interval: 300 },
        )
        .toBe('refused');
      await repo.commit(
        { 'tidegate.yaml': stringify({ targets: [{ ...one(y, `${ns}-y`), path: 'y' }] }) },
        'r1: drop x',
      );
      expect((await repo.sync()).map((s) => `${s.target === x ? 'x' : 'y'}:${s.outcome}`)).toEqual([
        'y:unchanged',
        'x:failed',
      ]);
      const last = (await readTargetState(direct, x)).history.at(-1);
      expect(last).toMatchObject({ kind: 'removal', outcome: 'failed' });
      expect(last?.error?.length).toBeLessThanOrEqual(2000);
    } finally {
      for (const kind of ['ValidatingAdmissionPolicyBinding', 'ValidatingAdmissionPolicy'])
        await direct.delete({
          group: 'admissionregistration.k8s.io',
          kind,
          name,
          namespace: '',
          apiVersion: 'admissionregistration.k8s.io/v1',
        });
    }
  });

  it('an object that another controller keeps updating leaves Git: the prune is never recorded as a failed sync', async () => {
    const [target, ns] = [uniqueName('churn'), uniqueName('churn')];
    const repo = await gitopsRepo('churn');
    await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, ns)] }),
        'apps/a.yaml': yamlDocs([configMap('keep', { v: '1' }), configMap('busy', { v: '1' })]),
      },
      'r0',
    );
    expect((await repo.sync(target))[0]?.outcome).toBe('applied');
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++)
        await direct
          .apply(
            {
              apiVersion: 'v1',
              kind: 'ConfigMap',
              metadata: { name: 'busy', namespace: ns, annotations: { 'controller.example/beat': String(i) } },
            } as KubeObject,
            { fieldManager: 'controller', force: true },
          )
          .catch(() => undefined);
    })();
    try {
      await repo.commit({ 'apps/a.yaml': yamlDocs(configMap('keep', { v: '1' })) }, 'r1: busy leaves Git');
      const [res] = await repo.sync(target);
      expect(res?.error).toBeUndefined();
      expect(res?.outcome).not.toBe('failed');
    } finally {
      stop = true;
      await writer;
    }
    // Deleted, or still in the inventory for the next sync: never forgotten. The controller's own
    // apply after the delete may create the object again, as its own (without tidegate's labels).
    const kept = (await readTargetState(direct, target)).inventory.some((e) => e.id.includes('_busy_'));
    const live = await direct.get('v1', 'ConfigMap', ns, 'busy');
    expect(kept || live === undefined || !isOwnedBy(live, target), JSON.stringify(live?.metadata.labels)).toBe(true);
  });
});

describe('a second review: deadlines and the queue', () => {
  it('a sync cut off by its message deadline whose final record is slow: the batch still returns before the invocation ends', async () => {
    const target = uniqueName('dl-record');
    const repo = await gitopsRepo('dl-record');
    const sha = await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, target, { wait: true, timeout: '5m' })] }),
        'apps/d.yaml': yamlDocs(deployment('web')),
      },
      'r0',
    ); // never available
    const ctx = engine(faults.proxy.server, 'lambda:sync-worker:req-1', { waitMs: 20_000 });
    const record = faults.proxy.inject({ method: 'PUT', path: statePath(target), times: 1, fault: { delayMs: 7_000 } });
    const msg: QueueMessage = {
      type: 'sync',
      repo: repo.url,
      target,
      revision: { ref: 'refs/heads/main', sha },
      reason: 'push',
    };
    const rec = {
      messageId: 'm-1',
      receiptHandle: 'rh-1',
      body: JSON.stringify(msg),
      attributes: { MessageGroupId: `target:${target}`, ApproximateReceiveCount: '1' },
    } as unknown as SQSRecord;
    const invocationEnds = Date.now() + 22_000;
    await processSqsBatch([rec], (m, signal) => handleMessage(ctx, m, noQueue, signal).then(() => undefined), {
      remainingMs: () => invocationEnds - Date.now(),
      returnToQueue: () => Promise.resolve(),
    });
    expect(record.hits).toBe(1);
    expect(Date.now()).toBeLessThan(invocationEnds);
    expect((await readTargetState(direct, target)).history.filter((h) => h.outcome === 'failed')).toEqual([]);
  });

  it('a push message (fan-out) started with 20 s left while the apiserver is slow: the batch still returns before the invocation ends', async () => {
    const target = uniqueName('dl-push');
    const repo = await gitopsRepo('dl-push');
    const sha = await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, target)] }),
        'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
      },
      'r0',
    );
    const ctx = engine(faults.proxy.server, 'lambda:sync-worker:req-2', { waitMs: 20_000 });
    const list = faults.proxy.inject({
      method: 'GET',
      path: new RegExp(`/namespaces/${SYSTEM_NAMESPACE}/configmaps$`),
      times: 1,
      fault: { delayMs: 25_000 },
    });
    const msg: QueueMessage = {
      type: 'push',
      repo: repo.url,
      ref: 'refs/heads/main',
      sha,
      paths: null,
      reason: 'push',
    };
    const rec = {
      messageId: 'm-2',
      receiptHandle: 'rh-2',
      body: JSON.stringify(msg),
      attributes: { MessageGroupId: `repo:${repo.url}`, ApproximateReceiveCount: '1' },
    } as unknown as SQSRecord;
    const invocationEnds = Date.now() + 20_000;
    await processSqsBatch([rec], (m, signal) => handleMessage(ctx, m, noQueue, signal).then(() => undefined), {
      remainingMs: () => invocationEnds - Date.now(),
      returnToQueue: () => Promise.resolve(),
    });
    expect(list.hits).toBe(1);
    expect(Date.now()).toBeLessThan(invocationEnds);
  });

  it('a sync message deferred while a CLI command holds the target is never dead-lettered: it runs once the lease is free', async () => {
    const target = uniqueName('busy-dlq');
    const repo = await gitopsRepo('busy-dlq');
    const sha = await repo.commit(
      {
        'tidegate.yaml': stringify({ targets: [one(target, target)] }),
        'apps/a.yaml': yamlDocs(configMap('a', { v: '1' })),
      },
      'r0',
    );
    // The queues as serverless.yml declares them: FIFO, dead-lettered after 10 receives.
    const sqs = new SQSClient(awsConfig());
    const dlq =
      (
        await sqs.send(
          new CreateQueueCommand({ QueueName: `${uniqueName('dlq')}.fifo`, Attributes: { FifoQueue: 'true' } }),
        )
      ).QueueUrl ?? '';
    const dlqArn =
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['QueueArn'] }))).Attributes?.[
        'QueueArn'
      ] ?? '';
    const queueUrl =
      (
        await sqs.send(
          new CreateQueueCommand({
            QueueName: `${uniqueName('sync')}.fifo`,
            Attributes: {
              FifoQueue: 'true',
              VisibilityTimeout: '30',
              RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 10 }),
            },
          }),
        )
      ).QueueUrl ?? '';
    const queue = new SqsQueue(sqs, queueUrl);
    await queue.send([
      { type: 'sync', repo: repo.url, target, revision: { ref: 'refs/heads/main', sha }, reason: 'push' },
    ]);
    const cli = await acquireLease(direct, target, { holder: 'alice@laptop (tidegate sync)', waitMs: 5_000 });
    // The worker as the handler wires it (requeue, returnToQueue), with the 20 s lease wait scaled down.
    const ctx = engine(kube.server, 'lambda:sync-worker', { waitMs: 200 });
    const handled: string[] = [];
    const failures: string[] = [];
    const worker = (event: { Records: SQSRecord[] }) =>
      processSqsBatch(
        event.Records,
        async (m, signal) => {
          const out = await handleMessage(ctx, m, queue, signal);
          handled.push(out.kind === 'synced' ? out.result.outcome : out.kind);
        },
        {
          remainingMs: () => 600_000,
          returnToQueue: (records, seconds) =>
            queue.returnToQueue(
              records.map((r) => r.receiptHandle),
              seconds,
            ),
          requeue: (messages) => queue.send(messages),
          onError: (id, err) => failures.push(`${id}: ${(err as Error).message}`),
        },
      );
    try {
      for (let i = 0; i < 12; i++) await deliverBatch(queueUrl, worker);
    } finally {
      await cli.release();
    }
    await deliverBatch(queueUrl, worker);
    expect(failures).toEqual([]);
    expect(handled).toEqual(['applied']);
    expect(
      (await sqs.send(new ReceiveMessageCommand({ QueueUrl: dlq, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 })))
        .Messages ?? [],
    ).toEqual([]);
  });

  it('a lease whose create was answered only after its duration + skew had passed is renewed before it is used: no two holders', async () => {
    const target = uniqueName('slow-acq');
    const opts = { durationSeconds: 3, clockSkewSeconds: 2 };
    await acquireLease(direct, uniqueName('ns-exists'), { holder: 'setup', waitMs: 0 }).then((l) => l.release()); // tidegate-system exists: the create is answered 201, then 409
    faults.proxy.inject({ method: 'POST', path: /\/leases$/, times: 1, fault: { loseAnswer: true } });
    faults.proxy.inject({ method: 'POST', path: /\/leases$/, times: 4, fault: { status: 429, retryAfter: 2 } });
    const started = Date.now();
    const first = await acquireLease(client(faults.proxy.server), target, {
      holder: 'lambda:worker-1',
      waitMs: 30_000,
      ...opts,
    });
    try {
      expect(Date.now() - started).toBeGreaterThan((opts.durationSeconds + opts.clockSkewSeconds) * 1000);
      await expect(
        acquireLease(direct, target, { holder: 'alice@laptop (tidegate rollback)', waitMs: 1_000, ...opts }),
      ).rejects.toBeInstanceOf(LeaseBusyError);
      expect(first.lost.aborted).toBe(false);
    } finally {
      await first.release();
    }
  });
});

describe('a second review: a git server out of reach while a gate is evaluated', () => {
  let git: GitServer;
  beforeAll(async () => {
    git = await startGitServer({ root: join(mkdtempSync(join(tmpdir(), 'tidegate-attack-git-')), 'repos') });
  });
  afterAll(() => git?.stop());

  it('the git server unreachable while a Tag signature gate looks up the tag: thrown for the queue to retry, nothing recorded as failed', async () => {
    const ns = uniqueName('tagdown');
    const url = await createBareRepo(git, uniqueName('tagdown'));
    const ws = await GitWorkspace.clone(git, url);
    try {
      const target = {
        ...one(ns, ns),
        source: { ref: { tag: 'v1' } },
        gate: { verify: { mode: 'Tag', keys: ['release'] } },
      };
      await ws.commit(
        { 'tidegate.yaml': stringify({ targets: [target] }), 'apps/app.yaml': yamlDocs(configMap('app', { v: '1' })) },
        'one',
      );
      await ws.git('tag', '-a', 'v1', '-m', 'release 1');
      await ws.git('push', '--quiet', 'origin', 'v1');
      const ctx: EngineContext = {
        ...engine(faults.proxy.server, 'lambda:worker', { waitMs: 10_000 }),
        trustedKeys: () =>
          Promise.resolve([
            {
              name: 'release',
              key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl release@example.test',
            },
          ]),
      };
      // The gate is judged right after the target's state is read (under its lease): the git server goes while that read waits.
      const stateRead = faults.proxy.inject({
        method: 'GET',
        path: new RegExp(`/configmaps/tidegate-target-${ns}$`),
        times: 1,
        fault: { delayMs: 2_500 },
      });
      const sync = outcomeOf(syncRepo(ctx, { repo: url, target: ns }));
      await expect.poll(() => stateRead.hits, { timeout: 20_000, interval: 20 }).toBe(1);
      await git.down();
      const outcome = await sync;
      await git.up();
      expect(outcome).toMatch(/^threw cannot (list refs|fetch) .*ECONNREFUSED/);
      expect((await readTargetState(direct, ns)).history).toEqual([]);
    } finally {
      ws.remove();
    }
  });
});
