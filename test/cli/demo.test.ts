import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../cli/demo.js';
import { main } from '../../cli/main.js';
import { CHROMIUM } from '../helpers/browser.js';

const ROOT = join(import.meta.dirname, '..', '..');

/**
 * The status page of the demo, as README shows it (docs/status-page.png): taken in the real browser
 * at 1280 wide while the demo serves it, after its five syncs. This test writes the picture.
 */
async function screenshot(url: string): Promise<{ targets: number; pipeline: string; errors: string[] }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url);
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'docs', 'status-page.png'), fullPage: true });
    return {
      targets: await page.locator('tr.target').count(),
      pipeline: await page.locator('section.pipeline').innerText(),
      errors,
    };
  } finally {
    await browser.close();
  }
}

describe('npm start (tidegate demo)', () => {
  it('runs the whole loop on its own embedded servers to completion', async () => {
    let out = '';
    const code = await main(['demo', '--once'], { out: (t) => (out += t), err: (t) => (out += t) });
    expect(code).toBe(0);
    expect(out).toMatch(/ready: kube-apiserver v1\.34\.\d+ \(etcd 3\.6\.\d+\)/);
    expect(out).toMatch(/step 1 {2}initial sync[\s\S]*\+ Deployment\.apps\/demo\/podinfo/);
    expect(out).toMatch(
      /step 2 [\s\S]*~ Deployment\.apps\/demo\/podinfo {2}\(spec\.replicas\)[\s\S]*the cluster now runs replicas=3/,
    );
    expect(out).toMatch(/step 3 [\s\S]*drift corrected[\s\S]*replicas=3 again/);
    expect(out).toMatch(
      /step 4 [\s\S]*↻ Deployment\.apps\/demo\/podinfo rolled: ConfigMap\/podinfo-config changed[\s\S]*Deployment generation (\d+) → (\d+)/,
    );
    const [, before, after] = /Deployment generation (\d+) → (\d+)/.exec(out) ?? [];
    expect(Number(after)).toBe(Number(before) + 1);
    expect(out).toMatch(/podinfo: applied main@[0-9a-f]{12} at .*, health healthy; 3 objects/);
    expect(out).toMatch(
      /step 5 [\s\S]*commit [0-9a-f]+ by tidegate: tidegate: update image podinfo \| - podinfo: [^ ]+:6\.5\.0 → [^ ]+:6\.5\.1/,
    );
    expect(out).toMatch(/the Deployment now runs 127\.0\.0\.1:\d+\/demo\/podinfo:6\.5\.1/);
    expect(out).toMatch(/status page: http:\/\/127\.0\.0\.1:\d+\/ \(HTTP 200, 1 target\(s\), [1-9]\d* bars plotted\)/);
    expect(out).toMatch(/demo finished: 5 syncs, all succeeded/);
    expect(out).not.toContain('until Ctrl-C');
  }, 120_000);

  it("README's picture (docs/status-page.png) is the demo's status page, taken while the demo serves it", async () => {
    let shot: Awaited<ReturnType<typeof screenshot>> | undefined;
    const code = await runDemo(
      { out: () => undefined, err: () => undefined },
      { once: true, whileServing: async (url) => void (shot = await screenshot(url)) },
    );
    expect(code).toBe(0);
    expect(shot?.targets).toBe(1);
    expect(shot?.pipeline).toMatch(
      /last webhook received\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d .* from (github|distribution)/,
    );
    expect(shot?.pipeline).toMatch(/last poll\s+\d{4}-\d\d-\d\d/);
    expect(shot?.errors).toEqual([]);
  }, 120_000);
});
