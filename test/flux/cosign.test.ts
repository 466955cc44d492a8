import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cosignPath, pushArtifact, run, startHelmRepo, startRegistry, type HelmRepo } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { cli } from '../helpers/cli.js';
import { testEnv } from '../helpers/env.js';
import { fluxTree } from './fixture.js';

/**
 * An OCIRepository's `verify: { provider: cosign, secretRef }`, as Flux reads it: the chart's manifest
 * must carry a cosign signature made by the key the Secret names (in tidegate: the deploy-time trusted
 * key of that name). Charts pushed with helm push to a registry with token auth, signed, re-signed and
 * re-tagged with the real cosign binary (v2, key pairs from `cosign generate-key-pair`).
 */
const CONFIG = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-config
data:
  version: {{ .Chart.Version | quote }}
`;

describe('OCIRepository verify with cosign and a public key', () => {
  let helm: HelmRepo;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  const user = { username: 'cosign-charts', password: 'cosign-registry-password' };
  const digests = new Map<string, string>();

  /** The real cosign, logged in to the registry through a Docker config of its own, keys without a password. */
  const cosign = (...args: string[]): Promise<string> =>
    run(cosignPath(), args, {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', HOME: dir, DOCKER_CONFIG: join(dir, 'docker'), COSIGN_PASSWORD: '' },
    });
  const ref = (version: string) => `${registry.host}/charts/signed-app@${digests.get(version) ?? ''}`;

  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
    dir = mkdtempSync(join(tmpdir(), 'flux-cosign-'));
    registry = await startRegistry(dir, { tokenAuth: user });
    mkdirSync(join(dir, 'docker'));
    const auth = Buffer.from(`${user.username}:${user.password}`).toString('base64');
    writeFileSync(join(dir, 'docker', 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth } } }));
    for (const version of ['1.0.0', '1.1.0', '1.2.0', '1.3.0']) {
      const archive = await helm.publish('signed-app', version, { 'config.yaml': CONFIG });
      const out = await run('sh', [
        '-c',
        `"$0" push "$1" "oci://$2/charts" --plain-http --username "$3" --password "$4" 2>&1`,
        testEnv().tools.helm,
        archive,
        registry.host,
        user.username,
        user.password,
      ]);
      const digest = /Digest: (sha256:[0-9a-f]{64})/.exec(out)?.[1];
      if (!digest) throw new Error(`helm push printed no digest: ${out}`);
      digests.set(version, digest);
    }
    await cosign('generate-key-pair', '--output-key-prefix', 'trusted');
    await cosign('generate-key-pair', '--output-key-prefix', 'other');
    const sign = ['sign', '--tlog-upload=false', '--allow-http-registry', '--yes'];
    // 1.0.0 signed with the trusted key; 1.1.0 not signed; 1.2.0 signed with another key.
    await cosign(...sign, '--key', 'trusted.key', ref('1.0.0'));
    await cosign(...sign, '--key', 'other.key', ref('1.2.0'));
    // 1.3.0 carries the trusted key's valid signature of 1.0.0's manifest (a signature copied onto another chart).
    writeFileSync(join(dir, 'payload.json'), await cosign('generate', '--allow-http-registry', ref('1.0.0')));
    await cosign(
      'sign-blob',
      '--key',
      'trusted.key',
      '--tlog-upload=false',
      '--yes',
      '--output-signature',
      'payload.sig',
      'payload.json',
    );
    await cosign(
      'attach',
      'signature',
      '--allow-http-registry',
      '--payload',
      'payload.json',
      '--signature',
      'payload.sig',
      ref('1.3.0'),
    );
  }, 120_000);
  afterAll(async () => {
    await helm?.stop();
    await registry?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A namespace, an OCIRepository of the chart at `version` verified with the key `key`, and a HelmRelease of it. */
  const release = (ns: string, version: string, key: string) => `---
apiVersion: v1
kind: Namespace
metadata: { name: ${ns} }
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: { name: signed-app, namespace: ${ns} }
spec:
  interval: 10m
  url: oci://${registry.host}/charts/signed-app
  insecure: true
  ref: { tag: "${version}" }
  verify:
    provider: cosign
    secretRef:
      name: ${key}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: app, namespace: ${ns} }
spec:
  interval: 10m
  chartRef: { kind: OCIRepository, name: signed-app }
