import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startDevServer } from '../../cli/dev-server.js';
import { printable } from '../../cli/output.js';
import { SecretStore, parseConfig } from '../../shared/config/index.js';
import { redactUrl, type SyncResult } from '../../shared/model/index.js';
import { Notifier, discordMessage, slackMessage, teamsMessage, type NotifyEvent } from '../../shared/notify/index.js';
import { renderStatusPage } from '../../shared/status/index.js';
import { refuseStatusLink, signStatusLink } from '../../shared/triggers/index.js';
import { handleMessage, resultEvent, statusPageOf, type EngineContext } from '../../shared/usecases/index.js';
import { cli } from '../helpers/cli.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo, yamlDocs } from '../helpers/engine.js';
import { tempTree } from '../helpers/files.js';

/**
 * Breaks an adversarial review found in the status page, notifications and CLI output (each was
 * a failing test before its fix): a Secret value reaching the page and the chat through a YAML
 * error or the apiserver's echo, a target writing tidegate's own state, webhook URLs in logs,
 * redirects followed, answers read whole, a receiver holding the worker, the same event sent on
 * every poll, markup from Git in chat messages, escape sequences from Git on a terminal.
 */

const servers: Server[] = [];
afterAll(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

async function receiver(handle: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  const got: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push(`${req.url ?? ''} ${body}`);
      handle(req, res, body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, got };
}

const event = (over: Partial<NotifyEvent> = {}): NotifyEvent => ({
  kind: 'failed',
  repo: 'https://github.com/acme/gitops',
  target: 'web',
  sha: 'a'.repeat(40),
  title: 'web: main@aaaaaaaaaaaa failed',
  text: 'refused',
  fields: [['target', 'web']],
  url: 'https://github.com/acme/gitops/commit/aaaa',
  at: new Date(0).toISOString(),
  ...over,
});

function memoryLogger() {
  const lines: string[] = [];
  const log = (m: string, f?: Record<string, unknown>) => void lines.push(`${m} ${JSON.stringify(f ?? {})}`);
  return { lines, logger: { info: log, warn: log, error: log, debug: log } };
}

describe('a Secret value never reaches the page, the chat or the history', () => {
  it('a YAML alias or a ${…} inside a Secret: the error keeps the reason, never the text after it', async () => {
    const canary = `Xk9-${randomBytes(8).toString('hex')}`;
    const repo = await gitopsRepo('alias');
    const ns = uniqueName('alias');
    const secret = (value: string) =>
      `apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: ${value}\n`;
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: ns, cluster: 'c', path: 'a', targetNamespace: ns, wait: false },
          { name: `${ns}-s`, cluster: 'c', path: 'b', targetNamespace: ns, wait: false, substitute: { X: '1' } },
        ],
      }),
      'a/secret.yaml': secret(`*${canary}`),
      'b/secret.yaml': secret(`\${${canary.replace(/-/g, '_')}}`),
    });
    const results = await repo.sync();
    expect(results.map((r) => r.outcome)).toEqual(['failed', 'failed']);
    expect(results[0]?.error).toContain('invalid YAML: Unresolved alias');
    expect(results[1]?.error).toContain('reference (names not shown: this is a Secret)');
    const page = await statusPageOf(repo.engine, [repo.url]);
    const message = slackMessage(resultEvent(results[0] as SyncResult, { repo: repo.url }) as NotifyEvent);
    for (const text of [JSON.stringify(results), page, JSON.stringify(message)]) {
      expect(text).not.toContain(canary);
      expect(text).not.toContain(canary.replace(/-/g, '_'));
    }
  });

  it('a Secret value that is not a string is refused before the apiserver could echo it; no target writes tidegate-system', async () => {
    const repo = await gitopsRepo('notstring');
    const ns = uniqueName('notstring');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          { name: ns, cluster: 'c', path: 'a', targetNamespace: ns, wait: false },
          { name: `${ns}-sys`, cluster: 'c', path: 'b', wait: false },
        ],
      }),
      'a/secret.yaml': 'apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: 918273645\n',
      'b/forged.yaml': yamlDocs({
        ...configMap(`tidegate-forged-${ns}`, { pin: 'x' }),
        metadata: { name: `tidegate-forged-${ns}`, namespace: 'tidegate-system' },
      }),
    });
    const [secretResult, systemResult] = await repo.sync();
    expect(secretResult?.outcome).toBe('failed');
    expect(secretResult?.error).toContain('stringData.password is not a string (quote it in YAML)');
    expect(secretResult?.error).not.toContain('918273645');
    expect(systemResult?.outcome).toBe('failed');
    expect(systemResult?.error).toContain('tidegate-system holds tidegate');
    expect(await repo.engine.client.get('v1', 'ConfigMap', 'tidegate-system', `tidegate-forged-${ns}`)).toBeUndefined();
    expect(await repo.engine.client.get('v1', 'Secret', ns, 'db')).toBeUndefined();
  });

  it('numbers and counts on the page are escaped like any text (state is data, not markup)', () => {
    const html = renderStatusPage({
      generatedAt: new Date(0).toISOString(),
      clusters: [
        {
          cluster: 'c',
          targets: [],
          previews: [
            {
              name: 'p',
              target: 'web',
              namespace: 'pr-1',
              pullRequest: '"><img src=x onerror=alert(1)>' as unknown as number,
              head: 'a'.repeat(40),
              status: 'active',
              expiresAt: new Date(0).toISOString(),
            } as never,
          ],
        },
      ],
    });
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img');
  });
});

