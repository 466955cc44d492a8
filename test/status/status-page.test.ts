import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startDevServer, type DevServer } from '../../cli/dev-server.js';
import { rollback } from '../../shared/usecases/index.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';
import { CHROMIUM } from '../helpers/browser.js';
import { githubHeaders, pushPayload } from '../helpers/lambda.js';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * The status page of `tidegate dev`, in a real headless browser (Debian's chromium through
 * playwright-core): targets applied, failed, held and pinned on the test apiserver, read from their
 * state in the cluster.
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
  };

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
        ],
      }),
      'ok/app.yaml': [
        configMap('app', { v: '1' }),
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, stringData: { password: canary } },
      ],
      'bad/app.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: app }\ndata: { v: 1 }\n',
      'held/app.yaml': configMap('app', { v: '1' }),
      'pinned/app.yaml': configMap('app', { v: '1' }),
    });
    await repo.sync();
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
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'docs', 'status-page.png'), fullPage: false });
    await page.close();
  });
});
