import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { localSettings, type SopsKeys } from '../../shared/config/index.js';
import type { SyncResult } from '../../shared/model/index.js';
import { sopsDecryptor } from '../../shared/render/sops.js';
import { render } from '../../shared/render/index.js';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTargetState } from '../../shared/state/index.js';
import { renderStatusPage } from '../../shared/status/page.js';
import { gitopsRepo } from '../helpers/engine.js';
import { ageKey, sopsEncrypt } from '../helpers/sops.js';

/**
 * Security review (attack 2): can a writer of a repository tidegate syncs (or a pull request's
 * author, or a writer of another repository of the same deployment) read a value tidegate decrypted
 * from a SOPS file? Tests that FAIL on the current code demonstrate a break (they assert the safe
 * behaviour); tests titled "held:" are attacks that did not work.
 *
 * The attacker model for the sync path: a writer pushes a change to the tracked branch of a target
 * with `decryption: { provider: sops }` and no sign-off gate (every change of such a target is
 * signed off, so it renders decrypted) — or a change a reviewer approves without spotting the trick.
 * The encrypted file itself was written by someone else (the attacker cannot change it: its values
 * are bound to their paths and the MAC), so the attacker only changes the kustomization or chart
 * that consumes it.
 */

const kustomization = (extra: Record<string, unknown>) =>
  stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', ...extra });

const ARGS = (recipient: string) => ['--age', recipient, '--encrypted-regex', '^(data|stringData)$'];

