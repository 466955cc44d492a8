import { createHash } from 'node:crypto';
import { valid } from 'semver';
import { boundedRequest, type FetchBounds } from './remote-base.js';

/** Registry credentials, by host (the same the image automation uses). */
export type RegistryCredentials = (
  host: string,
) => { username: string; password: string } | undefined | Promise<{ username: string; password: string } | undefined>;

export const LOOPBACK: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** A Basic authorization for `to`, only over TLS (or to this machine itself): never in cleartext across a network. */
export function basicAuthorization(
  to: URL,
  credentials: { username: string; password: string } | undefined,
): string | undefined {
  if (!credentials || (to.protocol !== 'https:' && !LOOPBACK.has(to.hostname))) return undefined;
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}
/** The media type of a Helm chart's layer in an OCI registry. */
export const CHART_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/**
 * The distribution API of one repository, each request bounded as chart fetches are (listed hosts,
 * deadline, bytes), answering the registry's auth challenge: a bearer token from the realm (with
 * basic credentials when the host has some), or basic auth. Credentials go to the registry's host
 * and its token realm only, never along a redirect.
 */
export class OciChartRegistry {
  private authorization: string | undefined;
  private readonly left: { bytes: number };

  constructor(
    private readonly base: URL,
    private readonly repository: string,
    private readonly allowedHosts: readonly string[],
    private readonly bounds: FetchBounds,
    private readonly credentials: { username: string; password: string } | undefined,
  ) {
    this.left = { bytes: bounds.maxBytes };
  }

  /** Credentials travel over TLS only (or to this machine itself): never in cleartext across a network. */
  private basic(to: URL = this.base): string | undefined {
    return basicAuthorization(to, this.credentials);
  }

  private async send(url: URL, accept?: string): Promise<{ res: Response; data: Uint8Array }> {
    const headers: Record<string, string> = {
      ...(accept ? { accept } : {}),
      ...(this.authorization && url.origin === this.base.origin ? { authorization: this.authorization } : {}),
    };
    return boundedRequest(
      url,
      { method: 'GET', headers },
      this.allowedHosts,
      this.bounds.deadline,
      this.left,
      'return',
    );
  }

  private async authorize(challenge: string): Promise<void> {
    const scheme = challenge.split(' ')[0]?.toLowerCase();
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (scheme === 'basic') {
      this.authorization = this.basic();
      if (!this.authorization) throw new Error(`${this.base.host} requires credentials`);
      return;
    }
    if (scheme !== 'bearer' || !params['realm'])
      throw new Error(`${this.base.host} sent an unsupported auth challenge`);
    const realm = new URL(params['realm']);
    if (params['service']) realm.searchParams.set('service', params['service']);
    realm.searchParams.set('scope', params['scope'] ?? `repository:${this.repository}:pull`);
    const basic = this.basic(realm);
    const { res, data } = await boundedRequest(
      realm,
      { method: 'GET', headers: basic ? { authorization: basic } : {} },
      this.allowedHosts,
      this.bounds.deadline,
      this.left,
    );
    if (res.status !== 200) throw new Error(`the token request to ${realm.host} answered HTTP ${res.status}`);
    const body = JSON.parse(Buffer.from(data).toString('utf8')) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new Error(`the token answer of ${realm.host} has no token`);
    this.authorization = `Bearer ${token}`;
  }

  /** A GET of the registry (path under /v2/<repository>/), authorized on challenge, redirects followed to listed hosts (blob storage). */
  async get(path: string, accept?: string): Promise<Uint8Array> {
    return (await this.getWithLink(path, accept)).data;
  }

