/**
 * The deployed path in the bench: the built github-webhook and sync-worker bundles, each in a
 * process of its own as Lambda runs them, on a FIFO queue in moto, the test GitHub and git server.
 * A push is a webhook delivery; the SQS event source mapping is played by `deliverBatch` loops, one
 * per concurrent worker.
 */
import { randomBytes } from 'node:crypto';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { stringify } from 'yaml';
import { GitWorkspace, createBareRepo, startGitHub, type EnvironmentInfo } from '../devenv/index.js';
import {
  apiEvent,
  createFifoQueue,
  deliverBatch,
  githubHeaders,
  pushPayload,
  startFunction,
  type InvocationReport,
  type LambdaFunction,
} from '../devenv/lambda.js';
import type { KubeClient } from '../shared/cluster/index.js';
import { readTargetState } from '../shared/state/index.js';

const SECRET = 'bench-secret';
const TOKEN = 'ghp_bench';

export interface Deployed {
  /** The GitOps repository's clone URL. */
  url: string;
  /** Commits files and delivers the push webhook (202 expected); returns the commit. */
  push(files: Record<string, string>, message: string): Promise<string>;
  /** Commits files (pushed to the git server, as a developer's git push), without a webhook. */
  commit(files: Record<string, string>, message: string): Promise<string>;
  /** Delivers the push webhook of a commit changing `paths` (202 expected). */
  deliver(sha: string, paths: readonly string[]): Promise<void>;
  /**
   * Plays the event source mapping with `workers` concurrent pollers (each invoking its own
   * sync-worker process) until `messages` deliveries were handled and the queue is empty.
   */
  work(messages: number): Promise<{ received: string[]; failures: string[]; lastHandledAt: number }>;
  /** The targets whose recorded state is at `sha` with outcome applied. */
  appliedAt(client: KubeClient, targets: readonly string[], sha: string): Promise<number>;
  /** Every invocation's report (Lambda's REPORT line), per sync-worker function. */
  workerInvocations(): Array<readonly InvocationReport[]>;
  /** What each sync-worker function wrote (its CloudWatch log). */
  workerLogs(): string[];
  stop(): Promise<void>;
}

/**
 * A GitOps repository (tidegate.yaml + files) behind the deployed functions, `workers` sync-worker
 * processes; `extraSettings` are added to the deploy-time settings (e.g. render.allowedHosts).
 */
export async function startDeployed(
  env: EnvironmentInfo,
  files: Record<string, string>,
  workers: number,
  extraSettings: Record<string, unknown> = {},
): Promise<Deployed> {
  const name = `bench-${randomBytes(3).toString('hex')}`;
  const github = await startGitHub({ token: TOKEN, gitRoot: env.git.root });
  const url = await createBareRepo(env.git, `acme/${name}`);
  const ws = await GitWorkspace.clone(env.git, url);
  await ws.commit(files, 'init');
  // The deployed queue's visibility timeout (serverless.yml SyncQueue: six times the worker's
  // timeout): a batch taking longer than the emulation's default of 30 s is not delivered again.
  const queueUrl = await createFifoQueue(env.aws, name, { visibilityTimeout: 5400 });
  const settings = {
    repositories: [{ url, branch: 'main', token: { value: TOKEN }, githubApiUrl: github.url }],
    clusters: {
      test: {
        server: env.kube.server,
        caData: Buffer.from(env.kube.caPem).toString('base64'),
        token: { value: env.kube.token },
      },
    },
    webhookSecret: { value: SECRET },
    ...extraSettings,
  };
  const start = (dir: string): Promise<LambdaFunction> =>
    startFunction(dir, { settings, queueUrl, aws: env.aws, tools: env.tools });
  const [webhook, ...pool] = await Promise.all([
    start('github-webhook'),
    ...Array.from({ length: workers }, () => start('sync-worker')),
  ]);
  if (!webhook) throw new Error('no webhook function');
  const deliver = async (sha: string, paths: readonly string[]): Promise<void> => {
    const body = pushPayload(url, sha, [...paths]);
    const res = await webhook.invoke<{ statusCode: number }>(
      apiEvent('/webhooks/github', githubHeaders('push', body, SECRET), body),
    );
    if (res.statusCode !== 202) throw new Error(`webhook answered ${res.statusCode}: ${webhook.output().slice(-2000)}`);
  };
  return {
    url,
    async push(changed, message) {
      const sha = await ws.commit(changed, message);
      await deliver(sha, Object.keys(changed));
      return sha;
    },
    commit: (changed, message) => ws.commit(changed, message),
    deliver,
    async work(messages) {
      const received: string[] = [];
      const failures: string[] = [];
      let lastHandledAt = 0;
      const deadline = Date.now() + 15 * 60_000;
      const poll = async (worker: LambdaFunction): Promise<void> => {
        for (let idle = 0; idle < 3 || received.length < messages;) {
          if (Date.now() > deadline) throw new Error(`${received.length} of ${messages} messages after 15 min`);
          const handled = async (e: SQSEvent): Promise<SQSBatchResponse> => {
            const res = await worker.invoke<SQSBatchResponse>(e);
            lastHandledAt = performance.now();
            return res;
          };
          const batch = await deliverBatch(queueUrl, handled, env.aws);
          received.push(...batch.received);
          failures.push(...batch.failures);
          if (batch.received.length > 0) idle = 0;
          else {
            idle++;
            await new Promise((r) => setTimeout(r, 20));
          }
          if (received.length > messages * 2) throw new Error(`${received.length} deliveries for ${messages} messages`);
        }
      };
      await Promise.all(pool.map(poll));
      return { received, failures, lastHandledAt };
    },
    async appliedAt(client, targets, sha) {
      let applied = 0;
      for (const t of targets) {
        const last = (await readTargetState(client, t)).history.at(-1);
        if (last?.revision.sha === sha && last.outcome === 'applied') applied++;
      }
      return applied;
    },
    workerInvocations: () => pool.map((f) => f.invocations()),
    workerLogs: () => pool.map((f) => f.output()),
    async stop() {
      await Promise.all([webhook, ...pool].map((f) => f.stop()));
      await github.stop();
      ws.remove();
    },
  };
}

/** tidegate.yaml for targets t-0 … t-(n-1), each under apps/t-i in a namespace of its own, on cluster test. */
export function scaleConfig(names: readonly string[]): string {
  return stringify({
    targets: names.map((n) => ({ name: n, cluster: 'test', path: `apps/${n}`, targetNamespace: n, wait: false })),
  });
}
