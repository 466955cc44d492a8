import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeClient } from '../../shared/cluster/index.js';
import { MemoryQueue, handleMessage } from '../../shared/usecases/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { reloadPass, type ReloadStrategy } from '../../shared/reload/index.js';
import { RELOAD_FIELD_MANAGER } from '../../shared/reload/pass.js';
import { RELOADED_HASH_ANNOTATION } from '../../shared/reload/pass.js';
import { RELOADED_FROM_ANNOTATION } from '../../shared/reload/pass.js';
import { BASELINE_ANNOTATION } from '../../shared/reload/pass.js';
import { RELOADER as R } from '../../shared/reload/annotations.js';
import { uniqueName } from '../helpers/env.js';
import { configMap, deployment, gitopsRepo, testEngine } from '../helpers/engine.js';

type Ref = 'volume' | 'projected' | 'env' | 'envFrom' | 'init' | 'none';
type Kind = 'Deployment' | 'StatefulSet' | 'DaemonSet' | 'CronJob';

interface Row {
  name: string;
  source: 'ConfigMap' | 'Secret';
  ref: Ref;
  workloadAnn?: Record<string, string>;
  templateAnn?: Record<string, string>;
  sourceAnn?: Record<string, string>;
  kind?: Kind;
  rolls: boolean;
}

function podSpec(source: 'ConfigMap' | 'Secret', name: string, ref: Ref): Record<string, unknown> {
  const cm = source === 'ConfigMap';
  const volume = { name: 'v', ...(cm ? { configMap: { name } } : { secret: { secretName: name } }) };
  const projected = { name: 'v', projected: { sources: [cm ? { configMap: { name } } : { secret: { name } }] } };
  const app: Record<string, unknown> = { name: 'app', image: 'registry.example/app:1' };
  const spec: Record<string, unknown> = { containers: [app] };
  if (ref === 'volume' || ref === 'projected') {
    spec['volumes'] = [ref === 'volume' ? volume : projected];
    app['volumeMounts'] = [{ name: 'v', mountPath: '/cfg' }];
  }
  if (ref === 'env')
    app['env'] = [
      { name: 'X', valueFrom: cm ? { configMapKeyRef: { name, key: 'k' } } : { secretKeyRef: { name, key: 'k' } } },
    ];
  if (ref === 'envFrom') app['envFrom'] = [cm ? { configMapRef: { name } } : { secretRef: { name } }];
  if (ref === 'init')
    spec['initContainers'] = [
      {
        name: 'init',
        image: 'registry.example/init:1',
        envFrom: [cm ? { configMapRef: { name } } : { secretRef: { name } }],
      },
    ];
  return spec;
}

function workload(kind: Kind, row: Row, sourceName: string): KubeObject {
  const labels = { app: 'w' };
  const template = {
    metadata: { labels, annotations: row.templateAnn ?? {} },
    spec: podSpec(row.source, sourceName, row.ref),
  };
  const meta = { name: 'w', annotations: row.workloadAnn ?? {} };
  switch (kind) {
    case 'CronJob':
      return {
        apiVersion: 'batch/v1',
        kind,
        metadata: meta,
        spec: {
          schedule: '0 * * * *',
          jobTemplate: { spec: { template: { ...template, spec: { ...template.spec, restartPolicy: 'Never' } } } },
        },
      };
    case 'StatefulSet':
      return {
        apiVersion: 'apps/v1',
        kind,
        metadata: meta,
        spec: { serviceName: 'w', selector: { matchLabels: labels }, template },
      };
    default:
      return { apiVersion: 'apps/v1', kind, metadata: meta, spec: { selector: { matchLabels: labels }, template } };
  }
}

const templateOf = (
  obj: KubeObject | undefined,
): {
  metadata?: { annotations?: Record<string, string> };
  spec: { containers: Array<{ name: string; env?: Array<{ name: string; value?: string }> }> };
} => {
  const spec = obj?.['spec'] as Record<string, any>;
  return obj?.kind === 'CronJob' ? spec['jobTemplate'].spec.template : spec['template'];
};

async function source(client: KubeClient, ns: string, row: Row, name: string, value: string): Promise<void> {
  const meta = { name, namespace: ns, annotations: row.sourceAnn ?? {} };
  const obj: KubeObject =
    row.source === 'ConfigMap'
      ? { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta, data: { k: value } }
      : { apiVersion: 'v1', kind: 'Secret', metadata: meta, stringData: { k: value } };
  await client.apply(obj, { fieldManager: 'test', force: true });
}

