import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SYSTEM_NAMESPACE } from '../../shared/apply/index.js';
import type { KubeObject, SyncResult } from '../../shared/model/index.js';
import { stateName } from '../../shared/state/state.js';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

/**
 * A chart's generated values (randAlphaNum, randNumeric) are kept from the cluster while nothing
 * changed. What tidegate keeps it must recognise by something no other client can forge: a field
 * manager name is not that (any client may apply as `tidegate`, as `kubectl apply --server-side
 * --field-manager=tidegate --force-conflicts` does). A value put there that way is replaced at the
 * next sync of the same revision: Git wins.
 */
const FILES = {
  'chart/Chart.yaml': stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' }),
  'chart/values.yaml': 'mode: a\n',
  'chart/templates/secret.yaml': `apiVersion: v1
kind: Secret
metadata:
  name: app-auth
data:
  password: {{ randAlphaNum 16 | b64enc | quote }}
  mode: {{ .Values.mode | b64enc | quote }}
`,
  'chart/templates/config.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
  annotations:
    checksum/session: {{ randNumeric 6 | quote }}
data:
  token: "tok-{{ randAlphaNum 8 }}-{{ .Values.mode }}"
`,
};

const written = (r: SyncResult | undefined): string[] =>
  (r?.changeSet.changes ?? [])
    .filter((c) => c.action !== 'unchanged')
    .map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`);

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const decoded = (s: unknown): string => Buffer.from(String(s), 'base64').toString('utf8');

