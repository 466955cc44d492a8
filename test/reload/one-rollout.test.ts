import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { ControllerClient } from '../../devenv/index.js';
import { reloadPass } from '../../shared/reload/index.js';
import { stringify } from 'yaml';
import type { KubeObject } from '../../shared/model/index.js';
import { RELOADER as R } from '../../shared/reload/annotations.js';
import { RELOADED_HASH_ANNOTATION } from '../../shared/reload/pass.js';
import { testKubeConfig, uniqueName } from '../helpers/env.js';
import { configMap, gitopsRepo } from '../helpers/engine.js';
import { reloadingDeployment } from '../helpers/reload.js';

type Kind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'CronJob';
type Strategy = 'annotations' | 'env-vars';

/** A workload of `kind` that mounts every ConfigMap named, Reloader's auto annotation on it. */
function workload(kind: Kind, image: string, sources: readonly string[]): KubeObject {
  const labels = { app: 'w' };
  const template = {
    metadata: { labels },
    spec: {
      containers: [{ name: 'app', image, envFrom: sources.map((name) => ({ configMapRef: { name } })) }],
      ...(kind === 'CronJob' ? { restartPolicy: 'Never' } : {}),
    },
  };
  const metadata = { name: 'w', annotations: { [R.auto]: 'true' } };
  if (kind === 'CronJob')
    return {
      apiVersion: 'batch/v1',
      kind,
      metadata,
      spec: { schedule: '0 * * * *', jobTemplate: { spec: { template } } },
    };
  const spec = { selector: { matchLabels: labels }, template, ...(kind === 'StatefulSet' ? { serviceName: 'w' } : {}) };
  return { apiVersion: 'apps/v1', kind, metadata, spec };
}

type Template = {
  metadata?: { annotations?: Record<string, string> };
  spec: { containers: Array<{ image: string; env?: Array<{ name: string; value?: string }> }> };
};
const templateOf = (obj: KubeObject | undefined): Template => {
  const spec = obj?.['spec'] as { template?: Template; jobTemplate?: { spec: { template: Template } } };
  return (obj?.kind === 'CronJob' ? spec.jobTemplate?.spec.template : spec.template) as Template;
};

/** A target holding one workload and its ConfigMaps, synced from a repository of its own. */
async function world(kind: Kind, strategy: Strategy) {
  const repo = await gitopsRepo('onerollout');
  const ns = uniqueName('one');
  const files = (image: string, values: Record<string, string>): Record<string, string> => ({
    'tidegate.yaml': stringify({
      targets: [{ name: ns, cluster: 'c', path: 'apps', targetNamespace: ns, wait: false, reload: { strategy } }],
    }),
    'apps/objects.yaml': [
      ...Object.entries(values).map(([name, v]) => stringify(configMap(name, { k: v }))),
      stringify(workload(kind, image, Object.keys(values))),
    ].join('---\n'),
  });
  const live = async (): Promise<KubeObject> => {
    const obj = await repo.engine.client.get(kind === 'CronJob' ? 'batch/v1' : 'apps/v1', kind, ns, 'w');
    if (!obj) throw new Error(`${kind} w is not in ${ns}`);
    return obj;
  };
  return {
    ns,
    live,
    generation: async () => (await live()).metadata.generation ?? 0,
    commit: (image: string, values: Record<string, string>) => repo.commit(files(image, values)),
    sync: async () => {
      const [result] = await repo.sync(ns);
      expect(result?.error, result?.error).toBeUndefined();
      return result;
    },
  };
}

/** What carries the reload in the pod template, by strategy: the hash annotation, or STAKATER_* env vars. */
const reloadMark = (t: Template, strategy: Strategy): string =>
  strategy === 'annotations'
    ? (t.metadata?.annotations?.[RELOADED_HASH_ANNOTATION] ?? '')
    : JSON.stringify((t.spec.containers[0]?.env ?? []).filter((e) => e.name.startsWith('STAKATER_')));

const CASES: Array<[Kind, Strategy]> = [
  ['Deployment', 'annotations'],
  ['Deployment', 'env-vars'],
  ['StatefulSet', 'annotations'],
  ['DaemonSet', 'env-vars'],
  ['CronJob', 'annotations'],
];

describe('one commit, one rollout: a workload and the ConfigMaps it reloads on change in one write', () => {
  it.each(CASES)('%s (%s strategy)', async (kind, strategy) => {
    const w = await world(kind, strategy);
    await w.commit('registry.example/app:1', { a: '1', b: '1', c: '1' });
    await w.sync();
    const first = await w.generation();
    const before = reloadMark(templateOf(await w.live()), strategy);

    // The image and one ConfigMap in one commit: the generation rises by exactly 1, the template carries both.
    await w.commit('registry.example/app:2', { a: '2', b: '1', c: '1' });
    const both = await w.sync();
    expect(await w.generation()).toBe(first + 1);
    const t = templateOf(await w.live());
    expect(t.spec.containers[0]?.image).toBe('registry.example/app:2');
    const afterBoth = reloadMark(t, strategy);
    expect(afterBoth).not.toBe(before);
    // Reported once, as the reload that rode in the workload's write; the pass after the apply rolled nothing more.
    expect(both?.reloads).toEqual([
      {
        workload: { group: kind === 'CronJob' ? 'batch' : 'apps', kind, namespace: w.ns, name: 'w' },
        sources: ['ConfigMap/a'],
      },
    ]);

    // Three ConfigMaps the workload uses, the workload unchanged in Git: +1.
    await w.commit('registry.example/app:2', { a: '3', b: '3', c: '3' });
    const three = await w.sync();
    expect(await w.generation()).toBe(first + 2);
    // A reload, not drift: the workload's change says why, and counts as no drift corrected.
    const change = three?.changeSet.changes.find((c) => c.ref.kind === kind);
    expect(change?.drift).toBeUndefined();
    expect(change).toMatchObject({
      ref: { group: kind === 'CronJob' ? 'batch' : 'apps', kind, namespace: w.ns, name: 'w' },
      action: 'configured',
      reason: 'reloaded: ConfigMap/a, ConfigMap/b, ConfigMap/c changed',
    });
    expect(reloadMark(templateOf(await w.live()), strategy)).not.toBe(afterBoth);

    // The same revision again: +0.
    await w.sync();
    expect(await w.generation()).toBe(first + 2);
  });
});

