import type { KeyObject } from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { pushArtifact } from '../../devenv/index.js';
import { fetchArtifact, type ArtifactRef } from '../../shared/source/artifact.js';
import { fetchChart } from '../../shared/source/chart-repo.js';
import { testEnv } from '../helpers/env.js';

/**
 * Adversarial review of OCI artifacts of manifests (fetchArtifact) and cosign-verified OCI charts.
 * Attacker: write access to the Git repository, push access to the registry, no trusted private key.
 * Tests asserting the safe behaviour that fail now demonstrate a break; "held: …" tests pass.
 */

const made: string[] = [];
const servers: Server[] = [];
afterAll(async () => {
  made.forEach((d) => rmSync(d, { recursive: true, force: true }));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});
const cache = () => {
  const d = mkdtempSync(join(tmpdir(), 'oci-attacks-'));
  made.push(d);
  return d;
};
const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const bounds = (ms = 20_000, maxBytes = 1 << 20) => ({ deadline: Date.now() + ms, maxBytes });

type Entry = { name: string; type?: string; data?: Buffer | string; linkname?: string; size?: number };

/** A tar.gz with exactly these entries (names and types as given: nothing normalised). */
async function crafted(entries: Entry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((r) => p.on('end', () => r()));
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    await new Promise<void>((resolve, reject) =>
      p.entry(
        {
          name: e.name,
          type: (e.type ?? 'file') as 'file',
          linkname: e.linkname,
          mode: 0o644,
        },
        data,
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }
  p.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

/** Pushes the layer to the real distribution registry as `flux push artifact` does; the ArtifactRef of it. */
async function pushed(layer: Buffer): Promise<{ ref: ArtifactRef; host: string; digest: string }> {
  const registry = testEnv().registry;
  const host = new URL(registry.url).host;
  const repository = `attacks/a-${randomBytes(4).toString('hex')}`;
  const digest = await pushArtifact(registry, repository, 'v1', layer);
  return { ref: { url: `oci://${host}/${repository}`, ref: { tag: 'v1' }, insecure: true }, host, digest };
}
const hosts = () => [new URL(testEnv().registry.url).hostname, '127.0.0.1', 'localhost'];

/** Fetches with a hard timeout of our own: a hang or crash inside extraction shows as a test failure, not a stuck run. */
async function settle<T>(p: Promise<T>, ms: number): Promise<{ ok: T } | { err: Error } | { hung: true }> {
  return Promise.race([
    p.then(
      (ok) => ({ ok }),
      (err: Error) => ({ err }),
    ),
    new Promise<{ hung: true }>((r) => setTimeout(() => r({ hung: true }), ms)),
  ]);
}

/** Every error thrown anywhere in the process while `fn` runs (an exception escaping a stream callback). */
async function uncaught<T>(fn: () => Promise<T>): Promise<{ value: T; escaped: Error[] }> {
  const escaped: Error[] = [];
  const onErr = (e: Error) => escaped.push(e);
  const before = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  process.on('uncaughtException', onErr);
  try {
    const value = await fn();
    await new Promise((r) => setTimeout(r, 200));
    return { value, escaped };
  } finally {
    process.removeListener('uncaughtException', onErr);
    before.forEach((l) => process.on('uncaughtException', l as (e: Error) => void));
  }
}

/** A tiny distribution API on 127.0.0.1 that answers whatever `route` says (a registry that lies). */
async function fakeRegistry(
  route: (req: IncomingMessage, res: ServerResponse, hits: Map<string, number>) => void,
): Promise<{ host: string; hits: Map<string, number>; seen: Array<{ url: string; auth?: string }> }> {
  const hits = new Map<string, number>();
  const seen: Array<{ url: string; auth?: string }> = [];
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    seen.push({ url: path, ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
    route(req, res, hits);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { host: `127.0.0.1:${port}`, hits, seen };
}
const manifestOf = (layers: Array<{ mediaType: string; data: Buffer }>) =>
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.cncf.flux.config.v1+json', digest: sha(Buffer.from('{}')), size: 2 },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: sha(l.data), size: l.data.length })),
    }),
  );
const FLUX = 'application/vnd.cncf.flux.content.v1.tar+gzip';

describe('OCI artifacts of manifests: extraction', () => {
  it('a file a then a file a/b fails the fetch cleanly: no exception escapes, no hang', async () => {
    // Attack: the layer holds a regular file `a` and then a regular file `a/b`. extractLayer calls
    // mkdirSync(dirname(...)) inside the entry stream's 'end' listener, outside any try/catch and
    // outside the promise: the ENOTDIR/EEXIST it throws escapes the stream callback instead of
    // rejecting the fetch. Observed: the exception is uncaught (in a plain Node process, without
    // vitest's handler, the process exits with code 1: checked with tsx), and the fetch promise
    // never settles (no deadline guards extraction; renderWith awaits it). Anyone who can push an
    // artifact and name it in a target crashes (or, with a handler, wedges) the rendering process.
    // Safe behaviour: the fetch rejects (ArtifactError), nothing escapes.
    const layer = await crafted([
      { name: 'a', data: 'kind: x\n' },
      { name: 'a/b', data: 'kind: y\n' },
    ]);
    const { ref } = await pushed(layer);
    const { value, escaped } = await uncaught(() => settle(fetchArtifact(ref, hosts(), cache(), bounds()), 8_000));
    expect(escaped.map((e) => e.message)).toEqual([]);
    expect(value).toHaveProperty('err');
  });

  it('a directory a then a file a fails the fetch cleanly', async () => {
    // Attack: directory entry `a/`, then a regular file entry `a`: writeFileSync throws EISDIR in the
    // 'end' listener, escaping the extraction promise (as above).
    const layer = await crafted([
      { name: 'a', type: 'directory' },
      { name: 'a', data: 'kind: y\n' },
    ]);
    const { ref } = await pushed(layer);
    const { value, escaped } = await uncaught(() => settle(fetchArtifact(ref, hosts(), cache(), bounds()), 8_000));
    expect(escaped.map((e) => e.message)).toEqual([]);
    expect(value).toHaveProperty('err');
  });

  it('a file a then a directory entry a/ fails the fetch cleanly', async () => {
    // Attack: mkdirSync(join(dir, "a"), { recursive: true }) inside the 'entry' listener over an
    // existing file throws EEXIST synchronously from tar-stream's emit.
    const layer = await crafted([
      { name: 'a', data: 'kind: x\n' },
      { name: 'a', type: 'directory' },
    ]);
    const { ref } = await pushed(layer);
    const { value, escaped } = await uncaught(() => settle(fetchArtifact(ref, hosts(), cache(), bounds()), 8_000));
    expect(escaped.map((e) => e.message)).toEqual([]);
    expect(value).toHaveProperty('err');
  });

  it('held: .., a/../../x, absolute paths, hard links, symlinks, devices and fifos each fail the fetch', async () => {
    const cases: Entry[][] = [
      [{ name: '../x.yaml', data: 'a: 1\n' }],
      [{ name: 'a/../../x.yaml', data: 'a: 1\n' }],
      [{ name: './../x.yaml', data: 'a: 1\n' }],
      [{ name: '/etc/x.yaml', data: 'a: 1\n' }],
      [{ name: '..', type: 'directory' }],
      [
        { name: 'a.yaml', data: 'a: 1\n' },
        { name: 'b.yaml', type: 'link', linkname: 'a.yaml' },
      ],
      [{ name: 'l', type: 'symlink', linkname: '/etc' }],
      [{ name: 'd', type: 'character-device' }],
      [{ name: 'f', type: 'fifo' }],
    ];
    for (const entries of cases) {
      const { ref } = await pushed(await crafted(entries));
      const c = cache();
      const got = await settle(fetchArtifact(ref, hosts(), c, bounds()), 8_000);
      expect(got, JSON.stringify(entries)).toHaveProperty('err');
      expect(existsSync(join(c, 'x.yaml'))).toBe(false);
      expect(readdirSync(join(c, 'artifacts'))).toEqual([]);
    }
  });

  it('held: a backslash name is one file name on Linux (no traversal), a NUL name (pax path) fails', async () => {
    const { ref } = await pushed(await crafted([{ name: '..\\..\\x.yaml', data: 'a: 1\n' }]));
    const c = cache();
    const got = await fetchArtifact(ref, hosts(), c, bounds());
    expect(readdirSync(got.dir)).toEqual(['..\\..\\x.yaml']);
    const nul = await pushed(await crafted([{ name: `a${'x'.repeat(120)}\u0000/../../../x.yaml`, data: 'a: 1\n' }]));
    const r = await settle(fetchArtifact(nul.ref, hosts(), cache(), bounds()), 8_000);
    expect(r).not.toHaveProperty('hung');
  });

  it('held: bytes over the render limit (many files) fail the fetch', async () => {
    const big = Buffer.alloc(300_000, 0x61);
    const layer = await crafted([0, 1, 2, 3].map((i) => ({ name: `f${i}.yaml`, data: big })));
    const { ref } = await pushed(layer);
    await expect(fetchArtifact(ref, hosts(), cache(), bounds(20_000, 1 << 20))).rejects.toThrow(/more than/);
  });

  it('a gzip bomb (zero blocks after the archive) stops at the byte limit and the deadline', async () => {
    // Attack: a tiny valid tar (one file), followed by hundreds of MiB of zero bytes, gzipped (about
    // 1000:1). tar-stream skips all-zero 512-byte blocks as "no header" and keeps reading, and
    // extractLayer never looks at the deadline nor at how much it inflated (only file bytes count):
    // the whole bomb is inflated, CPU bound, whatever render.timeout says. Safe behaviour: the fetch
    // ends (rejects) near the deadline. With a bigger layer (up to render.maxBytes compressed) the
    // inflation is ~1000x render.maxBytes.
    const tar = await crafted([{ name: 'a.yaml', data: 'a: 1\n' }]);
    const { gunzipSync } = await import('node:zlib');
    const raw = gunzipSync(tar);
    const zeros = Buffer.alloc(1 << 30); // 1 GiB of zeros: ~1 MiB gzipped
    const layer = gzipSync(Buffer.concat([raw, zeros]), { level: 9 });
    zeros.fill(0);
    const { ref } = await pushed(layer);
    const started = Date.now();
    const r = await settle(fetchArtifact(ref, hosts(), cache(), bounds(500, 8 << 20)), 60_000);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect('err' in r ? r.err.message : r).toMatch(/inflates to more than|render time limit passed/);
  }, 120_000);
});

describe('OCI artifacts of manifests: registry answers', () => {
  it('the layer a target selects by media type is the one rendered, whatever another target extracted of the same manifest before', async () => {
    // Attack: one manifest, two layers: layer 0 (attacker's manifests), layer 1 of media type X (the
    // manifests the victim target selects with layerSelector.mediaType). The cache directory is keyed
    // by the manifest digest only (artifacts/sha256-<manifest>) and reused if it exists. A target the
    // attacker adds with the same URL and digest and no mediaType extracts layer 0 there first; the
    // victim target (mediaType X) then renders layer 0.
    const evil = await crafted([{ name: 'cm.yaml', data: 'evil: true\n' }]);
    const good = await crafted([{ name: 'cm.yaml', data: 'good: true\n' }]);
    const X = 'application/vnd.example.manifests.v1.tar+gzip';
    const manifest = manifestOf([
      { mediaType: FLUX, data: evil },
      { mediaType: X, data: good },
    ]);
    const blobs = new Map([
      [sha(evil), evil],
      [sha(good), good],
    ]);
    const reg = await fakeRegistry((req, res) => {
      const url = req.url ?? '';
      if (url.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        return res.end(manifest);
      }
      const b = blobs.get(/blobs\/(sha256:[0-9a-f]+)/.exec(url)?.[1] ?? '');
      if (b) {
        res.writeHead(200);
        return res.end(b);
      }
      res.writeHead(404);
      res.end();
    });
    const c = cache();
    const url = `oci://${reg.host}/app`;
    const digest = sha(manifest);
    await fetchArtifact({ url, ref: { digest }, insecure: true }, hosts(), c, bounds());
    const victim = await fetchArtifact({ url, ref: { digest }, insecure: true, mediaType: X }, hosts(), c, bounds());
    expect(readFileSync(join(victim.dir, 'cm.yaml'), 'utf8')).toBe('good: true\n');
  });

  it('held: a manifest whose digest is not the pinned one, a layer whose content is not its digest, a redirect to an unlisted host', async () => {
    const layer = await crafted([{ name: 'cm.yaml', data: 'a: 1\n' }]);
    const other = await crafted([{ name: 'cm.yaml', data: 'evil: 1\n' }]);
    const manifest = manifestOf([{ mediaType: FLUX, data: layer }]);
    let mode = 'swap-manifest';
    const reg = await fakeRegistry((req, res) => {
      const url = req.url ?? '';
      if (url.includes('/manifests/')) {
        res.writeHead(200);
        return res.end(mode === 'swap-manifest' ? manifestOf([{ mediaType: FLUX, data: other }]) : manifest);
      }
      if (mode === 'lie-layer') {
        res.writeHead(200);
        return res.end(other);
      }
      res.writeHead(307, { location: 'http://evil.example/blob' });
      res.end();
    });
    const ref: ArtifactRef = { url: `oci://${reg.host}/app`, ref: { digest: sha(manifest) }, insecure: true };
    await expect(fetchArtifact(ref, hosts(), cache(), bounds())).rejects.toThrow(/another digest/);
    mode = 'lie-layer';
    await expect(fetchArtifact(ref, hosts(), cache(), bounds())).rejects.toThrow(/does not have its digest/);
    mode = 'redirect';
    await expect(fetchArtifact(ref, hosts(), cache(), bounds())).rejects.toThrow(/not listed/);
  });

  it('held: a tag moved between the manifest read and the layer fetch: the layer is the one of the manifest read (one manifest GET)', async () => {
    const a = await crafted([{ name: 'cm.yaml', data: 'a: 1\n' }]);
    const b = await crafted([{ name: 'cm.yaml', data: 'b: 1\n' }]);
    const reg = await fakeRegistry((req, res, hits) => {
      const url = req.url ?? '';
      if (url.includes('/manifests/')) {
        res.writeHead(200);
        return res.end(manifestOf([{ mediaType: FLUX, data: (hits.get(url) ?? 0) > 1 ? b : a }]));
      }
      const blob = [a, b].find((x) => url.endsWith(sha(x)));
      res.writeHead(blob ? 200 : 404);
      res.end(blob);
    });
    const got = await fetchArtifact(
      { url: `oci://${reg.host}/app`, ref: { tag: 'v1' }, insecure: true },
      hosts(),
      cache(),
      bounds(),
    );
    expect(got.digest).toBe(sha(manifestOf([{ mediaType: FLUX, data: a }])));
    expect(readFileSync(join(got.dir, 'cm.yaml'), 'utf8')).toBe('a: 1\n');
  });

  it('held: registry credentials go to the registry origin only, not to a blob redirect target', async () => {
    const layer = await crafted([{ name: 'cm.yaml', data: 'a: 1\n' }]);
    const manifest = manifestOf([{ mediaType: FLUX, data: layer }]);
    const blobStore = await fakeRegistry((_req, res) => {
      res.writeHead(200);
      res.end(layer);
    });
    const reg = await fakeRegistry((req, res) => {
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
        return res.end();
      }
      if ((req.url ?? '').includes('/manifests/')) {
        res.writeHead(200);
        return res.end(manifest);
      }
      res.writeHead(307, { location: `http://localhost:${blobStore.host.split(':')[1]}/blob` });
      res.end();
    });
    await fetchArtifact(
      { url: `oci://${reg.host}/app`, ref: { tag: 'v1' }, insecure: true },
      hosts(),
      cache(),
      bounds(),
      () => ({ username: 'u', password: 'secret' }),
    );
    expect(blobStore.seen.filter((s) => s.auth)).toEqual([]);
  });
});

