import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IAdaptiveCard } from '@microsoft/teams.cards';
import type { KnownBlock } from '@slack/types';
import type { RESTPostAPIWebhookWithTokenJSONBody } from 'discord-api-types/v10';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { QueueMessage } from '../../shared/model/index.js';
import { Notifier, discordMessage, slackMessage, teamsMessage, type NotifyEvent } from '../../shared/notify/index.js';
import { handleMessage, type EngineContext, type Queue } from '../../shared/usecases/index.js';
import { pushImage, startGitHub } from '../../devenv/index.js';
import { testEnv, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo, markedDeployment, yamlDocs } from '../helpers/engine.js';
import { previewRepo } from '../helpers/previews.js';

// The payload types are the providers' own (Slack's @slack/types, Microsoft's @microsoft/teams.cards,
// discord-api-types): `npm test` type-checks that what tidegate builds is what they accept.
const sample: NotifyEvent = {
  kind: 'held',
  repo: 'https://github.com/acme/gitops',
  target: 'web',
  sha: 'a'.repeat(40),
  title: 'web: main@aaaaaaaaaaaa held for sign-off',
  text: 'waiting for a manual approval',
  fields: [['target', 'web']],
  url: 'https://github.com/acme/gitops/commit/aaaa',
  at: new Date(0).toISOString(),
};
const slackTyped: { text: string; blocks: KnownBlock[] } = slackMessage(sample);
const teamsTyped: IAdaptiveCard = teamsMessage(sample).attachments[0]!.content;
const discordTyped: RESTPostAPIWebhookWithTokenJSONBody = discordMessage(sample);

interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Local HTTP receivers standing in for Slack, Teams, Discord and a generic endpoint; `failNext` answers 503 that many times. */
async function receivers() {
  const got: Received[] = [];
  const fail = { count: 0 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ path: req.url ?? '', headers: req.headers, body });
      if (fail.count > 0) {
        fail.count--;
        res.writeHead(503).end('try later');
        return;
      }
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, got, fail, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const slackLimits = (m: { text: string; blocks: Array<Record<string, any>> }) => {
  expect(m.text.length).toBeGreaterThan(0);
  expect(m.blocks.length).toBeLessThanOrEqual(50);
  for (const b of m.blocks) {
    expect(['header', 'section', 'context']).toContain(b['type']);
    if (b['type'] === 'header') expect(b['text']).toMatchObject({ type: 'plain_text', text: expect.any(String) });
    if (b['type'] === 'header') expect(b['text'].text.length).toBeLessThanOrEqual(150);
    if (b['type'] === 'section' && b['text']) expect(b['text'].text.length).toBeLessThanOrEqual(3000);
    if (b['type'] === 'section' && b['fields']) expect(b['fields'].length).toBeLessThanOrEqual(10);
    if (b['type'] === 'context') expect(b['elements'].length).toBeLessThanOrEqual(10);
  }
};

const discordLimits = (m: Record<string, any>) => {
  expect(m['embeds']).toHaveLength(1);
  const e = m['embeds'][0];
  expect(e.title.length).toBeLessThanOrEqual(256);
  expect(e.description.length).toBeLessThanOrEqual(4096);
  expect(e.fields.length).toBeLessThanOrEqual(25);
  const total =
    e.title.length +
    e.description.length +
    e.fields.reduce((n: number, f: any) => n + f.name.length + f.value.length, 0);
  expect(total).toBeLessThanOrEqual(6000);
};

