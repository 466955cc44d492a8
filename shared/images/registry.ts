import type * as EcrSdk from '@aws-sdk/client-ecr';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { awsCall, boundedBody, errorMessage, isNetworkFailure, TidegateError, within } from '../model/index.js';
import { LOOPBACK, basicAuthorization } from '../source/index.js';

export class RegistryError extends TidegateError {
  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super('RegistryFailed', message, options);
  }
}

export interface Credentials {
  username: string;
  password: string;
}

/** host + path of a repository; Docker Hub short names expand as docker does. */
export function splitRepository(repository: string): { host: string; path: string } {
  const [first, ...rest] = repository.split('/');
  const isHost = rest.length > 0 && (first?.includes('.') || first?.includes(':') || first === 'localhost');
  if (isHost) return { host: first ?? '', path: rest.join('/') };
  return { host: 'registry-1.docker.io', path: rest.length ? repository : `library/${repository}` };
}

const ECR_HOST = /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com$/;
export const isEcr = (repository: string): boolean => ECR_HOST.test(splitRepository(repository).host);

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** A registry request's time limit, whatever the message's deadline leaves. */
const REQUEST_TIMEOUT_MS = 30_000;
/** What one answer (a page of tags, a token) may hold, and how many pages of tags are read. */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;
const MAX_TAG_PAGES = 50;

/** Parses `Bearer realm="...",service="...",scope="..."` (or Basic). */
function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const scheme = header.split(' ')[0]?.toLowerCase() ?? '';
  const params: Record<string, string> = {};
  for (const m of header.matchAll(/(\w+)="([^"]*)"/g)) params[m[1] ?? ''] = m[2] ?? '';
  return { scheme, params };
}

/**
 * A client for the OCI distribution API (any registry: distribution, GHCR, Docker Hub, Harbor,
 * ECR with its token) that answers the standard auth challenge: anonymous first; on 401, a bearer
 * token from the realm (with basic credentials when given), or basic auth.
 */
export class OciClient {
  private authorization: string | undefined;

  constructor(
    private readonly host: string,
    private readonly opts: {
      insecure?: boolean;
      credentials?: Credentials | undefined;
      /** The message's deadline: every request stops with it (and after REQUEST_TIMEOUT_MS). */
      signal?: AbortSignal | undefined;
    } = {},
  ) {}

