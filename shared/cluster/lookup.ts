import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../model/index.js';
import { KubeApiError, type KubeClient, type ResourceInfo } from './client.js';

/**
 * The cluster-scoped kinds a chart's `lookup` may read by default: what charts check before they
 * render (a namespace, an installed CRD or API, a class, an existing webhook's CA bundle). Nothing
 * that holds credentials is cluster-scoped in this list.
 */
export const LOOKUP_CLUSTER_KINDS: readonly string[] = [
  'Namespace',
  'CustomResourceDefinition',
  'APIService',
  'StorageClass',
  'IngressClass',
  'PriorityClass',
  'RuntimeClass',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
];

/** What a render's `lookup` may read: objects of the release's namespace, and cluster-scoped objects of these kinds. */
export interface LookupScope {
  namespace: string;
  clusterKinds?: readonly string[] | undefined;
}

/** A running lookup endpoint: what helm is pointed at, and what it read. */
export interface LookupEndpoint {
  /** A kubeconfig naming the endpoint (mode 0600; its URL holds a token of its own). */
  kubeconfig: string;
  /** Where helm's client keeps its discovery cache (KUBECACHEDIR): removed with the endpoint. */
  cacheDir: string;
  /** Values of the Secrets it answered with: never quoted in a message. */
  secrets: string[];
  /** Every read and whether it was answered, in order (paths only). */
  reads: Array<{ path: string; answered: boolean }>;
  close(): Promise<void>;
}

type Classified = { answer: true; info?: ResourceInfo } | { answer: false };

/** Discovery (what the API serves, no object in it) or an object read inside the scope; anything else is refused. */
function classify(client: KubeClient, pathname: string, scope: LookupScope): Classified {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (pathname === '/version') return { answer: true };
  const [root] = parts;
  const head = root === 'api' ? 2 : root === 'apis' ? 3 : 0;
  if (head === 0) return { answer: false };
  if (parts.length <= head) return { answer: true }; // /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>
  const [group, version] = root === 'api' ? ['', parts[1] ?? ''] : [parts[1] ?? '', parts[2] ?? ''];
  let rest = parts.slice(head);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length > 2) return { answer: false }; // a subresource (status, log, exec, token, ...)
  const info = client.resourceAt(group, version, rest[0] ?? '');
  if (!info) return { answer: false };
  if (info.namespaced) return namespace === scope.namespace ? { answer: true, info } : { answer: false };
  const kinds = scope.clusterKinds ?? LOOKUP_CLUSTER_KINDS;
  return namespace === undefined && kinds.includes(info.kind) ? { answer: true, info } : { answer: false };
}

const notFound = (res: ServerResponse, message: string): void => {
  res
    .writeHead(404, { 'content-type': 'application/json' })
    .end(
      JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', message, code: 404 }),
    );
};

/** The values of a Secret (or of a list's Secrets) as text: what a render must never quote. */
function secretValues(text: string): string[] {
  const parsed = JSON.parse(text) as { items?: unknown[] } & Record<string, unknown>;
  const secrets = (parsed.items ?? [parsed]) as Array<{ data?: Record<string, string> }>;
  return secrets.flatMap((s) =>
    Object.values(s.data ?? {})
      .map((v) => Buffer.from(v, 'base64').toString('utf8'))
      .filter((v) => v.length >= 4),
  );
}

/**
 * An HTTP endpoint on loopback that answers a render's `lookup` (helm `--dry-run=server`) with the
 * cluster's objects as `client` reads them, confined to `scope`: GETs of discovery, of objects in
 * the release's namespace, and of cluster-scoped objects of the scope's kinds. Anything else (another
 * namespace, a list across namespaces, a subresource, a watch, a write) is answered 404, which
 * `lookup` reads as "nothing there"; so is a read the client's own identity is refused. Only a
 * caller holding the endpoint's token (in its kubeconfig's URL) is answered.
 */
export async function serveLookups(
  client: KubeClient,
  scope: LookupScope,
  signal?: AbortSignal,
): Promise<LookupEndpoint> {
  // The token is the first segment of every path (the kubeconfig's server URL): client-go sends no
  // credentials to an http:// server, and the endpoint is plain HTTP on loopback.
  const token = randomBytes(32).toString('hex');
  const prefix = Buffer.from(`/${token}/`);
  const secrets: string[] = [];
  const reads: LookupEndpoint['reads'] = [];
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const given = Buffer.from(req.url ?? '').subarray(0, prefix.length);
    if (given.length !== prefix.length || !timingSafeEqual(given, prefix)) {
      res.writeHead(401).end();
      return;
    }
    const url = new URL((req.url ?? '/').slice(prefix.length - 1), 'http://lookup');
    const verdict =
      req.method === 'GET' && url.searchParams.get('watch') !== 'true' && url.searchParams.get('watch') !== '1'
        ? classify(client, url.pathname, scope)
        : ({ answer: false } as const);
    reads.push({ path: url.pathname, answered: verdict.answer });
    if (!verdict.answer) return notFound(res, 'not readable by a render');
    try {
      const answer = await client.getRaw(
        `${url.pathname}${url.search}`,
        req.headers.accept ?? 'application/json',
        signal,
      );
      if (verdict.info?.kind === 'Secret') secrets.push(...secretValues(answer.text));
      res.writeHead(200, { 'content-type': answer.contentType || 'application/json' }).end(answer.text);
    } catch (err) {
      // A read tidegate's (or the tenant's) identity may not make is, to a chart, nothing there.
      if (err instanceof KubeApiError && (err.status === 403 || err.isNotFound)) return notFound(res, 'not found');
      res.writeHead(503, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: errorMessage(err),
          code: 503,
        }),
      );
    }
  };
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'tidegate-lookup-'));
  const kubeconfig = join(dir, 'kubeconfig');
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${token}`;
  writeFileSync(
    kubeconfig,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'lookup', cluster: { server: endpoint } }],
      users: [{ name: 'lookup', user: {} }],
      contexts: [{ name: 'lookup', context: { cluster: 'lookup', user: 'lookup', namespace: scope.namespace } }],
      'current-context': 'lookup',
    }),
    { mode: 0o600 },
  );
  return {
    kubeconfig,
    cacheDir: join(dir, 'cache'),
    secrets,
    reads,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        rmSync(dir, { recursive: true, force: true });
      }),
  };
}
