import { mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createBareRepo, GitWorkspace } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { toolEnvironment } from '../../shared/render/render.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, yamlDocs } from '../helpers/engine.js';
import { renderedTarget } from '../helpers/render-target.js';

const CHART = stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' });

/**
 * Attacks on the renderers: a repository's files make kustomize or helm read outside the checkout,
 * fetch from the network, or run without bounds. Each is refused before the tool runs (or stopped
 * by its limit), the target's sync fails with the reason, and nothing is applied or recorded as applied.
 */
describe('attack: a render that reaches outside the repository', () => {
  const target = renderedTarget;

  const nothingApplied = (t: Awaited<ReturnType<typeof target>>) => {
    expect(t.result?.outcome).toBe('failed');
    expect(t.applied).toBeUndefined();
    expect(t.live).toBeUndefined();
  };

  it('a chart with a template that is a symbolic link to /etc/passwd: refused before helm runs, nothing of the file in the error', async () => {
    const t = await target(
      { 'app/Chart.yaml': CHART, 'app/templates/cm.yaml': yamlDocs(configMap('app', { v: '1' })) },
      { 'app/templates/passwd.yaml': '/etc/passwd' },
    );
    nothingApplied(t);
    expect(t.result?.error).toBe('app/templates/passwd.yaml: symbolic link points outside the repository');
  });

  it("a chart with a directory linked to the checkout's parent: refused before helm runs", async () => {
    const t = await target(
      { 'app/Chart.yaml': CHART, 'app/templates/cm.yaml': yamlDocs(configMap('app', { v: '1' })) },
      { 'app/templates/up': '../../..' },
    );
    nothingApplied(t);
    expect(t.result?.error).toBe('app/templates/up: symbolic link points outside the repository');
  });

  it('a chart dependency from a chart repository whose host is not allowed: refused', async () => {
    const chart = stringify({
      apiVersion: 'v2',
      name: 'app',
      version: '0.1.0',
      dependencies: [{ name: 'redis', version: '1.0.0', repository: 'https://charts.internal.example/stable' }],
    });
    const t = await target({
      'app/Chart.yaml': chart,
      'app/templates/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
    });
    nothingApplied(t);
    expect(t.result?.error).toBe(
      'app/Chart.yaml: chart dependency redis from https://charts.internal.example/stable refused: host charts.internal.example is not listed in the deploy-time setting render.allowedHosts',
    );
  });

  it('a kustomization naming a file outside the repository, or a base linked outside it: refused before kustomize runs', async () => {
    const up = await target({
      'app/kustomization.yaml': stringify({ resources: ['cm.yaml', '../../../../../../etc/passwd'] }),
      'app/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
    });
    nothingApplied(up);
    expect(up.result?.error).toBe('app/kustomization.yaml: ../../../../../../etc/passwd is outside the repository');
    const linked = await target(
      {
        'app/kustomization.yaml': stringify({ resources: ['cm.yaml', 'base'] }),
        'app/cm.yaml': yamlDocs(configMap('app', { v: '1' })),
      },
      { 'app/base': '/etc' },
    );
    nothingApplied(linked);
    expect(linked.result?.error).toMatch(/^app\/base: symbolic link points outside the repository/);
  });

  it('a kustomization with a remote base: refused unless its host is allowed; from an allowed host it is fetched (a local git server)', async () => {
    const git = testEnv().git;
    const baseRepo = await createBareRepo(git, uniqueName('remote-base'));
    const ws = await GitWorkspace.clone(git, baseRepo);
    await ws.commit(
      {
        'base/kustomization.yaml': stringify({ resources: ['cm.yaml'] }),
        'base/cm.yaml': yamlDocs(configMap('app', { v: 'remote' })),
      },
      'base',
    );
    ws.remove();
    const files = {
      'app/kustomization.yaml': stringify({ resources: [`${baseRepo}//base?ref=main`] }),
    };
    const host = new URL(baseRepo).hostname;
    const refused = await target(files);
    nothingApplied(refused);
    expect(refused.result?.error).toBe(
      `app/kustomization.yaml: remote base ${baseRepo}//base?ref=main refused: host ${host} is not listed in the deploy-time setting render.allowedHosts`,
    );
    const github = await target({
      'app/kustomization.yaml': stringify({ resources: ['github.com/acme/platform//base?ref=v1'] }),
    });
    nothingApplied(github);
    expect(github.result?.error).toMatch(
      /remote base github.com\/acme\/platform\/\/base\?ref=v1 refused: host github.com is not listed/,
    );

    const allowed = await target(files, {}, { allowedHosts: [host] });
    expect(allowed.result).toMatchObject({ outcome: 'applied' });
    expect(allowed.live?.['data']).toEqual({ v: 'remote' });
  });

  it('a render over its output limit, or over its time limit, fails with the limit named', async () => {
    const many = `{{- range until 20000 }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm-{{ . }}
data:
  padding: "{{ repeat 200 "x" }}"
{{- end }}
`;
    const big = await target(
      { 'app/Chart.yaml': CHART, 'app/templates/many.yaml': many },
      {},
      { maxBytes: 1024 * 1024 },
    );
    nothingApplied(big);
    expect(big.result?.error).toBe('helm template app: output exceeds 1 MiB (deploy-time setting render.maxOutputMiB)');
    const slow = await target({ 'app/Chart.yaml': CHART, 'app/templates/many.yaml': many }, {}, { timeoutMs: 20 });
    nothingApplied(slow);
    expect(slow.result?.error).toBe('helm template app: took longer than 0.02 s (deploy-time setting render.timeout)');
  });

  it('kustomize and helm run with a minimal environment: no credential, token or other variable of the process, and no network', () => {
    const env = toolEnvironment({
      ...localSettings({
        PATH: '/usr/bin',
        HOME: '/home/x',
        AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'secret',
        AWS_SESSION_TOKEN: 'session',
        TIDEGATE_GIT_TOKEN: 'ghp_x',
      }),
    });
    expect(Object.keys(env).sort()).toEqual(
      [
        'GIT_ALLOW_PROTOCOL',
        'GIT_CONFIG_GLOBAL',
        'GIT_CONFIG_NOSYSTEM',
        'GIT_TERMINAL_PROMPT',
        'HELM_CACHE_HOME',
        'HELM_CONFIG_HOME',
        'HELM_DATA_HOME',
        'HOME',
        'HTTPS_PROXY',
        'HTTP_PROXY',
        'PATH',
        'http_proxy',
        'https_proxy',
      ].sort(),
    );
    expect(env['GIT_ALLOW_PROTOCOL']).toBe(''); // git may fetch nothing: remote bases are fetched by tidegate
    expect(JSON.stringify(env)).not.toMatch(/AKIAEXAMPLE|secret|session|ghp_x/);
  });

  // Found by review: each of these read or fetched what the sandbox is there to refuse.
  describe('review', () => {
    // A web server on 127.0.0.1 serving a ConfigMap, and redirects to it.
    let server: Server;
    let port = 0;
    const served: string[] = [];
    const canary = randomBytes(8).toString('hex');
    beforeAll(async () => {
      server = createServer((req, res) => {
        served.push(req.url ?? '');
        if (req.url?.startsWith('/redirect')) {
          res.writeHead(302, { location: `http://localhost:${port}/cm.yaml` }).end();
          return;
        }
        res
          .writeHead(200, { 'content-type': 'text/plain' })
          .end(yamlDocs(configMap('app', { v: `network-${canary}` })));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('a kustomization with a second YAML document (kustomize reads the first only): refused, nothing fetched or read outside', async () => {
      served.length = 0;
      const remote = await target({
        'app/kustomization.yaml': `resources:\n- http://127.0.0.1:${port}/cm.yaml\n---\n{}\n`,
      });
      nothingApplied(remote);
      expect(remote.result?.error).toBe(
        'app/kustomization.yaml: not one plain YAML mapping (one document, no tags or directives): kustomize would read it otherwise; it is not rendered',
      );
      expect(served).toEqual([]);
      const outside = mkdtempSync(join(tmpdir(), 'tidegate-outside-'));
      writeFileSync(join(outside, 'kustomization.yaml'), stringify({ resources: ['cm.yaml'] }));
      writeFileSync(join(outside, 'cm.yaml'), yamlDocs(configMap('app', { secret: canary })));
      const up = await target({
        'app/kustomization.yaml': `resources:\n- ${'../'.repeat(40)}${outside.replace(/^\//, '')}\n---\n{}\n`,
      });
      nothingApplied(up);
    });

    it('field names in another case (Go reads them without regard to case) and merge keys are checked as kustomize reads them', async () => {
      const upper = await target({ 'app/kustomization.yaml': `Resources:\n- ../../../../../../etc\n` });
      nothingApplied(upper);
      expect(upper.result?.error).toBe('app/kustomization.yaml: ../../../../../../etc is outside the repository');
      const merged = await target({
        'app/kustomization.yaml': `base: &b\n  resources: [http://127.0.0.1:${port}/x.git//base]\n<<: *b\n`,
      });
      nothingApplied(merged);
      expect(merged.result?.error).toMatch(
        /remote base http:\/\/127.0.0.1:\d+\/x.git\/\/base refused: host 127.0.0.1 is not listed/,
      );
    });

    it('a remote base URL that parsers read differently (a backslash before "@"): refused, names no host', async () => {
      const url = `http://allowed.example:80\\@127.0.0.1:${port}/repo.git//base?ref=main`;
      const t = await target(
        { 'app/kustomization.yaml': `resources:\n- '${url}'\n` },
        {},
        { allowedHosts: ['allowed.example'] },
      );
      nothingApplied(t);
      expect(t.result?.error).toMatch(/refused: it names no host that is not listed/);
    });

    it('a remote file on an allowed host, and a git base there that redirects elsewhere: neither fetched, the redirect not followed', async () => {
      served.length = 0;
      const file = await target(
        { 'app/kustomization.yaml': stringify({ resources: [`http://127.0.0.1:${port}/redirect.yaml`] }) },
        {},
        { allowedHosts: ['127.0.0.1'] },
      );
      nothingApplied(file);
      expect(file.result?.error).toMatch(/only git repositories over HTTP\(S\) are fetched/);
      expect(served).toEqual([]);
      const base = await target(
        {
          'app/kustomization.yaml': stringify({ resources: [`http://127.0.0.1:${port}/redirect.git//base?ref=main`] }),
        },
        {},
        { allowedHosts: ['127.0.0.1'] },
      );
      nothingApplied(base);
      expect(base.result?.error).toMatch(/answered with a redirect \(HTTP 302\); redirects are not followed/);
      expect(served.some((u) => u.startsWith('/redirect.git'))).toBe(true);
      expect(served).not.toContain('/cm.yaml');
    });

    it('a chart directory linked to another directory of the repository holding a link out of it: refused before helm runs', async () => {
      const secretDir = mkdtempSync(join(tmpdir(), 'tidegate-secret-'));
      writeFileSync(join(secretDir, 'secret.txt'), canary);
      const t = await target(
        {
          'app/Chart.yaml': CHART,
          'app/templates/cm.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata:\n  leak: {{ .Files.Get "data/secret.txt" | quote }}\n`,
          'common/README': 'shared files',
        },
        { 'app/data': '../common', 'common/secret.txt': join(secretDir, 'secret.txt') },
      );
      nothingApplied(t);
      expect(t.result?.error).toBe('app/data/secret.txt: symbolic link points outside the repository');
    });
  });
});
