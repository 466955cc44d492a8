import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { fetchChart, pickVersion } from '../../shared/source/index.js';

/**
 * Found by an adversarial review of charts from HTTP(S) Helm repositories (shared/source/chart-repo.ts):
 * each case failed before its fix.
 */
const servers: Server[] = [];
async function serve(handler: RequestListener): Promise<{ url: string; port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}/charts`, port, hits };
}
const cacheDir = mkdtempSync(join(tmpdir(), 'chart-attacks-'));
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(cacheDir, { recursive: true, force: true });
});
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const index = (entries: Array<{ version: string; url: string; digest?: string }>) =>
  `apiVersion: v1\nentries:\n  web:\n${entries
    .map(
      (e) =>
        `  - name: web\n    version: "${e.version}"\n    digest: ${e.digest ?? sha(e.url)}\n    urls: ["${e.url}"]\n`,
    )
    .join('')}`;

describe("charts from Helm repositories: a review's breaks", () => {
  it('a large index.yaml (12 MiB, well under render.maxOutputMiB) with a short time limit: read within it (the archive it names is then refused by its digest)', async () => {
    // ~12 MiB of ordinary entries, far below the 64 MiB default output limit.
    const lines: string[] = ['apiVersion: v1', 'entries:', '  web:'];
    for (let i = 0; i < 60_000; i++)
      lines.push(
        `  - {name: web, version: "0.0.${i}", digest: ${'a'.repeat(64)}, urls: ["web-0.0.${i}.tgz"], description: "a chart for the web, entry ${i}"}`,
      );
    const body = lines.join('\n') + '\n';
    const repo = await serve((_req, res) => res.writeHead(200).end(body));
    const limitMs = 2_000;
    const started = Date.now();
    const outcome = await fetchChart({ repository: repo.url, name: 'web', version: '*' }, ['127.0.0.1'], cacheDir, {
      deadline: started + limitMs,
      maxBytes: 64 * 1024 * 1024,
    }).then(
      () => 'fetched',
      (err: Error) => err.message,
    );
    const took = Date.now() - started;
    expect(outcome).toMatch(/time limit|render\.timeout|the archive of version 0\.0\.59999 has digest/);
    expect(took).toBeLessThan(limitMs + 1_000);
  });

  it('an exact version with build metadata (1.0.0+b) picks that build, not another of the same version (as Helm does)', () => {
    const yaml = index([
      { version: '1.0.0+a', url: 'web-1.0.0+a.tgz' },
      { version: '1.0.0+b', url: 'web-1.0.0+b.tgz' },
    ]);
    const picked = pickVersion(load(yaml), 'web', '1.0.0+b');
    expect(picked.version).toBe('1.0.0+b');
    expect(picked.urls).toEqual(['web-1.0.0+b.tgz']);
  });

  it('a range naming a prerelease (">=1.0.0-0", "^1.0.0-0") picks a prerelease of a newer version, as Helm and Flux do', () => {
    const yaml = index([
      { version: '1.0.0', url: 'web-1.0.0.tgz' },
      { version: '1.1.0-rc.1', url: 'web-1.1.0-rc.1.tgz' },
    ]);
    expect(pickVersion(load(yaml), 'web', '>=1.0.0-0').version).toBe('1.1.0-rc.1');
    expect(pickVersion(load(yaml), 'web', '^1.0.0-0').version).toBe('1.1.0-rc.1');
  });

  it('index.yaml urls naming another port of a listed host: refused before any request reaches it', async () => {
    const other = await serve((_req, res) => res.writeHead(200).end('internal admin service'));
    const repo = await serve((_req, res) =>
      res.writeHead(200).end(index([{ version: '1.0.0', url: `http://127.0.0.1:${other.port}/admin/delete-all` }])),
    );
    await fetchChart({ repository: repo.url, name: 'web', version: '1.0.0' }, ['127.0.0.1'], cacheDir, {
      deadline: Date.now() + 5_000,
      maxBytes: 1024 * 1024,
    }).catch(() => undefined);
    expect(other.hits).toEqual([]);
  });
});