describe('out-of-band changes within the debounce roll a workload once', () => {
  const DEBOUNCE_MS = 2500;
  const setting = async (client: ControllerClient, ns: string, name: string, value: string) =>
    client.apply(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, stringData: { k: value } },
      { fieldManager: 'external-secrets', force: true },
    );
  const settle = () => sleep(DEBOUNCE_MS + 1500); // the apiserver keeps write times in whole seconds

  it('three Secrets changed within it: one rollout once they settle; changed apart: one each', async () => {
    const client = new ControllerClient(testKubeConfig());
    const ns = uniqueName('debounce');
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { fieldManager: 'test' });
    for (const name of ['s1', 's2', 's3']) await setting(client, ns, name, '0');
    const deploy = reloadingDeployment('w', { secrets: ['s1', 's2', 's3'] }, { namespace: ns });
    await client.apply(deploy, { fieldManager: 'test' });
    const pass = () => reloadPass(client, { namespaces: [ns], strategy: 'annotations', debounceMs: DEBOUNCE_MS });
    const generation = async () => (await client.get('apps/v1', 'Deployment', ns, 'w'))?.metadata.generation ?? 0;
    expect((await pass()).recorded).toHaveLength(1); // first seen: hashes recorded
    const g0 = await generation();

    for (const name of ['s1', 's2', 's3']) await setting(client, ns, name, '1');
    const early = await pass();
    expect(early.rolled).toEqual([]);
    expect(early.debounced?.map((d) => d.sources)).toEqual([['Secret/s1', 'Secret/s2', 'Secret/s3']]);
    expect(await generation()).toBe(g0);
    await settle();
    const settled = await pass();
    expect(settled.rolled.map((r) => r.sources)).toEqual([['Secret/s1', 'Secret/s2', 'Secret/s3']]);
    expect(await generation()).toBe(g0 + 1);
    expect((await pass()).rolled).toEqual([]); // nothing twice

    for (const [i, name] of ['s1', 's2'].entries()) {
      await setting(client, ns, name, '2');
      await settle();
      expect((await pass()).rolled.map((r) => r.sources)).toEqual([[`Secret/${name}`]]);
      expect(await generation()).toBe(g0 + 2 + i);
    }
    client.close();
  }, 60_000);
});

describe('reload.maxConcurrent: a mass change rolls in waves', () => {
  it('1000 workloads whose Secret changed, at most 50 per pass: all rolled in the end, none twice', async () => {
    const client = new ControllerClient(testKubeConfig());
    const ns = uniqueName('waves');
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { fieldManager: 'test' });
    const secret = (value: string) =>
      client.apply(
        { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'shared', namespace: ns }, stringData: { k: value } },
        { fieldManager: 'test', force: true },
      );
    await secret('0');
    const names = Array.from({ length: 1000 }, (_, i) => `w${i}`);
    for (let i = 0; i < names.length; i += 25)
      await Promise.all(
        names.slice(i, i + 25).map((name) =>
          client.apply(reloadingDeployment(name, { secrets: ['shared'] }, { namespace: ns }), {
            fieldManager: 'test',
          }),
        ),
      );
    const pass = () => reloadPass(client, { namespaces: [ns], strategy: 'annotations', maxRolls: 50 });
    expect((await pass()).recorded).toHaveLength(1000);
    const generationOf = async () =>
      new Map(
        (await client.list('apps/v1', 'Deployment', { namespace: ns })).map((d) => [
          d.metadata.name,
          d.metadata.generation ?? 0,
        ]),
      );
    const before = await generationOf();
    await secret('1');
    const rolled = new Map<string, number>();
    for (let round = 0; round < 25 && rolled.size < 1000; round++) {
      const report = await pass();
      expect(report.rolled.length).toBeLessThanOrEqual(50);
      for (const r of report.rolled) rolled.set(r.workload.name, (rolled.get(r.workload.name) ?? 0) + 1);
      if (rolled.size < 1000)
        expect(report.deferred?.every((d) => d.reason.startsWith('reload.maxConcurrent (50)'))).toBe(true);
    }
    expect(rolled.size).toBe(1000);
    expect([...rolled.values()].every((n) => n === 1)).toBe(true);
    // Each rolled exactly once: its generation one above what it was before the change.
    const after = await generationOf();
    expect(names.filter((n) => after.get(n) !== (before.get(n) ?? 0) + 1)).toEqual([]);
    expect((await pass()).rolled).toEqual([]);
    client.close();
  }, 300_000);
});
