import { request } from 'node:https';
import { expect } from 'vitest';
import { stringify } from 'yaml';
import type { TestGitHub } from '../../devenv/index.js';
import { GitHub } from '../../shared/github/index.js';
import type { QueueMessage } from '../../shared/model/index.js';
import { handleMessage, type EngineContext, type Queue, type WorkOutcome } from '../../shared/usecases/index.js';
import { testEnv, uniqueName } from './env.js';
import { configMap, gitopsRepo, yamlDocs } from './engine.js';
import { prComment, prEvent } from './github.js';

export const PREVIEW_OWNER = 'acme';

/** A queue that keeps what is sent (a woken preview), for the test to hand to the worker. */
export function keepingQueue(): Queue & { sent: QueueMessage[] } {
  const sent: QueueMessage[] = [];
  return { sent, send: (m) => Promise.resolve(void sent.push(...m)) };
}

/** A raw apiserver request as the cluster admin, optionally impersonating another identity (a preview pod's service account). */
export function kubeRequest(
  method: string,
  path: string,
  body?: unknown,
  opts: { as?: string; contentType?: string } = {},
): Promise<{ status: number; body: string }> {
  const { kube } = testEnv();
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, kube.server),
      {
        method,
        ca: kube.caPem,
        headers: {
          authorization: `Bearer ${kube.token}`,
          accept: 'application/json',
          ...(opts.as ? { 'impersonate-user': opts.as } : {}),
          ...(payload !== undefined
            ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** A pod a baseline namespace must refuse (privileged, host network), created as `as` in namespace ns. */
export const privilegedPod = (ns: string, as: string) =>
  kubeRequest(
    'POST',
    `/api/v1/namespaces/${ns}/pods`,
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'root' },
      spec: {
        hostNetwork: true,
        containers: [{ name: 'c', image: 'busybox', securityContext: { privileged: true } }],
      },
    },
    { as },
  );

export interface PreviewRepoOptions {
  /** The preview settings of the target (enabled and a TTL of 2h unless given). */
  preview?: Record<string, unknown>;
  /** More of the target's settings (substitute, …). */
  targetExtra?: Record<string, unknown>;
  target?: string;
  extraTargets?: Array<Record<string, unknown>>;
  /** Sync main first (default true). */
  sync?: boolean;
  /** The cluster's floor (deploy-time settings). */
  floor?: { previews?: boolean };
  files?: Record<string, string>;
}

/**
 * A GitOps repository on the test servers whose one target (namespace = its name) opts into
 * previews, main applied, writer alice; with helpers to open pull requests, route their events and
 * comments as the webhook would, and hand the messages to the worker.
 */
export async function previewRepo(github: TestGitHub, token: string, opts: PreviewRepoOptions = {}) {
  const target = opts.target ?? uniqueName('web');
  const repo = await gitopsRepo('pv', { owner: PREVIEW_OWNER });
  const queue = keepingQueue();
  const ctx: EngineContext = {
    ...repo.engine,
    github: () => new GitHub({ apiUrl: github.url, token }),
    ...(opts.floor ? { floor: () => ({ approvals: 0, manual: false, windows: [], ...opts.floor }) } : {}),
  };
  const config = (preview: Record<string, unknown>) =>
    stringify({
      targets: [
        {
          name: target,
          cluster: 'c',
          path: 'apps',
          targetNamespace: target,
          ...opts.targetExtra,
          preview: { enabled: true, ttl: '2h', ...preview },
        },
        ...(opts.extraTargets ?? []),
      ],
    });
  await repo.commit({
    'tidegate.yaml': config(opts.preview ?? {}),
    ...(opts.files ?? { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: '1' })) }),
  });
  if (opts.sync !== false) expect((await repo.sync())[0]?.outcome).toBe('applied');
  github.grant(PREVIEW_OWNER, repo.name, 'alice', 'write');
  const where = { owner: PREVIEW_OWNER, name: repo.name, url: repo.url };
  const event = (number: number, action: string, sha: string, branch: string, fork?: string): QueueMessage => {
    const routed = prEvent(where, { number, action, sha, branch, ...(fork ? { fork } : {}) });
    expect(routed.response.status).toBe(202);
    expect(routed.messages).toHaveLength(1);
    return routed.messages[0]!;
  };
  const handle = (msg: QueueMessage, c: EngineContext = ctx): Promise<WorkOutcome> => handleMessage(c, msg, queue);
  /** Starts a branch from main (commits go on whatever is checked out). */
  const fresh = (branch: string) => repo.ws.git('checkout', '--quiet', '-B', branch, 'origin/main');
  /** A pull request of a new branch from main; by alice, or by mallory from a fork. */
  const branchOff = async (branch: string, files: Record<string, string | null>, author = 'alice', fork?: string) => {
    await fresh(branch);
    const sha = await repo.ws.commit(files, `change on ${branch}`, branch);
    const { number } = await github.openPullRequest(PREVIEW_OWNER, repo.name, {
      head: branch,
      base: 'main',
      author,
      ...(fork ? { fork } : {}),
    });
    return { number, sha, branch };
  };
  /** branchOff, then its `opened` event handled. */
  const open = async (branch: string, files: Record<string, string | null>, fork?: string) => {
    const { number, sha } = await branchOff(branch, files, fork ? 'mallory' : 'alice', fork);
    return { number, sha, outcome: await handle(event(number, 'opened', sha, branch, fork)) };
  };
  const comment = (number: number, user: string, body: string, id: number) =>
    prComment(github, where, number, { user, body, id });
  const closePr = async (number: number, sha: string, branch: string) => {
    github.close(PREVIEW_OWNER, repo.name, number);
    return handle(event(number, 'closed', sha, branch));
  };
  /** The last comment tidegate wrote on a pull request. */
  const lastComment = (number: number) => github.comments(PREVIEW_OWNER, repo.name, number).at(-1)?.body ?? '';
  return {
    target,
    repo,
    ctx,
    queue,
    client: repo.engine.client,
    config,
    event,
    handle,
    fresh,
    branchOff,
    open,
    comment,
    closePr,
    lastComment,
  };
}
