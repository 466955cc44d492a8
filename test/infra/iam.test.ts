import { createHash, createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateRepositoryCommand, ECRClient, PutImageCommand } from '@aws-sdk/client-ecr';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  IAMClient,
  PutRolePolicyCommand,
  PutUserPolicyCommand,
} from '@aws-sdk/client-iam';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startMoto, type Moto } from '../../devenv/index.js';
import { createRuntime } from '../../shared/aws/runtime.js';
import { EksAuth } from '../../shared/cluster/eks.js';
import { ecrLogins } from '../../shared/images/index.js';
import { errorMessage } from '../../shared/model/index.js';
import { signStatusLink } from '../../shared/triggers/index.js';
import { uniqueName, testEnv } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { apiEvent, deliverBatch, githubHeaders, pushPayload } from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';
import { asMotoChecksIt, packageStack, rolePolicies, type Template } from '../helpers/serverless.js';

/**
 * Every function runs with the permissions its deployed role has: moto enforces IAM, and each
 * function's built bundle runs with the keys of an IAM user whose policy is its role's, read from
 * the template `serverless package` writes (never copied by hand).
 */
const SECRET = 'iam-webhook-secret';
const REGISTRY_SECRET = 'iam-registry-secret';
const FUNCTIONS = [
  'github-webhook',
  'registry-webhook',
  'ecr-event',
  'scheduled-poll',
  'sync-worker',
  'status-page',
] as const;
const STATUS_SECRET = 'iam-status-link-secret';
const HOOK_KEY = 'iam-notify-signing-key';

