import { createHash } from 'node:crypto';
import { CreateRepositoryCommand, ECRClient, PutImageCommand } from '@aws-sdk/client-ecr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startDevServer, type DevServer } from '../../cli/dev-server.js';
import { handler as ecrEvent } from '../../functions/ecr-event/handler.js';
import { handler as syncWorker } from '../../functions/sync-worker/handler.js';
import { pushImage, setNotificationTarget } from '../../devenv/index.js';
import { commitAndPush } from '../../shared/source/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { gitopsRepo, markedDeployment } from '../helpers/engine.js';
import { createFifoQueue, drain, lambdaContext, sqsEvent, testClusterSetting, useMotoEnv } from '../helpers/lambda.js';

const deployYaml = (image: string, marker: string) => markedDeployment(image, marker, true);

describe('image automation: registry push → policy → commit → sync', () => {
  let dev: DevServer;
  const secret = 'registry-shared-secret';
  afterAll(async () => {
    await setNotificationTarget(testEnv().registry, null);
    await dev?.stop();
  });

  it('a push to the registry is written into a Flux-style repository (kustomization and Deployment markers) and applied', async () => {
    const reg = testEnv().registry;
    const image = `${reg.host}/apps/${uniqueName('podinfo')}`;
    await pushImage(reg, image.slice(reg.host.length + 1), '1.0.0');
    const ns = uniqueName('img');
    const repo = await gitopsRepo('img');
    const kustomization = `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - deploy.yaml
images:
  - name: ${image}
    newTag: 1.0.0 # {"$imagepolicy": "flux-system:podinfo:tag"}
`;
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: 'img', cluster: 't', path: 'apps', targetNamespace: ns, wait: false }],
        images: [{ name: 'podinfo', repository: image, insecure: true, policy: { semver: { range: '>=1.0.0' } } }],
        imageAutomation: { author: { name: 'Image Bot', email: 'bot@example.test' } },
      }),
      'apps/kustomization.yaml': kustomization,
      'apps/deploy.yaml': deployYaml(`${image}:1.0.0`, 'flux-system:podinfo'),
    });
    await repo.sync('img');
    dev = await startDevServer({
      engine: repo.engine,
      repo: repo.url,
      branch: 'main',
      webhookSecret: 'x',
      registrySecret: secret,
    });
    await setNotificationTarget(reg, `${dev.url}/webhooks/registry?token=${secret}`);
    const before = (await repo.ws.git('rev-parse', 'HEAD')).trim();

    await pushImage(reg, image.slice(reg.host.length + 1), '1.1.0');
    await pushImage(reg, image.slice(reg.host.length + 1), '1.1.0.sig');
    const liveImage = async () =>
      ((await repo.engine.client.get('apps/v1', 'Deployment', ns, 'podinfo'))?.['spec'] as any).template.spec
        .containers[0].image as string;
    await expect.poll(liveImage, { timeout: 20_000, interval: 200 }).toBe(`${image}:1.1.0`);
    await dev.queue.idle();

    await repo.ws.git('pull', '--quiet', 'origin', 'main');
    const log = await repo.ws.git('log', '--format=%an <%ae>%n%B', '-1');
    expect(log).toContain('Image Bot <bot@example.test>');
    expect(log).toContain(`- podinfo: 1.0.0 → 1.1.0 (apps/kustomization.yaml:7)`);
    expect(log).toContain(`- podinfo: ${image}:1.0.0 → ${image}:1.1.0 (apps/deploy.yaml:14)`);
    const diff = await repo.ws.git('diff', '--unified=0', before, 'HEAD');
    const changed = diff.split('\n').filter((l) => /^[-+][^-+]/.test(l));
    expect(changed).toEqual([
      `-          image: ${image}:1.0.0 # {"$imagepolicy": "flux-system:podinfo"}`,
      `+          image: ${image}:1.1.0 # {"$imagepolicy": "flux-system:podinfo"}`,
      '-    newTag: 1.0.0 # {"$imagepolicy": "flux-system:podinfo:tag"}',
      '+    newTag: 1.1.0 # {"$imagepolicy": "flux-system:podinfo:tag"}',
    ]);
    expect((await repo.ws.git('log', '--format=%H', `${before}..HEAD`)).trim().split('\n')).toHaveLength(1);

    // Pushing the same tag again, or a lower one, commits nothing.
    const head = (await repo.ws.git('rev-parse', 'HEAD')).trim();
    await pushImage(reg, image.slice(reg.host.length + 1), '0.9.0');
    await new Promise((r) => setTimeout(r, 1500));
    await dev.queue.idle();
    expect((await repo.ws.git('ls-remote', 'origin', 'refs/heads/main')).split('\t')[0]).toBe(head);

    // Without a notification, the scheduled poll asks the registry itself.
    await setNotificationTarget(reg, null);
    await pushImage(reg, image.slice(reg.host.length + 1), '1.2.0');
    await dev.poll();
    await expect.poll(liveImage, { timeout: 20_000, interval: 200 }).toBe(`${image}:1.2.0`);
  });

  it('retries a push that lost a race: fetch, re-apply, push', async () => {
    const repo = await gitopsRepo('race');
    await repo.commit({ 'a.yaml': 'tag: 1 # {"$imagepolicy": "ns:x:tag"}\n', 'b.txt': 'one\n' });
    let raced = false;
    const result = await commitAndPush(
      { url: repo.url },
      {
        branch: 'main',
        author: { name: 'bot', email: 'bot@example.test' },
        cacheDir: testEnv().workDir,
        change: async (dir) => {
          const { writeFileSync } = await import('node:fs');
          if (!raced) {
            raced = true;
            await repo.commit({ 'b.txt': 'two\n' }, 'a human commits meanwhile');
          }
          writeFileSync(`${dir}/a.yaml`, 'tag: 2 # {"$imagepolicy": "ns:x:tag"}\n');
          return 'bump x';
        },
      },
    );
    expect(result.attempts).toBe(2);
    await repo.ws.git('pull', '--quiet', 'origin', 'main');
    expect(await repo.ws.git('log', '--format=%s', '-2')).toBe('bump x\na human commits meanwhile\n');
    expect(await repo.ws.git('show', 'HEAD:b.txt')).toBe('two\n');
  });
});

