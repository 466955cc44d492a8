import { randomBytes } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startDevServer, type DevServer } from '../../cli/dev-server.js';
import { writeTargetState } from '../../shared/state/index.js';
import { rollback } from '../../shared/usecases/index.js';
import { reloadWithPolicies } from '../../shared/sync/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo } from '../helpers/engine.js';
import { CHROMIUM } from '../helpers/browser.js';
import { reloadingDeployment } from '../helpers/reload.js';
import { githubHeaders, pushPayload } from '../helpers/lambda.js';

/**
 * The status page of `tidegate dev`, in a real headless browser (Debian's chromium through
 * playwright-core): targets applied, failed, held and pinned on the test apiserver, read from their
 * state in the cluster; the pipeline panel from what the dev server's queue and poll did; each
 * target's objects with their health now.
 */
describe('status page in a real browser', () => {
  let browser: Browser;
  let server: DevServer;
  const canary = randomBytes(12).toString('hex');
  const names = {
    ok: uniqueName('web'),
    bad: uniqueName('broken'),
    held: uniqueName('gated'),
    pinned: uniqueName('pinned'),
    inv: uniqueName('inv'),
    hub: uniqueName('on-github'),
    reload: uniqueName('reload-held'),
  };
  const longName = `x${'y'.repeat(299)}`;
  const hubSha = randomBytes(20).toString('hex');

  beforeAll(async () => {
    const repo = await gitopsRepo('status');
    const target = (name: string, path: string, extra: Record<string, unknown> = {}) => ({
      name,
      cluster: 'c',
      path,
      targetNamespace: name,
      wait: false,
      ...extra,
    });
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          target(names.ok, 'ok'),
          target(names.bad, 'bad'),
          target(names.held, 'held', { gate: { manual: true } }),
          target(names.pinned, 'pinned'),
          target(names.inv, 'inv'),
          target(names.reload, 'reload', { reload: { approve: true } }),
        ],
      }),
      'reload/app.yaml': reloadingDeployment('w', { secrets: ['ext'] }),
      'inv/all.yaml': [
        configMap('settings', { A: '1' }),
        configMap('gone', { B: '2' }),
        deployment('stuck', { replicas: 2 }),
        deployment('late'),
      ],
      'ok/app.yaml': [
        configMap('app', { v: '1' }),
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, stringData: { password: canary } },
      ],
      'bad/app.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: app }\ndata: { v: 1 }\n',
      'held/app.yaml': configMap('app', { v: '1' }),
      'pinned/app.yaml': configMap('app', { v: '1' }),
    });
    // A Secret from outside Git that the reload target's Deployment reads, there before its first sync.
    const external = (v: string) =>
      repo.engine.client.apply(
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ext', namespace: names.reload }, stringData: { k: v } },
        { fieldManager: 'external-secrets', force: true },
      );
    await repo.engine.client.apply(
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: names.reload } },
      { fieldManager: 'test' },
    );
    await external('0');
    await repo.sync();
    // Changed out of band: the target's reload.approve holds the reload (the pass kept to its namespace).
    await external('1');
    await reloadWithPolicies(repo.engine.client, { namespaces: [names.reload], strategy: 'annotations' });
    await repo.commit({ 'ok/app.yaml': configMap('app', { v: '2' }), 'pinned/app.yaml': configMap('app', { v: '2' }) });
    await repo.sync();
    await rollback(repo.engine, { repo: repo.url, target: names.pinned, by: 'alice', reason: 'bad release v2' });
    server = await startDevServer({
      engine: repo.engine,
      repo: repo.url,
      branch: 'main',
      webhookSecret: 'x',
      registrySecret: 'y',
    });
    // A poll, as the dev server's interval runs it (its drift correction syncs every target once).
    await server.poll();
    await server.queue.idle();
    // A push delivered as GitHub delivers it: its push→applied latency is recorded and plotted.
    const sha = await repo.commit({ 'ok/app.yaml': configMap('app', { v: '3' }) });
    const body = pushPayload(repo.url, sha, ['ok/app.yaml']);
    const res = await fetch(`${server.url}/webhooks/github`, {
      method: 'POST',
      headers: githubHeaders('push', body, 'x'),
      body,
    });
    expect(res.status).toBe(202);
    await server.queue.idle();
    // A message that fails on every attempt (its repository's server is gone): dead-lettered. Its URL carries a token.
    await server.queue.send([
      {
        type: 'sync',
        repo: `http://bot:${canary}-token@127.0.0.1:1/gone.git`,
        target: 'gone',
        revision: { ref: 'refs/heads/main', sha: 'a'.repeat(40) },
        reason: 'test',
      },
    ]);
    await server.queue.idle();
    expect(server.queue.deadLetters).toHaveLength(1);
    // A push that breaks a target (a name the apiserver refuses), delivered as a webhook: the failed sync's error.
    const broken = await repo.commit({ 'bad/app.yaml': configMap(longName, { v: '2' }) });
    const badBody = pushPayload(repo.url, broken, ['bad/app.yaml']);
    const bad = await fetch(`${server.url}/webhooks/github`, {
      method: 'POST',
      headers: githubHeaders('push', badBody, 'x'),
      body: badBody,
    });
    expect(bad.status).toBe(202);
    await server.queue.idle();
    // Out of band, after the poll's drift correction: a ConfigMap deleted, a Deployment past its progress deadline.
    const { client } = repo.engine;
    await client.delete({ apiVersion: 'v1', group: '', kind: 'ConfigMap', namespace: names.inv, name: 'gone' });
    const late = await client.get('apps/v1', 'Deployment', names.inv, 'late');
    if (!late) throw new Error('no Deployment late');
    await client.patchStatus(late, {
      observedGeneration: late.metadata.generation,
      replicas: 1,
      conditions: [
        { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: 'timed out progressing' },
      ],
    });
    // A target of a github.com repository (its state as a sync records it): its revisions link to their commits.
    await writeTargetState(client, names.hub, {
      inventory: [],
      repo: 'https://github.com/acme/gitops.git',
      history: [
        {
          revision: { ref: 'refs/heads/main', sha: hubSha },
          outcome: 'applied',
          health: 'healthy',
          counts: { created: 1, configured: 0, unchanged: 0, deleted: 0, skipped: 0 },
          startedAt: new Date(Date.now() - 3 * 60_000 - 10_000).toISOString(),
          durationMs: 1500,
        },
      ],
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows every target with its outcome, the hold and the pin with the command that lifts them, plots drawn, no console errors, no secret value', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    const res = await page.goto(`${server.url}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'");
    const outcome = (name: string) =>
      page.locator(`tr.target[data-target="${name}"] .badge`).getAttribute('data-outcome');
    expect(await outcome(names.ok)).toBe('applied');
    expect(await outcome(names.bad)).toBe('failed');
    expect(await outcome(names.held)).toBe('held');
    expect(await outcome(names.pinned)).toBe('applied');
    const heldRow = await page.locator(`tr.target[data-target="${names.held}"]`).innerText();
    expect(heldRow).toMatch(
      /held: 1 change\(s\) since the start not signed off \(a manual approval needed, tidegate.yaml\): [0-9a-f]{12} by Test Author: no manual approval/,
    );
    expect(heldRow).toContain(`tidegate approve ${names.held}`);
    const pinnedRow = await page.locator(`tr.target[data-target="${names.pinned}"]`).innerText();
    expect(pinnedRow).toContain('pinned at');
    expect(pinnedRow).toContain('bad release v2');
    expect(pinnedRow).toContain(`tidegate release ${names.pinned}`);
    expect(await page.locator(`tr.target[data-target="${names.bad}"] .error`).innerText()).not.toBe('');
    // Plots: two per target, bars for each recorded sync (the ok target synced three times), and the push's latency.
    expect(await page.locator(`section.detail[data-target="${names.ok}"] svg`).count()).toBe(2);
    expect(await page.locator(`section.detail[data-target="${names.ok}"] svg rect.bar`).count()).toBe(6);
    expect(await page.locator('header svg rect.bar').count()).toBeGreaterThanOrEqual(1); // other tests' targets share the cluster
    expect(await page.locator(`section.detail[data-target="${names.ok}"] ol.timeline li`).first().innerText()).toMatch(
      /push→applied \d/,
    );
    const box = await page.locator(`section.detail[data-target="${names.ok}"] svg rect.bar`).first().boundingBox();
    expect(box?.height).toBeGreaterThan(0);
    expect(
      await page.locator(`section.detail[data-target="${names.pinned}"] ol.timeline li`).first().innerText(),
    ).toContain('rollback');
    const html = await page.content();
    for (const form of [canary, Buffer.from(canary).toString('base64')]) expect(html).not.toContain(form);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a reload held for approval: its workload, what changed, why, since when, and the command that approves it', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(`${server.url}/`);
    const row = page.locator(`tr.reload-hold[data-workload="Deployment/${names.reload}/w"]`);
    expect(await row.getAttribute('data-kind')).toBe('approval');
    const text = await row.innerText();
    expect(text).toContain('Secret/ext');
    expect(text).toContain(`reload.approve (tidegate.yaml of ${names.reload}): waits for an approval of this reload`);
    expect(text).toContain(`tidegate approve ${names.reload} --reload --repo`);
    expect(text).toContain(`/tidegate approve reload ${names.reload}`);
    expect(text).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (just now|\d+ \w+ ago)/);
    await page.close();
  });

  it("the pipeline panel: the webhook delivered, the poll run, queue depth, dead letters and the failed sync's error", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/`);
    const cell = (key: string) => page.locator(`section.pipeline tr[data-pipeline="${key}"] td`);
    const when = /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (just now|\d+ s ago)/;
    const webhook = await cell('webhook').innerText();
    expect(webhook).toMatch(when);
    expect(webhook).toContain('from github (push)');
    const poll = await cell('poll').innerText();
    expect(poll).toMatch(when);
    expect(poll).toMatch(/push: fanned out to \d+ target\(s\)|ok: 1 message\(s\) queued/);
    expect(await cell('queue').innerText()).toBe('0 waiting, 0 in flight');
    expect(await cell('dead').innerText()).toBe('1 — failed on every delivery: redrive or delete them');
    expect(await page.content()).not.toContain(`${canary}-token`);
    const error = await cell('error').innerText();
    expect(error).toMatch(when);
    expect(error).toContain(`sync of ${names.bad} failed:`);
    // The error's first line is cut on one line (ellipsis); its whole text is behind it.
    const summary = page.locator('section.pipeline tr[data-pipeline="error"] details.error summary');
    expect(
      await summary.evaluate(
        (e) =>
          (globalThis as unknown as { getComputedStyle(x: unknown): { textOverflow: string } }).getComputedStyle(e)
            .textOverflow,
      ),
    ).toBe('ellipsis');
    expect(await page.locator('section.pipeline tr[data-pipeline="error"] details.error pre').textContent()).toContain(
      longName,
    );
    await page.close();
  });

  it("reloads itself with no script, keeping the URL's query (a signed link)", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/?expires=1&sig=abc`);
    expect(await page.locator('meta[http-equiv="refresh"]').getAttribute('content')).toBe('30');
    await page.close();
    const quick = await startDevServer({
      engine: (await gitopsRepo('status-refresh')).engine,
      repo: `${server.url}/none.git`,
      branch: 'main',
      webhookSecret: 'x',
      registrySecret: 'y',
      statusRefreshSeconds: 1,
    });
    try {
      const p = await browser.newPage();
      const loads: string[] = [];
      p.on('request', (r) => r.isNavigationRequest() && loads.push(r.url()));
      await p.goto(`${quick.url}/?expires=1&sig=abc`);
      await p.waitForRequest((r) => r.isNavigationRequest() && loads.length >= 2, { timeout: 10_000 });
      expect(loads.slice(0, 2)).toEqual([`${quick.url}/?expires=1&sig=abc`, `${quick.url}/?expires=1&sig=abc`]);
      expect(await p.locator('script').count()).toBe(0);
      await p.close();
    } finally {
      await quick.stop();
    }
  });

  it("each target's objects with their health now: deleted out of band is Missing, a stuck Deployment Progressing, one past its deadline Degraded", async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/`);
    const object = (name: string) =>
      page.locator(`section.detail[data-target="${names.inv}"] tr.object[data-name="${name}"]`);
    expect(await object('gone').getAttribute('data-health')).toBe('Missing');
    expect(await object('gone').locator('td.msg').textContent()).toBe('not found in the cluster');
    expect(await object('stuck').getAttribute('data-health')).toBe('Progressing');
    expect(await object('stuck').locator('td.msg').textContent()).toBe(
      'waiting for the controller to observe generation 1',
    );
    expect(await object('late').getAttribute('data-health')).toBe('Degraded');
    expect(await object('late').locator('td.msg').textContent()).toContain('ProgressDeadlineExceeded');
    expect(await object('settings').getAttribute('data-health')).toBe('Healthy');
    expect(await object('gone').getAttribute('data-kind')).toBe('ConfigMap');
    expect(await object('gone').getAttribute('data-namespace')).toBe(names.inv);
    // Not all healthy: the list is open, and the target's row counts what is not.
    expect(await object('gone').isVisible()).toBe(true);
    const row = await page.locator(`tr.target[data-target="${names.inv}"]`).innerText();
    expect(row).toMatch(/4\s+1 Degraded\s+1 Missing\s+1 Progressing/);
    await page.close();
  });

  it('charts have labelled axes with units and ticks; times are UTC with how long ago; commit links only for GitHub; errors stay on the page', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${server.url}/`);
    const charts = page.locator(`section.detail[data-target="${names.ok}"] svg`);
    expect(await charts.count()).toBe(2);
    for (let i = 0; i < 2; i++) {
      const labels = await charts.nth(i).locator('text.axis-label').allTextContents();
      expect(labels).toEqual([
        'sync start (UTC)',
        i === 0 ? expect.stringMatching(/^duration \((ms|s|min)\)$/) : 'objects changed',
      ]);
      const yTicks = await charts.nth(i).locator('text.tick.y').allTextContents();
      expect(yTicks.length).toBeGreaterThanOrEqual(2);
      expect(yTicks[0]).toMatch(i === 0 ? /^0 (ms|s|min)$/ : /^0$/);
      if (i === 0) for (const t of yTicks) expect(t).toMatch(/^\d+(\.\d)? (ms|s|min)$/);
      else for (const t of yTicks) expect(t).toMatch(/^\d+$/); // counts: whole ticks
      const xTicks = await charts.nth(i).locator('text.tick.x').allTextContents();
      expect(xTicks).toHaveLength(2);
      for (const t of xTicks) expect(t).toMatch(/^(\d\d-\d\d )?\d\d:\d\d$/);
    }
    expect(await page.locator('header svg text.axis-label').allTextContents()).toEqual([
      'sync start (UTC)',
      expect.stringMatching(/^latency \((ms|s|min)\)$/),
    ]);
    // Relative times beside the absolute ones, as of the page's render.
    expect(await page.locator(`tr.target[data-target="${names.hub}"] td:nth-child(5)`).innerText()).toMatch(
      /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d 3 min ago$/,
    );
    // The test git server is not GitHub: no commit links; the github.com repository's revision links to its commit.
    expect(await page.locator(`tr.target[data-target="${names.ok}"] td:nth-child(2) a`).count()).toBe(0);
    expect(await page.locator(`section.detail[data-target="${names.ok}"] ol.timeline a`).count()).toBe(0);
    expect(await page.locator(`tr.target[data-target="${names.hub}"] td:nth-child(2) a`).getAttribute('href')).toBe(
      `https://github.com/acme/gitops/commit/${hubSha}`,
    );
    // The failed target's error (one long unbroken name) stays inside the page, cut with an ellipsis, whole behind it.
    const needs = page.locator(`tr.target[data-target="${names.bad}"] td.needs`);
    expect(await needs.locator('details.error pre').textContent()).toContain(longName);
    const box = await needs.boundingBox();
    expect((box?.x ?? 0) + (box?.width ?? 0)).toBeLessThanOrEqual(1280);
    expect(
      await page.evaluate(
        () =>
          (globalThis as unknown as { document: { documentElement: { scrollWidth: number } } }).document.documentElement
            .scrollWidth,
      ),
    ).toBeLessThanOrEqual(1280);
    await page.close();
  });
});