describe('IAM enforced: each function with only its own role', () => {
  let moto: Moto;
  let template: Template;
  let queueUrl = '';
  let deadLetterUrl = '';
  let admin: { endpoint: string; region: string; credentials: Moto['credentials'] };
  const keys = new Map<string, Moto['credentials']>();
  const running: LambdaFunction[] = [];
  let repo: Awaited<ReturnType<typeof gitopsRepo>>;
  let imageUri = '';
  const ns = uniqueName('iam');

  beforeAll(async () => {
    moto = await startMoto(mkdtempSync(join(tmpdir(), 'moto-iam-')), { enforceIam: true });
    admin = { endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials };
    ({ template } = await packageStack());
    const sqs = new SQSClient(admin);
    queueUrl =
      (
        await sqs.send(
          new CreateQueueCommand({
            QueueName: `${uniqueName('iam')}.fifo`,
            Attributes: { FifoQueue: 'true', VisibilityTimeout: '60' },
          }),
        )
      ).QueueUrl ?? '';
    const queueArn =
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] })))
        .Attributes?.['QueueArn'] ?? '';
    deadLetterUrl =
      (
        await sqs.send(
          new CreateQueueCommand({ QueueName: `${uniqueName('iam-dlq')}.fifo`, Attributes: { FifoQueue: 'true' } }),
        )
      ).QueueUrl ?? '';
    const deadLetterArn =
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetterUrl, AttributeNames: ['QueueArn'] })))
        .Attributes?.['QueueArn'] ?? '';
    // The secrets as the deploy steps keep them: SSM SecureString parameters.
    const ssm = new SSMClient(admin);
    const { kube } = testEnv();
    for (const [name, value] of [
      ['/tidegate-webhooks/github', SECRET],
      ['/tidegate-webhooks/registry', REGISTRY_SECRET],
      ['/tidegate/cluster-token', kube.token],
      ['/tidegate-status/link', STATUS_SECRET],
      ['/tidegate/notify-hook-key', HOOK_KEY],
    ])
      await ssm.send(new PutParameterCommand({ Name: name, Value: value, Type: 'SecureString' }));
    // The principals: one IAM user per function, its policy the function's role's.
    const iam = new IAMClient({ ...admin, region: 'us-east-1' });
    for (const fn of FUNCTIONS) {
      await iam.send(new CreateUserCommand({ UserName: `fn-${fn}` }));
      for (const [n, doc] of rolePolicies(
        template,
        fn,
        { region: moto.region, accountId: '123456789012' },
        { 'SyncQueue.Arn': queueArn, 'SyncDeadLetterQueue.Arn': deadLetterArn },
      ).entries())
        await iam.send(
          new PutUserPolicyCommand({
            UserName: `fn-${fn}`,
            PolicyName: `role-${n}`,
            PolicyDocument: JSON.stringify(asMotoChecksIt(doc)),
          }),
        );
      const key = (await iam.send(new CreateAccessKeyCommand({ UserName: `fn-${fn}` }))).AccessKey;
      keys.set(fn, { accessKeyId: key?.AccessKeyId ?? '', secretAccessKey: key?.SecretAccessKey ?? '' });
    }
    // An ECR repository an image policy follows.
    const ecr = new ECRClient(admin);
    const name = uniqueName('web');
    imageUri = (await ecr.send(new CreateRepositoryCommand({ repositoryName: name }))).repository?.repositoryUri ?? '';
    for (const tag of ['1.0.0', '1.2.0']) {
      const manifest = {
        schemaVersion: 2,
        mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
        config: {
          mediaType: 'application/vnd.docker.container.image.v1+json',
          size: 1,
          digest: `sha256:${createHash('sha256').update(tag).digest('hex')}`,
        },
        layers: [],
      };
      await ecr.send(
        new PutImageCommand({ repositoryName: name, imageManifest: JSON.stringify(manifest), imageTag: tag }),
      );
    }
    repo = await gitopsRepo('iam');
  }, 180_000);
  afterAll(async () => {
    await Promise.all(running.map((f) => f.stop()));
    await moto?.stop();
  });

  const settings = () => ({
    repositories: [{ url: repo.url, branch: 'main' }],
    clusters: {
      test: {
        server: testEnv().kube.server,
        caData: Buffer.from(testEnv().kube.caPem).toString('base64'),
        token: { ssm: '/tidegate/cluster-token' },
      },
    },
    webhookSecret: { ssm: '/tidegate-webhooks/github' },
    registrySecret: { ssm: '/tidegate-webhooks/registry' },
  });
  const start = async (fn: (typeof FUNCTIONS)[number], overrides: Record<string, unknown> = {}) => {
    const f = await startFunction(fn, {
      settings: { ...settings(), ...overrides },
      queueUrl,
      deadLetterQueueUrl: deadLetterUrl,
      aws: { endpoint: moto.endpoint, region: moto.region, credentials: keys.get(fn) ?? moto.credentials },
    });
    running.push(f);
    return f;
  };
  const depth = async () =>
    Number(
      (
        await new SQSClient(admin).send(
          new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }),
        )
      ).Attributes?.['ApproximateNumberOfMessages'] ?? 0,
    );

  it('the webhooks, the ECR event and the poll enqueue with their own roles; the worker fans out, syncs and writes an image update from ECR with its own', async () => {
    const sha = await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: ns, cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }],
        images: [{ name: 'web', repository: imageUri, policy: { semver: { range: '^1' } } }],
      }),
      'apps/deploy.yaml': yamlDocs(deployment('web', { image: `${imageUri}:1.0.0` })).replace(
        `image: ${imageUri}:1.0.0`,
        `image: ${imageUri}:1.0.0 # {"$imagepolicy": "apps:web"}`,
      ),
    });
    const [webhook, registry, ecrEvent, poll, worker] = await Promise.all(FUNCTIONS.slice(0, 5).map((fn) => start(fn)));
    const body = pushPayload(repo.url, sha, ['tidegate.yaml', 'apps/deploy.yaml']);
    expect(
      await webhook?.invoke(apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body)),
    ).toMatchObject({ statusCode: 202 });
    const notification = JSON.stringify({
      events: [
        {
          action: 'push',
          target: {
            repository: 'team/other',
            tag: '2.0.0',
            digest: 'sha256:2',
            mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
          },
          request: { host: 'registry.example' },
        },
      ],
    });
    expect(
      await registry?.invoke(
        apiEvent(
          '/webhooks/registry',
          {
            'content-type': 'application/vnd.docker.distribution.events.v1+json',
            authorization: `Bearer ${REGISTRY_SECRET}`,
          },
          notification,
        ),
      ),
    ).toMatchObject({ statusCode: 202 });
    const repositoryName = imageUri.split('/').slice(1).join('/');
    const ecrPush = {
      version: '0',
      id: 'x',
      'detail-type': 'ECR Image Action',
      source: 'aws.ecr',
      account: '123456789012',
      time: new Date().toISOString(),
      region: moto.region,
      resources: [],
      detail: {
        result: 'SUCCESS',
        'repository-name': repositoryName,
        'action-type': 'PUSH',
        'image-tag': '1.2.0',
        'image-digest': 'sha256:1',
      },
    };
    expect(await ecrEvent?.invoke(ecrPush)).toEqual({ queued: true });
    expect(await poll?.invoke({})).toEqual({ queued: 3 }); // the branch head, a reload pass and a previews sweep
    // With its own role it read the dead-letter queue's depth, and published it.
    expect(poll?.output()).not.toMatch(/dead-letter queue not read/);
    expect(poll?.output()).toMatch(/"DeadLetterQueueDepth":0\b/);
    expect(await depth()).toBeGreaterThanOrEqual(4);

    for (let i = 0; i < 8 && (await depth()) > 0; i++) {
      const { failures } = await deliverBatch(queueUrl, (event) => worker?.invoke(event) as never, admin);
      expect(failures, worker?.output().slice(-3000)).toEqual([]);
    }
    const live = await repo.engine.client.get('apps/v1', 'Deployment', ns, 'web');
    expect(JSON.stringify(live?.['spec'])).toContain(`${imageUri}:1.2.0`); // written to Git from ECR's tags, then applied
    await repo.ws.git('pull', '--quiet', 'origin', 'main');
    expect(await repo.ws.git('show', 'HEAD:apps/deploy.yaml')).toContain(`${imageUri}:1.2.0`);
  }, 120_000);

  it("a call outside a role is denied, naming the action: the webhook with the ECR event function's role cannot read its secret; only the worker may describe clusters", async () => {
    const webhook = await startFunction('github-webhook', {
      settings: settings(),
      queueUrl,
      aws: { endpoint: moto.endpoint, region: moto.region, credentials: keys.get('ecr-event') ?? moto.credentials },
    });
    running.push(webhook);
    const body = pushPayload(repo.url, 'a'.repeat(40), ['x']);
    await expect(
      webhook.invoke(apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body)),
    ).rejects.toThrow();
    expect(webhook.output()).toMatch(
      /"message":"invocation failed".*cannot read parameter \/tidegate-webhooks\/github \(ssm:GetParameter, HTTP 403\)/,
    );

    const eks = (credentials: Moto['credentials']) =>
      new EKSClient({ endpoint: moto.endpoint, region: moto.region, credentials });
    await eks(moto.credentials).send(
      new CreateClusterCommand({ name: 'prod', roleArn: 'arn:aws:iam::123456789012:role/eks', resourcesVpcConfig: {} }),
    );
    const describe = (fn: string) =>
      new EksAuth({ credentials: keys.get(fn) ?? moto.credentials, eksEndpoint: moto.endpoint })
        .describe({ name: 'prod', region: moto.region })
        .then((o) => o.endpoint, errorMessage);
    expect(await describe('sync-worker')).toMatch(/^https:/);
    expect(await describe('status-page')).toMatch(/^https:/); // it reads the clusters' state too
    for (const fn of ['github-webhook', 'registry-webhook', 'ecr-event', 'scheduled-poll'])
      expect(await describe(fn)).toMatch(/cannot describe EKS cluster prod .*\(eks:DescribeCluster, HTTP 403\)/);
  });

  it("charts from oci:// in ECR (an OCIRepository with provider: aws): the worker logs in to the registry with its own role; the other functions' roles cannot", async () => {
    const host = `123456789012.dkr.ecr.${moto.region}.amazonaws.com`;
    const login = (fn: string) =>
      Promise.resolve(ecrLogins({ endpoint: moto.endpoint, credentials: keys.get(fn) ?? moto.credentials })(host)).then(
        (c) => c,
        errorMessage,
      );
    expect(await login('sync-worker')).toMatchObject({ username: 'AWS', password: expect.stringMatching(/.{8,}/) });
    for (const fn of ['github-webhook', 'scheduled-poll', 'status-page'])
      expect(await login(fn)).toMatch(/cannot log in to .*\(ecr:GetAuthorizationToken, HTTP 4\d\d\)/);
    // A host that is not ECR's gets no login at all.
    expect(ecrLogins({ endpoint: moto.endpoint, credentials: keys.get('sync-worker') })('ghcr.io')).toBeUndefined();
  });

  /** An EKS cluster of "another account" and its roles, each trusting one function's principal and allowed to describe it. */
  const remoteCluster = async (prefix: string, roles: ReadonlyArray<readonly [string, string]>): Promise<string> => {
    const iam = new IAMClient({ ...admin, region: 'us-east-1' });
    for (const [RoleName, user] of roles) {
      const trust = {
        Version: '2012-10-17',
        Statement: [
          { Effect: 'Allow', Principal: { AWS: `arn:aws:iam::123456789012:user/${user}` }, Action: 'sts:AssumeRole' },
        ],
      };
      await iam.send(new CreateRoleCommand({ RoleName, AssumeRolePolicyDocument: JSON.stringify(trust) }));
      const describe = {
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'eks:DescribeCluster', Resource: '*' }],
      };
      await iam.send(
        new PutRolePolicyCommand({ RoleName, PolicyName: 'describe', PolicyDocument: JSON.stringify(describe) }),
      );
    }
    const name = uniqueName(prefix);
    await new EKSClient({ endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials }).send(
      new CreateClusterCommand({ name, roleArn: 'arn:aws:iam::123456789012:role/eks', resourcesVpcConfig: {} }),
    );
    return name;
  };

  it('a cluster in another account: the worker assumes the role the cluster names (granted by clusterRoleArns), describes the cluster and signs its token as that role; a role not granted is denied, naming the action', async () => {
    // The role infra/cluster-access-role.yml creates in the cluster's account (here, moto's one
    // account), trusting the worker (here its IAM user, standing in for the function role).
    const name = await remoteCluster('remote', [
      ['tidegate-access-remote', 'fn-sync-worker'],
      ['some-other-role', 'fn-sync-worker'],
    ]);
    const worker = new EksAuth({
      credentials: keys.get('sync-worker') ?? moto.credentials,
      eksEndpoint: moto.endpoint,
      stsEndpoint: moto.endpoint,
    });
    const ref = {
      name,
      region: moto.region,
      roleArn: 'arn:aws:iam::123456789012:role/tidegate-access-remote',
      sessionName: 'tidegate-test',
    };
    expect((await worker.describe(ref)).endpoint).toMatch(/^https:/);
    // The token is a presigned GetCallerIdentity signed with the assumed role's credentials (moto cannot
    // answer a presigned request while it enforces IAM, so the same credentials are asked directly).
    const token = await worker.token(ref);
    const presigned = new URL(Buffer.from(token.slice('k8s-aws-v1.'.length), 'base64url').toString());
    const assumed = await (
      worker.credentialsFor(ref) as () => Promise<Moto['credentials'] & { sessionToken?: string }>
    )();
    expect(presigned.searchParams.get('X-Amz-Credential')?.split('/')[0]).toBe(assumed.accessKeyId);
    expect(presigned.searchParams.get('X-Amz-Security-Token')).toBe(assumed.sessionToken);
    const identity = await new STSClient({ endpoint: moto.endpoint, region: moto.region, credentials: assumed }).send(
      new GetCallerIdentityCommand({}),
    );
    expect(identity.Arn).toBe('arn:aws:sts::123456789012:assumed-role/tidegate-access-remote/tidegate-test');

    const denied = await worker
      .describe({ ...ref, roleArn: 'arn:aws:iam::123456789012:role/some-other-role' })
      .then(() => 'described', errorMessage);
    expect(denied).toMatch(
      /^cannot assume role arn:aws:iam::123456789012:role\/some-other-role for EKS cluster remote-\w+ \(sts:AssumeRole, HTTP 403\)/,
    );
  });
  it("a cluster in another account, read by the status page: it assumes the view-only role statusRoleArn names (granted by statusClusterRoleArns), never the worker's role there", async () => {
    // As infra/cluster-access-role.yml with StatusRoleArn: the page's own role there, and the worker's
    // (even if the worker's role trusted the page, the page's policy may not assume it).
    const name = await remoteCluster('remote2', [
      ['tidegate-status-remote2', 'fn-status-page'],
      ['tidegate-access-remote2', 'fn-status-page'],
    ]);
    const page = new EksAuth({
      credentials: keys.get('status-page') ?? moto.credentials,
      eksEndpoint: moto.endpoint,
      stsEndpoint: moto.endpoint,
    });
    const ref = { name, region: moto.region, sessionName: 'tidegate-status' };
    expect(
      (await page.describe({ ...ref, roleArn: 'arn:aws:iam::123456789012:role/tidegate-status-remote2' })).endpoint,
    ).toMatch(/^https:/);
    expect(
      await page
        .describe({ ...ref, roleArn: 'arn:aws:iam::123456789012:role/tidegate-access-remote2' })
        .then(() => 'described', errorMessage),
    ).toMatch(
      /cannot assume role arn:aws:iam::123456789012:role\/tidegate-access-remote2 .*\(sts:AssumeRole, HTTP 403\)/,
    );
    // The page's runtime never falls back to the worker's role: a cluster of another account without statusRoleArn is refused.
    const rt = await createRuntime('tidegate-status-page', {
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: moto.region,
      TIDEGATE_QUEUE_URL: queueUrl,
      TIDEGATE_SETTINGS: JSON.stringify({
        repositories: [{ url: repo.url }],
        clusters: { remote: { eks: { ...ref, roleArn: 'arn:aws:iam::123456789012:role/tidegate-access-remote2' } } },
      }),
    });
    await expect(rt.viewer('remote')).rejects.toThrow(
      /cluster remote is in another account \(eks\.roleArn\): the status page reads it through clusters\.remote\.eks\.statusRoleArn/,
    );
  });
  it('the status page reads its link secret and the cluster with its own role; the worker reads the notification URL and key from its secrets and delivers', async () => {
    const got: Array<{ headers: Record<string, unknown>; body: string }> = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push({ headers: req.headers, body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/iam-url-token`;
    await new SSMClient(admin).send(
      new PutParameterCommand({ Name: '/tidegate/notify-hook-url', Value: hookUrl, Type: 'SecureString' }),
    );
    try {
      const page = await start('status-page', { statusSecret: { ssm: '/tidegate-status/link' } });
      const query = new URL(signStatusLink('https://x.test/status', STATUS_SECRET, new Date(Date.now() + 60_000)))
        .search;
      const res = await page.invoke<{ statusCode: number; body: string }>(apiEvent(`/status${query}`, {}, '', 'GET'));
      expect(res.statusCode, page.output().slice(-2000)).toBe(200);
      expect(res.body).toContain(ns); // the first test's target, read from its state in the cluster

      const notifications = {
        providers: {
          hook: {
            type: 'generic',
            url: { ssm: '/tidegate/notify-hook-url' },
            secret: { ssm: '/tidegate/notify-hook-key' },
          },
        },
        alerts: [{ provider: 'hook', events: ['applied'] }],
      };
      const [webhook, worker] = await Promise.all([start('github-webhook'), start('sync-worker', { notifications })]);
      const sha = await repo.commit({ 'apps/extra.yaml': yamlDocs(configMap('extra', { v: '1' })) });
      const body = pushPayload(repo.url, sha, ['apps/extra.yaml']);
      expect(
        await webhook.invoke(apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body)),
      ).toMatchObject({ statusCode: 202 });
      for (let i = 0; i < 4 && (await depth()) > 0; i++) {
        const { failures } = await deliverBatch(queueUrl, (event) => worker.invoke(event) as never, admin);
        expect(failures, worker.output().slice(-3000)).toEqual([]);
      }
      expect(got.map((g) => JSON.parse(g.body).event)).toEqual(['applied']);
      const [one] = got;
      expect(one?.headers['x-tidegate-signature-256']).toBe(
        `sha256=${createHmac('sha256', HOOK_KEY)
          .update(one?.body ?? '')
          .digest('hex')}`,
      );
      expect(worker.output()).not.toContain('iam-url-token');
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  }, 120_000);
});
