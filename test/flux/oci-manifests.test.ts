import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { pushArtifact } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import { fluxTree } from './fixture.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { testEnv } from '../helpers/env.js';

const made: string[] = [];
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A tar.gz of these files as `flux push artifact` packs a directory (entries under "./"); `links` become symbolic links. */
function tarball(files: Record<string, string>, links: Record<string, string> = {}): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'oci-artifact-'));
  made.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  for (const [path, to] of Object.entries(links)) symlinkSync(to, join(dir, path));
  return execFileSync('tar', ['czf', '-', '-C', dir, '.']);
}

const configMap = (name: string, ns: string, data: Record<string, string>) =>
  stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data });

/**
 * A Kustomization whose source is an OCIRepository of manifests, as fluxcd/flux2-multi-tenancy reads
 * kyverno (`sourceRef: { kind: OCIRepository }`, `path: ./`) and controlplaneio-fluxcd/d2-fleet its
 * tenants: the artifact is pushed to the test registry as `flux push artifact` lays it out.
 */
describe('a Kustomization sourced from an OCIRepository of manifests', () => {
  it('syncs the artifact at its tag end to end, re-syncs as a no-op, follows a new push of the tag, and a digest in Git pins it', async () => {
    const id = randomBytes(3).toString('hex');
    const ns = `oci-${id}`;
    const registry = testEnv().registry;
    const host = new URL(registry.url).host;
    const repository = `manifests/app-${id}`;
    const first = await pushArtifact(
      registry,
      repository,
      'v1.0.0',
      tarball({
        'namespace.yaml': stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }),
        'app/config.yaml': configMap('settings', ns, { level: 'info' }),
        'kustomization.yaml': 'resources: [namespace.yaml, app/config.yaml]\n',
      }),
    );
    const source = (ref: string) => `apiVersion: source.toolkit.fluxcd.io/v1beta2
kind: OCIRepository
metadata: { name: app, namespace: flux-system }
spec:
  interval: 120m0s
  provider: generic
  url: oci://${host}/${repository}
  insecure: true
  ref:
    ${ref}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: app, namespace: flux-system }
spec:
  interval: 720m0s
  sourceRef: { kind: OCIRepository, name: app }
  path: ./
  prune: true
  timeout: 5m
`;
    const repo = await gitopsRepo('flux-oci');
    const prefix = `o${id}-`;
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/prod', cluster: 'test', prefix }] }),
      'clusters/prod/app.yaml': source('tag: "v1.0.0"'),
    });
    const settings = localSettings();
    const ctx = {
      ...repo.engine,
      settings: { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } },
    };
    const sync = async () => new Map((await syncRepo(ctx, { repo: repo.url })).map((r) => [r.target, r]));
    const client = repo.engine.client;

    const synced = await sync();
    const app = synced.get(`${prefix}app`);
    expect(app?.outcome, app?.error).toBe('applied');
    expect((await client.get('v1', 'ConfigMap', ns, 'settings'))?.['data']).toEqual({ level: 'info' });
    expect((await sync()).get(`${prefix}app`)?.outcome).toBe('unchanged');

    // A new push of the same tag: the next sync applies it (as Flux follows a tag).
    await pushArtifact(
      registry,
      repository,
      'v1.0.0',
      tarball({
        'namespace.yaml': stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }),
        'app/config.yaml': configMap('settings', ns, { level: 'debug' }),
        'kustomization.yaml': 'resources: [namespace.yaml, app/config.yaml]\n',
      }),
    );
    expect((await sync()).get(`${prefix}app`)?.outcome).toBe('applied');
    expect((await client.get('v1', 'ConfigMap', ns, 'settings'))?.['data']).toEqual({ level: 'debug' });

    // The first artifact's digest written into Git: that one, whatever the tag says now.
    await repo.commit({ 'clusters/prod/app.yaml': source(`digest: ${first}`) });
    expect((await sync()).get(`${prefix}app`)?.outcome).toBe('applied');
    expect((await client.get('v1', 'ConfigMap', ns, 'settings'))?.['data']).toEqual({ level: 'info' });
  });

  it('fails, naming why, when the artifact holds a link, or Flux objects of its own; nothing of it is applied', async () => {
    const id = randomBytes(3).toString('hex');
    const ns = `oci-bad-${id}`;
    const registry = testEnv().registry;
    const host = new URL(registry.url).host;
    await pushArtifact(
      registry,
      `manifests/linked-${id}`,
      'latest',
      tarball({ 'config.yaml': configMap('ok', ns, { a: '1' }) }, { 'passwd.yaml': '/etc/passwd' }),
    );
    await pushArtifact(
      registry,
      `manifests/nested-${id}`,
      'latest',
      tarball({
        'config.yaml': configMap('ok', ns, { a: '1' }),
        'more.yaml': stringify({
          apiVersion: 'kustomize.toolkit.fluxcd.io/v1',
          kind: 'Kustomization',
          metadata: { name: 'more', namespace: 'flux-system' },
          spec: { path: './', prune: true, sourceRef: { kind: 'GitRepository', name: 'flux-system' } },
        }),
      }),
    );
    const kustomization = (name: string) => `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: { name: ${name}, namespace: flux-system }
spec: { url: "oci://${host}/manifests/${name}-${id}", insecure: true, interval: 1h }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: ${name}, namespace: flux-system }
spec: { sourceRef: { kind: OCIRepository, name: ${name} }, path: ./, prune: true, interval: 1h, targetNamespace: ${ns} }
`;
    const repo = await gitopsRepo('flux-oci-bad');
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/prod', cluster: 'test', prefix: `b${id}-` }] }),
      'clusters/prod/linked.yaml': kustomization('linked'),
      'clusters/prod/nested.yaml': kustomization('nested'),
    });
    const settings = localSettings();
    const ctx = {
      ...repo.engine,
      settings: { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } },
    };
    const results = new Map((await syncRepo(ctx, { repo: repo.url })).map((r) => [r.target, r]));
    expect(results.get(`b${id}-linked`)?.outcome).toBe('failed');
    expect(results.get(`b${id}-linked`)?.error).toMatch(
      /entry \.\/passwd\.yaml: a symlink entry \(only files and directories are read\)/,
    );
    expect(results.get(`b${id}-nested`)?.outcome).toBe('failed');
    expect(results.get(`b${id}-nested`)?.error).toMatch(/Kustomization.*more.*another repository/i);
    expect(await repo.engine.client.get('v1', 'ConfigMap', ns, 'ok')).toBeUndefined();
  });

  it("an artifact of manifests asked to be verified with a key keeps its verify (the trusted key of the Secret's name); keyless is refused", async () => {
    const dir = fluxTree(
      {
        'clusters/prod/app.yaml': `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: { name: app, namespace: flux-system }
spec:
  url: oci://ghcr.io/acme/manifests/app
  ref: { tag: v1.0.0 }
  verify: { provider: cosign, secretRef: { name: cosign-pub } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: app, namespace: flux-system }
spec: { sourceRef: { kind: OCIRepository, name: app }, path: ./, prune: true, interval: 1h }
`,
      },
      'flux-oci-verify-',
    );
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(read.unsupported).toEqual([]);
    expect(read.targets.find((t) => t.name === 'app')?.artifact).toMatchObject({
      url: 'oci://ghcr.io/acme/manifests/app',
      ref: { tag: 'v1.0.0' },
      verify: { provider: 'cosign', keys: ['cosign-pub'] },
    });
    const keyless = fluxTree(
      {
        'clusters/prod/app.yaml': readFileSync(`${dir}/clusters/prod/app.yaml`, 'utf8').replace(
          'secretRef: { name: cosign-pub }',
          'matchOIDCIdentity: [{ issuer: x, subject: y }]',
        ),
      },
      'flux-oci-keyless-',
    );
    const refused = await readFlux(keyless, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(refused.unsupported.map((u) => [u.object, u.field])).toEqual([
      ['OCIRepository flux-system/app', 'spec.verify'],
    ]);
  });
});
