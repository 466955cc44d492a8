import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { localSettings } from '../../shared/config/index.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { renderedTarget } from '../helpers/render-target.js';

/**
 * Review round 16b: kustomizations that tidegate's sandbox check reads differently from kustomize
 * (Go's YAML and encoding/json), or does not read at all, so kustomize reads outside the checkout
 * and fetches from loopback (Go's HTTP client never proxies 127.0.0.1, so HTTP_PROXY=127.0.0.1:9
 * does not stop it); and a remote base fetch that no render limit bounds.
 */
describe('attack (review 16b): what the sandbox check does not read as kustomize reads it', () => {
  const target = renderedTarget;

  // A web server on 127.0.0.1 (the address Go's HTTP client reaches without its proxy).
  let server: Server;
  let port = 0;
  const served: string[] = [];
  const canary = randomBytes(8).toString('hex');
  let slowMs = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      served.push(req.url ?? '');
      if (req.url?.startsWith('/slow.git')) {
        setTimeout(() => res.writeHead(404).end(), slowMs);
        return;
      }
      const name = req.url?.includes('patch') ? 'app' : 'net';
      res.writeHead(200, { 'content-type': 'text/plain' }).end(yamlDocs(configMap(name, { net: canary })));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** A directory outside every checkout holding a kustomization with a secret. */
  function outsideBase(): string {
    const outside = mkdtempSync(join(tmpdir(), 'tidegate-outside-'));
    writeFileSync(join(outside, 'kustomization.yaml'), stringify({ resources: ['cm.yaml'] }));
    writeFileSync(join(outside, 'cm.yaml'), yamlDocs(configMap('outside', { secret: canary })));
    return `${'../'.repeat(40)}${outside.replace(/^\//, '')}`;
  }

  const refusedUnread = async (t: Awaited<ReturnType<typeof target>>) => {
    expect(t.result?.error ?? '').not.toContain(canary);
    expect(await t.get('outside')).toBeUndefined(); // nothing read outside the checkout was applied
    expect(await t.get('net')).toBeUndefined(); // nothing fetched by kustomize was applied
    expect(t.result?.outcome).toBe('failed');
    expect(t.applied).toBeUndefined();
  };

  it('a field name Go folds to "resources" (long s, U+017F): kustomize reads outside the checkout and fetches from 127.0.0.1', async () => {
    served.length = 0;
    const t = await target({
      'app/kustomization.yaml': `re\u017fources:\n- ${outsideBase()}\n- http://127.0.0.1:${port}/cm.yaml\n`,
    });
    expect(served).toEqual([]);
    await refusedUnread(t);
  });

  it('an entry tagged !!binary (Go decodes it, the check reads the base64 text): kustomize fetches from 127.0.0.1 and reads outside', async () => {
    served.length = 0;
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const t = await target({
      'app/kustomization.yaml': `resources:\n- !!binary ${b64(outsideBase())}\n- !!binary ${b64(`http://127.0.0.1:${port}/cm.yaml`)}\n`,
    });
    expect(served).toEqual([]);
    await refusedUnread(t);
  });

  it('an inline transformer config (a string entry holding YAML) whose path is a URL: kustomize fetches it from 127.0.0.1', async () => {
    served.length = 0;
    const t = await target({
      'app/kustomization.yaml': stringify({
        resources: ['cm.yaml'],
        transformers: [
          `apiVersion: builtin\nkind: PatchTransformer\nmetadata:\n  name: p\npath: http://127.0.0.1:${port}/patch.yaml`,
        ],
      }),
      'app/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
    });
    expect(served).toEqual([]);
    expect(JSON.stringify((await t.get('app'))?.['data'] ?? {})).not.toContain(canary);
    expect(t.result?.outcome).toBe('failed');
  });

  it('a chain of 22 local bases (the check stops at depth 20, kustomize does not): the last one reads outside and fetches', async () => {
    served.length = 0;
    const files: Record<string, string> = {
      'app/kustomization.yaml': stringify({ resources: ['../b1'] }),
    };
    for (let i = 1; i <= 21; i++) files[`b${i}/kustomization.yaml`] = stringify({ resources: [`../b${i + 1}`] });
    files['b22/kustomization.yaml'] = stringify({ resources: [outsideBase(), `http://127.0.0.1:${port}/cm.yaml`] });
    const t = await target(files);
    expect(served).toEqual([]);
    await refusedUnread(t);
  });

  it('a remote base on an allowed host that answers slowly: the fetch is bounded by render.timeout', async () => {
    slowMs = 8_000;
    const started = Date.now();
    const t = await target(
      { 'app/kustomization.yaml': stringify({ resources: [`http://127.0.0.1:${port}/slow.git//base?ref=main`] }) },
      {},
      { allowedHosts: ['127.0.0.1'], timeoutMs: 500 },
    );
    const elapsed = Date.now() - started;
    expect(t.result?.outcome).toBe('failed');
    // The render is limited to 0.5 s; allow generous slack for the sync around it.
    expect(elapsed).toBeLessThan(5_000);
    expect(t.result?.error).toMatch(/render\.timeout/);
  });
});

describe('attack (review 16b): a chart too large for the symbolic link walk', () => {
  it('a chart with more than 50,000 entries before a link out of the repository: refused, not checked is not rendered', async () => {
    const { readdirSync, rmdirSync } = await import('node:fs');
    const { render } = await import('../../shared/render/render.js');
    const settings = localSettings();
    mkdirSync(settings.cacheDir, { recursive: true });
    const root = mkdtempSync(join(settings.cacheDir, 'review16b-chart-')); // same file system as checkouts
    const secretDir = mkdtempSync(join(tmpdir(), 'tidegate-secret-'));
    const secret = randomBytes(8).toString('hex');
    writeFileSync(join(secretDir, 'secret.txt'), secret);
    const app = join(root, 'app');
    mkdirSync(join(app, 'templates'), { recursive: true });
    writeFileSync(join(app, 'Chart.yaml'), stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' }));
    writeFileSync(
      join(app, 'templates', 'cm.yaml'),
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata:\n  leak: {{ .Files.Get "data/secret.txt" | quote }}\n`,
    );
    // A directory name the file system lists before "data" (directory order is the file system's).
    const candidates = Array.from({ length: 20 }, (_, i) => `a${i}`);
    for (const c of candidates) mkdirSync(join(app, c));
    mkdirSync(join(app, 'data'));
    symlinkSync(join(secretDir, 'secret.txt'), join(app, 'data', 'secret.txt'));
    const order = readdirSync(app);
    const big = candidates.find((c) => order.indexOf(c) < order.indexOf('data')) as string;
    for (const c of candidates) if (c !== big) rmdirSync(join(app, c));
    for (let i = 0; i < 50_001; i++) writeFileSync(join(app, big, `f${i}.txt`), '');
    let leaked: string;
    try {
      const result = await render({
        root,
        path: 'app',
        mode: 'helm',
        substitute: {},
        defaultReleaseName: 'app',
        settings,
      });
      leaked = JSON.stringify(result.objects.map((o) => o.object));
    } catch (err) {
      leaked = String(err);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
    expect(big).toBeDefined();
    expect(leaked).not.toContain(secret);
    expect(leaked).toMatch(/more than 50,000 files to check for symbolic links; it is not rendered/);
  }, 300_000);
});
