import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { signStatusLink } from '../../shared/triggers/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';
import { apiEvent, testClusterSetting } from '../helpers/lambda.js';
import { startFunction, type LambdaFunction } from '../helpers/lambda-runtime.js';

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
