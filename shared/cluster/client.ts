import { Agent, request } from 'node:https';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { TidegateError, type KubeObject, type ObjectRef } from '../model/index.js';
import type { Logger } from '../telemetry/index.js';
import {
  DEFAULT_RETRY,
  RETRYABLE_STATUS,
  decide,
  isInvalidObject500,
  type Failure,
  type RetryPolicy,
} from './retry.js';

/**
 * Where a cluster is and how to authenticate to it: a KubeConfig from @kubernetes/client-node
 * fits (local shells), and so does EndpointAuth (Lambda: endpoint, CA, token; no kubeconfig).
 */
export interface ClusterAuth {
  getCurrentCluster(): { server: string; proxyUrl?: string | undefined } | null;
  applyToHTTPSOptions(opts: Parameters<typeof request>[1]): Promise<void>;
}

/** A cluster given as endpoint, CA and (optionally) a static bearer token. */
export class EndpointAuth implements ClusterAuth {
  constructor(private readonly endpoint: { server: string; caPem: string; token?: string | undefined }) {}

  getCurrentCluster(): { server: string } {
    return { server: this.endpoint.server };
  }

  applyToHTTPSOptions(opts: Parameters<typeof request>[1]): Promise<void> {
    opts.ca = this.endpoint.caPem;
    if (this.endpoint.token) opts.headers = withBearer(opts.headers, this.endpoint.token);
    return Promise.resolve();
  }
}

/** One API resource as discovery describes it. */
export interface ResourceInfo {
  group: string;
  version: string;
  kind: string;
  /** plural resource name used in URLs */
  resource: string;
  namespaced: boolean;
}

/** A failed API call: HTTP status, the apiserver's reason and message, and the object it concerned. */
export class KubeApiError extends TidegateError {
  readonly status: number;
  readonly reason: string;
  readonly causes: ReadonlyArray<{ field?: string; message?: string; reason?: string }>;

  constructor(status: number, reason: string, message: string, causes: KubeApiError['causes'] = []) {
    super('KubeApi', message, { transient: RETRYABLE_STATUS.has(status) && !isInvalidObject500(status, message) });
    this.status = status;
    this.reason = reason;
    this.causes = causes;
  }

  get isNotFound(): boolean {
    return this.status === 404;
  }

  /** 409: the object changed since it was read (a resourceVersion precondition failed) or already exists. */
  get isConflict(): boolean {
    return this.status === 409;
  }

  /** 422 whose causes say a field is immutable. */
  get isImmutable(): boolean {
    return (
      this.status === 422 &&
      (this.causes.some((c) => /immutable/i.test(c.message ?? '')) || /immutable/i.test(this.message))
    );
  }
}

/** The apiserver could not be reached, or did not answer in time, after every retry. */
export class KubeUnreachableError extends TidegateError {
  constructor(message: string, cause: unknown) {
    super('KubeUnreachable', message, { cause, transient: true });
  }
}

export interface RequestOptions {
  /** A POST whose repetition the caller recognises (creates that handle 409 on their own object). */
  retryAsIdempotent?: boolean;
  body?: unknown;
  contentType?: string;
  accept?: string;
  query?: Record<string, string | undefined>;
  signal?: AbortSignal;
  /** The answer as sent (its body unparsed, with its content type), for a proxy. */
  raw?: boolean;
}

const DISCOVERY_ACCEPT =
  'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList';

interface DiscoveryList {
  items: Array<{
    metadata: { name?: string };
    versions: Array<{
      version: string;
      resources?: Array<{
        resource: string;
        scope: string;
        responseKind?: { group?: string; version?: string; kind: string };
      }>;
    }>;
  }>;
}

/** Replaces any Authorization header (whatever its case) with a bearer token. */
function withBearer(headers: Parameters<typeof request>[1]['headers'], token: string): Record<string, string> {
  const rest = Object.fromEntries(
    Object.entries(headers ?? {}).filter(([k]) => k.toLowerCase() !== 'authorization'),
  ) as Record<string, string>;
  return { ...rest, authorization: `Bearer ${token}` };
}

