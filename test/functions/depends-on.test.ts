import type { SQSBatchResponse } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { readTargetState } from '../../shared/state/index.js';
import type { KubeObject, SyncMessage } from '../../shared/model/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { gitopsRepo, yamlDocs } from '../helpers/engine.js';
import {
  apiEvent,
  createFifoQueue,
  deliverBatch,
  githubHeaders,
  pushPayload,
  syncedInFanOut,
  testClusterSetting,
} from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';

const SECRET = 'depends-on-secret';
const TOKEN = 'ghp_depends_on';

/**
 * dependsOn on the deployed path: a push through the built github-webhook bundle, the fan-out and
 * the syncs through the built sync-worker bundle, messages delivered from SQS (moto) the way the
 * event source mapping delivers them. `apps` holds a custom resource of the CRD `infra` applies,
 * and is declared first: only the dependency order makes it apply.
 */
describe('dependsOn through the built bundles and SQS', () => {
  let github: TestGitHub;
  let webhook: LambdaFunction;
  let worker: LambdaFunction;
  let queueUrl = '';
  let repo: Awaited<ReturnType<typeof gitopsRepo>>;
  const [infra, apps, other] = [uniqueName('infra'), uniqueName('apps'), uniqueName('other')];
  const group = `${uniqueName('w')}.example.com`;
  const crd: KubeObject = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: 'Namespaced',
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
  };
  const widget = (size: number): KubeObject =>
    ({ apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size } }) as KubeObject;
  const seen: SyncMessage[] = [];
  const inFanOut: string[][] = [];
  const chains = () => [...seen.map((m) => m.chain ?? [m.target]), ...inFanOut];

  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
    repo = await gitopsRepo('depends-on', { owner: 'acme' });
    queueUrl = await createFifoQueue('depends-on');
    const settings = {
      repositories: [{ url: repo.url, branch: 'main', token: { value: TOKEN }, githubApiUrl: github.url }],
      clusters: { test: testClusterSetting() },
      webhookSecret: { value: SECRET },
    };
    [webhook, worker] = await Promise.all([
      startFunction('github-webhook', { settings, queueUrl }),
      startFunction('sync-worker', { settings, queueUrl }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([webhook?.stop(), worker?.stop()]);
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  const push = async (sha: string, paths: string[]) => {
    const body = pushPayload(repo.url, sha, paths);
    return webhook.invoke<{ statusCode: number }>(
      apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body),
    );
  };
  /** What the event source mapping does until the queue is empty: batches of 10, the worker's partial failures left in the queue. */
  const work = async () => {
    for (let i = 0; i < 5; i++) {
      const { received, failures } = await deliverBatch(queueUrl, async (event) => {
        seen.push(...event.Records.map((r) => JSON.parse(r.body) as SyncMessage).filter((m) => m.type === 'sync'));
        const from = worker.output().length;
        const response = await worker.invoke<SQSBatchResponse>(event);
        // A push's first sync runs in its fan-out: a chain synced as one message all the same.
        inFanOut.push(...syncedInFanOut(worker.output().slice(from)));
        return response;
      });
      expect(failures, worker.output().slice(-2000)).toEqual([]);
      if (received.length === 0) return;
    }
  };
  const config = stringify({
    targets: [
      { name: apps, cluster: 'test', path: 'apps', targetNamespace: apps, wait: false, dependsOn: [infra] },
      { name: infra, cluster: 'test', path: 'infra', wait: true, timeout: '30s' },
      { name: other, cluster: 'test', path: 'other', targetNamespace: other, wait: false },
    ],
  });

  it('a push changing infra (a CRD) and apps (a custom resource of it): one message for the chain, infra applied before apps at the same revision; other in a message of its own', async () => {
    const sha = await repo.commit({
      'tidegate.yaml': config,
      'infra/crd.yaml': yamlDocs(crd),
      'apps/widget.yaml': yamlDocs(widget(1)),
      'other/cm.yaml': yamlDocs({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'o' }, data: { v: '1' } }),
    });
    expect((await push(sha, ['tidegate.yaml', 'infra/crd.yaml', 'apps/widget.yaml', 'other/cm.yaml'])).statusCode).toBe(
      202,
    );
    await work();
    expect(chains().sort()).toEqual([[infra, apps], [other]].sort());
    const { client } = repo.engine;
    const [infraState, appsState] = await Promise.all([readTargetState(client, infra), readTargetState(client, apps)]);
    expect(infraState.history.map((h) => [h.revision.sha, h.outcome])).toEqual([[sha, 'applied']]);
    expect(appsState.history.map((h) => [h.revision.sha, h.outcome])).toEqual([[sha, 'applied']]);
    const [i, a] = [infraState.history[0], appsState.history[0]];
    expect(Date.parse(a?.startedAt ?? '')).toBeGreaterThanOrEqual(
      Date.parse(i?.startedAt ?? '') + (i?.durationMs ?? 0),
    );
    expect((await client.get(`${group}/v1`, 'Widget', apps, 'w1'))?.['spec']).toEqual({ size: 1 });
    expect(
      github
        .statuses('acme', repo.name, sha)
        .map((s) => [s.context, s.state])
        .sort(),
    ).toEqual(
      [
        [`tidegate/${apps}`, 'success'],
        [`tidegate/${infra}`, 'success'],
        [`tidegate/${other}`, 'success'],
      ].sort(),
    );
  });

  it('infra broken in the next revision: apps is not synced and says why (result, history, commit status)', async () => {
    seen.length = 0;
    inFanOut.length = 0;
    const broken = { ...crd, spec: { ...(crd['spec'] as object), scope: 'Sideways' } }; // refused by the apiserver
    const sha = await repo.commit({ 'infra/crd.yaml': yamlDocs(broken), 'apps/widget.yaml': yamlDocs(widget(2)) });
    await push(sha, ['infra/crd.yaml', 'apps/widget.yaml']);
    await work();
    expect(chains()).toEqual([[infra, apps]]);
    const { client } = repo.engine;
    expect((await readTargetState(client, infra)).history.at(-1)).toMatchObject({
      revision: { sha },
      outcome: 'failed',
    });
    expect((await client.get(`${group}/v1`, 'Widget', apps, 'w1'))?.['spec']).toEqual({ size: 1 }); // not applied
    expect(github.statuses('acme', repo.name, sha).find((s) => s.context === `tidegate/${apps}`)).toMatchObject({
      state: 'failure',
      description: `failed: not synced: dependency ${infra} failed`,
    });
    expect(worker.output()).toContain(`not synced: dependency ${infra} failed`);
  });
});
