import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { KubeObject, SyncResult } from '../../shared/model/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { uniqueName } from '../helpers/env.js';

/**
 * An adversarial review of keeping a chart's random values from the cluster (a chart rendered twice,
 * the values that differ kept live and left out of the hash). Every case below let the cluster win
 * over Git, so that was taken out again: Git wins, and these keep it so for any later attempt.
 */
const CHART = stringify({ apiVersion: 'v2', name: 'app', version: '0.1.0' });

async function chartTarget(prefix: string, files: Record<string, string>, extra: Record<string, unknown> = {}) {
  const repo = await gitopsRepo(prefix);
  const ns = uniqueName(prefix);
  const target = uniqueName(prefix);
  await repo.commit({
    'tidegate.yaml': stringify({
      targets: [{ name: target, cluster: 'test', path: 'chart', targetNamespace: ns, wait: false, ...extra }],
    }),
    'chart/Chart.yaml': CHART,
    ...files,
  });
  const client = repo.engine.client;
  const sync = async (): Promise<SyncResult> => {
    const [r] = await repo.sync(target);
    expect(r?.outcome, r?.error).not.toBe('failed');
    return r as SyncResult;
  };
  /** A hand edit (kubectl edit: a PUT of the whole object). */
  const handEdit = async (apiVersion: string, kind: string, name: string, edit: (o: KubeObject) => void) => {
    const live = (await client.get(apiVersion, kind, ns, name)) as KubeObject;
    edit(live);
    await client.replace(live);
  };
  /** A Secret's value, decoded. */
  const secretValue = async (name: string, key: string): Promise<string> => {
    const data = ((await client.get('v1', 'Secret', ns, name))?.['data'] ?? {}) as Record<string, string>;
    return Buffer.from(String(data[key]), 'base64').toString('utf8');
  };
  return { repo, ns, target, client, sync, handEdit, secretValue };
}

const dataOf = (o: KubeObject | undefined): Record<string, string> => (o?.['data'] ?? {}) as Record<string, string>;
const written = (r: SyncResult | undefined): string[] =>
  (r?.changeSet.changes ?? [])
    .filter((c) => c.action !== 'unchanged')
    .map((c) => `${c.action} ${c.ref.kind}/${c.ref.name}`);

