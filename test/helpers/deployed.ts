import type { SQSBatchResponse } from 'aws-lambda';
import { SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect } from 'vitest';
import { startGitHub, type TestGitHub } from '../../devenv/index.js';
import { testEnv } from './env.js';
import { gitopsRepo } from './engine.js';
import { apiEvent, createFifoQueue, deliverBatch, githubHeaders, pushPayload, testClusterSetting } from './lambda.js';
import { pendingMessages, type FunctionLimits } from '../../devenv/lambda.js';
import { startFunction, type LambdaFunction } from './lambda-runtime.js';

const SECRET = 'deployed-path-secret';
const TOKEN = 'ghp_deployed_path';

/**
 * The deployed path for one test file: the built github-webhook and sync-worker bundles (each in a
 * process of its own, as Lambda runs them) on a FIFO queue in moto, the test GitHub, and a GitOps
 * repository (owner acme). `push` delivers a push webhook; `work` delivers the queue to the worker
 * as the event source mapping does until it is empty. `workerLimits` runs the worker with other
 * limits than serverless.yml's (a smaller memory size or /tmp, a shorter timeout).
 */
export function deployedPath(prefix: string, opts: { workerLimits?: Partial<FunctionLimits> } = {}) {
  const h = {
    github: undefined as unknown as TestGitHub,
    webhook: undefined as unknown as LambdaFunction,
    worker: undefined as unknown as LambdaFunction,
    queueUrl: '',
    repo: undefined as unknown as Awaited<ReturnType<typeof gitopsRepo>>,
    async push(sha: string, paths: string[]) {
      const body = pushPayload(h.repo.url, sha, paths);
      const res = await h.webhook.invoke<{ statusCode: number }>(
        apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body),
      );
      expect(res.statusCode).toBe(202);
    },
    /** Delivers a GitHub webhook (signed as GitHub signs it); it must be accepted. */
    async deliver(event: string, payload: unknown) {
      const body = JSON.stringify(payload);
      const res = await h.webhook.invoke<{ statusCode: number }>(
        apiEvent('/webhooks/github', githubHeaders(event, body, SECRET), body),
      );
      expect(res.statusCode).toBe(202);
    },
    /** Runs the worker until the queue holds nothing (waiting, in flight or delayed: a deferred copy comes back later). */
    async work() {
      const until = Date.now() + 90_000;
      for (let i = 0; i < 30 && Date.now() < until; i++) {
        const { received, failures } = await deliverBatch(h.queueUrl, (e) => h.worker.invoke<SQSBatchResponse>(e));
        expect(failures, h.worker.output().slice(-3000)).toEqual([]);
        if (received.length > 0) continue;
        if ((await pendingMessages(new SQSClient(testEnv().aws), h.queueUrl)) === 0) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    },
  };
  beforeAll(async () => {
    h.github = await startGitHub({ token: TOKEN, gitRoot: testEnv().git.root });
    h.repo = await gitopsRepo(prefix, { owner: 'acme' });
    h.queueUrl = await createFifoQueue(prefix);
    const settings = {
      repositories: [{ url: h.repo.url, branch: 'main', token: { value: TOKEN }, githubApiUrl: h.github.url }],
      clusters: { test: testClusterSetting() },
      webhookSecret: { value: SECRET },
    };
    [h.webhook, h.worker] = await Promise.all([
      startFunction('github-webhook', { settings, queueUrl: h.queueUrl }),
      startFunction('sync-worker', {
        settings,
        queueUrl: h.queueUrl,
        ...(opts.workerLimits ? { limits: opts.workerLimits } : {}),
      }),
    ]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([h.webhook?.stop(), h.worker?.stop()]);
    await h.github?.stop();
  });
  return h;
}
