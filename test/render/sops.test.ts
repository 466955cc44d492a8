import { beforeAll, describe, expect, it } from 'vitest';
import type { SopsKeys } from '../../shared/config/index.js';
import { sopsDecryptor, withhold } from '../../shared/render/sops.js';
import { motoEnv } from '../helpers/lambda.js';
import { ageKey, motoKmsKey, sopsEncrypt } from '../helpers/sops.js';

/**
 * SOPS files encrypted by the real sops binary (age recipients, and AWS KMS keys on moto),
 * decrypted by tidegate's render: every format Flux decrypts, the MAC checked, and the reasons a
 * file does not open, without a value in them.
 */
describe('SOPS decryption of files the sops binary encrypted', () => {
  const SECRET = 'correct-horse-battery-staple';
  const secretYaml = `apiVersion: v1
kind: Secret
metadata:
  name: db
  labels: { app: db }
type: Opaque
stringData:
  password: ${SECRET}
  port: 5432
  ratio: 0.25
  enabled: true
  hosts: [a.example, 2]
  empty: ""
`;
  let age: { identity: string; recipient: string };
  let arn: string;
  let keys: (over?: Partial<SopsKeys>) => SopsKeys;
  beforeAll(async () => {
    age = await ageKey();
    arn = await motoKmsKey();
    const env = motoEnv();
    // The default credential chain of this process is moto's (KMS is called with "the worker's role").
    Object.assign(process.env, env);
    keys = (over = {}) => ({
      ageKeys: [age.identity],
      kms: { keyArns: [arn], region: env['AWS_REGION'] ?? 'us-east-1', endpoint: env['AWS_ENDPOINT_URL'] },
      ...over,
    });
  });

  it('YAML (only data and stringData encrypted), JSON, dotenv and binary files: decrypted with an age key, typed as they were', async () => {
    const enc = await sopsEncrypt('db.yaml', secretYaml, [
      '--age',
      age.recipient,
      '--encrypted-regex',
      '^(data|stringData)$',
    ]);
    expect(enc).not.toContain(SECRET);
    const d = sopsDecryptor(keys({ kms: { keyArns: [], region: 'us-east-1', endpoint: undefined } }));
    const { parse } = await import('yaml');
    expect(parse(await d.decrypt(enc, 'yaml'))).toEqual(parse(secretYaml));

    const json = await sopsEncrypt('c.json', JSON.stringify({ a: { b: [1, 2.5, SECRET] }, c: null }), [
      '--age',
      age.recipient,
    ]);
    expect(JSON.parse(await d.decrypt(json, 'json'))).toEqual({ a: { b: [1, 2.5, SECRET] }, c: null });

    const env = await sopsEncrypt('app.env', `TOKEN=${SECRET}\n# a comment\nMULTI=a\\nb\n`, ['--age', age.recipient]);
    expect(await d.decrypt(env, 'dotenv')).toBe(`TOKEN=${SECRET}\nMULTI=a\\nb\n`);

    const binary = await sopsEncrypt('key.pem', `-----BEGIN KEY-----\n${SECRET}\n`, ['--age', age.recipient]);
    expect(await d.decrypt(binary, 'binary')).toBe(`-----BEGIN KEY-----\n${SECRET}\n`);
    expect(d.values).toContain(SECRET);
  });

  it('an AWS KMS recipient: the data key from KMS (moto) for a listed key ARN; an unlisted key is not asked', async () => {
    const enc = await sopsEncrypt('db.yaml', secretYaml, ['--kms', arn]);
    const { parse } = await import('yaml');
    expect(parse(await sopsDecryptor(keys({ ageKeys: [] })).decrypt(enc, 'yaml'))).toEqual(parse(secretYaml));
    const unlisted = sopsDecryptor(
      keys({ ageKeys: [], kms: { keyArns: [], region: 'us-east-1', endpoint: undefined } }),
    );
    await expect(unlisted.decrypt(enc, 'yaml')).rejects.toThrow(
      `AWS KMS key ${arn}: not among the KMS keys tidegate may use (deploy-time setting sops.kmsKeyArns)`,
    );
  });

  it('a wrong key, a changed clear value (MAC mismatch), a changed ciphertext: refused with the reason, no value quoted', async () => {
    const enc = await sopsEncrypt('db.yaml', secretYaml, [
      '--age',
      age.recipient,
      '--encrypted-regex',
      '^(data|stringData)$',
    ]);
    const other = await ageKey();
    const wrong = sopsDecryptor(
      keys({ ageKeys: [other.identity], kms: { keyArns: [], region: 'x', endpoint: undefined } }),
    );
    const noKey = sopsDecryptor(keys({ ageKeys: [], kms: { keyArns: [], region: 'x', endpoint: undefined } }));
    const right = sopsDecryptor(keys());
    await expect(wrong.decrypt(enc, 'yaml')).rejects.toThrow(
      `age recipient ${age.recipient}: none of the configured age keys matches it`,
    );
    await expect(noKey.decrypt(enc, 'yaml')).rejects.toThrow('age (1 recipient): no age key is configured');
    // A value left in clear (not under data/stringData) is covered by the MAC.
    await expect(right.decrypt(enc.replace('app: db', 'app: evil'), 'yaml')).rejects.toThrow(/MAC mismatch/);
    // Two encrypted values swapped: each still opens under its own path only.
    const lines = enc.split('\n');
    const at = (key: string) => lines.findIndex((l) => l.trimStart().startsWith(`${key}:`));
    const [p, q] = [at('password'), at('empty')];
    const swapped = [...lines];
    swapped[p] = `${lines[p]?.split(':')[0]}:${lines[q]?.split(':').slice(1).join(':')}`;
    await expect(right.decrypt(swapped.join('\n'), 'yaml')).rejects.toThrow(/MAC mismatch|does not decrypt/);
    const ciphertext = /password: ENC\[AES256_GCM,data:([^,]+),/.exec(enc)?.[1] ?? '';
    const flipped = enc.replace(
      ciphertext,
      Buffer.from(Buffer.from(ciphertext, 'base64').map((b) => b ^ 1)).toString('base64'),
    );
    await expect(right.decrypt(flipped, 'yaml')).rejects.toThrow(
      /does not decrypt under the data key \(at stringData:password\)/,
    );
    const messages = await Promise.all(
      [enc.replace('app: db', 'app: evil'), swapped.join('\n'), flipped].map((t) =>
        right.decrypt(t, 'yaml').then(String, (err: unknown) => String(err)),
      ),
    );
    for (const m of messages) expect(m).not.toContain(SECRET);
  });

  it('withheld (a change not signed off): placeholders of the same type, the metadata gone, no key used', async () => {
    const enc = await sopsEncrypt('db.yaml', secretYaml, ['--age', age.recipient, '--encrypted-regex', '^stringData$']);
    const { parse } = await import('yaml');
    const out = parse(withhold(enc, 'yaml')) as Record<string, unknown>;
    expect(out['sops']).toBeUndefined();
    expect(out['stringData']).toEqual({
      password: 'dGlkZWdhdGUtd2l0aGhlbGQ=',
      port: 0,
      ratio: 0,
      enabled: false,
      hosts: ['dGlkZWdhdGUtd2l0aGhlbGQ=', 0],
      empty: '',
    });
  });
});
