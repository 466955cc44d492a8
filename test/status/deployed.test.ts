import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startMoto, type Moto } from '../../devenv/index.js';
import { signStatusLink } from '../../shared/triggers/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';
import { apiEvent, deliverBatch, githubHeaders, pushPayload, testClusterSetting } from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';
import { functionPrincipal, packageStack } from '../helpers/serverless.js';

const SECRET = 'status-link-secret-for-tests';

/**
 * The deployed status page: the built status-page bundle in a process of its own (as Lambda runs
 * it), GET /status through API Gateway's event. Never served without a link signed with the status
 * secret; never served at all when no secret is configured.
 */
describe('GET /status through the built bundle', () => {
  let fn: LambdaFunction;
  let open: LambdaFunction;
  const target = uniqueName('site');
  const get = async (f: LambdaFunction, query: string) =>
    f.invoke<{ statusCode: number; headers: Record<string, string>; body: string }>(
      apiEvent(`/status${query}`, {}, '', 'GET'),
    );
  const link = (expiresAt: Date, secret = SECRET) =>
    new URL(signStatusLink('https://x.test/status', secret, expiresAt)).search;

  beforeAll(async () => {
    const repo = await gitopsRepo('status-fn');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: target, cluster: 'test', path: 'site', targetNamespace: target }],
      }),
      'site/app.yaml': configMap('app', { v: '1' }),
    });
    expect((await repo.sync())[0]?.outcome).toBe('applied');
    const settings = {
      repositories: [{ url: repo.url, branch: 'main' }],
      clusters: { test: testClusterSetting() },
    };
    [fn, open] = await Promise.all([
      startFunction('status-page', {
        settings: { ...settings, statusSecret: { value: SECRET } },
        queueUrl: 'http://unused.invalid/q',
      }),
      startFunction('status-page', { settings, queueUrl: 'http://unused.invalid/q' }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([fn?.stop(), open?.stop()]);
  });

  it.each<[string, () => string, number, string]>([
    ['no link', () => '', 401, 'a signed link is required'],
    [
      'a wrong signature',
      () => link(new Date(Date.now() + 3_600_000), 'another-secret'),
      401,
      'a signed link is required',
    ],
    [
      'a tampered expiry',
      () => link(new Date(Date.now() + 3_600_000)).replace(/expires=\d+/, 'expires=9999999999'),
      401,
      'a signed link is required',
    ],
    ['an expired link', () => link(new Date(Date.now() - 1000)), 401, 'has expired'],
    ['a link for 40 days', () => link(new Date(Date.now() + 40 * 86_400_000)), 401, 'longer than 31 days'],
  ])('refused: %s', async (_, query, status, message) => {
    const res = await get(fn, query());
    expect(res.statusCode).toBe(status);
    expect(JSON.parse(res.body).message).toContain(message);
    expect(res.body).not.toContain(target);
  });

  it('without a status secret configured the page is never served, even with a link', async () => {
    const res = await get(open, link(new Date(Date.now() + 3_600_000)));
    expect(res.statusCode).toBe(503);
    expect(res.body).not.toContain(target);
  });

  it('a signed link serves the page: the target read from the cluster, with headers that keep the link private', async () => {
    const res = await get(fn, link(new Date(Date.now() + 3_600_000)));
    expect(res.statusCode).toBe(200);
    expect(res.headers).toMatchObject({
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
    });
    expect(res.body).toContain(`data-target="${target}"`);
    expect(res.body).toContain('data-outcome="applied"');
    expect(res.body).toContain('cluster test');
  });
});

/**
 * The deployed page's pipeline panel, every function with its role as deployed (moto enforcing IAM,
 * the policies read from the template `serverless package` writes): a push through the built
 * github-webhook bundle, handled by the built sync-worker (which records its heartbeat on the
 * cluster), and the queue's and dead-letter queue's counts read by the status page from SQS.
 */