describe('notifications: webhook URLs, redirects, answers and slow receivers', () => {
  it('a webhook URL is never logged: one the fetch cannot use, or one with credentials, is refused by name', async () => {
    for (const url of [
      '{"url":"https://hooks.slack.com/services/T0/B0/SECRETTOKEN1"}',
      'https://user:SECRETTOKEN2@127.0.0.1:9/hook',
      'http://127.0.0.1:9/hooks/SECRETTOKEN3',
    ]) {
      const { lines, logger } = memoryLogger();
      const n = new Notifier(
        [{ name: 'ops', type: 'slack', url: async () => url }],
        [{ provider: 'ops', events: ['failed'] }],
        {
          backoffMs: 5,
          logger,
        },
      );
      const [d] = await n.notify(event());
      expect(d?.delivered).toBe(false);
      expect(lines.length).toBeGreaterThan(0);
      expect(lines.join('\n')).not.toMatch(/SECRETTOKEN/);
      expect(lines.join('\n')).toContain('"provider":"ops"');
    }
  });

  it('a redirect is not followed (the signed body never goes elsewhere), and is not counted as delivered', async () => {
    const inner = await receiver((_q, res) => res.writeHead(200).end());
    const outer = await receiver((_q, res) => res.writeHead(307, { location: `${inner.url}/latest/meta-data` }).end());
    const n = new Notifier(
      [{ name: 'hook', type: 'generic', url: async () => `${outer.url}/hook`, secret: async () => 'k' }],
      [{ provider: 'hook', events: ['failed'] }],
      { backoffMs: 5 },
    );
    const [d] = await n.notify(event());
    expect(d).toMatchObject({ delivered: false, status: 307, attempts: 1 });
    expect(inner.got).toEqual([]);
  });

  it('an answer is never read: an endless body or a gzip bomb costs neither time nor memory', async () => {
    const zeros = gzipSync(Buffer.alloc(256 * 1024 * 1024)); // 256 MiB inflated, about 256 KiB sent
    const endless = await receiver((_q, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(1024 * 1024, 120);
      const pump = (): void => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    const bomb = await receiver((_q, res) => res.writeHead(200, { 'content-encoding': 'gzip' }).end(zeros));
    for (const r of [endless, bomb]) {
      const n = new Notifier(
        [{ name: 'x', type: 'discord', url: async () => `${r.url}/x` }],
        [{ provider: 'x', events: ['failed'] }],
      );
      const heap = process.memoryUsage().rss;
      const started = Date.now();
      const [d] = await n.notify(event());
      expect(d?.delivered).toBe(true);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(process.memoryUsage().rss - heap).toBeLessThan(128 * 1024 * 1024);
    }
  });

  it('a receiver that never answers holds a notification no longer than its budget, and not past the signal', async () => {
    const silent = await receiver(() => undefined);
    const n = new Notifier(
      [{ name: 's', type: 'teams', url: async () => `${silent.url}/s` }],
      [{ provider: 's', events: ['failed'] }],
      { budgetMs: 1500, timeoutMs: 1000, backoffMs: 100 },
    );
    let started = Date.now();
    const [d] = await n.notify(event());
    expect(d?.delivered).toBe(false);
    expect(Date.now() - started).toBeLessThan(2500);
    started = Date.now();
    await n.notify(event(), AbortSignal.timeout(200));
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('a rollout still progressing at every poll is one message, not one per poll', async () => {
    const got = await receiver((_q, res) => res.writeHead(200).end());
    const repo = await gitopsRepo('progressing');
    const name = uniqueName('slow');
    const sha = await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'c', path: 'app', targetNamespace: name, timeout: '1s' }],
      }),
      'app/deploy.yaml': yamlDocs(deployment('web')), // no controller rolls it out: progressing until the timeout
    });
    const ctx: EngineContext = {
      ...repo.engine,
      notifier: new Notifier(
        [{ name: 'g', type: 'slack', url: async () => `${got.url}/g` }],
        [{ provider: 'g', events: ['applied', 'failed'] }],
      ),
    };
    const queue = { send: async () => undefined };
    for (const reason of ['push', 'poll', 'poll'] as const) {
      const out = await handleMessage(
        ctx,
        { type: 'sync', repo: repo.url, target: name, revision: { ref: 'refs/heads/main', sha }, reason },
        queue,
      );
      expect(out).toMatchObject({ kind: 'synced', result: { outcome: 'progressing' } });
    }
    expect(got.got).toHaveLength(1);
    expect(got.got[0]).toContain('rollout in progress');
  });
});

