import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { stringify } from 'yaml';
import { run } from './process.js';

/**
 * A Helm chart repository as Helm serves one over HTTP: a directory with index.yaml and packaged
 * charts (`helm package`, `helm repo index`), served as static files on loopback. `redirect` makes
 * every request answer 302 elsewhere (a repository that moved, or one that tries to lead a fetcher
 * away). With `basicAuth`, a request without those credentials is answered 401.
 */
export interface HelmRepo {
  url: string;
  /** Packages a chart (Chart.yaml is written from name and version) and re-indexes the repository. */
  publish(name: string, version: string, templates: Record<string, string>, values?: string): Promise<string>;
  /** Packages a chart made of these files (paths relative to the chart: Chart.yaml, templates/, charts/<sub>/...) and re-indexes; the archive's path. */
  publishFiles(files: Record<string, string>): Promise<string>;
  /** Overwrites a packaged archive in place, index.yaml unchanged (its digest no longer matches). */
  tamper(name: string, version: string): void;
  redirect: boolean;
  /** Paths requested so far. */
  requests: string[];
  stop(): Promise<void>;
}

export async function startHelmRepo(
  helm: string,
  opts: { basicAuth?: { username: string; password: string } } = {},
): Promise<HelmRepo> {
  const expected = opts.basicAuth
    ? `Basic ${Buffer.from(`${opts.basicAuth.username}:${opts.basicAuth.password}`).toString('base64')}`
    : undefined;
  const root = mkdtempSync(join(tmpdir(), 'helm-repo-'));
  const requests: string[] = [];
  const state = { redirect: false };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    requests.push(path);
    if (expected && req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="charts"' }).end('unauthorized');
      return;
    }
    if (state.redirect) {
      res.writeHead(302, { location: 'http://192.0.2.1/index.yaml' }).end();
      return;
    }
    try {
      const body = readFileSync(join(root, path));
      res.writeHead(200, { 'content-type': path.endsWith('.yaml') ? 'text/yaml' : 'application/gzip' }).end(body);
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/charts`;
  const charts = join(root, 'charts');
  mkdirSync(charts, { recursive: true });
  const env = { ...process.env, HELM_CACHE_HOME: join(root, '.helm'), HELM_CONFIG_HOME: join(root, '.helm') };
  return {
    url,
    requests,
    get redirect() {
      return state.redirect;
    },
    set redirect(v: boolean) {
      state.redirect = v;
    },
    async publish(name, version, templates, values = '') {
      const src = mkdtempSync(join(tmpdir(), `chart-${name}-`));
      writeFileSync(join(src, 'Chart.yaml'), stringify({ apiVersion: 'v2', name, version }));
      writeFileSync(join(src, 'values.yaml'), values);
      for (const [file, text] of Object.entries(templates)) {
        mkdirSync(dirname(join(src, 'templates', file)), { recursive: true });
        writeFileSync(join(src, 'templates', file), text);
      }
      await run(helm, ['package', src, '--destination', charts], { env });
      await run(helm, ['repo', 'index', charts, '--url', url], { env });
      rmSync(src, { recursive: true, force: true });
      return join(charts, `${name}-${version}.tgz`);
    },
    async publishFiles(files) {
      const src = mkdtempSync(join(tmpdir(), 'chart-'));
      for (const [file, text] of Object.entries(files)) {
        mkdirSync(dirname(join(src, file)), { recursive: true });
        writeFileSync(join(src, file), text);
      }
      const packaged = await run(helm, ['package', src, '--destination', charts], { env });
      await run(helm, ['repo', 'index', charts, '--url', url], { env });
      rmSync(src, { recursive: true, force: true });
      // helm package says where it saved the archive.
      return /saved it to: (.+\.tgz)/.exec(packaged)?.[1]?.trim() ?? '';
    },
    tamper(name, version) {
      writeFileSync(join(charts, `${name}-${version}.tgz`), Buffer.from('not the archive index.yaml describes'));
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        rmSync(root, { recursive: true, force: true });
      }),
  };
}
