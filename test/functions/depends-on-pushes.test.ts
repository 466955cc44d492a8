import { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SqsQueue } from '../../shared/aws/sqs-queue.js';
import type { KubeObject, QueueMessage, SyncMessage } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { deployedPath } from '../helpers/deployed.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { awsConfig, drain, sqsEvent, syncedInFanOut } from '../helpers/lambda.js';

/**
 * dependsOn across pushes and sign-offs, on the deployed path (built bundles, SQS in moto): what
 * an adversarial review found the single-push test did not cover.
 */
describe('dependsOn: two pushes in a row', () => {
  const h = deployedPath('dep-pushes');
  const [infra, apps] = [uniqueName('infra'), uniqueName('apps')];
  const group = `${uniqueName('g')}.example.com`;
  const crd = (scope: string): KubeObject => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope,
      names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        },
      ],
    },
  });
  const widget = (size: number): KubeObject =>
    ({ apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size } }) as KubeObject;

  it('a push that breaks the dependency and one that changes only the dependant share one message group: the dependant never goes ahead', async () => {
    const r0 = await h.repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: apps, cluster: 'test', path: 'apps', targetNamespace: apps, wait: false, dependsOn: [infra] },
          { name: infra, cluster: 'test', path: 'infra', wait: true, timeout: '30s' },
        ],
      }),
      'infra/crd.yaml': yamlDocs(crd('Namespaced')),
      'apps/widget.yaml': yamlDocs(widget(1)),
    });
    await h.push(r0, ['tidegate.yaml']);
    await h.work();
    const { client } = h.repo.engine;
    expect((await readTargetState(client, apps)).history.map((e) => e.outcome)).toEqual(['applied']);

    // R1: infra broken (the apiserver refuses the CRD), apps changed. R2: only apps changed.
    const r1 = await h.repo.commit({
      'infra/crd.yaml': yamlDocs(crd('Sideways')),
      'apps/widget.yaml': yamlDocs(widget(2)),
    });
    await h.push(r1, ['infra/crd.yaml', 'apps/widget.yaml']);
    const r2 = await h.repo.commit({ 'apps/extra.yaml': yamlDocs(configMap('extra', { a: '1' })) });
    await h.push(r2, ['apps/extra.yaml']);
    const fanOuts = await drain(h.queueUrl);
    // One group (the repository's): SQS hands the two pushes over in this order, one at a time,
    // whatever the concurrency.
    expect(fanOuts.map((r) => (JSON.parse(r.body) as QueueMessage).type)).toEqual(['push', 'push']);
    expect(fanOuts[1]?.attributes.MessageGroupId).toBe(fanOuts[0]?.attributes.MessageGroupId);
    const from = h.worker.output().length;
    await h.worker.invoke<SQSBatchResponse>(sqsEvent(fanOuts));
    // A dependsOn set's syncs are never run in the fan-out: both chains are queued in the set's group, in push order.
    expect(syncedInFanOut(h.worker.output().slice(from))).toEqual([]);
    const chains = await drain(h.queueUrl);
    expect(chains.map((r) => JSON.parse(r.body) as SyncMessage).map((m) => m.chain ?? [m.target])).toEqual([
      [infra, apps],
      [apps],
    ]);
    expect(chains[1]?.attributes.MessageGroupId).toBe(chains[0]?.attributes.MessageGroupId);
    await h.worker.invoke<SQSBatchResponse>(sqsEvent(chains));
    expect(await drain(h.queueUrl)).toEqual([]); // nothing left for another worker to run out of order

    expect((await readTargetState(client, infra)).history.at(-1)).toMatchObject({ outcome: 'failed' });
    expect((await client.get(`${group}/v1`, 'Widget', apps, 'w1'))?.['spec']).toEqual({ size: 1 });
    expect(h.github.statuses('acme', h.repo.name, r2).find((s) => s.context === `tidegate/${apps}`)).toMatchObject({
      state: 'failure',
      description: expect.stringContaining(`not synced: dependency ${infra} failed`),
    });
  });
});

