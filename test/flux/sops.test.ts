import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { localSettings } from '../../shared/config/index.js';
import type { KubeObject, SyncResult } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { motoEnv } from '../helpers/lambda.js';
import { ageKey, motoKmsKey, sopsEncrypt } from '../helpers/sops.js';

/**
 * SOPS, as Flux's kustomize-controller decrypts it, synced by tidegate against the real apiserver:
 * a Flux Kustomization with spec.decryption (an encrypted Secret, a secretGenerator with an
 * encrypted file and env file; age), and a chart target with an encrypted values file (AWS KMS on
 * moto). Files encrypted by the real sops binary. A file that does not open fails the render:
 * nothing is applied, nothing pruned, and no decrypted value is in any result or recorded state.
 */

const kustomization = (name: string, path: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
  kind: 'Kustomization',
  metadata: { name, namespace: 'flux-system' },
  spec: { interval: '10m', path, prune: true, sourceRef: { kind: 'GitRepository', name: 'flux-system' }, ...extra },
});

const decoded = (secret: KubeObject | undefined): Record<string, string> =>
  Object.fromEntries(
    Object.entries((secret?.['data'] as Record<string, string> | undefined) ?? {}).map(([k, v]) => [
      k,
      Buffer.from(v, 'base64').toString('utf8'),
    ]),
  );

const byTarget = (results: SyncResult[]) => new Map(results.map((r) => [r.target, r]));
const unchanged = (r: SyncResult | undefined) => r?.changeSet.changes.every((c) => c.action === 'unchanged');

describe('a Flux Kustomization with spec.decryption (age)', () => {
  const PASSWORD = `pw-${randomBytes(8).toString('hex')}`;
  const TOKEN = `tk-${randomBytes(8).toString('hex')}`;
  const CERT = `cert-${randomBytes(8).toString('hex')}`;
  let age: { identity: string; recipient: string };
  beforeAll(async () => {
    age = await ageKey();
  });

  it('decrypts the Secret, the secretGenerator file and env file; applies them, re-syncs as a no-op; keeps every value out of results and state; a changed file or a wrong key fails the render with nothing applied or pruned', async () => {
    const id = randomBytes(3).toString('hex');
    const repo = await gitopsRepo('flux-sops');
    const client = repo.engine.client;
    const settings = localSettings();
    repo.engine.settings = { ...settings, sops: { ...settings.sops, ageKeys: [age.identity] } };
    const ns = `sops-${id}`;
    const prefix = `s${id}-`;
    const args = ['--age', age.recipient, '--encrypted-regex', '^(data|stringData)$'];
    const secret = await sopsEncrypt(
      'db.yaml',
      `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\nstringData:\n  password: ${PASSWORD}\n`,
      args,
    );
    const env = await sopsEncrypt('app.env', `TOKEN=${TOKEN}\nMODE=prod\n`, ['--age', age.recipient]);
    const cert = await sopsEncrypt('tls.crt', `-----BEGIN CERTIFICATE-----\n${CERT}\n`, ['--age', age.recipient]);
    const decryption = { provider: 'sops', secretRef: { name: 'sops-age' } };
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/x', cluster: 'test', prefix }] }),
      'clusters/x/sync.yaml': [
        kustomization('flux-system', './clusters/x'),
        kustomization('app', './app', { targetNamespace: ns, decryption }),
        kustomization('plain', './plain', { targetNamespace: ns }),
      ]
        .map((o) => stringify(o))
        .join('---\n'),
      'app/kustomization.yaml': stringify({
        apiVersion: 'kustomize.config.k8s.io/v1beta1',
        kind: 'Kustomization',
        resources: ['db.enc.yaml', 'cm.yaml'],
        secretGenerator: [{ name: 'app', envs: ['app.enc.env'], files: ['tls.crt=tls.enc.crt'] }],
        generatorOptions: { disableNameSuffixHash: true },
      }),
      'app/db.enc.yaml': secret,
      'app/app.enc.env': env,
      'app/tls.enc.crt': cert,
      'app/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: app-settings }\ndata: { a: "1" }\n',
      // The same encrypted Secret in a Kustomization without decryption: refused, never applied encrypted.
      'plain/db.enc.yaml': secret.replace('name: db', 'name: db-plain'),
    });
    const first = byTarget(await repo.sync());
    const app = first.get(`${prefix}app`);
    expect([app?.outcome, app?.error]).toEqual(['applied', undefined]);
    expect(decoded(await client.get('v1', 'Secret', ns, 'db'))).toEqual({ password: PASSWORD });
    expect(decoded(await client.get('v1', 'Secret', ns, 'app'))).toEqual({
      TOKEN,
      MODE: 'prod',
      'tls.crt': `-----BEGIN CERTIFICATE-----\n${CERT}\n`,
    });
    const plain = first.get(`${prefix}plain`);
    expect(plain?.outcome).toBe('failed');
    expect(plain?.error).toContain('plain/db.enc.yaml: is SOPS-encrypted and the target has no decryption');
    expect(await client.get('v1', 'Secret', ns, 'db-plain')).toBeUndefined();

    const again = byTarget(await repo.sync());
    expect(again.get(`${prefix}app`)?.outcome).toBe('unchanged');
    expect(unchanged(again.get(`${prefix}app`))).toBe(true);

    // A value left in clear changed after encryption: the MAC does not match; nothing applied, nothing pruned.
    await repo.commit({
      'app/db.enc.yaml': secret.replace('type: Opaque', 'type: kubernetes.io/tampered'),
      'app/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: app-settings }\ndata: { a: "2" }\n',
    });
    const tampered = byTarget(await repo.sync()).get(`${prefix}app`);
    expect(tampered?.outcome).toBe('failed');
    expect(tampered?.error).toContain('app/db.enc.yaml: cannot decrypt this SOPS file: MAC mismatch');
    expect((await client.get('v1', 'ConfigMap', ns, 'app-settings'))?.['data']).toEqual({ a: '1' });
    expect(await client.get('v1', 'Secret', ns, 'db')).toBeDefined();

    // The key is not the file's: the render fails naming the file and the key kind.
    await repo.commit({ 'app/db.enc.yaml': secret });
    const other = await ageKey();
    repo.engine.settings = { ...settings, sops: { ...settings.sops, ageKeys: [other.identity] } };
    const wrongKey = byTarget(await repo.sync()).get(`${prefix}app`);
    expect(wrongKey?.outcome).toBe('failed');
    expect(wrongKey?.error).toMatch(
      /app\/(db\.enc\.yaml|app\.enc\.env|tls\.enc\.crt): cannot decrypt this SOPS file: no key opens its data key: age recipient age1/,
    );
    expect((await client.get('v1', 'ConfigMap', ns, 'app-settings'))?.['data']).toEqual({ a: '1' });

    const state = JSON.stringify([
      ...first.values(),
      ...again.values(),
      tampered,
      wrongKey,
      await readTargetState(client, `${prefix}app`),
    ]);
    for (const value of [PASSWORD, TOKEN, CERT]) {
      expect(state).not.toContain(value);
      expect(state).not.toContain(Buffer.from(value).toString('base64').replace(/=+$/, ''));
    }
  });
});

