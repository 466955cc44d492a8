import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { builtBinDir } from './paths.js';
import { freePort, startProcess, waitUntilReady } from './process.js';

/** One event of a distribution registry notification envelope (the fields tidegate reads). */
export interface RegistryEvent {
  id: string;
  timestamp: string;
  action: 'push' | 'pull' | 'delete' | 'mount';
  target: { mediaType: string; digest: string; repository: string; tag?: string; url?: string; size?: number };
  request?: { host?: string };
}

export interface RegistryInfo {
  /** Base URL, e.g. http://127.0.0.1:5001 */
  url: string;
  /** host:port, the way image references name it */
  host: string;
  /** URL of the relay that receives the registry's notifications (and forwards them). */
  relayUrl: string;
  /** Set when the registry requires token auth (the Docker/OCI bearer challenge), as GHCR and Docker Hub do. */
  credentials?: { username: string; password: string };
}

export interface Registry extends RegistryInfo {
  stop(): Promise<void>;
}

/**
 * The relay receives every notification envelope the registry sends, remembers the events and
 * forwards the raw envelope to the URL a test sets (POST /target {"url": ...}; null clears it).
 */
async function startRelay(): Promise<{ server: Server; url: string }> {
  const events: RegistryEvent[] = [];
  let target: string | null = null;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'POST' && req.url === '/events') {
        const envelope = JSON.parse(body.toString('utf8')) as { events: RegistryEvent[] };
        events.push(...envelope.events);
        const forward = target
          ? fetch(target, {
              method: 'POST',
              headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
              body,
            }).then(
              () => undefined,
              () => undefined,
            )
          : Promise.resolve();
        void forward.then(() => res.writeHead(200).end());
      } else if (req.method === 'POST' && req.url === '/target') {
        target = (JSON.parse(body.toString('utf8')) as { url: string | null }).url;
        res.writeHead(204).end();
      } else if (req.method === 'GET' && req.url === '/events') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(events));
      } else {
        res.writeHead(404).end();
      }
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${port}` };
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

/**
 * The token server of the Docker/OCI token auth flow: GET /token?service=…&scope=repository:<name>:<actions>
 * with Basic credentials answers a JWT (ES256, key id in the header) granting the requested
 * actions; without credentials it grants nothing; with wrong ones it answers 401.
 */
async function startTokenServer(opts: {
  issuer: string;
  service: string;
  username: string;
  password: string;
}): Promise<{ server: Server; url: string; jwks: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomUUID();
  const jwt = (claims: Record<string, unknown>, key: KeyObject): string => {
    const input = `${b64url(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid }))}.${b64url(JSON.stringify(claims))}`;
    return `${input}.${b64url(sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }))}`;
  };
  const expected = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const auth = req.headers.authorization;
    if (url.pathname !== '/token') return void res.writeHead(404).end();
    if (auth !== undefined && auth !== expected)
      return void res
        .writeHead(401, { 'content-type': 'application/json' })
        .end('{"details":"incorrect username or password"}');
    const access = auth
      ? url.searchParams.getAll('scope').map((scope) => {
          const [type = '', name = '', actions = ''] = scope.split(':');
          return { type, name, actions: actions.split(',').filter(Boolean) };
        })
      : [];
    const now = Math.floor(Date.now() / 1000);
    const token = jwt(
      {
        iss: opts.issuer,
        sub: auth ? opts.username : '',
        aud: opts.service,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: randomUUID(),
        access,
      },
      privateKey,
    );
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ token, access_token: token, expires_in: 300 }));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'ES256' }] });
  return { server, url: `http://127.0.0.1:${port}/token`, jwks };
}

/**
 * Starts the distribution registry (built from its Go module) with notifications sent to the
 * relay; with `tokenAuth`, it requires bearer tokens from a token server of its own.
 */
export async function startRegistry(
  dir: string,
  opts: { tokenAuth?: { username: string; password: string }; port?: number } = {},
): Promise<Registry> {
  mkdirSync(dir, { recursive: true });
  const relay = await startRelay();
  const tokens = opts.tokenAuth
    ? await startTokenServer({ issuer: 'tidegate-test-tokens', service: 'tidegate-test-registry', ...opts.tokenAuth })
    : undefined;
  if (tokens) writeFileSync(join(dir, 'jwks.json'), tokens.jwks);
  const port = opts.port ?? (await freePort());
  const debugPort = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: warn, formatter: text }',
      'storage:',
      `  filesystem: { rootdirectory: ${join(dir, 'data')} }`,
      '  delete: { enabled: true }',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      `  debug: { addr: 127.0.0.1:${debugPort} }`,
      'notifications:',
      '  events: { includereferences: true }',
      '  endpoints:',
      '    - name: relay',
      `      url: ${relay.url}/events`,
      '      timeout: 2s',
      '      threshold: 5',
      '      backoff: 200ms',
      ...(tokens
        ? [
            'auth:',
            '  token:',
            `    realm: ${tokens.url}`,
            '    service: tidegate-test-registry',
            '    issuer: tidegate-test-tokens',
            `    jwks: ${join(dir, 'jwks.json')}`,
            '    signingalgorithms: [ES256]',
          ]
        : []),
      '',
    ].join('\n'),
  );
  const proc = startProcess('registry', join(builtBinDir(), 'registry'), ['serve', config], {
    logFile: join(dir, 'registry.log'),
    env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' },
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await proc.stop();
    for (const server of [relay.server, tokens?.server]) {
      server?.closeAllConnections();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    }
  };
  try {
    await waitUntilReady(proc, async () => [200, 401].includes((await fetch(`${url}/v2/`)).status), 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    host: `127.0.0.1:${port}`,
    relayUrl: relay.url,
    ...(opts.tokenAuth ? { credentials: opts.tokenAuth } : {}),
    stop,
  };
}

/** Headers for a push to a registry with token auth: a token for the repository from the realm the challenge names. */
async function pushHeaders(info: RegistryInfo, repo: string): Promise<Record<string, string>> {
  if (!info.credentials) return {};
  const challenge = (await fetch(`${info.url}/v2/`)).headers.get('www-authenticate') ?? '';
  const realm = /realm="([^"]+)"/.exec(challenge)?.[1];
  const service = /service="([^"]+)"/.exec(challenge)?.[1] ?? '';
  if (!realm) throw new Error(`registry ${info.host} sent no token realm: ${challenge}`);
  const url = new URL(realm);
  url.searchParams.set('service', service);
  url.searchParams.set('scope', `repository:${repo}:pull,push`);
  const basic = Buffer.from(`${info.credentials.username}:${info.credentials.password}`).toString('base64');
  const { token } = (await (await fetch(url, { headers: { authorization: `Basic ${basic}` } })).json()) as {
    token: string;
  };
  return { authorization: `Bearer ${token}` };
}