`;

  it('a chart signed by the trusted key is read, verified and synced; unsigned, signed by another key, a signature of another manifest, or no such trusted key: the render fails naming the chart and why, nothing applied', async () => {
    const id = randomBytes(3).toString('hex');
    const cases = {
      signed: ['1.0.0', 'cosign-pub'],
      unsigned: ['1.1.0', 'cosign-pub'],
      otherkey: ['1.2.0', 'cosign-pub'],
      retagged: ['1.3.0', 'cosign-pub'],
      nokey: ['1.0.0', 'nobody-configured-this'],
    } as const;
    const ns = (c: string) => `cs-${id}-${c}`;
    const files: Record<string, string> = {
      'clusters/test/flux-system/gotk-sync.yaml': '# written by flux bootstrap\n',
      ...Object.fromEntries(
        Object.entries(cases).map(([c, [version, key]]) => [`clusters/test/${c}.yaml`, release(ns(c), version, key)]),
      ),
    };

    const read = await readFlux(
      fluxTree(files, 'flux-cosign-'),
      [{ path: 'clusters/test', cluster: 'test' }],
      localSettings(),
    );
    expect(read.unsupported).toEqual([]);
    expect(read.targets.find((t) => t.name === `${ns('signed')}-app`)?.chart).toEqual({
      repository: `oci://${registry.host}/charts`,
      name: 'signed-app',
      version: '1.0.0',
      insecure: true,
      verify: { provider: 'cosign', keys: ['cosign-pub'] },
    });
    expect(read.notes).toContainEqual(
      expect.objectContaining({
        object: `OCIRepository ${ns('signed')}/signed-app`,
        field: 'spec.verify',
        message: expect.stringMatching(/trusted key named cosign-pub .*not with the keys of the Secret/),
      }),
    );

    const repo = await gitopsRepo('flux-cosign');
    const prefix = `c${id}-`;
    await repo.commit({
      ...files,
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/test', cluster: 'test', prefix }] }),
    });
    const settings = localSettings();
    const trusted = readFileSync(join(dir, 'trusted.pub'), 'utf8');
    const ctx = {
      ...repo.engine,
      settings: { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } },
      registry: { credentials: (host: string) => (host === registry.host ? user : undefined) },
      trustedKeys: (names: readonly string[]) =>
        Promise.resolve(names.filter((n) => n === 'cosign-pub').map((name) => ({ name, key: trusted }))),
    };
    const results = await syncRepo(ctx, { repo: repo.url });
    const result = (c: keyof typeof cases) => results.find((r) => r.target === `${prefix}${ns(c)}-app`);
    const client = repo.engine.client;
    const config = (c: keyof typeof cases) => client.get('v1', 'ConfigMap', ns(c), 'app-config');

    expect(result('signed')?.outcome, result('signed')?.error).toBe('applied');
    expect(result('signed')?.chart).toMatchObject({ name: 'signed-app', version: '1.0.0' });
    expect((await config('signed'))?.['data']).toEqual({ version: '1.0.0' });

    const chart = (version: string) =>
      `chart signed-app ${version} from oci://${registry.host}/charts: no valid cosign signature of ${digests.get(version)} by a trusted key: `;
    const failures: Record<Exclude<keyof typeof cases, 'signed'>, string> = {
      unsigned: `${chart('1.1.0')}the signature tag sha256-${digests.get('1.1.0')?.slice(7)}.sig cannot be read`,
      otherkey: `${chart('1.2.0')}signature 1: not made by a trusted key`,
      retagged: `${chart('1.3.0')}signature 1: it signs ${digests.get('1.0.0')}, another manifest`,
      nokey: `chart signed-app 1.0.0 from oci://${registry.host}/charts: none of the trusted keys nobody-configured-this is configured`,
    };
    for (const [c, message] of Object.entries(failures) as Array<[keyof typeof failures, string]>) {
      expect(result(c)?.outcome, c).toBe('failed');
      expect(result(c)?.error, c).toContain(message);
      expect(await config(c), c).toBeUndefined();
    }
  });

  it('verified at every sync, cached or not: once the trusted key of that name is another one, the same chart fails', async () => {
    // The signed chart's archive is in the cache by its digest: the signature is still read every time.
    const id = randomBytes(3).toString('hex');
    const repo = await gitopsRepo('cosign-cached');
    const chart = {
      repository: `oci://${registry.host}/charts`,
      name: 'signed-app',
      version: '1.0.0',
      insecure: true,
      verify: { provider: 'cosign', keys: ['charts'] },
    };
    await repo.commit({
      'tidegate.yaml': stringify({
        targets: [{ name: `cosign-cached-${id}`, cluster: 'test', namespace: 'default', path: 'app', chart }],
      }),
      'app/.keep': '',
    });
    const settings = localSettings();
    const pems: Record<string, string> = { charts: readFileSync(join(dir, 'trusted.pub'), 'utf8') };
    const ctx = {
      ...repo.engine,
      settings: { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } },
      registry: { credentials: (host: string) => (host === registry.host ? user : undefined) },
      trustedKeys: (names: readonly string[]) =>
        Promise.resolve(names.filter((n) => pems[n]).map((name) => ({ name, key: pems[name] as string }))),
    };
    const [first] = await syncRepo(ctx, { repo: repo.url });
    expect(first?.outcome, first?.error).toBe('applied');
    // The trusted key becomes the other one: the same cached chart is refused.
    pems['charts'] = readFileSync(join(dir, 'other.pub'), 'utf8');
    await repo.commit({ 'app/.keep': 'again' });
    const [second] = await syncRepo(ctx, { repo: repo.url });
    expect(second?.outcome).toBe('failed');
    expect(second?.error).toContain('signature 1: not made by a trusted key');
  });

  it('an artifact of manifests (an OCIRepository a Kustomization reads) is verified the same way: signed by the trusted key it syncs, unsigned it fails, nothing applied', async () => {
    const id = randomBytes(3).toString('hex');
    const tarball = (ns: string) => {
      const src = mkdtempSync(join(tmpdir(), 'cosign-artifact-'));
      writeFileSync(
        join(src, 'config.yaml'),
        stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'from-artifact', namespace: ns },
          data: { a: '1' },
        }),
      );
      return execFileSync('tar', ['czf', '-', '-C', src, '.']);
    };
    const ns = (c: string) => `ca-${id}-${c}`;
    const signed = await pushArtifact(registry, `manifests/app-${id}`, 'signed', tarball(ns('signed')));
    await pushArtifact(registry, `manifests/app-${id}`, 'unsigned', tarball(ns('unsigned')));
    await cosign(
      'sign',
      '--tlog-upload=false',
      '--allow-http-registry',
      '--yes',
      '--key',
      'trusted.key',
      `${registry.host}/manifests/app-${id}@${signed}`,
    );
    const kustomization = (c: string) => `---
apiVersion: v1
kind: Namespace
metadata: { name: ${ns(c)} }
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: { name: app, namespace: ${ns(c)} }
spec:
  interval: 10m
  url: oci://${registry.host}/manifests/app-${id}
  insecure: true
  ref: { tag: ${c} }
  verify: { provider: cosign, secretRef: { name: cosign-pub } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: app, namespace: ${ns(c)} }
spec: { interval: 10m, path: ./, prune: true, sourceRef: { kind: OCIRepository, name: app } }
`;
    const repo = await gitopsRepo('flux-cosign-artifact');
    const prefix = `a${id}-`;
    await repo.commit({
      'clusters/test/signed.yaml': kustomization('signed'),
      'clusters/test/unsigned.yaml': kustomization('unsigned'),
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/test', cluster: 'test', prefix }] }),
    });
    const settings = localSettings();
    const trusted = readFileSync(join(dir, 'trusted.pub'), 'utf8');
    const ctx = {
      ...repo.engine,
      settings: { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } },
      registry: { credentials: (host: string) => (host === registry.host ? user : undefined) },
      trustedKeys: (names: readonly string[]) =>
        Promise.resolve(names.filter((n) => n === 'cosign-pub').map((name) => ({ name, key: trusted }))),
    };
    const results = new Map((await syncRepo(ctx, { repo: repo.url })).map((r) => [r.target, r]));
    const signedResult = results.get(`${prefix}${ns('signed')}-app`);
    expect(signedResult?.outcome, signedResult?.error).toBe('applied');
    const client = repo.engine.client;
    expect(await client.get('v1', 'ConfigMap', ns('signed'), 'from-artifact')).toBeDefined();
    const unsigned = results.get(`${prefix}${ns('unsigned')}-app`);
    expect(unsigned?.outcome).toBe('failed');
    expect(unsigned?.error).toMatch(/no valid cosign signature of sha256:[0-9a-f]{64} by a trusted key/);
    expect(await client.get('v1', 'ConfigMap', ns('unsigned'), 'from-artifact')).toBeUndefined();
  });

  it('locally (the CLI): the keys a chart names are <name>.pub files of TIDEGATE_TRUSTED_KEYS', async () => {
    const reg = testEnv().registry; // no login: the CLI has no registry credentials
    const id = randomBytes(3).toString('hex');
    const archive = await helm.publish('signed-app', '2.0.0', { 'config.yaml': CONFIG });
    const pushed = await run('sh', [
      '-c',
      `"$0" push "$1" "oci://$2/cli-${id}" --plain-http 2>&1`,
      testEnv().tools.helm,
      archive,
      reg.host,
    ]);
    const digest = /Digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
    if (!digest) throw new Error(`helm push printed no digest: ${pushed}`);
    await cosign(
      'sign',
      '--tlog-upload=false',
      '--yes',
      '--key',
      'trusted.key',
      `${reg.host}/cli-${id}/signed-app@${digest}`,
    );
    const keys = join(dir, `keys-${id}`);
    mkdirSync(keys);
    writeFileSync(join(keys, 'charts.pub'), readFileSync(join(dir, 'trusted.pub')));
    const name = `cosign-cli-${id}`;
    const repo = await gitopsRepo('cosign-cli');
    const chart = {
      repository: `oci://${reg.host}/cli-${id}`,
      name: 'signed-app',
      version: '2.0.0',
      insecure: true,
      verify: { provider: 'cosign', keys: ['charts'] },
    };
    await repo.commit({
      'tidegate.yaml': stringify({ targets: [{ name, cluster: 'test', namespace: 'default', path: 'app', chart }] }),
      'app/.keep': '',
    });
    const saved = { keys: process.env['TIDEGATE_TRUSTED_KEYS'], hosts: process.env['TIDEGATE_RENDER_HOSTS'] };
    process.env['TIDEGATE_TRUSTED_KEYS'] = keys;
    process.env['TIDEGATE_RENDER_HOSTS'] = '127.0.0.1';
    try {
      const k = ['--repo', repo.url, '--kubeconfig', testEnv().kube.kubeconfigPath, '--context', 'tidegate-test'];
      const signed = await cli('sync', name, ...k);
      expect(signed.code, signed.err + signed.out).toBe(0);
      const config = await repo.engine.client.get('v1', 'ConfigMap', 'default', `${name}-config`);
      expect(config?.['data']).toEqual({ version: '2.0.0' });
      // charts.pub is now another key: the same chart is refused.
      writeFileSync(join(keys, 'charts.pub'), readFileSync(join(dir, 'other.pub')));
      await repo.commit({ 'app/.keep': 'again' });
      const refused = await cli('sync', name, ...k);
      expect(refused.code).not.toBe(0);
      expect(refused.err + refused.out).toContain('signature 1: not made by a trusted key');
    } finally {
      for (const [key, value] of [
        ['TIDEGATE_TRUSTED_KEYS', saved.keys],
        ['TIDEGATE_RENDER_HOSTS', saved.hosts],
      ] as const)
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
    }
  });
});

