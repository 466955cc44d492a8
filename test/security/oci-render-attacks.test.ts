import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { fetchChart } from '../../shared/source/chart-repo.js';
import { cli } from '../helpers/cli.js';
import { yamlDocs } from '../helpers/engine.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { tempTree } from '../helpers/files.js';

/**
 * Found by an adversarial review of OCI charts and `tidegate render`; each case failed before its fix.
 * The OCI cases answer through a scripted network (fetch replaced for the test): they need a TLS host
 * answering on 443 and 80 under one name, and tag lists the test controls to the byte.
 */
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';
const bounds = () => ({ deadline: Date.now() + 10_000, maxBytes: 1 << 20 });
const cache = () => mkdtempSync(join(tmpdir(), 'oci-attack-'));

interface Seen {
  url: string;
  authorization: string | undefined;
}

/** A registry (and whatever it redirects to) answering through fetch: handler gets the URL, returns a Response. */
function fakeNet(handler: (url: URL, auth: string | undefined) => Response): Seen[] {
  const seen: Seen[] = [];
  vi.stubGlobal('fetch', async (input: string | URL, init?: { headers?: Record<string, string> }) => {
    const url = new URL(String(input));
    const auth = init?.headers?.['authorization'];
    seen.push({ url: url.href, authorization: auth });
    return handler(url, auth);
  });
  return seen;
}

const json = (v: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(v), { status: 200, headers: { 'content-type': 'application/json', ...headers } });
const manifest = (digest: string) =>
  json({ schemaVersion: 2, layers: [{ mediaType: LAYER, digest: `sha256:${digest}` }] });

/** A registry's manifests and blobs of chart versions (version → archive bytes); 404 for anything else. */
function chartBlobs(url: URL, blobs: Record<string, Uint8Array>): Response {
  const m = /\/manifests\/(.+)$/.exec(url.pathname);
  if (m) return blobs[m[1]!] ? manifest(sha(blobs[m[1]!]!)) : new Response('', { status: 404 });
  const b = Object.values(blobs).find((x) => url.pathname.endsWith(sha(x)));
  return b ? new Response(b, { status: 200 }) : new Response('', { status: 404 });
}