const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function uploadBlob(base: string, repo: string, data: Buffer, headers: Record<string, string>): Promise<string> {
  const digest = sha256(data);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers });
  if (start.status !== 202) throw new Error(`blob upload start for ${repo}: HTTP ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: data,
  });
  if (put.status !== 201) throw new Error(`blob upload for ${repo}: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

/**
 * Pushes a minimal OCI image (config blob, one layer, manifest, tag) over the HTTP API, the way
 * `docker push` does, and returns the manifest digest.
 */
export async function pushImage(
  info: RegistryInfo,
  repo: string,
  tag: string,
  content = `${repo}:${tag}`,
): Promise<string> {
  const headers = await pushHeaders(info, repo);
  const layer = Buffer.from(content);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [sha256(layer)] },
      config: {},
    }),
  );
  return putManifest(info, repo, tag, headers, {
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', data: config },
    layer: { mediaType: 'application/vnd.oci.image.layer.v1.tar', data: layer },
  });
}

/** Uploads a config and one layer and puts an OCI image manifest naming them at `tag`; the manifest's digest. */
async function putManifest(
  info: RegistryInfo,
  repo: string,
  tag: string,
  headers: Record<string, string>,
  parts: {
    config: { mediaType: string; data: Buffer };
    layer: { mediaType: string; data: Buffer };
    annotations?: Record<string, string>;
  },
): Promise<string> {
  const configDigest = await uploadBlob(info.url, repo, parts.config.data, headers);
  const layerDigest = await uploadBlob(info.url, repo, parts.layer.data, headers);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: parts.config.mediaType, digest: configDigest, size: parts.config.data.length },
    layers: [{ mediaType: parts.layer.mediaType, digest: layerDigest, size: parts.layer.data.length }],
    ...(parts.annotations ? { annotations: parts.annotations } : {}),
  });
  const res = await fetch(`${info.url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest push ${repo}:${tag}: HTTP ${res.status} ${await res.text()}`);
  return res.headers.get('docker-content-digest') ?? sha256(manifest);
}

/** The media types `flux push artifact` writes: a config, and one tar.gz layer of the files. */
export const FLUX_ARTIFACT = {
  config: 'application/vnd.cncf.flux.config.v1+json',
  content: 'application/vnd.cncf.flux.content.v1.tar+gzip',
} as const;

/**
 * Pushes an OCI artifact as `flux push artifact` lays it out (an OCI image manifest, Flux's config
 * media type, one layer of the given bytes and media type); the manifest's digest.
 */
export async function pushArtifact(
  info: RegistryInfo,
  repo: string,
  tag: string,
  layer: Buffer,
  mediaType: string = FLUX_ARTIFACT.content,
): Promise<string> {
  return putManifest(info, repo, tag, await pushHeaders(info, repo), {
    config: { mediaType: FLUX_ARTIFACT.config, data: Buffer.from('{}') },
    layer: { mediaType, data: layer },
    annotations: { 'org.opencontainers.image.revision': `${tag}@sha1:${'0'.repeat(40)}` },
  });
}

/** Points the registry's notifications at `url` (null: only record them). */
export async function setNotificationTarget(info: RegistryInfo, url: string | null): Promise<void> {
  await fetch(`${info.relayUrl}/target`, { method: 'POST', body: JSON.stringify({ url }) });
}

/** Every notification event received so far. */
export async function receivedEvents(info: RegistryInfo): Promise<RegistryEvent[]> {
  return (await (await fetch(`${info.relayUrl}/events`)).json()) as RegistryEvent[];
}

/** Waits for an event matching `match` (the registry sends notifications asynchronously). */
export async function waitForEvent(
  info: RegistryInfo,
  match: (e: RegistryEvent) => boolean,
  timeoutMs = 10_000,
): Promise<RegistryEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await receivedEvents(info)).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching registry notification within ${timeoutMs} ms`);
    await sleep(100);
  }
}