describe('attack: helm random values kept from the cluster against Git', () => {
  // ingress-nginx basic auth, docker registry, ...: htpasswd/bcrypt of a password that Git sets; only the salt is random.
  const BASIC_AUTH = {
    'chart/templates/auth.yaml': `apiVersion: v1
kind: Secret
metadata:
  name: basic-auth
stringData:
  auth: {{ htpasswd .Values.user .Values.password | quote }}
`,
  };

  it('a commit rotating a password hashed with htpasswd (salted, so every render differs) is applied: the old password stops working', async () => {
    const t = await chartTarget('hr-htpw', {
      ...BASIC_AUTH,
      'chart/values.yaml': 'user: admin\npassword: leaked-pw\n',
    });
    await t.sync();
    const before = await t.secretValue('basic-auth', 'auth');
    expect(before).toMatch(/^admin:\$2a\$/);

    await t.repo.commit({ 'chart/values.yaml': 'user: admin\npassword: new-strong-pw\n' }, 'rotate leaked password');
    const r = await t.sync();
    const after = await t.secretValue('basic-auth', 'auth');
    // Git changed the password; the Secret must hold a hash of the new one (a new hash, whatever its salt).
    expect(written(r), 'the rotation commit is applied').toEqual([`configured Secret/basic-auth`]);
    expect(after).not.toBe(before);
  });

  it("a hand edit replacing an htpasswd Secret (Git sets user and password) with an attacker's entry is corrected", async () => {
    const t = await chartTarget('hr-htdr', { ...BASIC_AUTH, 'chart/values.yaml': 'user: admin\npassword: pw\n' });
    await t.sync();
    const attacker = 'attacker:$2a$10$abcdefghijklmnopqrstuu5bJ1Ynfq5fOj4Mp1rFxq5S4G.3HwJqu';
    await t.handEdit('v1', 'Secret', 'basic-auth', (o) => {
      o['data'] = { auth: Buffer.from(attacker).toString('base64') };
    });
    await t.sync(); // the poll at the same revision: drift correction
    const auth = await t.secretValue('basic-auth', 'auth');
    expect(auth, 'drift corrected').toMatch(/^admin:/);
  });

  it('a config value mixing a random part with Git settings: a commit tightening the setting is applied', async () => {
    const t = await chartTarget('hr-mix', {
      'chart/values.yaml': 'adminCidr: 0.0.0.0/0\n',
      'chart/templates/config.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  app.conf: |
    session_secret = {{ randAlphaNum 32 }}
    admin_allow_from = {{ .Values.adminCidr }}
`,
    });
    await t.sync();
    await t.repo.commit({ 'chart/values.yaml': 'adminCidr: 10.0.0.0/8\n' }, 'restrict admin access');
    const r = await t.sync();
    const conf = String(dataOf(await t.client.get('v1', 'ConfigMap', t.ns, 'app-config'))['app.conf']);
    expect(written(r)).toEqual(['configured ConfigMap/app-config']);
    expect(conf).toContain('admin_allow_from = 10.0.0.0/8');
  });

  it("a commit inserting an env var before a random password: no variable gets another's live value", async () => {
    const deploy = (extra: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector: { matchLabels: { app: app } }
  template:
    metadata: { labels: { app: app } }
    spec:
      containers:
        - name: app
          image: busybox
          env:
${extra}            - name: ADMIN_PASSWORD
              value: {{ randAlphaNum 24 | quote }}
            - name: LOG_LEVEL
              value: info
`;
    const t = await chartTarget('hr-idx', { 'chart/templates/deploy.yaml': deploy('') });
    await t.sync();
    await t.repo.commit({
      'chart/templates/deploy.yaml': deploy('            - name: FEATURE_X\n              value: "on"\n'),
    });
    await t.sync();
    const live = await t.client.get('apps/v1', 'Deployment', t.ns, 'app');
    const env = (live?.['spec'] as any).template.spec.containers[0].env as { name: string; value: string }[];
    const password = env.find((e) => e.name === 'ADMIN_PASSWORD')?.value;
    expect(password, 'the admin password is not a known value').not.toBe('info');
    expect(password).toMatch(/^[A-Za-z0-9]{24}$/);
  });

  it('removing a password committed to Git (to have the chart generate one): the committed, published password is replaced', async () => {
    const tpl = {
      'chart/templates/secret.yaml': `apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: {{ .Values.password | default (randAlphaNum 24) | quote }}
`,
    };
    const t = await chartTarget('hr-rot', { ...tpl, 'chart/values.yaml': 'password: committed-by-mistake\n' });
    await t.sync();
    await t.repo.commit({ 'chart/values.yaml': '{}\n' }, 'remove leaked password, generate one');
    await t.sync();
    const pw = await t.secretValue('db', 'password');
    expect(pw, 'the password from Git history is gone').not.toBe('committed-by-mistake');
  });

  it('a test hook inside a List (which --skip-tests does not see) is not applied', async () => {
    const t = await chartTarget('hr-list', {
      'chart/templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: c }\ndata: { a: b }\n',
      'chart/templates/tests/test.yaml': `apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata:
      name: {{ .Release.Name }}-test
      annotations:
        helm.sh/hook: test
    spec:
      restartPolicy: Never
      containers: [{ name: t, image: busybox }]
`,
    });
    await t.sync();
    const pods = await t.client.list('v1', 'Pod', { namespace: t.ns });
    expect(pods.map((p) => p.metadata.name)).toEqual([]);
  });

  const SECRET = `apiVersion: v1
kind: Secret
metadata:
  name: rotated
data:
  password: {{ randAlphaNum 24 | b64enc | quote }}
  user: {{ "app" | b64enc | quote }}
`;

  it('an ignored field (owned by another controller) that the chart makes random is never sent', async () => {
    const t = await chartTarget(
      'hr-ign',
      { 'chart/templates/secret.yaml': SECRET },
      { ignore: [{ paths: ['/data/password'], target: { kind: 'Secret', name: 'rotated' } }] },
    );
    await t.sync();
    // The rotation controller takes the field over.
    await t.client.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'rotated', namespace: t.ns },
        data: { password: 'cm90YXRlZA==' },
      },
      { fieldManager: 'rotator', force: true },
    );
    await t.repo.commit({ 'chart/templates/secret.yaml': SECRET.replace('"app"', '"app2"') });
    await t.sync();
    const live = await t.client.get('v1', 'Secret', t.ns, 'rotated');
    const mine = live?.metadata.managedFields?.find((f) => f.manager === 'tidegate');
    expect(JSON.stringify(mine?.['fieldsV1'] ?? {}), 'tidegate does not claim the ignored field').not.toContain(
      'f:password',
    );
  });

  it('a random value under the key __proto__ deleted by hand: the next commit to the object is applied', async () => {
    const t = await chartTarget('hr-proto', {
      'chart/templates/cm.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: c
data:
  __proto__: {{ randAlphaNum 8 | quote }}
  keep: x
`,
    });
    await t.sync();
    await t.handEdit('v1', 'ConfigMap', 'c', (o) => {
      o['data'] = { keep: 'x' };
    });
    const [same] = await t.repo.sync(t.target);
    expect(same?.outcome, same?.error).not.toBe('failed');
    await t.repo.commit({
      'chart/templates/cm.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: c
data:
  __proto__: {{ randAlphaNum 8 | quote }}
  keep: y
`,
    });
    const [r] = await t.repo.sync(t.target);
    expect(r?.outcome, r?.error).not.toBe('failed');
  });
});