describe("GET /status: the pipeline panel, with the functions' roles as deployed", () => {
  const WEBHOOK_SECRET = 'pipeline-webhook-secret';
  let moto: Moto;
  let admin: { endpoint: string; region: string; credentials: Moto['credentials'] };
  let queueUrl = '';
  let deadLetterUrl = '';
  const running: LambdaFunction[] = [];
  let page: LambdaFunction;
  let denied: LambdaFunction;
  let started = '';
  const target = uniqueName('piped');

  const queue = async (name: string): Promise<{ url: string; arn: string }> => {
    const sqs = new SQSClient(admin);
    const url =
      (
        await sqs.send(
          new CreateQueueCommand({
            QueueName: `${uniqueName(name)}.fifo`,
            Attributes: { FifoQueue: 'true', VisibilityTimeout: '120' },
          }),
        )
      ).QueueUrl ?? '';
    const arn =
      (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes?.[
        'QueueArn'
      ] ?? '';
    return { url, arn };
  };
  const get = async (fn: LambdaFunction) =>
    fn.invoke<{ statusCode: number; body: string }>(
      apiEvent(
        `/status${new URL(signStatusLink('https://x.test/status', SECRET, new Date(Date.now() + 3_600_000))).search}`,
        {},
        '',
        'GET',
      ),
    );
  const cell = (html: string, key: string): string =>
    (new RegExp(`<tr data-pipeline="${key}"><th>[^<]*</th><td>(.*?)</td></tr>`).exec(html)?.[1] ?? '')
      .replace(/<[^>]+>/g, '')
      .trim();

  beforeAll(async () => {
    moto = await startMoto(mkdtempSync(join(tmpdir(), 'moto-status-')), { enforceIam: true });
    admin = { endpoint: moto.endpoint, region: moto.region, credentials: moto.credentials };
    const [{ template }, main, dead] = await Promise.all([packageStack(), queue('pipeline'), queue('pipeline-dlq')]);
    queueUrl = main.url;
    deadLetterUrl = dead.url;
    const attributes = { 'SyncQueue.Arn': main.arn, 'SyncDeadLetterQueue.Arn': dead.arn };
    const ssm = new SSMClient(admin);
    for (const [Name, Value] of [
      ['/tidegate-status/link', SECRET],
      ['/tidegate/cluster-token', testEnv().kube.token],
      ['/tidegate-webhooks/github', WEBHOOK_SECRET],
    ])
      await ssm.send(new PutParameterCommand({ Name, Value, Type: 'SecureString' }));
    const repo = await gitopsRepo('status-pipeline');
    const sha = await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: target, cluster: 'test', path: 'site', targetNamespace: target, wait: false }],
      }),
      'site/app.yaml': configMap('app', { v: '1' }),
    });
    const { kube } = testEnv();
    const settings = {
      repositories: [{ url: repo.url, branch: 'main' }],
      clusters: {
        test: {
          server: kube.server,
          caData: Buffer.from(kube.caPem).toString('base64'),
          token: { ssm: '/tidegate/cluster-token' },
        },
      },
      webhookSecret: { ssm: '/tidegate-webhooks/github' },
      statusSecret: { ssm: '/tidegate-status/link' },
    };
    const start = async (fn: string, as: string = fn) => {
      const f = await startFunction(fn, {
        settings,
        queueUrl,
        deadLetterQueueUrl: deadLetterUrl,
        aws: { ...admin, credentials: await functionPrincipal(admin, template, as, attributes) },
      });
      running.push(f);
      return f;
    };
    const [webhook, worker] = await Promise.all([start('github-webhook'), start('sync-worker')]);
    [page, denied] = await Promise.all([start('status-page'), start('status-page', 'github-webhook')]);
    // A push as GitHub delivers it, handled by the worker as the event source mapping delivers it.
    started = new Date(Date.now() - 1000).toISOString();
    const body = pushPayload(repo.url, sha, ['tidegate.yaml', 'site/app.yaml']);
    expect(
      await webhook?.invoke(apiEvent('/webhooks/github', githubHeaders('push', body, WEBHOOK_SECRET), body)),
    ).toMatchObject({ statusCode: 202 });
    for (let i = 0; i < 5; i++) {
      const { received, failures } = await deliverBatch(queueUrl, (e) => worker.invoke(e), admin);
      expect(failures, worker.output().slice(-3000)).toEqual([]);
      if (!received.length) break;
    }
    expect(worker.output()).not.toMatch(/pipeline heartbeat not recorded/);
    // Then: three messages wait, one of them received (in flight); two were dead-lettered.
    const sqs = new SQSClient(admin);
    for (let i = 0; i < 3; i++)
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify({ type: 'reload', cluster: 'none', bucket: i }),
          MessageGroupId: `g${i}`,
          MessageDeduplicationId: `d${i}`,
        }),
      );
    await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1 }));
    for (let i = 0; i < 2; i++)
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: deadLetterUrl,
          MessageBody: JSON.stringify({ type: 'reload', cluster: 'none', bucket: i }),
          MessageGroupId: `g${i}`,
          MessageDeduplicationId: `dl${i}`,
        }),
      );
  }, 240_000);
  afterAll(async () => {
    await Promise.all(running.map((f) => f.stop()));
    await moto?.stop();
  });

  it('queue depth and dead-lettered count from SQS, the webhook the worker handled, the target and its objects', async () => {
    const res = await get(page);
    expect(res.statusCode).toBe(200);
    expect(cell(res.body, 'queue')).toBe('2 waiting, 1 in flight');
    expect(cell(res.body, 'dead')).toBe('2 — failed on every delivery: redrive or delete them');
    // Recorded by the worker on the cluster (other tests' workers share it: the newest wins, never older than ours).
    const webhook = cell(res.body, 'webhook');
    expect(webhook).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (just now|\d+ s ago|\d+ min ago) from github \(push\)/);
    const sent =
      /datetime="([^"]+)"/.exec(/<tr data-pipeline="webhook">.*?<\/tr>/.exec(res.body)?.[0] ?? '')?.[1] ?? '';
    expect(sent >= started, `${sent} >= ${started}`).toBe(true);
    expect(res.body).toContain(`data-target="${target}"`);
    expect(res.body).toMatch(
      new RegExp(
        `<tr class="object" data-kind="ConfigMap" data-namespace="${target}" data-name="app" data-health="Healthy">`,
      ),
    );
    expect(res.body).toContain('<meta http-equiv="refresh" content="30">');
  });

  it("without sqs:GetQueueAttributes (the webhook's role) the page is still served, saying the queues were not read and why", async () => {
    const res = await get(denied);
    expect(res.statusCode).toBe(200);
    expect(cell(res.body, 'queue')).toMatch(/^not read: cannot read the queue .*sqs:GetQueueAttributes, HTTP 403/);
    expect(res.body).toContain(`data-target="${target}"`);
  });
});