// Reloader's documented behaviour, row by row (README "How to use Reloader" and ShouldReload's precedence).
const ROWS: Row[] = [
  {
    name: 'auto, ConfigMap mounted as a volume',
    source: 'ConfigMap',
    ref: 'volume',
    workloadAnn: { [R.auto]: 'true' },
    rolls: true,
  },
  {
    name: 'auto, Secret as a projected volume source',
    source: 'Secret',
    ref: 'projected',
    workloadAnn: { [R.auto]: 'true' },
    rolls: true,
  },
  {
    name: 'auto, ConfigMap in env valueFrom',
    source: 'ConfigMap',
    ref: 'env',
    workloadAnn: { [R.auto]: 'true' },
    rolls: true,
  },
  { name: 'auto, Secret in envFrom', source: 'Secret', ref: 'envFrom', workloadAnn: { [R.auto]: 'true' }, rolls: true },
  {
    name: 'auto, ConfigMap used by an init container',
    source: 'ConfigMap',
    ref: 'init',
    workloadAnn: { [R.auto]: 'true' },
    rolls: true,
  },
  {
    name: 'auto, ConfigMap not referenced',
    source: 'ConfigMap',
    ref: 'none',
    workloadAnn: { [R.auto]: 'true' },
    rolls: false,
  },
  {
    name: 'configmap auto, Secret change',
    source: 'Secret',
    ref: 'envFrom',
    workloadAnn: { [R.configmapAuto]: 'true' },
    rolls: false,
  },
  {
    name: 'secret auto, Secret change',
    source: 'Secret',
    ref: 'env',
    workloadAnn: { [R.secretAuto]: 'true' },
    rolls: true,
  },
  {
    name: 'named ConfigMap by regex, not referenced',
    source: 'ConfigMap',
    ref: 'none',
    workloadAnn: { [R.configmapReload]: 'other,src-.*' },
    rolls: true,
  },
  { name: 'named Secret', source: 'Secret', ref: 'volume', workloadAnn: { [R.secretReload]: 'SRC' }, rolls: true },
  {
    name: 'search + match',
    source: 'ConfigMap',
    ref: 'envFrom',
    workloadAnn: { [R.search]: 'true' },
    sourceAnn: { [R.match]: 'true' },
    rolls: true,
  },
  {
    name: 'search without match',
    source: 'ConfigMap',
    ref: 'envFrom',
    workloadAnn: { [R.search]: 'true' },
    rolls: false,
  },
  {
    name: 'ignore on the ConfigMap',
    source: 'ConfigMap',
    ref: 'volume',
    workloadAnn: { [R.auto]: 'true' },
    sourceAnn: { [R.ignore]: 'true' },
    rolls: false,
  },
  {
    name: 'exclude list',
    source: 'Secret',
    ref: 'envFrom',
    workloadAnn: { [R.auto]: 'true', [R.secretExclude]: 'SRC' },
    rolls: false,
  },
  {
    name: 'pod template annotation as fallback',
    source: 'ConfigMap',
    ref: 'env',
    templateAnn: { [R.auto]: 'true' },
    rolls: true,
  },
  {
    name: 'StatefulSet',
    source: 'Secret',
    ref: 'volume',
    workloadAnn: { [R.auto]: 'true' },
    kind: 'StatefulSet',
    rolls: true,
  },
  {
    name: 'DaemonSet',
    source: 'ConfigMap',
    ref: 'envFrom',
    workloadAnn: { [R.auto]: 'true' },
    kind: 'DaemonSet',
    rolls: true,
  },
  {
    name: 'CronJob (next runs)',
    source: 'ConfigMap',
    ref: 'envFrom',
    workloadAnn: { [R.auto]: 'true' },
    kind: 'CronJob',
    rolls: true,
  },
];