interface Sent {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
  reusedSocket: boolean;
}

/** A socket error or timeout, with whether the request went out on a kept-alive socket. */
class SendError extends Error {
  constructor(
    override readonly cause: Error & { code?: string },
    readonly reusedSocket: boolean,
  ) {
    super(cause.message, { cause });
  }
}

function send(url: URL, opts: Parameters<typeof request>[1], payload: string | undefined): Promise<Sent> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? request : httpRequest)(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString('utf8'),
          headers: res.headers,
          reusedSocket: req.reusedSocket,
        }),
      );
      res.on('error', (err) => reject(new SendError(err, req.reusedSocket)));
    });
    req.on('error', (err) => reject(new SendError(err, req.reusedSocket)));
    req.end(payload);
  });
}

/** The apiserver's Status body as a typed error (or the raw text when it is not JSON). */
function apiError(status: number, text: string, fallback: string): KubeApiError {
  let parsed: { reason?: string; message?: string; details?: { causes?: KubeApiError['causes'] } } = {};
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    parsed = { message: text.slice(0, 500) };
  }
  return new KubeApiError(status, parsed.reason ?? '', parsed.message || fallback, parsed.details?.causes ?? []);
}

/** Flattens an aggregated discovery list into resources. */
function discoveredResources(list: DiscoveryList): ResourceInfo[] {
  return list.items.flatMap((group) =>
    group.versions.flatMap((version) =>
      (version.resources ?? [])
        .filter((r) => r.responseKind?.kind)
        .map((r) => ({
          group: group.metadata.name ?? '',
          version: version.version,
          kind: r.responseKind?.kind ?? '',
          resource: r.resource,
          namespaced: r.scope === 'Namespaced',
        })),
    ),
  );
}

/**
 * A small Kubernetes REST client: server-side apply, get, list, delete and aggregated discovery,
 * authenticated by a ClusterAuth (a KubeConfig: tokens, client certificates, exec plugins; or an
 * EndpointAuth). It counts requests,
 * so callers and benchmarks can see what an operation cost.
 */
export class KubeClient {
  /** Requests made so far, by HTTP method (every try counts). */
  readonly requestCounts: Record<string, number> = {};
  /** Tries that were retries. */
  retries = 0;
  /** Connections opened (a request that did not reuse a kept-alive connection). */
  connectionsOpened = 0;
  private resources = new Map<string, ResourceInfo>();
  private readonly agent: Agent;
  private readonly httpAgent: HttpAgent;
  private readonly retryPolicy: RetryPolicy;
  /** The cluster is reached through a proxy (kubeconfig proxy-url): the kubeconfig's own agent is kept. */
  private readonly proxied: boolean;
  /** The user every request is made as (Impersonate-User), when not the client's own identity. */
  private impersonated: string | undefined;

  /**
   * @param kc cluster, CA and credentials
   * @param bearer a token source that replaces the kubeconfig's credentials on every request (EKS tokens)
   * @param opts retry policy (default DEFAULT_RETRY) and where retries are logged
   */
  constructor(
    private readonly kc: ClusterAuth,
    private readonly bearer?: () => Promise<string>,
    private readonly opts: { retry?: Partial<RetryPolicy>; logger?: Logger } = {},
    agents?: { agent: Agent; httpAgent: HttpAgent },
  ) {
    this.agent = agents?.agent ?? new Agent({ keepAlive: true, maxSockets: 16 });
    this.httpAgent = agents?.httpAgent ?? new HttpAgent({ keepAlive: true, maxSockets: 16 });
    this.retryPolicy = { ...DEFAULT_RETRY, ...opts.retry };
    this.proxied = Boolean(kc.getCurrentCluster()?.proxyUrl);
  }

  get server(): string {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new TidegateError('NoCluster', 'the kubeconfig has no current cluster');
    return cluster.server;
  }

  get totalRequests(): number {
    return Object.values(this.requestCounts).reduce((a, b) => a + b, 0);
  }

