import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage, type KubeObject } from '../model/index.js';
import { KubeApiError, KubeClient, type ResourceInfo } from './client.js';
import { definitionsOf, withDefinedGroups, withDefinedResources, type Definitions } from './lookup-discovery.js';

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

/** At most this many distinct reads of one sync's renders reach the cluster; later ones find nothing. */
export const LOOKUP_READS = 2000;

/** What a render's `lookup` may read: objects of the release's namespace (and cluster-scoped ones of LOOKUP_CLUSTER_KINDS). */
export interface LookupScope {
  namespace: string;
  /** Whether a render may read an object it found (another repository's target's, for one, it may not). */
  admit?: ((object: KubeObject) => Promise<boolean>) | undefined;
}

/** A running lookup endpoint: what helm is pointed at, and what it read. */
export interface LookupEndpoint {
  /** A kubeconfig naming the endpoint (mode 0600; its URL holds a token of its own). */
  kubeconfig: string;
  /** Where helm's client keeps its discovery cache (KUBECACHEDIR): removed with the endpoint. */
  cacheDir: string;
  /** Values of the Secrets it answered with: never quoted in a message. */
  secrets: string[];
  /** Whether it answered with a Secret (values under 4 characters included). */
  secretsRead(): boolean;
  /**
   * CRDs of the render that the cluster does not have yet: discovery lists what they define, so that
   * helm can build the render's custom resources (an install's, before this sync applies the CRDs).
   */
  define(crds: readonly KubeObject[]): void;
  /**
   * Objects a read finds when the cluster has none of that name: what an install is about to create
   * (a chart that keeps its generated values then renders the values it will find next time).
   */
  seed(objects: readonly KubeObject[]): void;
  close(): Promise<void>;
}

type Classified = { answer: true; path: string; info?: ResourceInfo } | { answer: false };

/** A resource path's parts: group, version, namespace (when namespaced), resource, name; undefined for a subresource. */
function resourcePath(parts: string[], head: number) {
  const [group, version] = parts[0] === 'api' ? ['', parts[1] ?? ''] : [parts[1] ?? '', parts[2] ?? ''];
  const rest = parts.slice(head);
  const namespaced = rest[0] === 'namespaces' && rest.length >= 3;
  const [resource, name, ...more] = namespaced ? rest.slice(2) : rest;
  if (more.length > 0) return undefined; // a subresource (status, log, exec, token, ...)
  return { group, version, namespace: namespaced ? rest[1] : undefined, resource: resource ?? '', name };
}

/**
 * The path's segments, split before they are decoded; undefined when a segment decodes to a
 * separator or does not decode (an encoded slash would be read as one segment here and as several by
 * the apiserver).
 */
function segments(rawPath: string): string[] | undefined {
  try {
    const parts = rawPath.split('/').filter(Boolean).map(decodeURIComponent);
    return parts.some((p) => /[/\\]/.test(p) || p === '.' || p === '..') ? undefined : parts;
  } catch {
    return undefined;
  }
}

/**
 * Discovery (what the API serves, no object in it) or an object read inside the scope, with the
 * path to read it at (its segments encoded again); anything else is refused.
 */
function classify(client: KubeClient, rawPath: string, scope: LookupScope): Classified {
  const parts = segments(rawPath);
  if (!parts) return { answer: false };
  const path = `/${parts.map(encodeURIComponent).join('/')}`;
  if (path === '/version') return { answer: true, path };
  const head = parts[0] === 'api' ? 2 : parts[0] === 'apis' ? 3 : 0;
  if (head === 0) return { answer: false };
  if (parts.length <= head) return { answer: true, path }; // /api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>
  const at = resourcePath(parts, head);
  const info = at && client.resourceAt(at.group, at.version, at.resource);
  if (!at || !info) return { answer: false };
  const inScope = info.namespaced
    ? at.namespace === scope.namespace
    : at.namespace === undefined && LOOKUP_CLUSTER_KINDS.includes(info.kind);
  return inScope ? { answer: true, path, info } : { answer: false };
}

const notFound = (res: ServerResponse, message: string): void => {
  res
    .writeHead(404, { 'content-type': 'application/json' })
    .end(
      JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', message, code: 404 }),
    );
};

type Answer = { status: number; contentType: string; text: string };

/** An answer as the apiserver would give it: the object or list, 404 (nothing there), or 503 (the cluster failed). */
function respond(res: ServerResponse, answer: Answer | undefined): void {
  if (answer?.status === 200) res.writeHead(200, { 'content-type': answer.contentType }).end(answer.text);
  else if (answer?.status === 404) notFound(res, 'not found');
  else
    res
      .writeHead(503, { 'content-type': 'application/json' })
      .end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: answer?.text, code: 503 }));
}