describe('dependsOn: a dependency that was not synced holds back its own dependants', () => {
  const h = deployedPath('dep-transitive');
  const [base, mid, leaf] = [uniqueName('base'), uniqueName('mid'), uniqueName('leaf')];

  it('base ← mid ← leaf: base fails, mid is not synced; a later push of leaf alone waits for mid', async () => {
    const r0 = await h.repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: base, cluster: 'test', path: 'base', targetNamespace: base, wait: false },
          { name: mid, cluster: 'test', path: 'mid', targetNamespace: mid, wait: false, dependsOn: [base] },
          { name: leaf, cluster: 'test', path: 'leaf', targetNamespace: leaf, wait: false, dependsOn: [mid] },
        ],
      }),
      'base/cm.yaml': yamlDocs(configMap('b', { v: '0' })),
      'mid/cm.yaml': yamlDocs(configMap('m', { v: '0' })),
      'leaf/cm.yaml': yamlDocs(configMap('l', { v: '0' })),
    });
    await h.push(r0, ['tidegate.yaml']);
    await h.work();
    const { client } = h.repo.engine;

    const r1 = await h.repo.commit({
      'base/cm.yaml': yamlDocs(configMap('Not_A_Valid_Name', { v: '1' })),
      'mid/cm.yaml': yamlDocs(configMap('m', { v: '1' })),
    });
    await h.push(r1, ['base/cm.yaml', 'mid/cm.yaml']);
    await h.work();
    expect((await readTargetState(client, base)).history.at(-1)).toMatchObject({ outcome: 'failed' });
    expect((await client.get('v1', 'ConfigMap', mid, 'm'))?.['data']).toEqual({ v: '0' });

    const r2 = await h.repo.commit({ 'leaf/cm.yaml': yamlDocs(configMap('l', { v: '2' })) });
    await h.push(r2, ['leaf/cm.yaml']);
    await h.work();
    expect(h.github.statuses('acme', h.repo.name, r2).find((s) => s.context === `tidegate/${leaf}`)).toMatchObject({
      state: 'failure',
      description: expect.stringContaining(`not synced: dependency ${mid} waits for ${base} failed`),
    });
    expect((await client.get('v1', 'ConfigMap', leaf, 'l'))?.['data']).toEqual({ v: '0' });
  });
});

describe('dependsOn: /tidegate approve releases the held dependency and its chain', () => {
  const h = deployedPath('dep-approve');
  const [gated, app] = [uniqueName('gated'), uniqueName('app')];

  it('after the held dependency is approved and applied, its dependant is synced at that revision', async () => {
    const { repo, github } = h;
    github.grant('acme', repo.name, 'erin', 'write');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: app, cluster: 'test', path: 'app', targetNamespace: app, wait: false, dependsOn: [gated] },
          { name: gated, cluster: 'test', path: 'gated', targetNamespace: gated, wait: false, gate: { manual: true } },
        ],
      }),
      'gated/cm.yaml': yamlDocs(configMap('g', { v: '0' })),
      'app/cm.yaml': yamlDocs(configMap('a', { v: '0' })),
    });
    await repo.ws.git('checkout', '--quiet', '-B', 'change', 'HEAD');
    await repo.ws.commit(
      { 'gated/cm.yaml': yamlDocs(configMap('g', { v: '1' })), 'app/cm.yaml': yamlDocs(configMap('a', { v: '1' })) },
      'v1',
      'change',
    );
    const pr = (await github.openPullRequest('acme', repo.name, { head: 'change', base: 'main', author: 'alice' }))
      .number;
    const merged = await github.merge('acme', repo.name, pr);
    await h.push(merged, ['tidegate.yaml', 'gated/cm.yaml', 'app/cm.yaml']);
    await h.work();
    const { client } = repo.engine;
    expect((await readTargetState(client, gated)).history.at(-1)).toMatchObject({
      revision: { sha: merged },
      outcome: 'held',
    });
    expect(github.statuses('acme', repo.name, merged).find((s) => s.context === `tidegate/${app}`)).toMatchObject({
      description: `failed: not synced: dependency ${gated} held`,
    });

    // What the github-webhook enqueues for a `/tidegate approve` comment on the merged pull request.
    await new SqsQueue(new SQSClient(awsConfig()), h.queueUrl).send([
      { type: 'approve', repo: repo.url, pullRequest: pr, commenter: 'erin', targets: [], comment: 4242 },
    ]);
    await h.work();
    expect((await client.get('v1', 'ConfigMap', gated, 'g'))?.['data']).toEqual({ v: '1' });
    expect((await readTargetState(client, app)).history.at(-1)).toMatchObject({
      revision: { sha: merged },
      outcome: 'applied',
    });
    expect((await client.get('v1', 'ConfigMap', app, 'a'))?.['data']).toEqual({ v: '1' });
  });
});
