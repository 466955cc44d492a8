import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  MemoryQueue,
  PipelineRecorder,
  handleMessage,
  pollRepositories,
  receiveGithubWebhook,
  receiveRegistryWebhook,
  statusPageOf,
  type EngineContext,
  type WorkOutcome,
} from '../shared/usecases/index.js';
import { errorMessage, type QueueMessage } from '../shared/model/index.js';
import { PAGE_HEADERS, reply, type HttpRequest, type HttpResponse } from '../shared/triggers/index.js';

export interface DevServerOptions {
  engine: EngineContext;
  /** The GitOps repository and the branch to apply. */
  repo: string;
  branch: string;
  webhookSecret: string;
  registrySecret: string;
  port?: number;
  /** Poll interval in ms (0: no polling). */
  pollMs?: number;
  driftIntervalMs?: number;
  /** Seconds until the status page reloads itself (default 30; 0: never). */
  statusRefreshSeconds?: number;
  /** Called for every handled message (progress output). */
  onWork?: (msg: QueueMessage, outcome: WorkOutcome | Error, ms: number) => void;
}

export interface DevServer {
  url: string;
  queue: MemoryQueue;
  /** What the queue handled and the polls did (the status page's pipeline panel). */
  pipeline: PipelineRecorder;
  /** Enqueues a poll now. */
  poll(): Promise<void>;
  stop(): Promise<void>;
}

const MAX_BODY = 6 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c); // past the limit, keep reading but stop storing: the route answers 413
    });
    req.on('end', () => resolve(size > MAX_BODY ? 'x'.repeat(MAX_BODY + 1) : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * `tidegate dev`: the Lambda routes on localhost (POST /webhooks/github, POST /webhooks/registry),
 * the same queue semantics in memory (per-target serialisation, deduplication, retries), polling
 * on an interval, and the engine against the current kubeconfig context.
 */
const LOOPBACK_HOST = /^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/i;

export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const engine: EngineContext = { ...opts.engine, repositories: [{ url: opts.repo, branch: opts.branch }] };
  const pipeline = new PipelineRecorder();
  const queue: MemoryQueue = new MemoryQueue(async (msg, q, sentAt) => {
    const started = Date.now();
    try {
      const outcome = await handleMessage(engine, msg, q);
      pipeline.handled(msg, sentAt, outcome);
      opts.onWork?.(msg, outcome, Date.now() - started);
    } catch (err) {
      pipeline.failed(msg, sentAt, err);
      opts.onWork?.(msg, err instanceof Error ? err : new Error(String(err)), Date.now() - started);
      throw err;
    }
  });
  const statusPage = (): Promise<string> =>
    statusPageOf(engine, [opts.repo], undefined, {
      refreshSeconds: opts.statusRefreshSeconds,
      pipeline: {
        heartbeat: pipeline.heartbeat(),
        queue: { ...queue.depth(), deadLettered: queue.deadLetters.length },
        source: 'tidegate dev: its in-memory queue and poll, since it started',
      },
    });
  const tracked = [{ url: opts.repo, branch: opts.branch, source: opts.engine.gitSource(opts.repo) }];
  const route = async (req: HttpRequest): Promise<HttpResponse> => {
    const path = req.path.split('?')[0];
    if (path === '/webhooks/github') return receiveGithubWebhook(req, { secret: opts.webhookSecret, tracked, queue });
    if (path === '/webhooks/registry') return receiveRegistryWebhook(req, { secret: opts.registrySecret, queue });
    if (path === '/healthz') return reply(200, 'ok');
    // The dev server listens on 127.0.0.1 only: its status page needs no link, but is served only to
    // requests addressed to a loopback name (a page on another site resolving its own name to
    // 127.0.0.1, DNS rebinding, cannot read it).
    if (req.method === 'GET' && (path === '/' || path === '/status'))
      return LOOPBACK_HOST.test(req.headers['host'] ?? '')
        ? { status: 200, body: { message: 'status page' }, html: await statusPage() }
        : reply(421, 'the status page is served to localhost and 127.0.0.1 only');
    return reply(404, `no route for ${req.method} ${path ?? ''}`);
  };
  const server: Server = createServer((req, res) => {
    readBody(req)
      .then((body) =>
        route({
          method: req.method ?? 'GET',
          path: req.url ?? '/',
          headers: req.headers as Record<string, string>,
          body,
        }),
      )
      .catch((err: unknown) => reply(500, errorMessage(err)))
      .then(
        (out) =>
          out.html === undefined
            ? res.writeHead(out.status, { 'content-type': 'application/json' }).end(JSON.stringify(out.body))
            : res.writeHead(out.status, PAGE_HEADERS).end(out.html),
        () => res.writeHead(500).end(),
      );
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, '127.0.0.1', resolve));
  const sent = new Map<string, string>();
  const poll = async (): Promise<void> => {
    const at = new Date();
    try {
      const queued = await pollRepositories(tracked, queue, {
        now: at.getTime(),
        driftIntervalMs: opts.driftIntervalMs ?? 600_000,
        sent,
      });
      pipeline.polled(at, `ok: ${queued.length} message(s) queued`);
    } catch (err) {
      pipeline.polled(at, `failed: ${errorMessage(err)}`);
      throw err;
    }
  };
  const timer = opts.pollMs ? setInterval(() => void poll().catch(() => undefined), opts.pollMs) : undefined;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    queue,
    pipeline,
    poll,
    stop: async () => {
      if (timer) clearInterval(timer);
      await queue.idle();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A push delivery as GitHub sends it (the fields tidegate reads), signed with the webhook secret:
 * how the demo and the benchmarks play GitHub against the dev server.
 */
export function signedPush(
  repoUrl: string,
  sha: string,
  paths: string[],
  secret: string,
): { headers: Record<string, string>; body: string } {
  const body = JSON.stringify({
    ref: 'refs/heads/main',
    before: '0'.repeat(40),
    after: sha,
    created: false,
    deleted: false,
    forced: false,
    repository: { full_name: 'local/gitops', clone_url: repoUrl, html_url: repoUrl.replace(/\.git$/, '') },
    commits: [{ id: sha, added: [], modified: paths, removed: [] }],
    head_commit: { id: sha },
  });
  const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': randomUUID(),
      'x-hub-signature-256': signature,
    },
  };
}