async function chartTarget(prefix: string, extra: Record<string, unknown> = {}, files: Record<string, string> = {}) {
  const repo = await gitopsRepo(prefix);
  const ns = uniqueName(prefix);
  const target = uniqueName(prefix);
  await repo.commit({
    'tidegate.yaml': stringify({
      targets: [{ name: target, cluster: 'test', path: 'chart', targetNamespace: ns, wait: false, ...extra }],
    }),
    ...FILES,
    ...files,
  });
  const client = repo.engine.client;
  const sync = async (): Promise<SyncResult> => {
    const [r] = await repo.sync(target);
    expect(r?.outcome, r?.error).not.toBe('failed');
    return r as SyncResult;
  };
  const get = async (kind: 'Secret' | 'ConfigMap', name: string) =>
    (await client.get('v1', kind, ns, name)) as KubeObject;
  const state = async () => (await client.get('v1', 'ConfigMap', SYSTEM_NAMESPACE, stateName(target))) as KubeObject;
  /**
   * `kubectl apply --server-side --field-manager=tidegate --force-conflicts` of the object as tidegate
   * applies it (its labels, every field), one value changed: managedFields then show tidegate's apply alone.
   */
  const applyAsTidegate = async (kind: 'Secret' | 'ConfigMap', name: string, edit: (o: KubeObject) => KubeObject) => {
    const live = await get(kind, name);
    const { labels, annotations } = live.metadata;
    const body: KubeObject = {
      apiVersion: 'v1',
      kind,
      metadata: { name, namespace: ns, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
      data: live['data'],
    };
    await client.apply(edit(body), { fieldManager: 'tidegate', force: true });
    const after = await get(kind, name);
    expect(after.metadata.managedFields?.map((f) => `${f.manager}/${f.operation}`)).toEqual(['tidegate/Apply']);
    return after;
  };
  return { repo, ns, target, sync, get, state, applyAsTidegate };
}

describe('generated values kept from the cluster: only what tidegate applied', () => {
  it('two syncs in a row with no edit write nothing: same values, same resourceVersions, state not rewritten', async () => {
    const t = await chartTarget('gen-noop');
    expect(written(await t.sync()).sort()).toEqual([
      'created ConfigMap/app-config',
      `created Namespace/${t.ns}`,
      'created Secret/app-auth',
    ]);
    const [s1, c1] = [await t.get('Secret', 'app-auth'), await t.get('ConfigMap', 'app-config')];
    const second = await t.sync();
    expect(second.outcome).toBe('unchanged');
    expect(written(second)).toEqual([]);
    const state1 = (await t.state()).metadata.resourceVersion;
    const third = await t.sync();
    expect(written(third)).toEqual([]);
    const [s2, c2] = [await t.get('Secret', 'app-auth'), await t.get('ConfigMap', 'app-config')];
    expect(s2.metadata.resourceVersion).toBe(s1.metadata.resourceVersion);
    expect(c2.metadata.resourceVersion).toBe(c1.metadata.resourceVersion);
    expect(s2['data']).toEqual(s1['data']);
    expect(c2.metadata.annotations).toEqual(c1.metadata.annotations);
    expect((await t.state()).metadata.resourceVersion, 'a repeated no-op sync writes no state').toBe(state1);
  });

  it('a Secret value of the generated shape applied with field manager "tidegate" and force is replaced at the next sync of the same revision', async () => {
    const t = await chartTarget('gen-ssa');
    await t.sync();
    await t.sync(); // the value is now one kept from the cluster
    const original = ((await t.get('Secret', 'app-auth'))['data'] as Record<string, string>)['password'];
    const forged = b64('AAAAAAAAAAAAAAAA'); // 16 letters: the shape randAlphaNum 16 makes
    await t.applyAsTidegate('Secret', 'app-auth', (o) => ({
      ...o,
      data: { ...(o['data'] as Record<string, string>), password: forged },
    }));

    const corrected = await t.sync();
    expect(written(corrected), 'Git wins over a value tidegate did not apply').toEqual(['configured Secret/app-auth']);
    const password = ((await t.get('Secret', 'app-auth'))['data'] as Record<string, string>)['password'];
    expect(password).not.toBe(forged);
    expect(password).not.toBe(original);
    expect(decoded(password)).toMatch(/^[A-Za-z0-9]{16}$/);

    // What tidegate applied is then kept again: the sync after writes nothing.
    const settled = (await t.get('Secret', 'app-auth')).metadata.resourceVersion;
    expect(written(await t.sync())).toEqual([]);
    expect((await t.get('Secret', 'app-auth')).metadata.resourceVersion).toBe(settled);
  });

  it('an annotation and a prefixed token of the generated shape applied as "tidegate" are replaced too', async () => {
    const t = await chartTarget('gen-ssa-cm');
    await t.sync();
    await t.applyAsTidegate('ConfigMap', 'app-config', (o) => ({
      ...o,
      metadata: { ...o.metadata, annotations: { 'checksum/session': '000000' } },
      data: { token: 'tok-AAAAAAAA-a' },
    }));

    const corrected = await t.sync();
    expect(written(corrected)).toEqual(['configured ConfigMap/app-config']);
    const live = await t.get('ConfigMap', 'app-config');
    expect(live.metadata.annotations?.['checksum/session']).not.toBe('000000');
    expect(live.metadata.annotations?.['checksum/session']).toMatch(/^[0-9]{6}$/);
    expect((live['data'] as Record<string, string>)['token']).not.toBe('tok-AAAAAAAA-a');
    expect((live['data'] as Record<string, string>)['token']).toMatch(/^tok-[A-Za-z0-9]{8}-a$/);
  });

  it('drift: warn: a value applied as "tidegate" is reported as drift at every poll, never taken as tidegate\'s, and the state is not rewritten', async () => {
    const t = await chartTarget('gen-warn', { drift: 'warn' });
    await t.sync();
    const forged = b64('BBBBBBBBBBBBBBBB');
    await t.applyAsTidegate('Secret', 'app-auth', (o) => ({
      ...o,
      data: { ...(o['data'] as Record<string, string>), password: forged },
    }));
    const first = await t.sync();
    expect(first.changeSet.changes.find((c) => c.ref.kind === 'Secret')).toMatchObject({
      action: 'skipped',
      drift: true,
    });
    const state = (await t.state()).metadata.resourceVersion;
    const again = await t.sync();
    expect(again.changeSet.changes.find((c) => c.ref.kind === 'Secret')).toMatchObject({
      action: 'skipped',
      drift: true,
    });
    expect((await t.state()).metadata.resourceVersion, 'the same drift again writes no state').toBe(state);
    expect(((await t.get('Secret', 'app-auth'))['data'] as Record<string, string>)['password']).toBe(forged);
  });

  it('a generated value kept beside an ignored generated field and a stringData one: it stays from sync to sync', async () => {
    const t = await chartTarget(
      'gen-mixed',
      { ignore: [{ paths: ['/data/rotated'], target: { kind: 'Secret', name: 'mixed' } }] },
      {
        'chart/templates/mixed.yaml': `apiVersion: v1
kind: Secret
metadata:
  name: mixed
data:
  password: {{ randAlphaNum 20 | b64enc | quote }}
  rotated: {{ randAlphaNum 12 | b64enc | quote }}
stringData:
  session: {{ randAlphaNum 10 | quote }}
`,
      },
    );
    await t.sync();
    // Another controller rotates the ignored field (a value of another shape).
    await t.repo.engine.client.apply(
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'mixed', namespace: t.ns }, data: { rotated: b64('x') } },
      { fieldManager: 'rotator', force: true },
    );
    const password = async () => ((await t.get('Secret', 'mixed'))['data'] as Record<string, string>)['password'];
    const first = await password();
    await t.sync();
    await t.sync();
    expect(await password()).toBe(first);
    expect(((await t.get('Secret', 'mixed'))['data'] as Record<string, string>)['rotated']).toBe(b64('x'));
  });
});