describe('cosign-verified OCI charts', () => {
  it('held: an unsigned chart is refused also when its archive is already in the cache (verification at every sync)', async () => {
    // The cache is keyed by the layer digest; fromRegistry verifies before the cache is looked at.
    const chart = await crafted([{ name: 'c/Chart.yaml', data: 'apiVersion: v2\nname: c\nversion: 1.0.0\n' }]);
    const manifest = manifestOf([{ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', data: chart }]);
    const reg = await fakeRegistry((req, res) => {
      const url = req.url ?? '';
      if (url.includes('/tags/list')) {
        res.writeHead(200);
        return res.end(JSON.stringify({ tags: ['1.0.0'] }));
      }
      if (url.endsWith(`/manifests/1.0.0`)) {
        res.writeHead(200);
        return res.end(manifest);
      }
      if (url.endsWith(sha(chart))) {
        res.writeHead(200);
        return res.end(chart);
      }
      res.writeHead(404);
      res.end();
    });
    const c = cache();
    const base = { repository: `oci://${reg.host}/charts`, name: 'c', version: '1.0.0', insecure: true };
    await fetchChart(base, hosts(), c, bounds());
    const { generateKeyPairSync } = await import('node:crypto');
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
      type: 'spki',
      format: 'pem',
    }) as string;
    await expect(fetchChart({ ...base, verify: { keys: [pem] } }, hosts(), c, bounds())).rejects.toThrow(
      /no valid cosign signature/,
    );
  });

  /** A cosign simple-signing layer: payload naming `digest`, signed by `key` (as cosign sign --key lays it out). */
  const sigLayer = async (digest: string, key: KeyObject) => {
    const { sign } = await import('node:crypto');
    const payload = Buffer.from(
      JSON.stringify({
        critical: {
          identity: { 'docker-reference': 'x/c' },
          image: { 'docker-manifest-digest': digest },
          type: 'cosign container image signature',
        },
        optional: null,
      }),
    );
    return { payload, signature: sign('sha256', payload, key).toString('base64') };
  };
  const SIG = 'application/vnd.dev.cosign.simplesigning.v1+json';
  const HELM = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

  /** A registry of chart c: manifests by reference (a function of the hit count), blobs by digest, signature manifests by tag. */
  async function chartRegistry(manifests: (ref: string, n: number) => Buffer | undefined, blobs: Buffer[]) {
    return fakeRegistry((req, res, hits) => {
      const url = req.url ?? '';
      if (url.includes('/tags/list')) {
        res.writeHead(200);
        return res.end(JSON.stringify({ tags: ['1.0.0', '1.1.0'] }));
      }
      const m = /\/manifests\/(.+)$/.exec(url);
      const body = m
        ? manifests(decodeURIComponent(m[1]!), hits.get(url) ?? 0)
        : blobs.find((b) => url.endsWith(sha(b)));
      res.writeHead(body ? 200 : 404);
      res.end(body);
    });
  }

  it('held: a signature manifest whose trusted-key layer signs ANOTHER digest, and whose layer naming this digest is by an untrusted key, is refused', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const trusted = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const chart = await crafted([{ name: 'c/Chart.yaml', data: 'apiVersion: v2\nname: c\nversion: 1.1.0\n' }]);
    const manifest = manifestOf([{ mediaType: HELM, data: chart }]);
    const digest = sha(manifest);
    const a = await sigLayer(`sha256:${'1'.repeat(64)}`, trusted.privateKey);
    const b = await sigLayer(digest, other.privateKey);
    const sigManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        layers: [a, b].map((l) => ({
          mediaType: SIG,
          digest: sha(l.payload),
          size: l.payload.length,
          annotations: { 'dev.cosignproject.cosign/signature': l.signature },
        })),
      }),
    );
    const reg = await chartRegistry(
      (ref) => (ref === '1.1.0' ? manifest : ref === `sha256-${digest.slice(7)}.sig` ? sigManifest : undefined),
      [chart, a.payload, b.payload],
    );
    const pem = trusted.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    await expect(
      fetchChart(
        {
          repository: `oci://${reg.host}/charts`,
          name: 'c',
          version: '1.1.0',
          insecure: true,
          verify: { keys: [pem] },
        },
        hosts(),
        cache(),
        bounds(),
      ),
    ).rejects.toThrow(/signs sha256:1111.*not made by a trusted key/);
  });

  it('held: a tag moved to an unsigned manifest after the signed one was read: the layer rendered is the signed manifest’s (one read)', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const trusted = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const good = await crafted([{ name: 'c/Chart.yaml', data: 'apiVersion: v2\nname: c\nversion: 1.1.0\n' }]);
    const evil = await crafted([
      { name: 'c/Chart.yaml', data: 'apiVersion: v2\nname: c\nversion: 1.1.0\ndescription: evil\n' },
    ]);
    const signed = manifestOf([{ mediaType: HELM, data: good }]);
    const unsigned = manifestOf([{ mediaType: HELM, data: evil }]);
    const s = await sigLayer(sha(signed), trusted.privateKey);
    const sigManifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        layers: [
          {
            mediaType: SIG,
            digest: sha(s.payload),
            size: s.payload.length,
            annotations: { 'dev.cosignproject.cosign/signature': s.signature },
          },
        ],
      }),
    );
    const reg = await chartRegistry(
      (ref, n) =>
        ref === '1.1.0'
          ? n > 1
            ? unsigned
            : signed
          : ref === `sha256-${sha(signed).slice(7)}.sig`
            ? sigManifest
            : undefined,
      [good, evil, s.payload],
    );
    const pem = trusted.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const got = await fetchChart(
      { repository: `oci://${reg.host}/charts`, name: 'c', version: '1.1.0', insecure: true, verify: { keys: [pem] } },
      hosts(),
      cache(),
      bounds(),
    );
    expect(`sha256:${got.digest}`).toBe(sha(good));
    expect(reg.hits.get('/v2/charts/c/manifests/1.1.0')).toBe(1);
  });
});
