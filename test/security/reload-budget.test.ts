import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeObject } from '../../shared/model/index.js';
import { reloadPass, type ReloadReport } from '../../shared/reload/index.js';
import { RELOADER as R } from '../../shared/reload/annotations.js';
import { RELOADED_FROM_ANNOTATION } from '../../shared/reload/pass.js';
import { configMap, deployment, gitopsRepo, testEngine } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

/**
 * Found by an attacker with write access to one repository: reload patterns within the documented
 * limits, each costly to run, on many workloads of one namespace. The pass must still roll the
 * other namespaces' workloads, go on with the costly namespace in later passes, and stop at its
 * deadline even in the middle of a costly pattern.
 */

// Within the limits (441 characters, repetition counts of 253), each entry slow to run against a long name.
const costly = (last: string): string => `${'(?:x?){253}'.repeat(40)}${last}`;
const LONG = `${'x'.repeat(240)}-a`;
// Three costly entries that never match, then one that does: every entry runs against the long name
// (0.1 to 0.5 s per workload, under its own 1 s budget).
const COSTLY_LIST = [costly('y'), costly('z'), costly('w'), 'x+-a'].join(',');

const { client } = testEngine();
const inNs = (ns: string, o: KubeObject): KubeObject => ({ ...o, metadata: { ...o.metadata, namespace: ns } });
const apply = (ns: string, o: KubeObject) => client.apply(inNs(ns, o), { fieldManager: 'test', force: true });
const namespace = async (prefix: string): Promise<string> => {
  const name = uniqueName(prefix);
  await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, { fieldManager: 'test' });
  return name;
};
const annotated = (name: string, annotations: Record<string, string>): KubeObject => {
  const d = deployment(name);
  return { ...d, metadata: { ...d.metadata, annotations } };
};
const names = (list: ReadonlyArray<{ workload: { name: string } }> | undefined): string[] =>
  (list ?? []).map((e) => e.workload.name).sort();

describe('a reload pass under costly patterns: per-namespace shares, fair order, carried-over work, deadline', () => {
  it('one namespace full of costly patterns never keeps another namespace from rolling; its deferred work is carried over, each workload rolled once', async () => {
    const a = await namespace('rl-costly');
    const b = await namespace('rl-plain');
    const N = 48; // 5 to 25 s of pattern time in all: more than one namespace's share of a pass
    const costlyNames = Array.from({ length: N }, (_, i) => `costly-${String(i).padStart(2, '0')}`);
    await apply(a, configMap(LONG, { v: '1' }));
    for (const name of costlyNames) await apply(a, annotated(name, { [R.configmapReload]: COSTLY_LIST }));
    await apply(b, configMap('settings', { v: '1' }));
    await apply(b, annotated('web', { [R.configmapReload]: 'settings' }));
    const scope = { namespaces: [a, b], strategy: 'annotations' } as const;

    // First sight: baselines recorded, over as many passes as the budgets need (A's share of a pass holds part of A).
    const recorded = new Set<string>();
    for (let i = 0; i < 20 && recorded.size < N + 1; i++) {
      const began = Date.now();
      const report = await reloadPass(client, scope);
      console.log(`recording pass ${i + 1}: ${Date.now() - began} ms, ${report.deferred?.length ?? 0} deferred`);
      for (const r of report.recorded) recorded.add(r.name);
    }
    expect([...recorded].sort()).toEqual([...costlyNames, 'web'].sort());
    const recordedAt = new Map<string, number | undefined>();
    for (const name of costlyNames)
      recordedAt.set(name, (await client.get('apps/v1', 'Deployment', a, name))?.metadata.generation);

    await apply(a, configMap(LONG, { v: '2' }));
    await apply(b, configMap('settings', { v: '2' }));

    const started = Date.now();
    const first = await reloadPass(client, scope);
    const firstMs = Date.now() - started;
    console.log(`pass with ${N} costly workloads in one namespace: ${firstMs} ms`);
    // B's workload is rolled in this very pass, whatever A costs.
    expect(first.rolled.filter((r) => r.workload.namespace === b).map((r) => r.workload.name)).toEqual(['web']);
    // A's share of the pass is spent: the rest of A is deferred, saying why, and nothing failed.
    expect(first.failed).toEqual([]);
    expect(first.deferred?.length).toBeGreaterThan(0);
    for (const d of first.deferred ?? []) {
      expect(d.workload.namespace).toBe(a);
      expect(d.reason).toBe(
        `namespace ${a} spent its share of the pass's pattern time (3000 ms); the next pass starts with this workload`,
      );
    }
    // Bound: A's share (3 s) plus listing and patching; the unbounded pass takes N × (time of the patterns).
    expect(firstMs).toBeLessThan(6_000);

    // Following passes go on with what was deferred until every A workload is rolled, each once.
    const rolledA: string[] = first.rolled.filter((r) => r.workload.namespace === a).map((r) => r.workload.name);
    expect(rolledA.length).toBeGreaterThan(0);
    let previous: ReloadReport = first;
    for (let i = 0; i < 20 && rolledA.length < N; i++) {
      const deferredBefore = new Set(names(previous.deferred));
      const began = Date.now();
      const next = await reloadPass(client, scope);
      console.log(`rolling pass ${i + 2}: ${Date.now() - began} ms, ${next.rolled.length} rolled`);
      expect(next.failed).toEqual([]);
      const now = next.rolled.filter((r) => r.workload.namespace === a).map((r) => r.workload.name);
      // Carried over: this pass starts with the workloads the last one deferred, and makes progress on them.
      expect(now.length).toBeGreaterThan(0);
      for (const name of now) expect(deferredBefore.has(name)).toBe(true);
      expect(next.rolled.filter((r) => r.workload.namespace === b)).toEqual([]);
      rolledA.push(...now);
      previous = next;
    }
    expect(rolledA.sort()).toEqual(costlyNames); // every one rolled, none twice
    // Nothing left to roll; A may still be deferred (its share covers part of it per pass), B never is.
    const settled = await reloadPass(client, scope);
    expect(settled.rolled).toEqual([]);
    expect(settled.failed).toEqual([]);
    expect((settled.deferred ?? []).filter((d) => d.workload.namespace !== a)).toEqual([]);
    for (const name of costlyNames) {
      const live = await client.get('apps/v1', 'Deployment', a, name);
      const template = (live?.['spec'] as { template: { metadata: { annotations?: Record<string, string> } } })
        .template;
      expect(template.metadata.annotations?.[RELOADED_FROM_ANNOTATION]).toBe(`ConfigMap/${LONG}`);
      // One write since the change: the roll (a Deployment's generation counts annotation changes too).
      expect(live?.metadata.generation).toBe((recordedAt.get(name) ?? 0) + 1);
    }
  }, 240_000);

  it('a pass whose signal fires after 200 ms stops within ~100 ms, in the middle of costly patterns', async () => {
    const ns = await namespace('rl-abort');
    await apply(ns, configMap(LONG, { v: '1' }));
    for (let i = 0; i < 6; i++) await apply(ns, annotated(`costly-${i}`, { [R.configmapReload]: COSTLY_LIST }));
    const signal = AbortSignal.timeout(200);
    const started = Date.now();
    const outcome = await reloadPass(client, { namespaces: [ns], strategy: 'annotations', signal }).then(
      (report) => ({ report }),
      (err: unknown) => ({ err }),
    );
    const elapsed = Date.now() - started;
    console.log(`aborted pass returned after ${elapsed} ms`);
    expect(signal.aborted).toBe(true);
    expect(outcome).toEqual({ err: expect.objectContaining({ name: 'TimeoutError' }) });
    expect(elapsed).toBeLessThan(350);
  }, 60_000);
});