const secretYaml = (name: string, password: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\ntype: Opaque\nstringData:\n  password: ${password}\n`;

async function sopsRepo(prefix: string, identity: string) {
  const repo = await gitopsRepo(prefix);
  const settings = localSettings();
  repo.engine.settings = { ...settings, sops: { ...settings.sops, ageKeys: [identity] } };
  return repo;
}

const target = (name: string, ns: string, extra: Record<string, unknown> = {}) =>
  stringify({
    targets: [
      { name, cluster: 'c', path: 'app', targetNamespace: ns, wait: false, decryption: { provider: 'sops' }, ...extra },
    ],
  });

/** Everything tidegate publishes of a sync: the results and the recorded state (history feeds the status page and notifications). */
async function published(repo: Awaited<ReturnType<typeof gitopsRepo>>, name: string, results: SyncResult[]) {
  return JSON.stringify([results, await readTargetState(repo.engine.client, name)]);
}

describe('attack: a decrypted value copied into an object name shows in the render error (history, status page, notifications)', () => {
  let age: { identity: string; recipient: string };
  beforeAll(async () => {
    age = await ageKey();
  });

  it('a kustomize replacement copying a decrypted value into a ConfigMap name: the failed render shows no message, so not the value', async () => {
    // Attack: the Secret db.enc.yaml was encrypted by the operators. The writer adds a ConfigMap and a
    // replacement that copies the Secret's stringData.password into the ConfigMap's metadata.name.
    // The name is invalid (upper case, "_"), so tidegate's own validation fails the render with
    // problem {object: "ConfigMap/<name>", message: 'metadata.name "<name>" is not ...'}. render()
    // redacts only problem.message (decrypt.ts redact via render.ts), never problem.object, and the
    // RenderError's message is "<file> (<object>): <message>". SyncRun.redact cannot help: run.secrets
    // gets the decrypted values only after a render that succeeded (plan-target.ts renderOf).
    const id = randomBytes(3).toString('hex');
    const PASSWORD = `PW_${randomBytes(8).toString('hex')}`;
    const repo = await sopsRepo('sops-name-leak', age.identity);
    const ns = `sops-leak-${id}`;
    const name = `leak-${id}`;
    await repo.commit({
      'tidegate.yaml': target(name, ns),
      'app/kustomization.yaml': kustomization({ resources: ['db.enc.yaml'] }),
      'app/db.enc.yaml': await sopsEncrypt('db.yaml', secretYaml('db', PASSWORD), ARGS(age.recipient)),
    });
    const [first] = await repo.sync();
    expect([first?.outcome, first?.error]).toEqual(['applied', undefined]);

    await repo.commit({
      'app/kustomization.yaml': kustomization({
        resources: ['db.enc.yaml', 'cm.yaml'],
        replacements: [
          {
            source: { kind: 'Secret', name: 'db', fieldPath: 'stringData.password' },
            targets: [{ select: { kind: 'ConfigMap', name: 'innocent' }, fieldPaths: ['metadata.name'] }],
          },
        ],
      }),
      'app/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: innocent }\ndata: { a: "1" }\n',
    });
    const results = await repo.sync();
    expect(results[0]?.outcome).toBe('failed');
    // The status page renders the recorded history (its last error's first line) as it is.
    const page = renderStatusPage({
      generatedAt: new Date().toISOString(),
      clusters: [{ cluster: 'c', targets: [{ name, state: await readTargetState(repo.engine.client, name) }] }],
    });
    // Safe behaviour: the password is nowhere in what tidegate publishes.
    expect(page).not.toContain(PASSWORD);
    expect(await published(repo, name, results)).not.toContain(PASSWORD);
  });

  it("held: kustomize's own duplicate-id error quoting a decrypted name is redacted (two ConfigMaps renamed to a lowercase value)", async () => {
    // Attack: the password is a valid object name; a replacement renames two ConfigMaps to it.
    // kustomize panics "may not add resource with an already registered id: ConfigMap.v1.[noGrp]/<value>";
    // that is problem.message, which render() redacts.
    const id = randomBytes(3).toString('hex');
    const PASSWORD = `pw-${randomBytes(8).toString('hex')}`;
    const repo = await sopsRepo('sops-dup-leak', age.identity);
    const name = `dup-${id}`;
    await repo.commit({
      'tidegate.yaml': target(name, `sops-dup-${id}`),
      'app/kustomization.yaml': kustomization({
        resources: ['db.enc.yaml', 'cm.yaml'],
        replacements: [
          {
            source: { kind: 'Secret', name: 'db', fieldPath: 'stringData.password' },
            targets: [{ select: { kind: 'ConfigMap' }, fieldPaths: ['metadata.name'] }],
          },
        ],
      }),
      'app/db.enc.yaml': await sopsEncrypt('db.yaml', secretYaml('db', PASSWORD), ARGS(age.recipient)),
      'app/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: one }\ndata: { a: "1" }\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: two }\ndata: { a: "2" }\n',
    });
    const results = await repo.sync();
    expect(results[0]?.outcome).toBe('failed');
    expect(await published(repo, name, results)).not.toContain(PASSWORD);
  });

  it('a ConfigMap renamed to a decrypted value and carrying ciphertext text: the ciphertext refusal does not name it', async () => {
    // Attack: the password is a valid name, so no validation problem; the writer adds an annotation
    // holding the literal text ENC[AES256_GCM, to the renamed ConfigMap. decrypt.ts leftovers()
    // reports {object: "ConfigMap/<name>"}; problem.object is never redacted.
    const id = randomBytes(3).toString('hex');
    const PASSWORD = `pw-${randomBytes(8).toString('hex')}`;
    const repo = await sopsRepo('sops-left-leak', age.identity);
    const name = `left-${id}`;
    await repo.commit({
      'tidegate.yaml': target(name, `sops-left-${id}`),
      'app/kustomization.yaml': kustomization({
        resources: ['db.enc.yaml', 'cm.yaml'],
        replacements: [
          {
            source: { kind: 'Secret', name: 'db', fieldPath: 'stringData.password' },
            targets: [{ select: { kind: 'ConfigMap', name: 'innocent' }, fieldPaths: ['metadata.name'] }],
          },
        ],
      }),
      'app/db.enc.yaml': await sopsEncrypt('db.yaml', secretYaml('db', PASSWORD), ARGS(age.recipient)),
      'app/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: innocent\n  annotations: { note: "ENC[AES256_GCM,x]" }\ndata: { a: "1" }\n',
    });
    const results = await repo.sync();
    expect(results[0]?.outcome).toBe('failed');
    expect(await published(repo, name, results)).not.toContain(PASSWORD);
  });

  it('a helm template naming a ConfigMap after a value of the encrypted values file: the failed render shows no message', async () => {
    // Attack: a chart target with helm.values: [secrets.enc.yaml]; the writer adds a template whose
    // metadata.name is {{ .Values.db.password }}. Same unredacted problem.object as above.
    const id = randomBytes(3).toString('hex');
    const PASSWORD = `Helm_${randomBytes(8).toString('hex')}`;
    const repo = await sopsRepo('sops-helm-name', age.identity);
    const name = `hname-${id}`;
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          {
            name,
            cluster: 'c',
            path: 'chart',
            targetNamespace: `sops-hname-${id}`,
            wait: false,
            decryption: { provider: 'sops' },
            helm: { values: ['secrets.enc.yaml'] },
          },
        ],
      }),
      'chart/Chart.yaml': 'apiVersion: v2\nname: app\nversion: 0.1.0\n',
      'chart/values.yaml': 'db: { password: "" }\n',
      'chart/secrets.enc.yaml': await sopsEncrypt('secrets.yaml', `db:\n  password: ${PASSWORD}\n`, [
        '--age',
        age.recipient,
      ]),
      'chart/templates/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: {{ .Values.db.password | quote }} }\ndata: { a: "1" }\n',
    });
    const results = await repo.sync();
    expect(results[0]?.outcome).toBe('failed');
    expect(await published(repo, name, results)).not.toContain(PASSWORD);
  });

  it('helm `fail` quoting a decrypted value transformed (characters joined by spaces): withheld with every message of the failed render', async () => {
    // Attack: {{ fail (.Values.db.password | splitList "" | join " ") }}. helm's error is redacted by
    // render() with dec.redact, which replaces the exact values (and their base64) only: "p w - 1 2 …"
    // passes, and anyone reading the history entry / status page / notification reads the value.
    const id = randomBytes(3).toString('hex');
    const PASSWORD = `pw-${randomBytes(8).toString('hex')}`;
    const repo = await sopsRepo('sops-helm-fail', age.identity);
    const name = `hfail-${id}`;
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          {
            name,
            cluster: 'c',
            path: 'chart',
            targetNamespace: `sops-hfail-${id}`,
            wait: false,
            decryption: { provider: 'sops' },
            helm: { values: ['secrets.enc.yaml'] },
          },
        ],
      }),
      'chart/Chart.yaml': 'apiVersion: v2\nname: app\nversion: 0.1.0\n',
      'chart/values.yaml': 'db: { password: "" }\n',
      'chart/secrets.enc.yaml': await sopsEncrypt('secrets.yaml', `db:\n  password: ${PASSWORD}\n`, [
        '--age',
        age.recipient,
      ]),
      'chart/templates/fail.yaml': '{{ fail (.Values.db.password | splitList "" | join " ") }}\n',
    });
    const results = await repo.sync();
    expect(results[0]?.outcome).toBe('failed');
    const text = await published(repo, name, results);
    expect(text).not.toContain(PASSWORD.split('').join(' '));
  });
});

describe('attack: plaintext into a ConfigMap, and the dry-run diff', () => {
  let age: { identity: string; recipient: string };
  beforeAll(async () => {
    age = await ageKey();
  });

  it('a configMapGenerator reading the encrypted env file a secretGenerator names is refused; no ConfigMap gets the plaintext', async () => {
    // Attack: decrypt.ts kustomizeInputs() lists secretGenerator files/envs and replaces them with
    // their plaintext in the scratch copy of the checkout. A configMapGenerator naming the same
    // path then reads the plaintext file; leftovers() sees no ENC[…] and lets it through, so the
    // ConfigMap (readable by anyone with ConfigMap read in the namespace, shown as values by
    // `tidegate diff`) holds the decrypted token.
    const id = randomBytes(3).toString('hex');
    const TOKEN = `tk-${randomBytes(8).toString('hex')}`;
    const repo = await sopsRepo('sops-cmgen', age.identity);
    const ns = `sops-cmgen-${id}`;
    const name = `cmgen-${id}`;
    await repo.commit({
      'tidegate.yaml': target(name, ns),
      'app/kustomization.yaml': kustomization({
        secretGenerator: [{ name: 'app', envs: ['app.enc.env'] }],
        configMapGenerator: [{ name: 'leak', envs: ['app.enc.env'] }],
        generatorOptions: { disableNameSuffixHash: true },
      }),
      'app/app.enc.env': await sopsEncrypt('app.env', `TOKEN=${TOKEN}\n`, ['--age', age.recipient]),
    });
    const [res] = await repo.sync();
    const cm = await repo.engine.client.get('v1', 'ConfigMap', ns, 'leak');
    // Safe behaviour (README): refused as ciphertext/plaintext in a ConfigMap; nothing applied.
    expect(JSON.stringify(cm?.['data'] ?? {})).not.toContain(TOKEN);
    expect(res?.outcome).toBe('failed');
  });

  it('`tidegate diff` of a long decrypted value: its first characters (the value cut short) are hidden too', async () => {
    // Attack: a ConfigMap value that holds a decrypted value longer than 80 characters (a key, a
    // connection string). apply/diff.ts show() cuts it to 77 characters + "..." and SyncRun.redact
    // then looks for the whole value, which is no longer there.
    const id = randomBytes(3).toString('hex');
    const LONG = `-----BEGIN-KEY-----${randomBytes(48).toString('hex')}`; // 115 characters
    const repo = await sopsRepo('sops-trunc', age.identity);
    const ns = `sops-trunc-${id}`;
    const name = `trunc-${id}`;
    await repo.commit({
      'tidegate.yaml': target(name, ns),
      'app/kustomization.yaml': kustomization({
        resources: ['db.enc.yaml', 'cm.yaml'],
        replacements: [
          {
            source: { kind: 'Secret', name: 'db', fieldPath: 'stringData.password' },
            targets: [{ select: { kind: 'ConfigMap', name: 'settings' }, fieldPaths: ['data.note'] }],
          },
        ],
      }),
      'app/db.enc.yaml': await sopsEncrypt('db.yaml', secretYaml('db', LONG), ARGS(age.recipient)),
      'app/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: settings }\ndata: { note: "x" }\n',
    });
    const [applied] = await repo.sync();
    expect(applied?.outcome).toBe('applied');
    // Someone changed the live value: the dry-run (what `tidegate diff` prints) shows the values it would set.
    await repo.engine.client.apply(
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: ns }, data: { note: 'old' } },
      { fieldManager: 'someone', force: true },
    );
    const diff = await repo.sync(undefined, undefined, true);
    const text = JSON.stringify(diff);
    expect(text).not.toContain(LONG.slice(0, 60));
  });

  it('a decrypted value of fewer than 4 characters quoted by helm fail (a 3-digit PIN) is withheld', async () => {
    // decrypt.ts redact() and SyncRun.redact skip values shorter than 4 characters by design (code
    // comment); README says messages show *** for decrypted values without that exception.
    const id = randomBytes(3).toString('hex');
    const PIN = String(100 + (randomBytes(2).readUInt16BE() % 900));
    const repo = await sopsRepo('sops-pin', age.identity);
    const name = `pin-${id}`;
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [
          {
            name,
            cluster: 'c',
            path: 'chart',
            targetNamespace: `sops-pin-${id}`,
            wait: false,
            decryption: { provider: 'sops' },
            helm: { values: ['secrets.enc.yaml'] },
          },
        ],
      }),
      'chart/Chart.yaml': 'apiVersion: v2\nname: app\nversion: 0.1.0\n',
      'chart/values.yaml': 'pin: ""\n',
      'chart/secrets.enc.yaml': await sopsEncrypt('secrets.yaml', `pin: "${PIN}"\n`, ['--age', age.recipient]),
      'chart/templates/fail.yaml': '{{ fail (printf "pin=<%s>" .Values.pin) }}\n',
    });
    const [res] = await repo.sync();
    expect(res?.error ?? '').not.toContain(`pin=<${PIN}>`);
  });
});

describe("attack: another repository of the same deployment decrypts this repository's files", () => {
  it("repository B copying repository A's encrypted Secret cannot decrypt it: A's keys are A's own (repositories[].sops)", async () => {
    // Attack: the deployment's sops keys (deploy-time sops.ageKeys / kmsKeyArns) are one set for
    // every repository and target; nothing binds a key, or a file, to the repository or target it was
    // encrypted for (a Flux Kustomization's decryption.secretRef is ignored). A writer of repository B
    // who obtains A's ciphertext (it is in A's Git history; ciphertext is usually not treated as
    // secret) commits it to B under a target with decryption: tidegate decrypts it and applies the
    // plaintext Secret into B's namespace, where B's workloads (or B's people) read it.
    const id = randomBytes(3).toString('hex');
    const age = await ageKey();
    const PASSWORD = `a-only-${randomBytes(8).toString('hex')}`;
    const ciphertextOfA = await sopsEncrypt('db.yaml', secretYaml('db', PASSWORD), ARGS(age.recipient));
    // One deployment: no deployment-wide keys; A's key is A's (repositories[].sops), B has none of its own.
    const repoA = await sopsRepo('sops-repo-a', age.identity);
    const repoB = await sopsRepo('sops-repo-b', age.identity);
    const keysOfA = { ageKeys: [age.identity], kms: { keyArns: [], region: 'us-east-1', endpoint: undefined } };
    const repositories = [
      { url: repoA.url, branch: 'main', sops: keysOfA },
      { url: repoB.url, branch: 'main' },
    ];
    for (const repo of [repoA, repoB])
      Object.assign(repo.engine, {
        repositories,
        settings: { ...repo.engine.settings, sops: { ...repo.engine.settings.sops, ageKeys: [] } },
      });
    await repoA.commit({
      'tidegate.yaml': target(`a-${id}`, `sops-a-${id}`),
      'app/kustomization.yaml': kustomization({ resources: ['db.enc.yaml'] }),
      'app/db.enc.yaml': ciphertextOfA,
    });
    expect((await repoA.sync())[0]?.outcome).toBe('applied');
    const nsB = `sops-b-${id}`;
    await repoB.commit({
      'tidegate.yaml': target(`b-${id}`, nsB),
      'app/kustomization.yaml': kustomization({ resources: ['stolen.enc.yaml'] }),
      'app/stolen.enc.yaml': ciphertextOfA,
    });
    const [b] = await repoB.sync();
    expect(b?.outcome).toBe('failed');
    expect(b?.error).toMatch(/stolen\.enc\.yaml.*cannot decrypt this SOPS file/);
    const stolen = await repoB.engine.client.get('v1', 'Secret', nsB, 'db');
    const value = Buffer.from(
      String((stolen?.['data'] as Record<string, string> | undefined)?.['password'] ?? ''),
      'base64',
    ).toString();
    // Safe behaviour: B cannot decrypt A's file (refused), nothing lands in B's namespace.
    expect(value).not.toBe(PASSWORD);
  });
});

describe('held: what did not leak or did not open', () => {
  let age: { identity: string; recipient: string };
  let keys: SopsKeys;
  let enc: string;
  const PASSWORD = `pw-${randomBytes(8).toString('hex')}`;
  beforeAll(async () => {
    age = await ageKey();
    keys = { ageKeys: [age.identity], kms: { keyArns: [], region: 'us-east-1', endpoint: undefined } };
    enc = await sopsEncrypt('db.yaml', secretYaml('db', PASSWORD), ARGS(age.recipient));
  });

  const scratchApp = (files: Record<string, string>): string => {
    const root = mkdtempSync(join(tmpdir(), 'sops-attack-'));
    mkdirSync(join(root, 'app'));
    for (const [k, v] of Object.entries(files)) writeFileSync(join(root, 'app', k), v);
    return root;
  };

  it('held: a change not signed off / a preview (withhold mode) with the name-copying replacement renders the placeholder, not the value, and uses no key', async () => {
    const root = scratchApp({
      'kustomization.yaml': kustomization({
        resources: ['db.enc.yaml', 'cm.yaml'],
        replacements: [
          {
            source: { kind: 'Secret', name: 'db', fieldPath: 'stringData.password' },
            targets: [{ select: { kind: 'ConfigMap', name: 'innocent' }, fieldPaths: ['metadata.name'] }],
          },
        ],
      }),
      'db.enc.yaml': enc,
      'cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: innocent }\ndata: { a: "1" }\n',
    });
    const settings = localSettings();
    const out = await render({
      root,
      path: 'app',
      mode: 'auto',
      substitute: {},
      encrypted: 'withhold',
      defaultReleaseName: 'x',
      // No key at all: withholding never needs one.
      settings: { ...settings, sops: { ageKeys: [], kms: { keyArns: [], region: 'x', endpoint: undefined } } },
    }).then(
      (r) => JSON.stringify(r.objects),
      (err: unknown) => String(err),
    );
    expect(out).not.toContain(PASSWORD);
    expect(out).toContain('dGlkZWdhdGUtd2l0aGhlbGQ=');
  });

  it('held: the MAC removed from the file: not opened as SOPS, and its ciphertext left in the render fails it', async () => {
    const noMac = enc.replace(/^\s*mac: ENC\[.*$/m, '');
    expect(noMac).not.toContain('mac: ENC[');
    await expect(sopsDecryptor(keys).decrypt(noMac, 'yaml')).rejects.toThrow(/no MAC/);
    const root = scratchApp({
      'kustomization.yaml': kustomization({ resources: ['db.enc.yaml'] }),
      'db.enc.yaml': noMac,
    });
    const settings = localSettings();
    await expect(
      render({
        root,
        path: 'app',
        mode: 'auto',
        substitute: {},
        encrypted: 'decrypt',
        defaultReleaseName: 'x',
        settings: { ...settings, sops: keys },
      }),
    ).rejects.toThrow(/holds SOPS ciphertext/);
  });

  it('held: MAC bypass via metadata: mac_only_encrypted turned on, encrypted_regex changed, recipients removed', async () => {
    const d = () => sopsDecryptor(keys);
    // mac_only_encrypted: the clear values are no longer hashed, but the hash starts differently: mismatch.
    const macOnly = enc.replace(/^sops:\n/m, 'sops:\n    mac_only_encrypted: true\n').replace('name: db', 'name: evil');
    await expect(d().decrypt(macOnly, 'yaml')).rejects.toThrow(/MAC mismatch/);
    // encrypted_regex widened to ^(data|stringData|name)$: metadata.name "db" should be ENC[…]: refused.
    const widened = enc.replace(/encrypted_regex: .*/, 'encrypted_regex: ^(data|stringData|name)$');
    await expect(d().decrypt(widened, 'yaml')).rejects.toThrow(
      /should be encrypted|MAC mismatch|not in the SOPS format/,
    );
    // encrypted_regex narrowed so stringData is "clear": its ciphertext is hashed as text: mismatch.
    const narrowed = enc.replace(/encrypted_regex: .*/, 'encrypted_regex: ^nothing$');
    await expect(d().decrypt(narrowed, 'yaml')).rejects.toThrow(/MAC mismatch/);
    // No recipients in the sops block: no key is tried.
    const noRecipients = enc.replace(/^ {4}age:\n(?: {8}.*\n| {6}.*\n)+/m, '');
    await expect(d().decrypt(noRecipients, 'yaml')).rejects.toThrow(/names no age or AWS KMS recipient/);
    for (const v of [macOnly, widened, narrowed, noRecipients])
      expect(
        String(
          await d()
            .decrypt(v, 'yaml')
            .catch((e: unknown) => e),
        ),
      ).not.toContain(PASSWORD);
  });

  it('held: the encrypted value moved to another key (its path is the GCM additional data): does not decrypt', async () => {
    const moved = enc.replace(/^(\s+)password: (ENC\[.*\])$/m, '$1other: $2');
    await expect(sopsDecryptor(keys).decrypt(moved, 'yaml')).rejects.toThrow(/does not decrypt under the data key/);
  });
});
