import { randomBytes } from 'node:crypto';
import type { SQSBatchResponse } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startGitHub, startHelmRepo, type HelmRepo, type TestGitHub } from '../../devenv/index.js';
import type { SyncMessage } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { testEnv } from '../helpers/env.js';
import {
  apiEvent,
  createFifoQueue,
  deliverBatch,
  githubHeaders,
  pushPayload,
  testClusterSetting,
  syncedInFanOut,
} from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';
import { fluxRepository, publishFixtureChart } from '../flux/fixture.js';

const SECRET = 'flux-deployed-secret';
const TOKEN = 'ghp_flux_deployed';

/**
 * A Flux repository on the deployed path: the push through the built github-webhook bundle, the
 * fan-out and the syncs through the built sync-worker bundle (with the kubectl/helm layer), from
 * SQS (moto). The Kustomizations' dependsOn holds as it does from the CLI; a push that changes only
 * the apps overlay syncs only what it declares.
 */
describe('a Flux repository through the built bundles and SQS', () => {
  let github: TestGitHub;
  let helm: HelmRepo;
  let webhook: LambdaFunction;
  let worker: LambdaFunction;
  let queueUrl = '';
  let repo: Awaited<ReturnType<typeof gitopsRepo>>;
  const id = randomBytes(3).toString('hex');
  const prefix = `d${id}-`;
  const seen: SyncMessage[] = [];
  const inFanOut: string[][] = [];
  const chainsSynced = () => [...seen.map((m) => m.chain ?? [m.target]), ...inFanOut];
  let files: Record<string, string> = {};

  beforeAll(async () => {
    github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
    helm = await startHelmRepo(testEnv().tools.helm);
    for (const [chart, version] of [
      ['widget-operator', '1.0.0'],
      ['podinfo', '1.0.0'],
    ])
      await publishFixtureChart(helm, chart ?? '', version ?? '', id);
    repo = await gitopsRepo('flux-deployed', { owner: 'acme' });
    files = fluxRepository(id, helm.url);
    queueUrl = await createFifoQueue('flux-deployed');
    const settings = {
      repositories: [{ url: repo.url, branch: 'main', token: { value: TOKEN }, githubApiUrl: github.url }],
      clusters: { test: testClusterSetting() },
      webhookSecret: { value: SECRET },
      render: { allowedHosts: ['127.0.0.1'] },
    };
    [webhook, worker] = await Promise.all([
      startFunction('github-webhook', { settings, queueUrl }),
      startFunction('sync-worker', { settings, queueUrl }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([webhook?.stop(), worker?.stop(), helm?.stop()]);
    expect(github.violations).toEqual([]);
    await github?.stop();
  });

  const push = async (sha: string, paths: string[]) => {
    const body = pushPayload(repo.url, sha, paths);
    return webhook.invoke<{ statusCode: number }>(
      apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body),
    );
  };
  const work = async () => {
    for (let i = 0; i < 5; i++) {
      const { received, failures } = await deliverBatch(queueUrl, async (event) => {
        seen.push(...event.Records.map((r) => JSON.parse(r.body) as SyncMessage).filter((m) => m.type === 'sync'));
        const from = worker.output().length;
        const response = await worker.invoke<SQSBatchResponse>(event);
        // A push's first sync runs in its fan-out (a chain all the same).
        inFanOut.push(...syncedInFanOut(worker.output().slice(from)));
        return response;
      });
      expect(failures, worker.output().slice(-2000)).toEqual([]);
      if (received.length === 0) return;
    }
  };
  const name = (n: string) => `${prefix}${n}`;

  it('a push of the whole repository: one chain in dependency order, the CRD chart before the configs using it, the apps last', async () => {
    const sha = await repo.commit({
      ...files,
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/production', cluster: 'test', prefix }] }),
    });
    expect((await push(sha, ['tidegate.yaml', ...Object.keys(files)])).statusCode).toBe(202);
    await work();
    const chains = chainsSynced();
    const chain = chains.find((c) => c.includes(name('apps'))) ?? [];
    const operator = name(`widgets-${id}-widget-operator`);
    const podinfo = name(`podinfo-${id}-podinfo`);
    expect(chain.indexOf(operator)).toBeGreaterThanOrEqual(0);
    expect(chain.indexOf(operator)).toBeLessThan(chain.indexOf(name('infra-configs')));
    expect(chain.indexOf(name('infra-configs'))).toBeLessThan(chain.indexOf(name('apps')));
    expect(chain.indexOf(name('apps'))).toBeLessThan(chain.indexOf(podinfo));
    const { client } = repo.engine;
    for (const t of [operator, name('infra-configs'), name('apps'), podinfo])
      expect(
        (await readTargetState(client, t)).history.map((h) => [h.revision.sha, h.outcome]),
        t,
      ).toEqual([[sha, 'applied']]);
    expect(await client.get(`t${id}.example.dev/v1`, 'Widget', `widgets-${id}`, 'default-widget')).toBeDefined();
    const deployment = await client.get('apps/v1', 'Deployment', `podinfo-${id}`, 'podinfo');
    expect((deployment?.['spec'] as { replicas: number }).replicas).toBe(2);
    expect(github.statuses('acme', repo.name, sha).find((s) => s.context === `tidegate/${podinfo}`)?.state).toBe(
      'success',
    );
  });

  it('a push changing only the apps overlay syncs the apps Kustomization and the HelmRelease it declares, nothing else', async () => {
    seen.length = 0;
    inFanOut.length = 0;
    const values = (files['apps/production/podinfo-values.yaml'] ?? '').replace('replicaCount: 2', 'replicaCount: 4');
    const sha = await repo.commit({ 'apps/production/podinfo-values.yaml': values });
    await push(sha, ['apps/production/podinfo-values.yaml']);
    await work();
    const synced = chainsSynced().flat().sort();
    expect(synced).toEqual([name('apps'), name(`podinfo-${id}-podinfo`)].sort());
    const deployment = await repo.engine.client.get('apps/v1', 'Deployment', `podinfo-${id}`, 'podinfo');
    expect((deployment?.['spec'] as { replicas: number }).replicas).toBe(4);
  });
});