describe('the reload right after a sync honours the deploy-time scope', () => {
  it('ignoreNamespaces, namespaces and resourceSelector apply to the post-apply pass as to the scheduled one', async () => {
    const [ignored, outside, selected] = [uniqueName('rl-ign'), uniqueName('rl-out'), uniqueName('rl-sel')];
    const repo = await gitopsRepo('rl-scope');
    repo.engine.reload = {
      strategy: 'annotations',
      scope: { namespaces: [ignored, selected], ignoreNamespaces: [ignored], resourceSelector: 'reload=watched' },
    };
    const watched = { labels: { reload: 'watched' } };
    const web = (): KubeObject => annotated('web', { [R.configmapReload]: 'web-config,plain' });
    const target = (name: string, ns: string) => ({ name, cluster: 't', path: `apps/${name}`, targetNamespace: ns });
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [target('ign', ignored), target('out', outside), target('sel', selected)].map((t) => ({
          ...t,
          wait: false,
        })),
      }),
      ...Object.fromEntries(
        ['ign', 'out', 'sel'].flatMap((t) => [
          [`apps/${t}/deploy.yaml`, web()],
          [`apps/${t}/config.yaml`, [configMap('web-config', { v: '1' }, watched), configMap('plain', { v: '1' })]],
        ]),
      ),
    });
    for (const t of ['ign', 'out', 'sel']) expect((await repo.sync(t))[0]?.outcome).toBe('applied');
    const generation = async (ns: string) =>
      (await repo.engine.client.get('apps/v1', 'Deployment', ns, 'web'))?.metadata.generation;

    // A watched ConfigMap changed in Git, in each namespace.
    const sha = await repo.commit(
      Object.fromEntries(
        ['ign', 'out', 'sel'].map((t) => [
          `apps/${t}/config.yaml`,
          [configMap('web-config', { v: '2' }, watched), configMap('plain', { v: '1' })],
        ]),
      ),
    );
    for (const [t, ns] of [
      ['ign', ignored],
      ['out', outside],
    ] as const) {
      const before = await generation(ns);
      const [result] = await repo.sync(t, sha);
      expect({ target: t, reloads: result?.reloads ?? [] }).toEqual({ target: t, reloads: [] });
      expect(await generation(ns)).toBe(before);
    }
    // In scope, not ignored: rolled (the positive control).
    const [sel] = await repo.sync('sel', sha);
    expect(sel?.reloads?.map((r) => `${r.workload.namespace}/${r.workload.name} ${r.sources.join(',')}`)).toEqual([
      `${selected}/web ConfigMap/web-config`,
    ]);

    // A ConfigMap the selector does not match changes in Git: nothing rolls.
    const sha2 = await repo.commit({
      'apps/sel/config.yaml': [configMap('web-config', { v: '2' }, watched), configMap('plain', { v: '2' })],
    });
    const before = await generation(selected);
    const [plain] = await repo.sync('sel', sha2);
    expect(plain?.reloads ?? []).toEqual([]);
    expect(await generation(selected)).toBe(before);
  }, 120_000);
});