  /** get, with the answer's Link header (tag list pages). */
  private async getWithLink(path: string, accept?: string): Promise<{ data: Uint8Array; link: string | null }> {
    let url = new URL(`/v2/${this.repository}/${path}`, this.base);
    let { res, data } = await this.send(url, accept);
    const challenge = res.headers.get('www-authenticate');
    if (res.status === 401 && challenge) {
      await this.authorize(challenge);
      ({ res, data } = await this.send(url, accept));
    }
    for (let hops = 0; res.status >= 300 && res.status < 400; hops++) {
      const location = res.headers.get('location');
      if (!location || hops >= 3) throw new Error(`${url.host} redirected without an end (HTTP ${res.status})`);
      url = new URL(location, url);
      ({ res, data } = await this.send(url, accept));
    }
    if (res.status !== 200) throw new Error(`GET ${url.host}${url.pathname} answered HTTP ${res.status}`);
    return { data, link: res.headers.get('link') };
  }

  /**
   * The versions its tags name, each with its tag, "+" written as "_" (as Helm pushes). Helm reads
   * strict versions only; with `prefixV`, a "v" prefix is read as the version too, as Flux's
   * OCIRepository reads tags (cert-manager's and Envoy Gateway's charts are tagged v1.21.1). A
   * version tagged both ways keeps the tag without the prefix.
   */
  async versions(prefixV = false): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const tag of await this.tags()) {
      const version = valid(tag.replace(/_/g, '+'));
      if (!version || (!prefixV && version !== tag.replace(/_/g, '+'))) continue;
      if (!out.has(version) || !tag.startsWith('v')) out.set(version, tag);
    }
    return out;
  }

  /** Every tag of the repository, page by page. */
  async tags(): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = 'tags/list?n=1000';
    for (let page = 0; next; page++) {
      if (page >= 50) throw new Error(`${this.base.host} lists more than 50 pages of tags`);
      const { data, link } = await this.getWithLink(next);
      tags.push(...((JSON.parse(Buffer.from(data).toString('utf8')) as { tags?: string[] | null }).tags ?? []));
      // Link: </v2/<repository>/tags/list?n=…&last=…>; rel="next" (on this registry only).
      const href = link ? /<([^>]+)>;\s*rel="next"/.exec(link)?.[1] : undefined;
      const url = href ? new URL(href, this.base) : undefined;
      const prefix = `/v2/${this.repository}/`;
      next =
        url && url.origin === this.base.origin && url.pathname.startsWith(prefix)
          ? url.pathname.slice(prefix.length) + url.search
          : undefined;
    }
    return tags;
  }

  /**
   * The digest of the chart layer of a version's (or a tag's, or a digest's) manifest, and the digest
   * of that manifest (of the bytes read: the manifest a signature must name).
   */
  async chartDigest(version: string): Promise<{ layer: string; manifest: string }> {
    const { digest, layers } = await this.manifest(version.replace(/\+/g, '_'));
    const layer = layers.find((l) => l.mediaType === CHART_LAYER)?.digest ?? '';
    if (!/^sha256:[0-9a-f]{64}$/.test(layer))
      throw new Error(`version ${version} is not a Helm chart (no chart layer)`);
    return { layer: layer.slice('sha256:'.length), manifest: digest };
  }

  /** The manifest a tag or digest names (by digest: the one with that digest, or none), and its own digest. */
  async manifest(
    reference: string,
  ): Promise<{ digest: string; layers: Array<{ mediaType?: string; digest?: string; size?: number }> }> {
    const data = await this.get(`manifests/${reference}`, MANIFEST);
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    if (reference.startsWith('sha256:') && digest !== reference)
      throw new Error(`the registry answered ${reference} with a manifest of another digest`);
    const manifest = JSON.parse(Buffer.from(data).toString('utf8')) as { layers?: unknown };
    return { digest, layers: Array.isArray(manifest.layers) ? (manifest.layers as []) : [] };
  }
}

/** Where an oci:// chart lives: the registry's base URL and the repository of the chart (<path>/<name>). */
export function ociLocation(repository: string, name: string, insecure: boolean): { base: URL; repository: string } {
  const url = new URL(repository.replace(/^oci:\/\//, insecure ? 'http://' : 'https://'));
  const path = url.pathname.replace(/^\/+|\/+$/g, '');
  return { base: new URL(`${url.protocol}//${url.host}`), repository: path ? `${path}/${name}` : name };
}