  /** A request within its time limit; a registry that does not answer is an error naming it. */
  private async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    return fetch(url, { ...init, signal: within(REQUEST_TIMEOUT_MS, this.opts.signal) }).catch((err: unknown) => {
      const late = (err as Error).name === 'TimeoutError' && !this.opts.signal?.aborted;
      throw new RegistryError(
        late
          ? `${new URL(url).host} did not answer within ${REQUEST_TIMEOUT_MS / 1000} s`
          : `cannot reach ${this.host}: ${errorMessage(err)}`,
        // Refused or unreachable may pass on its own (the message is tried again); one that never answers is not retried.
        { cause: err, transient: !late && isNetworkFailure(err) },
      );
    });
  }

  /** An answer's JSON, read up to MAX_ANSWER_BYTES. */
  private async json<T>(res: Response): Promise<T> {
    const body = await boundedBody(
      res,
      { bytes: MAX_ANSWER_BYTES },
      () => new RegistryError(`${this.host} sent more than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB in one answer`),
    );
    try {
      return JSON.parse(Buffer.from(body).toString('utf8')) as T;
    } catch {
      throw new RegistryError(`${this.host} answered with something that is not JSON`);
    }
  }

  private url(path: string): string {
    return `${this.opts.insecure ? 'http' : 'https'}://${this.host}${path}`;
  }

  /**
   * The registry's credentials as basic auth, for `to` (the registry or its token realm): only over
   * TLS or to loopback. A registry reached over plain http (`insecure`) elsewhere gets none, nor a
   * realm it names: anyone on the path could read them (and a token bought with them would travel
   * over http too).
   */
  private basic(to: URL): string | undefined {
    if (this.opts.insecure && !LOOPBACK.has(new URL(this.url('/')).hostname)) return undefined;
    return basicAuthorization(to, this.opts.credentials);
  }

  private async authorize(challenge: string): Promise<void> {
    const { scheme, params } = parseChallenge(challenge);
    if (scheme === 'basic') {
      this.authorization = this.basic(new URL(this.url('/')));
      if (!this.authorization)
        throw new RegistryError(
          `${this.host} requires credentials${this.opts.credentials ? ', and they are never sent over plain http except to loopback' : ''}`,
        );
      return;
    }
    const realm = params['realm'];
    if (scheme !== 'bearer' || !realm)
      throw new RegistryError(`${this.host} sent an unsupported auth challenge: ${challenge}`);
    const url = new URL(realm);
    if (params['service']) url.searchParams.set('service', params['service']);
    if (params['scope']) url.searchParams.set('scope', params['scope']);
    const basic = this.basic(url);
    const res = await this.fetch(url, basic ? { headers: { authorization: basic } } : {});
    if (!res.ok) throw new RegistryError(`token request to ${url.host} failed: HTTP ${res.status}`);
    const body = await this.json<{ token?: string; access_token?: string }>(res);
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(`token response from ${url.host} has no token`);
    this.authorization = `Bearer ${token}`;
  }

  async request(method: string, path: string, accept?: string): Promise<Response> {
    const send = () =>
      this.fetch(this.url(path), {
        method,
        headers: {
          ...(accept ? { accept } : {}),
          ...(this.authorization ? { authorization: this.authorization } : {}),
        },
      });
    let res = await send();
    const challenge = res.headers.get('www-authenticate');
    if (res.status === 401 && challenge) {
      await this.authorize(challenge);
      res = await send();
    }
    return res;
  }

  /** Every tag of a repository, following pagination (Link: <...>; rel="next") on this registry, MAX_TAG_PAGES at most. */
  async listTags(path: string): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${path}/tags/list?n=1000`;
    for (let page = 0; next; page++) {
      if (page === MAX_TAG_PAGES)
        throw new RegistryError(`${this.host}/${path} has more than ${MAX_TAG_PAGES} pages of tags`);
      const res = await this.request('GET', next);
      if (res.status === 404) throw new RegistryError(`repository ${this.host}/${path} not found`);
      if (!res.ok) throw new RegistryError(`listing tags of ${this.host}/${path}: HTTP ${res.status}`);
      const listed = (await this.json<{ tags?: unknown }>(res)).tags;
      if (listed !== undefined && listed !== null && !Array.isArray(listed))
        throw new RegistryError(`${this.host}/${path}: the tag list is not a list`);
      tags.push(...(listed ?? []).filter((t): t is string => typeof t === 'string'));
      const link = res.headers.get('link');
      const target = link ? /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] : undefined;
      // Only a path on this registry: a Link naming another host is not followed.
      next = target?.startsWith('/') && !target.startsWith('//') ? target : undefined;
    }
    return tags;
  }

  /** The manifest digest of a tag (what the registry serves as Docker-Content-Digest). */
  async digest(path: string, tag: string): Promise<string> {
    const res = await this.request('HEAD', `/v2/${path}/manifests/${encodeURIComponent(tag)}`, MANIFEST_ACCEPT);
    const digest = res.headers.get('docker-content-digest');
    if (!res.ok || !digest) throw new RegistryError(`no digest for ${this.host}/${path}:${tag} (HTTP ${res.status})`);
    return digest;
  }
}

/** ECR through its API (IAM auth): tags with ListImages, digests with DescribeImages. */
export class EcrRepository {
  private client: Promise<{ ecr: EcrSdk.ECRClient; sdk: typeof EcrSdk }> | undefined;
  private readonly name: string;
  private readonly registryId: string;
  private readonly region: string;

  constructor(
    repository: string,
    opts: {
      endpoint?: string | undefined;
      credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider | undefined;
      signal?: AbortSignal | undefined;
    } = {},
  ) {
    const { host, path } = splitRepository(repository);
    const m = ECR_HOST.exec(host);
    if (!m) throw new RegistryError(`${repository} is not an ECR repository`);
    this.registryId = m[1] ?? '';
    this.name = path;
    this.region = m[2] ?? '';
    this.opts = opts;
  }

  private readonly opts: {
    endpoint?: string | undefined;
    credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider | undefined;
    signal?: AbortSignal | undefined;
  };

  /** Each call within REQUEST_TIMEOUT_MS and the message's deadline. */
  private get call() {
    return { abortSignal: within(REQUEST_TIMEOUT_MS, this.opts.signal) };
  }

  /** The ECR client, loaded on first use. */
  private sdk(): Promise<{ ecr: EcrSdk.ECRClient; sdk: typeof EcrSdk }> {
    this.client ??= import('@aws-sdk/client-ecr').then((sdk) => ({
      sdk,
      ecr: new sdk.ECRClient({
        region: this.region,
        ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
        ...(this.opts.credentials ? { credentials: this.opts.credentials } : {}),
      }),
    }));
    return this.client;
  }

  async listTags(): Promise<string[]> {
    const { ecr, sdk } = await this.sdk();
    const tags: string[] = [];
    let nextToken: string | undefined;
    do {
      const out = await awsCall(
        'ecr:ListImages',
        `cannot list the tags of ${this.name}`,
        ecr.send(
          new sdk.ListImagesCommand({
            repositoryName: this.name,
            registryId: this.registryId,
            filter: { tagStatus: 'TAGGED' },
            nextToken,
          }),
          this.call,
        ),
      );
      for (const id of out.imageIds ?? []) if (id.imageTag) tags.push(id.imageTag);
      nextToken = out.nextToken;
    } while (nextToken);
    return tags;
  }

  async digest(tag: string): Promise<string> {
    const { ecr, sdk } = await this.sdk();
    const out = await awsCall(
      'ecr:DescribeImages',
      `cannot describe ${this.name}:${tag}`,
      ecr.send(
        new sdk.DescribeImagesCommand({
          repositoryName: this.name,
          registryId: this.registryId,
          imageIds: [{ imageTag: tag }],
        }),
        this.call,
      ),
    );
    const digest = out.imageDetails?.[0]?.imageDigest;
    if (!digest) throw new RegistryError(`no digest for ${this.name}:${tag} in ECR`);
    return digest;
  }
}

/**
 * Logins to ECR registries with the runtime's own role (ecr:GetAuthorizationToken), for pulls over
 * the registry protocol (charts from oci:// in ECR): undefined for a host that is not ECR's. Each
 * login is kept until five minutes before it expires (ECR's last 12 hours).
 */
export function ecrLogins(opts: {
  endpoint?: string | undefined;
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider | undefined;
}): (host: string) => Promise<Credentials> | undefined {
  const logins = new Map<string, { login: Promise<Credentials>; until: number }>();
  return (host) => {
    const m = ECR_HOST.exec(host.toLowerCase());
    if (!m) return undefined;
    const kept = logins.get(host);
    if (kept && Date.now() < kept.until) return kept.login;
    const login = ecrLogin(host, m[2] ?? '', opts).then((got) => {
      logins.set(host, { login, until: got.expires - 300_000 });
      return got.credentials;
    });
    logins.set(host, { login, until: Date.now() + 60_000 });
    // A failed login is not kept: the next sync asks again.
    login.catch(() => logins.delete(host));
    return login;
  };
}

async function ecrLogin(
  host: string,
  region: string,
  opts: {
    endpoint?: string | undefined;
    credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider | undefined;
  },
): Promise<{ credentials: Credentials; expires: number }> {
  const sdk = await import('@aws-sdk/client-ecr');
  const ecr = new sdk.ECRClient({
    region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
  });
  const out = await awsCall(
    'ecr:GetAuthorizationToken',
    `cannot log in to ${host}`,
    ecr.send(new sdk.GetAuthorizationTokenCommand({}), { abortSignal: within(REQUEST_TIMEOUT_MS) }),
  );
  const data = out.authorizationData?.[0];
  const [username, ...rest] = Buffer.from(data?.authorizationToken ?? '', 'base64')
    .toString('utf8')
    .split(':');
  if (!username || rest.length === 0) throw new RegistryError(`the ECR login for ${host} holds no token`);
  return {
    credentials: { username, password: rest.join(':') },
    expires: data?.expiresAt?.getTime() ?? Date.now() + 3_600_000,
  };
}