/** The newest version of oci://reg.example/charts/web. */
const newestWeb = () =>
  fetchChart({ repository: 'oci://reg.example/charts', name: 'web', version: '*' }, ['reg.example'], cache(), bounds());

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("OCI charts: a review's breaks", () => {
  it('a registry on https redirecting the blob to http on the same host name: the bearer token is not sent along (origin compared, not host)', async () => {
    const blob = new TextEncoder().encode('chart-bytes');
    const digest = sha(blob);
    const seen = fakeNet((url, auth) => {
      if (url.hostname === 'auth.example') return json({ token: 'SECRET-BEARER-TOKEN' });
      if (!auth)
        return new Response('', {
          status: 401,
          headers: { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="reg"' },
        });
      if (url.pathname.endsWith('/tags/list')) return json({ tags: ['1.0.0'] });
      if (url.pathname.includes('/manifests/')) return manifest(digest);
      if (url.protocol === 'https:' && url.pathname.includes('/blobs/'))
        return new Response(null, { status: 307, headers: { location: `http://reg.example${url.pathname}` } });
      return new Response(blob, { status: 200 });
    });
    await fetchChart(
      { repository: 'oci://reg.example/charts', name: 'web', version: '1.0.0' },
      ['reg.example', 'auth.example'],
      cache(),
      bounds(),
      () => ({ username: 'robot', password: 'pw' }),
    ).catch(() => undefined);
    const cleartext = seen.filter((s) => s.url.startsWith('http://'));
    expect(cleartext.length).toBeGreaterThan(0);
    expect(cleartext.map((s) => s.authorization)).toEqual(cleartext.map(() => undefined));
  });

  it('version picking as Helm: a "v"-prefixed tag (not strict semver) is not a version', async () => {
    const blobs: Record<string, Uint8Array> = {
      '1.0.0': new TextEncoder().encode('one'),
      'v2.0.0': new TextEncoder().encode('two'),
    };
    fakeNet((url) => {
      if (url.pathname.endsWith('/tags/list')) return json({ tags: ['1.0.0', 'v2.0.0'] });
      return chartBlobs(url, blobs);
    });
    const got = await newestWeb();
    // helm: semver.StrictNewVersion(tag) rejects "v2.0.0", so `helm pull --version '*'` gets 1.0.0
    expect(got.version).toBe('1.0.0');
  });

  it('version picking as Helm: a paginated tag list (Link rel="next") is read to its last page', async () => {
    const blobs: Record<string, Uint8Array> = {
      '1.0.0': new TextEncoder().encode('one'),
      '2.0.0': new TextEncoder().encode('two'),
    };
    fakeNet((url) => {
      if (url.pathname.endsWith('/tags/list'))
        return url.searchParams.get('last')
          ? json({ tags: ['2.0.0'] })
          : json({ tags: ['1.0.0'] }, { link: '</v2/charts/web/tags/list?last=1.0.0&n=1>; rel="next"' });
      return chartBlobs(url, blobs);
    });
    const got = await newestWeb();
    expect(got.version).toBe('2.0.0'); // helm (oras-go Tags) follows Link pagination
  });

  it('insecure: true chosen in tidegate.yaml: the deploy-time registry password is never sent over plain HTTP to another machine', async () => {
    const seen = fakeNet((_url, auth) =>
      auth ? json({ tags: [] }) : new Response('', { status: 401, headers: { 'www-authenticate': 'Basic realm="r"' } }),
    );
    await fetchChart(
      { repository: 'oci://reg.example/charts', name: 'web', version: '*', insecure: true },
      ['reg.example'],
      cache(),
      bounds(),
      (host) => (host === 'reg.example' ? { username: 'robot', password: 'pw' } : undefined),
    ).catch(() => undefined);
    expect(seen.filter((s) => s.url.startsWith('http://') && s.authorization)).toEqual([]);
  });
});

describe("tidegate render: a review's breaks", () => {
  it('tidegate render of a target whose sync fails at the server dry-run: an error (exit 2), not objects a sync would never apply', async () => {
    const ns = uniqueName('rbad');
    const name = uniqueName('rbad');
    const k = ['--kubeconfig', testEnv().kube.kubeconfigPath, '--context', 'tidegate-test'];
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web' },
      spec: {
        selector: { matchLabels: { app: 'one' } },
        template: { metadata: { labels: { app: 'other' } }, spec: { containers: [{ name: 'c', image: 'nginx' }] } },
      },
    };
    const dir = tempTree(
      {
        'tidegate.yaml': stringify({
          targets: [{ name, cluster: 'test', path: 'apps', targetNamespace: ns, wait: false }],
        }),
        'apps/d.yaml': yamlDocs(deployment),
      },
      'cli-',
    );
    const sync = await cli('sync', name, '--dir', dir, ...k, '--output', 'json');
    const [res] = JSON.parse(sync.out) as Array<{ outcome: string; error?: string }>;
    expect(res?.outcome).toBe('failed'); // the Deployment was deferred (namespace absent): the Namespace applied, the Deployment refused
    const again = JSON.parse((await cli('sync', name, '--dir', dir, ...k, '--output', 'json')).out) as Array<{
      outcome: string;
    }>;
    expect(again[0]?.outcome).toBe('failed'); // now the namespace exists: the server dry-run refuses it, a sync applies nothing
    const rendered = await cli('render', name, '--dir', dir, ...k);
    const docs = parseAllDocuments(rendered.out)
      .map((d) => d.toJS() as { kind?: string } | null)
      .filter(Boolean);
    expect({ code: rendered.code, kinds: docs.map((d) => d?.kind) }).toEqual({ code: 2, kinds: [] });
  });
});
