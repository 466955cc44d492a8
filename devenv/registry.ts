import { createHash } from 'node:crypto';
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
          ? fetch(target, { method: 'POST', headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, body }).then(() => undefined, () => undefined)
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

/** Starts the distribution registry (built from its Go module) with notifications sent to the relay. */
export async function startRegistry(dir: string): Promise<Registry> {
  mkdirSync(dir, { recursive: true });
  const relay = await startRelay();
  const port = await freePort();
  const debugPort = await freePort();
  const config = join(dir, 'config.yml');
  writeFileSync(config, [
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
    '',
  ].join('\n'));
  const proc = startProcess('registry', join(builtBinDir(), 'registry'), ['serve', config], { logFile: join(dir, 'registry.log'), env: { ...process.env, OTEL_TRACES_EXPORTER: 'none' } });
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    await proc.stop();
    relay.server.closeAllConnections();
    await new Promise<void>((resolve) => relay.server.close(() => resolve()));
  };
  try {
    await waitUntilReady(proc, async () => (await fetch(`${url}/v2/`)).ok, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, host: `127.0.0.1:${port}`, relayUrl: relay.url, stop };
}

const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function uploadBlob(base: string, repo: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const start = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`blob upload start for ${repo}: HTTP ${start.status}`);
  const location = new URL(start.headers.get('location') ?? '', base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: data });
  if (put.status !== 201) throw new Error(`blob upload for ${repo}: HTTP ${put.status} ${await put.text()}`);
  return digest;
}

/**
 * Pushes a minimal OCI image (config blob, one layer, manifest, tag) over the HTTP API, the way
 * `docker push` does, and returns the manifest digest.
 */
export async function pushImage(info: RegistryInfo, repo: string, tag: string, content = `${repo}:${tag}`): Promise<string> {
  const layer = Buffer.from(content);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256(layer)] }, config: {} }));
  const configDigest = await uploadBlob(info.url, repo, config);
  const layerDigest = await uploadBlob(info.url, repo, layer);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length }],
  });
  const res = await fetch(`${info.url}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  if (res.status !== 201) throw new Error(`manifest push ${repo}:${tag}: HTTP ${res.status} ${await res.text()}`);
  return res.headers.get('docker-content-digest') ?? sha256(manifest);
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
export async function waitForEvent(info: RegistryInfo, match: (e: RegistryEvent) => boolean, timeoutMs = 10_000): Promise<RegistryEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await receivedEvents(info)).find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching registry notification within ${timeoutMs} ms`);
    await sleep(100);
  }
}
