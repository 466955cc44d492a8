import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeObject, SyncResult } from '../../shared/model/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

/**
 * Charts that generate random values (randAlphaNum passwords, tokens) and carry test hooks: a sync of
 * an unchanged revision writes nothing, as helm-controller does not upgrade a release whose chart and
 * values did not change; a commit, a new chart or a hand edit gets a fresh render, as Git says.
 */
const TEMPLATES = {
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
  'chart/templates/tests/test-connection.yaml': `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test-{{ randAlphaNum 5 | lower }}
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers: [{ name: t, image: busybox }]
`,
};

const written = (r: SyncResult | undefined): string[] =>
  (r?.changeSet.changes ?? [])
    .filter((c) => c.action !== 'unchanged')
    .map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`);

async function chartTarget() {
  const repo = await gitopsRepo('helm-random');
  const ns = uniqueName('helm-random');
  const target = uniqueName('helm-random');
  await repo.commit({
    'tidegate.yaml': stringify({
      targets: [{ name: target, cluster: 'test', path: 'chart', targetNamespace: ns, wait: false }],
    }),
    ...TEMPLATES,
  });
  const client = repo.engine.client;
  const sync = async (): Promise<SyncResult> => {
    const [r] = await repo.sync(target);
    expect(r?.outcome, r?.error).not.toBe('failed');
    return r as SyncResult;
  };
  const secret = async () => (await client.get('v1', 'Secret', ns, 'app-auth')) as KubeObject;
  const config = async () => (await client.get('v1', 'ConfigMap', ns, 'app-config')) as KubeObject;
  return { repo, ns, target, client, sync, secret, config };
}

describe('charts with random values and test hooks', () => {
  it('two syncs in a row: the first applies, the second writes nothing (same values, same resourceVersions, no test Pod)', async () => {
    const t = await chartTarget();
    expect(written(await t.sync()).sort()).toEqual([
      'created ConfigMap/app-config',
      `created Namespace/${t.ns}`,
      'created Secret/app-auth',
    ]);
    const [s1, c1] = [await t.secret(), await t.config()];
    const second = await t.sync();
    expect(second.outcome).toBe('unchanged');
    expect(written(second)).toEqual([]);
    const [s2, c2] = [await t.secret(), await t.config()];
    expect(s2.metadata.resourceVersion).toBe(s1.metadata.resourceVersion);
    expect(c2.metadata.resourceVersion).toBe(c1.metadata.resourceVersion);
    expect(s2['data']).toEqual(s1['data']);
    expect((await t.client.list('v1', 'Pod', { namespace: t.ns })).map((p) => p.metadata.name)).toEqual([]);
    expect(written(await t.sync())).toEqual([]);
  });

  it('a commit changing the values gets a fresh render (Git wins); the sync after it writes nothing again', async () => {
    const t = await chartTarget();
    await t.sync();
    const before = (await t.config())['data'] as Record<string, string>;
    await t.repo.commit({ 'chart/values.yaml': 'mode: b\n' });
    const changed = await t.sync();
    expect(written(changed).sort()).toEqual(['configured ConfigMap/app-config', 'configured Secret/app-auth']);
    const after = (await t.config())['data'] as Record<string, string>;
    expect(after['token']).toMatch(/^tok-[A-Za-z0-9]{8}-b$/);
    expect(after['token']).not.toBe(before['token']);
    expect(
      Buffer.from(String(((await t.secret())['data'] as Record<string, string>)['mode']), 'base64').toString(),
    ).toBe('b');
    expect(written(await t.sync())).toEqual([]);
  });

  it('a hand edit of a generated value, even to one of the same shape, is replaced at the next sync', async () => {
    const t = await chartTarget();
    await t.sync();
    const live = await t.secret();
    const forged = Buffer.from('AAAAAAAAAAAAAAAA').toString('base64'); // 16 letters: the shape randAlphaNum 16 makes
    await t.client.replace({ ...live, data: { ...(live['data'] as object), password: forged } } as KubeObject);
    const corrected = await t.sync();
    expect(written(corrected)).toEqual(['configured Secret/app-auth']);
    const password = ((await t.secret())['data'] as Record<string, string>)['password'];
    expect(password).not.toBe(forged);
    expect(Buffer.from(String(password), 'base64').toString()).toMatch(/^[A-Za-z0-9]{16}$/);
  });
});