describe('notifications: Slack, Teams, Discord and a signed generic webhook, one message per event and revision', () => {
  it('the payloads are the providers’ own types (checked by tsc), and carry the event', () => {
    expect(slackTyped.blocks[0]).toMatchObject({ type: 'header', text: { text: sample.title } });
    expect(teamsTyped).toMatchObject({ type: 'AdaptiveCard', version: '1.4', actions: [{ url: sample.url }] });
    expect(discordTyped.embeds?.[0]).toMatchObject({ title: sample.title, url: sample.url });
    expect(discordTyped.allowed_mentions).toEqual({ parse: [] });
  });

  const SIGNING_KEY = 'generic-signing-key';
  let r: Awaited<ReturnType<typeof receivers>>;
  beforeAll(async () => {
    r = await receivers();
  });
  afterAll(() => r?.stop());

  it('events of syncs reach the providers their alerts name, in shapes those services accept; repeats from the poll send nothing; a Secret value never', async () => {
    const [plain, gated] = [uniqueName('web'), uniqueName('gated')];
    const canary = randomBytes(12).toString('hex');
    const repo = await gitopsRepo('notify');
    const notifier = new Notifier(
      [
        { name: 'ops', type: 'slack', url: async () => `${r.url}/slack` },
        { name: 'teams', type: 'teams', url: async () => `${r.url}/teams` },
        { name: 'discord', type: 'discord', url: async () => `${r.url}/discord` },
        { name: 'hook', type: 'generic', url: async () => `${r.url}/generic`, secret: async () => SIGNING_KEY },
      ],
      [
        { provider: 'ops', events: ['applied', 'failed', 'held', 'drift-corrected'] },
        { provider: 'teams', events: ['failed', 'held'] },
        { provider: 'discord', events: ['applied'], targets: [`${plain.slice(0, 3)}*`] },
        { provider: 'hook', events: ['applied', 'failed', 'held', 'drift-corrected'] },
      ],
      { backoffMs: 10 },
    );
    const ctx: EngineContext = { ...repo.engine, notifier };
    const queued: QueueMessage[] = [];
    const queue: Queue = { send: async (m) => void queued.push(...m) };
    /** A push (or a poll) of main's head, its sync messages handled as the worker would. */
    const deliver = async (sha: string, reason: 'push' | 'poll') => {
      queued.length = 0;
      await handleMessage(
        ctx,
        {
          type: 'push',
          repo: repo.url,
          ref: 'refs/heads/main',
          sha,
          paths: null,
          reason,
          ...(reason === 'poll' ? { bucket: Date.now() } : {}),
        },
        queue,
      );
      for (const m of [...queued]) if (m.type === 'sync') await handleMessage(ctx, m, queue);
    };
    const events = (path: string) => r.got.filter((g) => g.path === path).map((g) => JSON.parse(g.body));
    const target = (t: string) => ({ name: t, cluster: 'c', path: t, targetNamespace: t, wait: false });
    const sha1 = await repo.commit({
      'tidegate.yaml': stringify({ targets: [target(plain), { ...target(gated), gate: { manual: true } }] }),
      [`${plain}/app.yaml`]: [
        configMap('app', { v: '1' }),
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, stringData: { password: canary } },
      ],
      [`${gated}/app.yaml`]: configMap('app', { v: '1' }),
    });
    await deliver(sha1, 'push');
    const slack = events('/slack');
    expect(slack.map((m) => m.text).sort()).toEqual(
      [`${gated}: main@${sha1.slice(0, 12)} held for sign-off`, `${plain}: main@${sha1.slice(0, 12)} applied`].sort(),
    );
    for (const m of slack) slackLimits(m);
    const teams = events('/teams');
    expect(teams).toHaveLength(1); // held only
    expect(teams[0]).toMatchObject({
      type: 'message',
      attachments: [
        { contentType: 'application/vnd.microsoft.card.adaptive', content: { type: 'AdaptiveCard', version: '1.4' } },
      ],
    });
    expect(JSON.stringify(teams[0])).toContain(`tidegate approve ${gated} ${sha1.slice(0, 12)}`);
    const discord = events('/discord');
    expect(discord).toHaveLength(1); // applied, and only targets matching the glob
    discordLimits(discord[0]);
    // The generic endpoint checks the signature over the exact body, as a receiver would.
    const generic = r.got.filter((g) => g.path === '/generic');
    expect(generic).toHaveLength(2);
    for (const g of generic) {
      const given = Buffer.from(String(g.headers['x-tidegate-signature-256']));
      const wanted = Buffer.from(`sha256=${createHmac('sha256', SIGNING_KEY).update(g.body).digest('hex')}`);
      expect(given.length === wanted.length && timingSafeEqual(given, wanted)).toBe(true);
    }
    expect(generic.map((g) => JSON.parse(g.body).event).sort()).toEqual(['applied', 'held']);

    // The poll re-syncs the same revision: unchanged and the same hold are no news.
    const before = r.got.length;
    await deliver(sha1, 'poll');
    expect(r.got.length).toBe(before);

    // Drift: an out-of-band edit corrected by the poll is one event.
    await repo.engine.client.apply(
      { ...configMap('app', { v: 'edited' }), metadata: { name: 'app', namespace: plain } },
      { fieldManager: 'kubectl-edit', force: true },
    );
    await deliver(sha1, 'poll');
    expect(events('/slack').map((m) => m.text)).toContain(`${plain}: drift corrected at main@${sha1.slice(0, 12)}`);

    // A broken revision fails once; the poll's retries of it send nothing more.
    const sha2 = await repo.commit({
      [`${plain}/app.yaml`]: 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: app }\ndata: { v: 1 }\n',
    });
    await deliver(sha2, 'push');
    await deliver(sha2, 'poll');
    await deliver(sha2, 'poll');
    const failed = events('/slack').filter((m) => m.text === `${plain}: main@${sha2.slice(0, 12)} failed`);
    expect(failed).toHaveLength(1);
    expect(
      events('/teams').filter((m) => JSON.stringify(m).includes(`${plain}: main@${sha2.slice(0, 12)} failed`)),
    ).toHaveLength(1);

    const everything = r.got.map((g) => g.body).join('\n');
    for (const form of [canary, Buffer.from(canary).toString('base64')]) expect(everything).not.toContain(form);
  });

  it('a receiver answering 503 is retried until it takes the message; one that is down costs the sync nothing', async () => {
    const repo = await gitopsRepo('notify-down');
    const name = uniqueName('web');
    const warnings: string[] = [];
    const logger = {
      info: () => undefined,
      debug: () => undefined,
      error: () => undefined,
      warn: (m: string, f?: Record<string, unknown>) => void warnings.push(`${m} ${JSON.stringify(f ?? {})}`),
    };
    const notifier = new Notifier(
      [
        { name: 'flaky', type: 'generic', url: async () => `${r.url}/flaky`, secret: async () => SIGNING_KEY },
        { name: 'gone', type: 'slack', url: async () => 'http://127.0.0.1:9/hooks/secret-token-in-url' },
      ],
      [
        { provider: 'flaky', events: ['applied'] },
        { provider: 'gone', events: ['applied'] },
      ],
      { backoffMs: 20, timeoutMs: 2000, logger },
    );
    const ctx: EngineContext = { ...repo.engine, notifier, logger };
    const sha = await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'c', path: 'app', targetNamespace: name, wait: false }],
      }),
      'app/app.yaml': configMap('app', { v: '1' }),
    });
    r.fail.count = 2;
    const started = Date.now();
    const out = await handleMessage(
      ctx,
      { type: 'sync', repo: repo.url, target: name, revision: { ref: 'refs/heads/main', sha }, reason: 'push' },
      { send: async () => undefined },
    );
    expect(out).toMatchObject({ kind: 'synced', result: { outcome: 'applied' } });
    expect(Date.now() - started).toBeLessThan(15_000);
    const flaky = r.got.filter((g) => g.path === '/flaky');
    expect(flaky).toHaveLength(3); // two 503s, then delivered
    expect(new Set(flaky.map((g) => g.body)).size).toBe(1); // the same message each time
    expect(warnings.some((w) => w.includes('notification not delivered') && w.includes('"provider":"gone"'))).toBe(
      true,
    );
    expect(warnings.join('\n')).not.toContain('secret-token-in-url');
  });
  it('an image written to Git is one image-committed message; the same tag pushed again sends nothing', async () => {
    const reg = testEnv().registry;
    const path = `apps/${uniqueName('api')}`;
    await pushImage(reg, path, '1.0.0');
    const repo = await gitopsRepo('notify-img');
    const name = uniqueName('api');
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name, cluster: 'c', path: 'app', targetNamespace: name, wait: false }],
        images: [
          { name: 'api', repository: `${reg.host}/${path}`, insecure: true, policy: { semver: { range: '^1' } } },
        ],
      }),
      'app/deploy.yaml': markedDeployment(`${reg.host}/${path}:1.0.0`, 'flux-system:api'),
    });
    const notifier = new Notifier(
      [{ name: 'hook', type: 'generic', url: async () => `${r.url}/images`, secret: async () => SIGNING_KEY }],
      [{ provider: 'hook', events: ['image-committed', 'image-proposed'] }],
      { backoffMs: 10 },
    );
    const ctx: EngineContext = { ...repo.engine, notifier, repositories: [{ url: repo.url, branch: 'main' }] };
    await pushImage(reg, path, '1.3.0');
    const image = {
      type: 'image',
      registry: reg.host,
      repository: path,
      tag: '1.3.0',
      source: 'distribution',
    } as const;
    const queue: Queue = { send: async () => undefined };
    expect(await handleMessage(ctx, image, queue)).toMatchObject({ kind: 'images-written' });
    expect(await handleMessage(ctx, image, queue)).toMatchObject({ kind: 'images-written' }); // nothing left to edit
    const got = r.got.filter((g) => g.path === '/images').map((g) => JSON.parse(g.body));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({ event: 'image-committed' });
    expect(got[0].text).toMatch(/^api: \S+:1\.0\.0 → \S+:1\.3\.0$/);
  });
  it('a preview environment applied is one preview-published message; the same head again sends nothing', async () => {
    const token = 'ghp_notify_preview';
    const github = await startGitHub({ token, gitRoot: testEnv().git.root });
    try {
      const pv = await previewRepo(github, token, { preview: { url: 'https://pr-{{number}}.preview.example' } });
      const notifier = new Notifier(
        [{ name: 'hook', type: 'generic', url: async () => `${r.url}/previews`, secret: async () => SIGNING_KEY }],
        [{ provider: 'hook', events: ['preview-published'] }],
        { backoffMs: 10 },
      );
      const ctx: EngineContext = { ...pv.ctx, notifier };
      const branch = uniqueName('feature');
      const opened = await pv.branchOff(branch, { 'apps/config.yaml': yamlDocs(configMap('web-config', { v: '2' })) });
      await pv.handle(pv.event(opened.number, 'opened', opened.sha, branch), ctx);
      await pv.handle(pv.event(opened.number, 'synchronize', opened.sha, branch), ctx); // a redelivery: the same head
      const got = r.got.filter((g) => g.path === '/previews').map((g) => JSON.parse(g.body));
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({
        event: 'preview-published',
        target: pv.target,
        revision: opened.sha,
        url: `https://pr-${opened.number}.preview.example`,
      });
      expect(got[0].title).toContain(`preview of #${opened.number} published`);
    } finally {
      await github.stop();
    }
  });
});