  /**
   * One API call, tried again (with backoff and jitter, honouring Retry-After) while it fails in a
   * way that may pass: 429, 5xx, a reset or refused connection, a timeout, for requests that are
   * safe to repeat. What still fails is thrown: a KubeApiError, or KubeUnreachableError.
   */
  protected async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const url = new URL(path, this.server);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    for (let attempt = 1; ; attempt++) {
      const failure = await this.attempt(method, url, payload, opts);
      if ('ok' in failure) return failure.ok as T;
      const decision = opts.signal?.aborted
        ? ({ retry: false, why: 'aborted' } as const)
        : decide(opts.retryAsIdempotent ? 'PUT' : method, failure.failure, attempt, this.retryPolicy);
      if (!decision.retry) throw failure.error;
      this.retries++;
      this.opts.logger?.warn('apiserver request retried', {
        method,
        path: url.pathname,
        attempt,
        reason: decision.why,
        delayMs: decision.delayMs,
      });
      // Aborted while waiting to retry: the caller's reason (a deadline, a lost lease), not a bare AbortError.
      if (decision.delayMs > 0)
        await sleep(decision.delayMs, undefined, opts.signal ? { signal: opts.signal } : {}).catch((e: unknown) => {
          throw opts.signal?.reason ?? e;
        });
    }
  }

  /** One try: the parsed answer, or what failed and the error to throw if it is not tried again. */
  private async attempt(
    method: string,
    url: URL,
    payload: string | undefined,
    opts: RequestOptions,
  ): Promise<{ ok: unknown } | { failure: Failure; error: Error }> {
    const timeout = AbortSignal.timeout(this.retryPolicy.timeoutMs);
    const reqOpts = await this.requestOptions(
      method,
      url,
      payload,
      opts,
      opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
    );
    this.requestCounts[method] = (this.requestCounts[method] ?? 0) + 1;
    let sent: Sent;
    try {
      sent = await send(url, reqOpts, payload);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      return this.unreachable(`${method} ${url.pathname}`, url, err, timeout.aborted);
    }
    if (!sent.reusedSocket) this.connectionsOpened++;
    if (sent.status >= 200 && sent.status < 300) {
      if (opts.raw) return { ok: { text: sent.text, contentType: String(sent.headers['content-type'] ?? '') } };
      return { ok: sent.text ? JSON.parse(sent.text) : undefined };
    }
    const retryAfter = sent.headers['retry-after'];
    const error = apiError(sent.status, sent.text, `HTTP ${sent.status} for ${method} ${url.pathname}`);
    return {
      failure: {
        kind: 'status',
        status: sent.status,
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        message: error.message,
      },
      error,
    };
  }

  private async requestOptions(
    method: string,
    url: URL,
    payload: string | undefined,
    opts: RequestOptions,
    signal: AbortSignal,
  ): Promise<Parameters<typeof request>[1]> {
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      // Node sends DELETE bodies without chunked encoding: without a length the apiserver would read
      // the body as the start of the next request on this keep-alive connection (400 Bad Request).
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    const agent = url.protocol === 'https:' ? this.agent : this.httpAgent;
    const reqOpts: Parameters<typeof request>[1] = { method, headers, agent, signal };
    await this.kc.applyToHTTPSOptions(reqOpts);
    // A KubeConfig hands every request a new Agent (a TLS handshake and a new secure context per
    // request: most of a first apply's CPU). Its TLS options stay on the request, so the client's
    // keep-alive agent pools connections per CA and credentials; only a proxy keeps its own agent.
    if (!this.proxied) reqOpts.agent = agent;
    if (this.bearer) reqOpts.headers = withBearer(reqOpts.headers, await this.bearer());
    if (this.impersonated) reqOpts.headers = { ...reqOpts.headers, 'impersonate-user': this.impersonated };
    return reqOpts;
  }

  private unreachable(where: string, url: URL, err: unknown, timedOut: boolean): { failure: Failure; error: Error } {
    const cause = err instanceof SendError ? err.cause : (err as Error & { code?: string });
    if (timedOut)
      return {
        failure: { kind: 'timeout' },
        error: new KubeUnreachableError(
          `no answer from ${url.host} within ${this.retryPolicy.timeoutMs} ms (${where})`,
          cause,
        ),
      };
    const code = cause.code ?? 'EUNKNOWN';
    return {
      failure: { kind: 'network', code, reusedSocket: err instanceof SendError && err.reusedSocket },
      error: new KubeUnreachableError(`cannot reach ${url.host}: ${code} ${cause.message} (${where})`, cause),
    };
  }

  /** Refreshes the resource index with aggregated discovery: two requests for the whole API surface. */
  async discover(signal?: AbortSignal): Promise<void> {
    const index = new Map<string, ResourceInfo>();
    for (const root of ['/api', '/apis']) {
      const list = await this.request<DiscoveryList>('GET', root, {
        accept: DISCOVERY_ACCEPT,
        ...(signal ? { signal } : {}),
      });
      for (const info of discoveredResources(list))
        index.set(`${info.group ? `${info.group}/` : ''}${info.version}/${info.kind}`, info);
    }
    this.resources = index;
  }

  /** The resource serving apiVersion+kind, from the last discovery (undefined when unknown). */
  resourceFor(apiVersion: string, kind: string): ResourceInfo | undefined {
    return this.resources.get(`${apiVersion}/${kind}`);
  }

  /** The resource served at group/version/resource (a URL's parts), from the last discovery. */
  resourceAt(group: string, version: string, resource: string): ResourceInfo | undefined {
    for (const info of this.resources.values())
      if (info.group === group && info.version === version && info.resource === resource) return info;
    return undefined;
  }

  /**
   * A GET of a path (with its query) answered as the apiserver sent it: the body unparsed and its
   * content type (a read-only proxy's upstream). Retried like any GET; a refusal throws KubeApiError.
   */
  async getRaw(
    pathAndQuery: string,
    accept: string,
    signal?: AbortSignal,
  ): Promise<{ text: string; contentType: string }> {
    const url = new URL(pathAndQuery, 'http://x');
    return this.request('GET', url.pathname, {
      accept,
      raw: true,
      query: Object.fromEntries(url.searchParams),
      ...(signal ? { signal } : {}),
    });
  }

  /** Any served version of group+kind (for refs that carry no version, such as inventory entries). */
  resourceForGroupKind(group: string, kind: string): ResourceInfo | undefined {
    for (const info of this.resources.values()) if (info.group === group && info.kind === kind) return info;
    return undefined;
  }

  /** The resource for apiVersion+kind; discovers once first when nothing was discovered yet. */
  protected async requireResource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    if (this.resources.size === 0) await this.discover();
    const info = this.resourceFor(apiVersion, kind);
    if (!info) throw new KubeApiError(404, 'NotFound', `the server does not serve ${kind} in ${apiVersion}`);
    return info;
  }

  static path(info: ResourceInfo, namespace?: string, name?: string): string {
    const base = info.group ? `/apis/${info.group}/${info.version}` : `/api/${info.version}`;
    const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${base}${ns}/${info.resource}${name ? `/${encodeURIComponent(name)}` : ''}`;
  }

  /** Server-side apply of a whole object; returns the object as stored (or as it would be, on dry run). */
  async apply(
    obj: KubeObject,
    opts: { fieldManager: string; force?: boolean; dryRun?: boolean; signal?: AbortSignal },
  ): Promise<KubeObject> {
    const info = await this.requireResource(obj.apiVersion, obj.kind);
    return this.request<KubeObject>('PATCH', KubeClient.path(info, obj.metadata.namespace, obj.metadata.name), {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: {
        fieldManager: opts.fieldManager,
        force: opts.force ? 'true' : undefined,
        dryRun: opts.dryRun ? 'All' : undefined,
      },
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  }

  async get(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
    signal?: AbortSignal,
  ): Promise<KubeObject | undefined> {
    const info = await this.requireResource(apiVersion, kind);
    try {
      return await this.request<KubeObject>('GET', KubeClient.path(info, namespace, name), signal ? { signal } : {});
    } catch (err) {
      if (err instanceof KubeApiError && err.isNotFound) return undefined;
      throw err;
    }
  }

  /** Every object of a kind (in a namespace, or all), following pagination; items carry apiVersion and kind. */
  async list(
    apiVersion: string,
    kind: string,
    opts: { namespace?: string; labelSelector?: string; signal?: AbortSignal } = {},
  ): Promise<KubeObject[]> {
    const info = await this.requireResource(apiVersion, kind);
    const items: KubeObject[] = [];
    let cont: string | undefined;
    do {
      const page = await this.request<{ items: KubeObject[]; metadata: { continue?: string } }>(
        'GET',
        KubeClient.path(info, opts.namespace),
        {
          query: { labelSelector: opts.labelSelector, limit: '500', continue: cont },
          ...(opts.signal ? { signal: opts.signal } : {}),
        },
      );
      for (const item of page.items) items.push({ ...item, apiVersion, kind });
      cont = page.metadata.continue || undefined;
    } while (cont);
    return items;
  }

  /**
   * Creates an object; a KubeApiError 409 (isConflict) when it exists already. Retried like an
   * idempotent request, so a create whose answer was lost can come back 409 on its own object:
   * callers tell their own object apart (a lease's holder, a state's content).
   */
  async create(obj: KubeObject, signal?: AbortSignal): Promise<KubeObject> {
    const info = await this.requireResource(obj.apiVersion, obj.kind);
    return this.request<KubeObject>('POST', KubeClient.path(info, obj.metadata.namespace), {
      body: obj,
      retryAsIdempotent: true,
      ...(signal ? { signal } : {}),
    });
  }

  /** Replaces an object with a resourceVersion precondition (metadata.resourceVersion); 409 when it changed since. */
  async replace(obj: KubeObject, signal?: AbortSignal): Promise<KubeObject> {
    const info = await this.requireResource(obj.apiVersion, obj.kind);
    return this.request<KubeObject>('PUT', KubeClient.path(info, obj.metadata.namespace, obj.metadata.name), {
      body: obj,
      ...(signal ? { signal } : {}),
    });
  }

  /** Deletes an object; false when it was already gone. With a resourceVersion precondition, 409 when it changed since. */
  async delete(
    ref: ObjectRef & { apiVersion?: string },
    opts: {
      propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
      dryRun?: boolean;
      resourceVersion?: string;
      signal?: AbortSignal;
    } = {},
  ): Promise<boolean> {
    const info = ref.apiVersion
      ? await this.requireResource(ref.apiVersion, ref.kind)
      : this.resourceForGroupKind(ref.group, ref.kind);
    if (!info) return false; // the kind is no longer served: nothing of it can exist
    try {
      await this.request('DELETE', KubeClient.path(info, ref.namespace, ref.name), {
        body: {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          propagationPolicy: opts.propagationPolicy ?? 'Background',
          ...(opts.dryRun ? { dryRun: ['All'] } : {}),
          ...(opts.resourceVersion ? { preconditions: { resourceVersion: opts.resourceVersion } } : {}),
        },
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.isNotFound) return false;
      throw err;
    }
  }

  /**
   * A client whose every request is made as `user` (the Impersonate-User header; no groups are
   * sent: for a ServiceAccount the apiserver adds its groups itself). It shares this client's
   * connections and what it discovered; this client's identity needs `impersonate` on that user
   * (for a ServiceAccount: on `serviceaccounts`, by name, in its namespace).
   */
  impersonating(user: string): KubeClient {
    const other = new KubeClient(this.kc, this.bearer, this.opts, { agent: this.agent, httpAgent: this.httpAgent });
    other.impersonated = user;
    other.resources = this.resources;
    return other;
  }

  /** Who the requests are made as, when not the client's own identity. */
  get actingAs(): string | undefined {
    return this.impersonated;
  }

  close(): void {
    this.agent.destroy();
    this.httpAgent.destroy();
  }
}

export const groupVersionOf = (info: ResourceInfo): string =>
  info.group ? `${info.group}/${info.version}` : info.version;