/** An object, or a list with its items, as `admit` lets a render read it: undefined for an object it refuses. */
async function admittedBody(
  text: string,
  admit: (object: KubeObject) => Promise<boolean>,
): Promise<string | undefined> {
  const parsed = JSON.parse(text) as KubeObject & { items?: KubeObject[] };
  if (!Array.isArray(parsed.items)) return (await admit(parsed)) ? text : undefined;
  const kept: KubeObject[] = [];
  for (const item of parsed.items) if (await admit(item)) kept.push(item);
  return JSON.stringify({ ...parsed, items: kept });
}

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
 * the release's namespace, and of cluster-scoped objects of LOOKUP_CLUSTER_KINDS. Anything else
 * (another namespace, a list across namespaces, a subresource, a watch, a write) is answered 404,
 * which `lookup` reads as "nothing there"; so is a read the client's own identity is refused, and an
 * object the scope does not admit. Only a caller holding the endpoint's token (in its kubeconfig's
 * URL) is answered.
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
  const seeded = new Map<string, KubeObject>();
  const answers = new Map<string, Promise<Answer>>();
  const defined: Definitions = new Map();
  let readSecret = false;
  /** The path (raw, not decoded) and query asked for, once the path's first segment is the endpoint's token. */
  const admitted = (raw: string): { path: string; query: URLSearchParams } | undefined => {
    const given = Buffer.from(raw).subarray(0, prefix.length);
    if (given.length !== prefix.length || !timingSafeEqual(given, prefix)) return undefined;
    const [path = '', query = ''] = raw.slice(prefix.length - 1).split('?', 2);
    return { path, query: new URLSearchParams(query) };
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const asked = admitted(req.url ?? '');
    if (!asked) {
      res.writeHead(401).end();
      return;
    }
    const watch = ['true', '1'].includes(asked.query.get('watch') ?? '');
    const verdict = req.method === 'GET' && !watch ? classify(client, asked.path, scope) : ({ answer: false } as const);
    if (!verdict.answer) return notFound(res, 'not readable by a render');
    // The renders of one sync read the same paths (helm reads every object it renders, each render):
    // each is read once, and at most LOOKUP_READS distinct reads reach the cluster.
    const query = asked.query.toString();
    // With definitions, discovery is answered in its legacy form (which they are added to).
    const legacy = defined.size > 0 && verdict.info === undefined;
    const accept = legacy ? 'application/json' : (req.headers.accept ?? 'application/json');
    const answer = await cached(`${verdict.path}${query ? `?${query}` : ''}`, accept, verdict.info);
    const seededObject = answer?.status === 404 ? seeded.get(verdict.path) : undefined;
    if (seededObject)
      return respond(res, { status: 200, contentType: 'application/json', text: JSON.stringify(seededObject) });
    respond(res, legacy ? withDefinitions(verdict.path, answer) : answer);
  };
  /** A read answered once a sync (a 404 once LOOKUP_READS distinct reads were made). */
  const cached = (pathAndQuery: string, accept: string, info: ResourceInfo | undefined): Promise<Answer> => {
    const key = `${pathAndQuery}|${accept}`;
    let answer = answers.get(key);
    if (!answer) {
      answer =
        answers.size >= LOOKUP_READS
          ? Promise.resolve({ status: 404, contentType: '', text: '' })
          : upstream(pathAndQuery, accept, info);
      answers.set(key, answer);
    }
    return answer;
  };
  /** Discovery as the cluster answers it, with what the render's own CRDs define added. */
  const withDefinitions = (path: string, answer: Answer | undefined): Answer | undefined => {
    const json = (text: string): Answer => ({ status: 200, contentType: 'application/json', text });
    if (path === '/apis' && answer?.status === 200) return json(withDefinedGroups(answer.text, defined));
    const gv = /^\/apis\/([^/]+\/[^/]+)$/.exec(path)?.[1];
    if (!gv || !defined.has(decodeURIComponent(gv)) || (answer && answer.status === 503)) return answer;
    return json(
      withDefinedResources(decodeURIComponent(gv), answer?.status === 200 ? answer.text : undefined, defined),
    );
  };
  /**
   * One read through the client: 200 with the body (objects the scope's `admit` refuses left out of
   * it: a single one is then not found), 404 (nothing there, or nothing this identity may read), or 503.
   */
  const upstream = async (pathAndQuery: string, accept: string, info: ResourceInfo | undefined): Promise<Answer> => {
    try {
      const answer = await client.getRaw(pathAndQuery, accept, signal);
      const text = info && scope.admit ? await admittedBody(answer.text, scope.admit) : answer.text;
      if (text === undefined) return { status: 404, contentType: '', text: '' };
      if (info?.kind === 'Secret') {
        readSecret = true;
        secrets.push(...secretValues(text));
      }
      return { status: 200, contentType: answer.contentType || 'application/json', text };
    } catch (err) {
      // A read tidegate's (or the tenant's) identity may not make is, to a chart, nothing there.
      if (err instanceof KubeApiError && (err.status === 403 || err.isNotFound))
        return { status: 404, contentType: '', text: '' };
      return { status: 503, contentType: '', text: errorMessage(err) };
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
    secretsRead: () => readSecret,
    define(crds) {
      for (const [gv, resources] of definitionsOf(crds)) defined.set(gv, resources);
    },
    seed(objects) {
      for (const object of objects) {
        const info = client.resourceFor(object.apiVersion, object.kind);
        if (!info) continue;
        const namespace = info.namespaced ? (object.metadata.namespace ?? scope.namespace) : undefined;
        seeded.set(KubeClient.path(info, namespace, object.metadata.name), {
          ...object,
          metadata: { ...object.metadata, ...(namespace ? { namespace } : {}) },
        });
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
        rmSync(dir, { recursive: true, force: true });
      }),
  };
}
