import { describe, expect, it } from 'vitest';
import type { KubeObject } from '../../shared/model/index.js';
import { reloadPass } from '../../shared/reload/index.js';
import { BASELINE_ANNOTATION } from '../../shared/reload/pass.js';
import { configMap, deployment, testEngine } from '../helpers/engine.js';
import { useNamespace } from '../helpers/env.js';

/**
 * Reload annotations are written by any workload author: what one of them writes must not stall
 * the pass or stop it for every other workload.
 */
describe('reload annotations are untrusted input', () => {
  const ns = useNamespace(import.meta.url);
  const { client } = testEngine();
  const apply = (o: KubeObject) =>
    client.apply({ ...o, metadata: { ...o.metadata, namespace: ns.name } }, { fieldManager: 'test', force: true });
  const annotated = (name: string, annotations: Record<string, string>): KubeObject => {
    const d = deployment(name);
    return { ...d, metadata: { ...d.metadata, annotations } };
  };
  const long = `${'a'.repeat(60)}-b`; // (a+)+$ takes exponential time on this with a backtracking engine

  it('a catastrophic pattern finishes at once, an invalid one and a malformed baseline skip their workload only, the others roll', async () => {
    await apply(configMap(long, { v: '1' }));
    await apply(configMap('settings', { v: '1' }));
    await apply(annotated('redos', { 'configmap.reloader.stakater.com/reload': '(a+)+$' }));
    await apply(annotated('invalid', { 'configmap.reloader.stakater.com/reload': 'settings,(' }));
    await apply(annotated('good', { 'configmap.reloader.stakater.com/reload': `settings,${long}` }));
    await apply(annotated('garbled', { 'configmap.reloader.stakater.com/reload': 'settings' }));
    const scope = { namespaces: [ns.name], strategy: 'annotations' } as const;
    await reloadPass(client, scope); // first sight: hashes recorded
    await apply(
      annotated('garbled', {
        'configmap.reloader.stakater.com/reload': 'settings',
        [BASELINE_ANNOTATION]: '{not json',
      }),
    );
    await apply(configMap(long, { v: '2' }));
    await apply(configMap('settings', { v: '2' }));

    const started = Date.now();
    const report = await reloadPass(client, scope);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(report.rolled.map((r) => r.workload.name)).toEqual(['good']);
    expect(report.rolled[0]?.sources.sort()).toEqual([`ConfigMap/${long}`, 'ConfigMap/settings']);
    expect(Object.fromEntries(report.failed.map((f) => [f.workload.name, f.reason]))).toEqual({
      invalid: expect.stringMatching(
        /^configmap\.reloader\.stakater\.com\/reload: "\(" is not a valid RE2 pattern: error parsing regexp: missing closing \)/,
      ),
      garbled: `annotation ${BASELINE_ANNOTATION} is not a JSON object of hashes; remove it to record them afresh`,
    });
    // Only the good workload's pod template changed.
    const template = async (name: string) =>
      JSON.stringify((await client.get('apps/v1', 'Deployment', ns.name, name))?.['spec']);
    expect(await template('good')).toContain('tidegate.dev/reloaded-hash');
    for (const name of ['redos', 'invalid', 'garbled']) expect(await template(name)).not.toContain('reloaded-hash');
  });

  it('patterns made large to be slow: counts above any name length are refused, and a workload whose patterns use up their time is skipped while the others roll', async () => {
    const names = Array.from({ length: 40 }, (_, i) => `${'x'.repeat(240)}-${i}`);
    for (const name of names) await apply(configMap(name, { v: '1' }));
    // 9,000 characters of valid RE2 (found by review: 17 s for one pass over one ConfigMap).
    await apply(annotated('huge', { 'configmap.reloader.stakater.com/reload': '\\pL{1000}'.repeat(1000) }));
    await apply(annotated('counted', { 'configmap.reloader.stakater.com/reload': '\\pL{1000}' }));
    // Within the size limits, but 40 entries each slow to run (≈ 0.4 s per name), against every ConfigMap of the namespace.
    const costly = Array.from({ length: 40 }, () => `${'(?:x?){253}'.repeat(40)}y`).join(',');
    await apply(annotated('costly', { 'configmap.reloader.stakater.com/reload': costly }));
    await apply(annotated('fine', { 'configmap.reloader.stakater.com/reload': 'x+-0' }));
    const scope = { namespaces: [ns.name], strategy: 'annotations' } as const;
    await reloadPass(client, scope);
    await apply(configMap(names[0] ?? '', { v: '2' }));
    const started = Date.now();
    const report = await reloadPass(client, scope);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(report.rolled.map((r) => r.workload.name)).toEqual(['fine']);
    expect(Object.fromEntries(report.failed.map((f) => [f.workload.name, f.reason]))).toMatchObject({
      huge: expect.stringMatching(/is not a valid RE2 pattern: longer than 512 characters$/),
      counted: expect.stringMatching(
        /is not a valid RE2 pattern: repetition count 1000 is above 253, the longest name$/,
      ),
      costly: 'configmap.reloader.stakater.com/reload: matching its patterns took more than 1000 ms in this pass',
    });
  }, 120_000);
});