describe('a chart target with a SOPS-encrypted values file (AWS KMS on moto)', () => {
  it('renders with the decrypted values, applies, re-syncs as a no-op; a value quoted in a ConfigMap is ***, the message of a helm error is withheld', async () => {
    const id = randomBytes(3).toString('hex');
    const arn = await motoKmsKey();
    const env = motoEnv();
    Object.assign(process.env, env); // the default credentials of this process: moto's
    const repo = await gitopsRepo('chart-sops');
    const client = repo.engine.client;
    const settings = localSettings();
    repo.engine.settings = {
      ...settings,
      sops: {
        ageKeys: [],
        kms: { keyArns: [arn], region: env['AWS_REGION'] ?? '', endpoint: env['AWS_ENDPOINT_URL'] },
      },
    };
    const ns = `chart-sops-${id}`;
    const PASSWORD = `kms-${randomBytes(8).toString('hex')}`;
    const values = await sopsEncrypt('secrets.yaml', `db:\n  password: ${PASSWORD}\n  replicas: 2\n`, ['--kms', arn]);
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          {
            name: `chart-${id}`,
            cluster: 'c',
            path: 'chart',
            targetNamespace: ns,
            wait: false,
            decryption: { provider: 'sops' },
            helm: { values: ['secrets.enc.yaml'] },
          },
        ],
      }),
      'chart/Chart.yaml': 'apiVersion: v2\nname: app\nversion: 0.1.0\n',
      'chart/values.yaml': 'db: { password: "", replicas: 1 }\n',
      'chart/secrets.enc.yaml': values,
      'chart/templates/secret.yaml':
        'apiVersion: v1\nkind: Secret\nmetadata: { name: db }\nstringData:\n  password: {{ .Values.db.password | quote }}\n',
      'chart/templates/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: db-settings }\ndata:\n  replicas: {{ .Values.db.replicas | quote }}\n  leaked: {{ .Values.db.password | quote }}\n',
    });
    const [first] = await repo.sync();
    expect([first?.outcome, first?.error]).toEqual(['applied', undefined]);
    expect(decoded(await client.get('v1', 'Secret', ns, 'db'))).toEqual({ password: PASSWORD });
    expect((await client.get('v1', 'ConfigMap', ns, 'db-settings'))?.['data']).toEqual({
      replicas: '2',
      leaked: PASSWORD,
    });
    const [again] = await repo.sync();
    expect(again?.outcome).toBe('unchanged');
    expect(unchanged(again)).toBe(true);

    // helm's own error quoting a decrypted value: the render fails, its message withheld (it may quote the value, whole or transformed).
    await repo.commit({ 'chart/templates/fail.yaml': '{{ fail (printf "bad password %s" .Values.db.password) }}\n' });
    const [failed] = await repo.sync();
    expect(failed?.outcome).toBe('failed');
    expect(failed?.error).toContain('helm template chart: the render failed; its message is withheld');
    expect(failed?.error).not.toContain('bad password');
    const recorded = JSON.stringify([first, again, failed, await readTargetState(client, `chart-${id}`)]);
    expect(recorded).not.toContain(PASSWORD);
  });
});