describe('reload pass against the real apiserver: every annotation form, reference form and both strategies', () => {
  const cases = (['annotations', 'env-vars'] as ReloadStrategy[]).flatMap((strategy) =>
    ROWS.map((row) => [`${strategy}: ${row.name}`, strategy, row] as const),
  );
  it.each(cases)('%s', async (_name, strategy, row) => {
    const { client } = testEngine();
    const ns = uniqueName('rl');
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { fieldManager: 'test' });
    const srcName =
      row.name.includes('named Secret') || row.name.includes('exclude')
        ? 'SRC'.toLowerCase()
        : `src-${row.source.toLowerCase()}`;
    const fixed = {
      ...row,
      workloadAnn: Object.fromEntries(
        Object.entries(row.workloadAnn ?? {}).map(([k, v]) => [k, v.replace('SRC', srcName)]),
      ),
    };
    await source(client, ns, fixed, srcName, 'one');
    const kind = row.kind ?? 'Deployment';
    const w = workload(kind, fixed, srcName);
    await client.apply({ ...w, metadata: { ...w.metadata, namespace: ns } }, { fieldManager: 'tidegate', force: true });
    const read = () => client.get(w.apiVersion, kind, ns, 'w');

    const first = await reloadPass(client, { namespaces: [ns], strategy });
    expect(first.rolled).toEqual([]);
    const before = await read();
    expect(before?.metadata.annotations?.[BASELINE_ANNOTATION]).toBeDefined();
    expect(templateOf(before).metadata?.annotations?.[RELOADED_HASH_ANNOTATION]).toBeUndefined();

    await source(client, ns, fixed, srcName, 'two');
    const second = await reloadPass(client, { namespaces: [ns], strategy });
    const after = await read();
    expect(second.rolled.map((r) => r.workload.name)).toEqual(row.rolls ? ['w'] : []);
    const tpl = templateOf(after);
    if (!row.rolls) {
      expect(JSON.stringify(templateOf(after))).toBe(JSON.stringify(templateOf(before)));
      return;
    }
    expect(second.rolled[0]?.sources).toEqual([`${row.source}/${srcName}`]);
    if (strategy === 'annotations') {
      expect(tpl.metadata?.annotations?.[RELOADED_FROM_ANNOTATION]).toBe(`${row.source}/${srcName}`);
      expect(tpl.metadata?.annotations?.[RELOADED_HASH_ANNOTATION]).toMatch(/^[0-9a-f]{32}$/);
    } else {
      const envName = `STAKATER_${srcName.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_${row.source === 'ConfigMap' ? 'CONFIGMAP' : 'SECRET'}`;
      expect(tpl.spec.containers[0]?.env?.find((e) => e.name === envName)?.value).toMatch(/^[0-9a-f]{32}$/);
    }
    const managers = after?.metadata.managedFields?.map((f) => f.manager);
    expect(managers).toContain(RELOAD_FIELD_MANAGER);
    expect(managers).toContain('tidegate');
  });

  it('three passes over unchanged data: no patch after the first, with one LIST per kind', async () => {
    const { client } = testEngine();
    const ns = uniqueName('rl-idem');
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { fieldManager: 'test' });
    await client.apply(
      { ...configMap('c', { k: 'v' }), metadata: { name: 'c', namespace: ns } },
      { fieldManager: 'test' },
    );
    for (const name of ['a', 'b', 'c']) {
      const d = deployment(name);
      await client.apply(
        {
          ...d,
          metadata: { name, namespace: ns, annotations: { [R.auto]: 'true' } },
          spec: {
            ...(d['spec'] as object),
            template: { metadata: { labels: { app: name } }, spec: podSpec('ConfigMap', 'c', 'envFrom') },
          },
        },
        { fieldManager: 'tidegate' },
      );
    }
    const patches = () => client.requestCounts['PATCH'] ?? 0;
    const gets = () => client.requestCounts['GET'] ?? 0;
    const p0 = patches();
    await reloadPass(client, { namespaces: [ns], strategy: 'annotations' });
    expect(patches() - p0).toBe(3); // hashes recorded, once per workload
    for (let i = 0; i < 2; i++) {
      const [p, g] = [patches(), gets()];
      const report = await reloadPass(client, { namespaces: [ns], strategy: 'annotations' });
      expect(report).toEqual({ rolled: [], recorded: [], skipped: [], failed: [] });
      expect(patches() - p).toBe(0);
      expect(gets() - g).toBe(6); // ConfigMaps, Secrets, Deployments, StatefulSets, DaemonSets, CronJobs
    }
  });
});

