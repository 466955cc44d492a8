import type * as EcrSdk from '@aws-sdk/client-ecr';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { awsCall, errorMessage, TidegateError } from '../model/index.js';

export class RegistryError extends TidegateError {
  constructor(message: string, options?: { cause?: unknown }) {
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
    private readonly opts: { insecure?: boolean; credentials?: Credentials | undefined } = {},
  ) {}

  private url(path: string): string {
    return `${this.opts.insecure ? 'http' : 'https'}://${this.host}${path}`;
  }

  private basic(): string | undefined {
    const c = this.opts.credentials;
    return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined;
  }

  private async authorize(challenge: string): Promise<void> {
    const { scheme, params } = parseChallenge(challenge);
    if (scheme === 'basic') {
      this.authorization = this.basic();
      if (!this.authorization) throw new RegistryError(`${this.host} requires credentials`);
      return;
    }
    const realm = params['realm'];
    if (scheme !== 'bearer' || !realm)
      throw new RegistryError(`${this.host} sent an unsupported auth challenge: ${challenge}`);
    const url = new URL(realm);
    if (params['service']) url.searchParams.set('service', params['service']);
    if (params['scope']) url.searchParams.set('scope', params['scope']);
    const basic = this.basic();
    const res = await fetch(url, basic ? { headers: { authorization: basic } } : {});
    if (!res.ok) throw new RegistryError(`token request to ${url.host} failed: HTTP ${res.status}`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError(`token response from ${url.host} has no token`);
    this.authorization = `Bearer ${token}`;
  }

  async request(method: string, path: string, accept?: string): Promise<Response> {
    const send = () =>
      fetch(this.url(path), {
        method,
        headers: {
          ...(accept ? { accept } : {}),
          ...(this.authorization ? { authorization: this.authorization } : {}),
        },
      });
    let res = await send().catch((err: unknown) => {
      throw new RegistryError(`cannot reach ${this.host}: ${errorMessage(err)}`, { cause: err });
    });
    const challenge = res.headers.get('www-authenticate');
    if (res.status === 401 && challenge) {
      await this.authorize(challenge);
      res = await send();
    }
    return res;
  }

  /** Every tag of a repository, following pagination (Link: <...>; rel="next"). */
  async listTags(path: string): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${path}/tags/list?n=1000`;
    while (next) {
      const res = await this.request('GET', next);
      if (res.status === 404) throw new RegistryError(`repository ${this.host}/${path} not found`);
      if (!res.ok) throw new RegistryError(`listing tags of ${this.host}/${path}: HTTP ${res.status}`);
      tags.push(...(((await res.json()) as { tags?: string[] | null }).tags ?? []));
      const link = res.headers.get('link');
      next = link ? /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] : undefined;
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
  };

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
      ),
    );
    const digest = out.imageDetails?.[0]?.imageDigest;
    if (!digest) throw new RegistryError(`no digest for ${this.name}:${tag} in ECR`);
    return digest;
  }
}