describe('image automation from an ECR "Image Action" event (moto), through the Lambda functions', () => {
  let queueUrl = '';
  beforeAll(async () => {
    queueUrl = await createFifoQueue('ecr-img');
  });

  it('ECR push → ecr-event → SQS → worker writes Git → worker syncs the new image', async () => {
    const { aws } = testEnv();
    const ecr = new ECRClient({ endpoint: aws.endpoint, region: aws.region, credentials: aws.credentials });
    const name = uniqueName('podinfo');
    const created = await ecr.send(new CreateRepositoryCommand({ repositoryName: name }));
    const uri = created.repository?.repositoryUri ?? '';
    const account = created.repository?.registryId ?? '';
    const putImage = async (tag: string) => {
      const manifest = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: {
          mediaType: 'application/vnd.docker.container.image.v1+json',
          size: 1,
          digest: `sha256:${createHash('sha256').update(tag).digest('hex')}`,
        },
        layers: [],
      });
      await ecr.send(new PutImageCommand({ repositoryName: name, imageManifest: manifest, imageTag: tag }));
    };
    await putImage('6.0.0');
    const ns = uniqueName('ecr');
    const repo = await gitopsRepo('ecr');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: 'ecr', cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }],
        images: [{ name: 'podinfo', repository: uri, policy: { semver: { range: '^6' } } }],
      }),
      'apps/deploy.yaml': deployYaml(`${uri}:6.0.0`, 'apps:podinfo'),
    });
    useMotoEnv({
      repositories: [{ url: repo.url, branch: 'main' }],
      clusters: { test: testClusterSetting() },
      queueUrl,
    });
    await putImage('6.2.0');
    await putImage('7.0.0');
    const event = {
      version: '0',
      id: 'x',
      'detail-type': 'ECR Image Action',
      source: 'aws.ecr',
      account,
      time: new Date().toISOString(),
      region: aws.region,
      resources: [],
      detail: {
        result: 'SUCCESS',
        'repository-name': name,
        'action-type': 'PUSH',
        'image-tag': '7.0.0',
        'image-digest': 'sha256:1',
      },
    };
    expect(await ecrEvent(event, lambdaContext())).toEqual({ queued: true });
    for (let i = 0; i < 3; i++)
      expect(await syncWorker(sqsEvent(await drain(queueUrl)), lambdaContext())).toEqual({ batchItemFailures: [] }); // image → push → sync
    const live = await repo.engine.client.get('apps/v1', 'Deployment', ns, 'podinfo');
    expect((live?.['spec'] as any).template.spec.containers[0].image).toBe(`${uri}:6.2.0`); // ^6 keeps 7.0.0 out
  });
});