describe('reload inside the sync and in the scheduled pass', () => {
  it('a Git change to a ConfigMap rolls its Deployment in the same sync, and re-syncing leaves the template alone', async () => {
    const ns = uniqueName('rl-git');
    const repo = await gitopsRepo('rl-git');
    const deploy = (image = 'registry.example/app:1') => ({
      ...deployment('web'),
      metadata: { name: 'web', annotations: { [R.auto]: 'true' } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: { containers: [{ name: 'app', image, envFrom: [{ configMapRef: { name: 'web-config' } }] }] },
        },
      },
    });
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: 'rl', cluster: 't', path: 'apps', targetNamespace: ns, wait: false }],
      }),
      'apps/deploy.yaml': deploy(),
      'apps/config.yaml': configMap('web-config', { LEVEL: 'info' }),
      'apps/ignored.yaml': configMap('ignored', { x: '1' }, { annotations: { [R.ignore]: 'true' } }),
    });
    const [first] = await repo.sync('rl');
    expect(first?.reloads ?? []).toEqual([]);
    const { client } = repo.engine;
    const gen1 = (await client.get('apps/v1', 'Deployment', ns, 'web'))?.metadata.generation;

    const sha = await repo.commit({ 'apps/config.yaml': configMap('web-config', { LEVEL: 'debug' }) });
    const [changed] = await repo.sync('rl', sha);
    expect(changed?.reloads).toEqual([
      {
        workload: { group: 'apps', kind: 'Deployment', namespace: ns, name: 'web' },
        sources: ['ConfigMap/web-config'],
      },
    ]);
    const rolled = await client.get('apps/v1', 'Deployment', ns, 'web');
    expect(rolled?.metadata.generation).toBe((gen1 ?? 0) + 1);
    expect(templateOf(rolled).metadata?.annotations?.[RELOADED_FROM_ANNOTATION]).toBe('ConfigMap/web-config');

    // The same revision again: the apply keeps what the reloader set, nothing rolls.
    const [again] = await repo.sync('rl', sha);
    expect(again?.outcome).toBe('unchanged');
    const after = await client.get('apps/v1', 'Deployment', ns, 'web');
    expect(after?.metadata.resourceVersion).toBe(rolled?.metadata.resourceVersion);

    // An ignored ConfigMap changing in Git rolls nothing.
    const sha2 = await repo.commit({
      'apps/ignored.yaml': configMap('ignored', { x: '2' }, { annotations: { [R.ignore]: 'true' } }),
    });
    const [ignored] = await repo.sync('rl', sha2);
    expect(ignored?.reloads ?? []).toEqual([]);
    expect((await client.get('apps/v1', 'Deployment', ns, 'web'))?.metadata.generation).toBe(
      rolled?.metadata.generation,
    );
  });

  it('an out-of-band Secret change (External Secrets) rolls its StatefulSet in the next scheduled pass', async () => {
    const engine = { ...testEngine(), reload: { strategy: 'env-vars' as const, scope: {} } };
    const { client } = engine;
    const ns = uniqueName('rl-oob');
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, { fieldManager: 'test' });
    const secret = (v: string): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', namespace: ns },
      stringData: { password: v },
    });
    await client.apply(secret('first'), { fieldManager: 'external-secrets' });
    await client.apply(
      {
        apiVersion: 'apps/v1',
        kind: 'StatefulSet',
        metadata: { name: 'db', namespace: ns, annotations: { [R.secretReload]: 'db' } },
        spec: {
          serviceName: 'db',
          selector: { matchLabels: { app: 'db' } },
          template: {
            metadata: { labels: { app: 'db' } },
            spec: { containers: [{ name: 'db', image: 'postgres:17', envFrom: [{ secretRef: { name: 'db' } }] }] },
          },
        },
      },
      { fieldManager: 'tidegate' },
    );
    const queue = new MemoryQueue(async () => undefined);
    const pass = async () => handleMessage(engine, { type: 'reload', cluster: 'test', bucket: Date.now() }, queue);
    await pass();
    await client.apply(secret('rotated'), { fieldManager: 'external-secrets' });
    const outcome = await pass();
    expect(outcome.kind === 'reloaded' && outcome.report.rolled.find((r) => r.workload.namespace === ns)).toEqual({
      workload: { group: 'apps', kind: 'StatefulSet', namespace: ns, name: 'db' },
      sources: ['Secret/db'],
    });
    const sts = await client.get('apps/v1', 'StatefulSet', ns, 'db');
    expect(templateOf(sts).spec.containers[0]?.env?.map((e) => e.name)).toEqual(['STAKATER_DB_SECRET']);
  });
});