describe('OCIRepository verify tidegate cannot do', () => {
  const oci = (name: string, verify: string) => `---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: { name: ${name}, namespace: flux-system }
spec:
  url: oci://ghcr.io/acme/charts/${name}
  ref: { tag: 1.0.0 }
  verify:
${verify}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: ${name}, namespace: flux-system }
spec: { chartRef: { kind: OCIRepository, name: ${name} } }
`;
  it('keyless cosign (no secretRef, or matchOIDCIdentity) and notation are refused by name', async () => {
    const dir = fluxTree(
      {
        'clusters/prod/charts.yaml': [
          oci('keyless', '    provider: cosign'),
          oci(
            'identity',
            '    provider: cosign\n    matchOIDCIdentity:\n      - { issuer: "^https://token.actions.githubusercontent.com$", subject: "^https://github.com/acme/.*$" }',
          ),
          oci('notation', '    provider: notation\n    secretRef: { name: notation-certs }'),
        ].join(''),
      },
      'flux-verify-',
    );
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(read.unsupported.map((u) => [u.object, u.field, u.message])).toEqual([
      [
        'OCIRepository flux-system/keyless',
        'spec.verify',
        expect.stringMatching(/^keyless cosign verification \(Fulcio\/Rekor\) is not supported yet/),
      ],
      [
        'OCIRepository flux-system/identity',
        'spec.verify',
        expect.stringMatching(/^keyless cosign verification \(Fulcio\/Rekor\) is not supported yet/),
      ],
      [
        'OCIRepository flux-system/notation',
        'spec.verify',
        expect.stringMatching(/^notation signature verification is not supported yet/),
      ],
    ]);
  });
});