describe('text from Git is text: in chat messages and on a terminal', () => {
  it('mentions, links and markup in names, branches and errors are escaped per provider; links only http(s) without credentials', () => {
    const e = event({
      title: 'web: <!channel>@cccccccccccc failed',
      text: '[URGENT: rotate keys](https://evil.example/login) <!here> @everyone',
      url: 'https://pr-1.example.com|preview> <!channel> <https://evil.example/login',
    });
    // Slack reads mentions and links in mrkdwn and in the top-level text, never in plain_text.
    const slack = JSON.stringify(slackMessage(e)).replace(/"type":"plain_text","text":"[^"]*"/g, '');
    expect(slack).not.toContain('<!channel>');
    expect(slack).not.toContain('<!here>');
    expect(slack).not.toContain('evil.example/login|');
    const discord = discordMessage(e);
    expect(discord.embeds[0]?.description).toContain('\\[URGENT: rotate keys\\]\\(https://evil.example/login\\)');
    expect(discord.embeds[0]?.url).toBeUndefined();
    expect(discord.allowed_mentions).toEqual({ parse: [] });
    const teams = JSON.stringify(teamsMessage(e));
    expect(teams).not.toContain('](https://evil');
    expect(teams).not.toContain('"url":"https://pr-1');
    for (const url of ['javascript:alert(1)', 'https://user:pw@example.com/x'])
      expect(JSON.stringify(discordMessage(event({ url })))).not.toContain(url);
    expect(() =>
      parseConfig(
        stringify({
          targets: [{ name: 'web', cluster: 'c', preview: { enabled: true, url: 'https://x.example|<!channel>' } }],
        }),
      ),
    ).toThrow(/an http\(s\) URL/);
  });

  it('escape sequences in a manifest name or file never reach the terminal: `tidegate sync` prints them as \\xNN', async () => {
    const name = uniqueName('esc');
    const dir = tempTree({
      'tidegate.yaml': stringify({ targets: [{ name, cluster: 'test', path: 'apps', targetNamespace: name }] }),
      'apps/\x1b]0;owned\x07.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: "\\e]0;owned\\a\\e[2J\\e[32mFAKE: all healthy"\n',
    });
    const res = await cli(
      'sync',
      name,
      '--dir',
      dir,
      '--kubeconfig',
      testEnv().kube.kubeconfigPath,
      '--context',
      'tidegate-test',
    );
    expect(res.code).toBe(1);
    expect(res.out + res.err).not.toContain('\x1b');
    expect(res.out + res.err).not.toContain('\x07');
    expect(res.out + res.err).toContain('\\x1b]0;owned\\x07');
    expect(printable('a\tb\nc\r\u202eevil\x9b')).toBe('a\tb\nc\\x0d\\u{202e}evil\\x9b');
  });
});

describe('the status link and the dev server', () => {
  it('an expiry is accepted in one spelling only', () => {
    const secret = 's3cret';
    const good = new URL(signStatusLink('https://x.test/status', secret, new Date(Date.now() + 60_000)));
    expect(refuseStatusLink(good.searchParams, secret)).toBeUndefined();
    const expires = Number(good.searchParams.get('expires'));
    for (const spelling of [`${expires}.0`, ` ${expires}`, `0x${expires.toString(16)}`, `${expires / 1e9}e9`]) {
      const q = new URLSearchParams(good.searchParams);
      q.set('expires', spelling);
      expect(refuseStatusLink(q, secret)?.status).toBe(401);
    }
  });

  it('the dev server shows its status page to loopback names only (no DNS rebinding)', async () => {
    const repo = await gitopsRepo('rebind');
    const dev = await startDevServer({
      engine: repo.engine,
      repo: repo.url,
      branch: 'main',
      webhookSecret: 'x',
      registrySecret: 'y',
    });
    try {
      const get = (host: string) =>
        new Promise<number>((resolve, reject) => {
          const u = new URL(dev.url);
          request({ host: u.hostname, port: u.port, path: '/', headers: { host } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
            .on('error', reject)
            .end();
        });
      expect(await get(`127.0.0.1:${new URL(dev.url).port}`)).toBe(200);
      expect(await get('localhost')).toBe(200);
      expect(await get('attacker.example')).toBe(421);
    } finally {
      await dev.stop();
    }
  });

  it('a rotated secret is read again within its cache age; credentials in a URL are left out whole', async () => {
    const { aws } = testEnv();
    const sm = new SecretsManagerClient(aws);
    const name = `tidegate-status/${uniqueName('link')}`;
    await sm.send(new CreateSecretCommand({ Name: name, SecretString: 'first' }));
    const store = new SecretStore(
      { secretsManager: async () => sm, ssm: async () => Promise.reject(new Error('no')) },
      100,
    );
    expect(await store.get({ secretsManager: name })).toBe('first');
    await sm.send(new PutSecretValueCommand({ SecretId: name, SecretString: 'rotated' }));
    expect(await store.get({ secretsManager: name })).toBe('first'); // cached
    await new Promise((r) => setTimeout(r, 150));
    expect(await store.get({ secretsManager: name })).toBe('rotated');
    expect(redactUrl('https://user:p@ss@github.com/acme/x@y.git')).toBe('https://github.com/acme/x@y.git');
  });
});
