import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import type { KubeObject } from '../../shared/model/index.js';
import { readTargetState } from '../../shared/state/index.js';
import { loadConfig } from '../../shared/usecases/index.js';
import { fanOutMessages } from '../../shared/usecases/fan-out.js';
import { gitopsRepo } from '../helpers/engine.js';

/**
 * Adversarial review of Flux repositories read as configuration: each test states a property the
 * README promises, so that it fails where the current code breaks it.
 */

/** A repository of files, written to a temporary directory. */
function repository(files: Record<string, string>, base?: string): string {
  const dir = base ?? mkdtempSync(join(tmpdir(), 'flux-attack-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  if (!base) afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const kustomization = (
  name: string,
  path: string,
  extra = '',
  ns = 'flux-system',
) => `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: ${name}, namespace: ${ns} }
spec:
  path: ${path}
  prune: true
  interval: 10m
  sourceRef: { kind: GitRepository, name: flux-system, namespace: flux-system }
${extra}`;

const rootSync = (cluster: string, extra = '') => `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: flux-system, namespace: flux-system }
spec: { url: https://github.com/acme/fleet, interval: 1m, ref: { branch: main } }
---
${kustomization('flux-system', `./clusters/${cluster}`, extra)}`;

const helmRepository = (
  name: string,
  ns: string,
  url = 'https://charts.example.com',
) => `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: { name: ${name}, namespace: ${ns} }
spec: { url: ${url}, interval: 1h }
`;

const helmRelease = (name: string, ns: string, values: string) => `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: ${name}, namespace: ${ns} }
spec:
  interval: 10m
  chart:
    spec:
      chart: podinfo
      version: "1.0.0"
      sourceRef: { kind: HelmRepository, name: charts }
  values:
${values}`;

const PROD = [{ path: 'clusters/prod', cluster: 'prod' }];

describe('Flux configuration: unsupported fields are refused naming the right file', () => {
  it('two clusters declaring a Kustomization of the same name: the finding names the file of the object that has the field', async () => {
    const dir = repository({
      'clusters/production/flux-system/gotk-sync.yaml': rootSync('production'),
      'clusters/production/apps.yaml': kustomization('apps', './apps/production'),
      'clusters/staging/flux-system/gotk-sync.yaml': rootSync('staging'),
      'clusters/staging/apps.yaml': kustomization(
        'apps',
        './apps/staging',
        '  kubeConfig: { secretRef: { name: remote } }\n',
      ),
      'apps/production/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n',
      'apps/staging/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n',
    });
    const read = await readFlux(
      dir,
      [
        { path: 'clusters/production', cluster: 'production', prefix: 'production-' },
        { path: 'clusters/staging', cluster: 'staging', prefix: 'staging-' },
      ],
      localSettings(),
    );
    const refused = read.unsupported.find((f) => f.field === 'spec.kubeConfig');
    expect(refused?.object).toBe('Kustomization flux-system/apps');
    expect(refused?.file).toBe('clusters/staging/apps.yaml');
  });

  it('a Flux object written inside a v1 List: the finding names its file, not "(generated)"', async () => {
    const list = `apiVersion: v1
kind: List
items:
  - apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: { name: secrets, namespace: flux-system }
    spec:
      path: ./apps
      prune: true
      sourceRef: { kind: GitRepository, name: flux-system }
      kubeConfig: { secretRef: { name: remote } }
`;
    const dir = repository({
      'clusters/prod/flux-system/gotk-sync.yaml': rootSync('prod'),
      'clusters/prod/list.yaml': list,
      'apps/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n',
    });
    const read = await readFlux(dir, PROD, localSettings());
    const refused = read.unsupported.find((f) => f.field === 'spec.kubeConfig');
    expect(refused).toBeDefined();
    expect(refused?.file).toBe('clusters/prod/list.yaml');
  });
});

describe('Flux configuration: fields that change what is applied are never silently dropped or mapped wrongly', () => {
  const files = (appsExtra: string, values: string) => ({
    'clusters/prod/flux-system/gotk-sync.yaml': rootSync('prod'),
    'clusters/prod/apps.yaml': kustomization('apps', './apps', appsExtra),
    'apps/repository.yaml': helmRepository('charts', 'podinfo'),
    'apps/release.yaml': helmRelease('podinfo', 'podinfo', values),
  });

  it("a Kustomization's spec.patches that patch a HelmRelease it applies: the HelmRelease's target gets the patched values (or the configuration is refused)", async () => {
    const patch = `  patches:
    - target: { kind: HelmRelease, name: podinfo }
      patch: |
        - op: replace
          path: /spec/values/replicaCount
          value: 3
`;
    const dir = repository(files(patch, '    replicaCount: 1\n'));
    const read = await readFlux(dir, PROD, localSettings());
    const podinfo = read.targets.find((t) => t.name === 'podinfo');
    const refused = read.unsupported.length > 0;
    expect(refused || podinfo?.helm?.valuesInline?.['replicaCount'] === 3, JSON.stringify(podinfo?.helm)).toBe(true);
  });

  it("a Kustomization's postBuild.substitute used in a HelmRelease it applies: the HelmRelease's target gets the substituted value (or is refused)", async () => {
    const substitute = '  postBuild:\n    substitute: { replicas: "3" }\n';
    const dir = repository(files(substitute, '    replicaCount: "${replicas:=1}"\n'));
    const read = await readFlux(dir, PROD, localSettings());
    const podinfo = read.targets.find((t) => t.name === 'podinfo');
    const refused = read.unsupported.length > 0;
    expect(refused || podinfo?.helm?.valuesInline?.['replicaCount'] === '3', JSON.stringify(podinfo?.helm)).toBe(true);
  });

  it('fields of the root (flux-system) Kustomization: suspend and postBuild.substitute reach its target (or are refused)', async () => {
    const dir = repository({
      'clusters/prod/flux-system/gotk-sync.yaml': rootSync(
        'prod',
        '  suspend: true\n  postBuild:\n    substitute: { env: prod }\n',
      ),
      'clusters/prod/env.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: env, namespace: default }\ndata: { env: "${env}" }\n',
    });
    const read = await readFlux(dir, PROD, localSettings());
    const root = read.targets.find((t) => t.origin?.root);
    const refused = read.unsupported.some((f) => f.object === 'Kustomization flux-system/flux-system');
    expect(refused || (root?.suspend === true && root.substitute['env'] === 'prod'), JSON.stringify(root)).toBe(true);
  });

  it('a GitRepository over plain http:// is not accepted as another source (the README: another (https))', async () => {
    const dir = repository({
      'clusters/prod/flux-system/gotk-sync.yaml': rootSync('prod'),
      'clusters/prod/other.yaml': `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: other, namespace: flux-system }
spec: { url: http://git.example.com/acme/other, interval: 1m, ref: { branch: main } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: other, namespace: flux-system }
spec: { path: ./deploy, prune: true, interval: 10m, sourceRef: { kind: GitRepository, name: other } }
`,
    });
    const read = await readFlux(dir, PROD, localSettings());
    expect(read.targets.find((t) => t.name === 'other')?.source.url).toBeUndefined();
    expect(read.unsupported.map((f) => `${f.object} ${f.field}`)).toContain('GitRepository flux-system/other spec.url');
  });
});

describe('Flux configuration: a repository written for Flux is read as it is', () => {
  it("a Kustomization's postBuild.substitute variable in an object name of its path: the configuration loads (Flux substitutes it)", async () => {
    const dir = repository({
      'clusters/prod/flux-system/gotk-sync.yaml': rootSync('prod'),
      'clusters/prod/apps.yaml': kustomization('apps', './apps', '  postBuild:\n    substitute: { cluster: prod }\n'),
      'apps/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: "${cluster}-config" }\ndata: { a: "1" }\n',
    });
    const config = await loadConfig(dir, localSettings());
    expect(config.targets.find((t) => t.name === 'prod-apps')?.substitute).toEqual({ cluster: 'prod' });
  });
});

describe('Flux configuration: targets are never renamed', () => {
  const cluster = (name: string) => ({
    [`clusters/${name}/flux-system/gotk-sync.yaml`]: rootSync(name),
    [`clusters/${name}/apps.yaml`]: kustomization('apps', `./apps/${name}`),
    [`apps/${name}/cm.yaml`]: 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: env }\n',
  });

  it("a Flux layout (no tidegate.yaml): adding a second cluster directory keeps the names of the first cluster's targets", async () => {
    const dir = repository(cluster('production'));
    const before = (await loadConfig(dir, localSettings())).targets
      .filter((t) => t.cluster === 'production')
      .map((t) => t.name)
      .sort();
    repository(cluster('staging'), dir);
    const after = (await loadConfig(dir, localSettings())).targets
      .filter((t) => t.cluster === 'production')
      .map((t) => t.name)
      .sort();
    expect(after).toEqual(before);
  });
});

describe('Flux configuration: nothing outside the checkout is read', () => {
  it('a Kustomization whose path leads out of the repository: the kustomization.yaml there is never opened', async () => {
    const base = mkdtempSync(join(tmpdir(), 'flux-outside-'));
    afterAll(() => rmSync(base, { recursive: true, force: true }));
    const root = join(base, 'repo');
    repository(
      {
        'clusters/prod/flux-system/gotk-sync.yaml': rootSync('prod'),
        'clusters/prod/escape.yaml': kustomization('escape', '../outside'),
      },
      root,
    );
    mkdirSync(join(base, 'outside'));
    const fifo = join(base, 'outside', 'kustomization.yaml');
    execFileSync('mkfifo', [fifo]);
    // A writer that finishes only when something opens the file outside the repository for reading.
    const writer = spawn('sh', ['-c', `printf 'resources: []\\n' > '${fifo}'`], { stdio: 'ignore' });
    try {
      const read = await readFlux(root, PROD, localSettings());
      await new Promise((r) => setTimeout(r, 500));
      expect(writer.exitCode, 'the kustomization.yaml outside the checkout was read').toBeNull();
      // and the configuration is refused
      expect(read.unsupported.length).toBeGreaterThan(0);
    } finally {
      if (writer.exitCode === null) writer.kill('SIGKILL');
    }
  });
});

describe("Flux configuration: a push that changes a target's configuration syncs that target (fan-out)", () => {
  it('a changed HelmRepository (declared by another Kustomization) syncs the HelmRelease target whose chart repository it is', async () => {
    const id = randomBytes(3).toString('hex');
    const repo = await gitopsRepo('flux-fanout');
    const prefix = `q${id}-`;
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/prod', cluster: 'test', prefix }] }),
      'clusters/prod/flux-system/gotk-sync.yaml': rootSync('prod'),
      'clusters/prod/sources.yaml': kustomization('sources', './infrastructure/sources'),
      'clusters/prod/apps.yaml': kustomization('apps', './apps', '  dependsOn: [{ name: sources }]\n'),
      'infrastructure/sources/charts.yaml': helmRepository('charts', 'flux-system', 'https://charts.example.com'),
      'apps/release.yaml': helmRelease('podinfo', 'flux-system', '    replicaCount: 1\n').replace(
        'name: charts }',
        'name: charts, namespace: flux-system }',
      ),
    });
    const sha = await repo.commit({
      'infrastructure/sources/charts.yaml': helmRepository('charts', 'flux-system', 'https://mirror.example.com'),
    });
    const push = (paths: string[] | null) => ({
      type: 'push' as const,
      repo: repo.url,
      ref: 'refs/heads/main',
      sha,
      paths,
      reason: 'push' as const,
    });
    // The HelmRelease is a target of this revision (a push of every path syncs it).
    expect((await fanOutMessages(repo.engine, push(null))).targets).toContain(`${prefix}podinfo`);
    const out = await fanOutMessages(repo.engine, {
      type: 'push',
      repo: repo.url,
      ref: 'refs/heads/main',
      sha,
      paths: ['infrastructure/sources/charts.yaml'],
      reason: 'push',
    });
    expect(out.targets).toContain(`${prefix}podinfo`);
  });
});

describe('Flux repositories synced: what the cluster sees', () => {
  it('an object annotated kustomize.toolkit.fluxcd.io/prune: disabled (Flux keeps it when it leaves Git) is not deleted when it leaves Git', async () => {
    const id = randomBytes(3).toString('hex');
    const ns = `fp${id}`;
    const repo = await gitopsRepo('flux-prune');
    const prefix = `p${id}-`;
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/prod', cluster: 'test', prefix }] }),
      'clusters/prod/flux-system/gotk-sync.yaml': rootSync('prod'),
      'clusters/prod/apps.yaml': kustomization('apps', './apps', `  targetNamespace: ${ns}\n`),
      'apps/keep.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: keep
  annotations: { kustomize.toolkit.fluxcd.io/prune: disabled }
data: { a: "1" }
`,
      'apps/other.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: other }\ndata: { a: "1" }\n',
    });
    const first = await repo.sync();
    for (const r of first) expect(r.outcome, `${r.target}: ${r.error ?? ''}`).toMatch(/applied|unchanged/);
    const { client } = repo.engine;
    expect(await client.get('v1', 'ConfigMap', ns, 'keep')).toBeDefined();

    await repo.commit({ 'apps/keep.yaml': null });
    const second = await repo.sync();
    for (const r of second) expect(r.outcome, `${r.target}: ${r.error ?? ''}`).toMatch(/applied|unchanged/);
    expect(await client.get('v1', 'ConfigMap', ns, 'other')).toBeDefined();
    expect(
      await client.get('v1', 'ConfigMap', ns, 'keep'),
      'Flux leaves an object annotated kustomize.toolkit.fluxcd.io/prune: disabled in the cluster',
    ).toBeDefined();
  });

  /** A Flux repository whose apps Kustomization substitutes variables from a Secret; a sync of it. */
  async function secretSubstitution(manifest: (variable: string) => string, secretValue: string) {
    const id = randomBytes(3).toString('hex');
    const ns = `fs${id}`;
    const repo = await gitopsRepo('flux-secret');
    const { client } = repo.engine;
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } } as KubeObject, {
      fieldManager: 'test',
    });
    await client.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'vars', namespace: ns },
        data: { suffix: Buffer.from(secretValue).toString('base64') },
      } as KubeObject,
      { fieldManager: 'test' },
    );
    const prefix = `s${id}-`;
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/prod', cluster: 'test', prefix }] }),
      'clusters/prod/flux-system/gotk-sync.yaml': rootSync('prod'),
      'clusters/prod/apps.yaml': kustomization(
        'apps',
        './apps',
        `  targetNamespace: ${ns}\n  postBuild:\n    substituteFrom: [{ kind: Secret, name: vars }]\n`,
        ns,
      ),
      'apps/cm.yaml': manifest('${suffix}'),
    });
    const results = await repo.sync();
    const target = `${prefix}${ns}-apps`;
    const result = results.find((r) => r.target === target);
    const state = await readTargetState(client, target);
    return { result, state, client, ns };
  }

  it('a missing non-optional substituteFrom Secret fails the sync: nothing applied, nothing pruned', async () => {
    const id = randomBytes(3).toString('hex');
    const ns = `fm${id}`;
    const repo = await gitopsRepo('flux-missing');
    const prefix = `m${id}-`;
    const cm = (name: string, value: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: ${name} }\ndata: { a: "${value}" }\n`;
    await repo.commit({
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/prod', cluster: 'test', prefix }] }),
      'clusters/prod/flux-system/gotk-sync.yaml': rootSync('prod'),
      'clusters/prod/apps.yaml': kustomization('apps', './apps', `  targetNamespace: ${ns}\n`),
      'apps/one.yaml': cm('one', '1'),
      'apps/two.yaml': cm('two', '1'),
    });
    for (const r of await repo.sync()) expect(r.outcome, `${r.target}: ${r.error ?? ''}`).toMatch(/applied|unchanged/);
    await repo.commit({
      'clusters/prod/apps.yaml': kustomization(
        'apps',
        './apps',
        `  targetNamespace: ${ns}\n  postBuild:\n    substituteFrom: [{ kind: Secret, name: absent-${id} }]\n`,
      ),
      'apps/one.yaml': cm('one', '${v:=2}'),
      'apps/two.yaml': null,
    });
    const results = await repo.sync();
    const apps = results.find((r) => r.target === `${prefix}apps`);
    expect(apps?.outcome).toBe('failed');
    expect(apps?.error).toMatch(/Secret .*absent-.* does not exist/);
    const { client } = repo.engine;
    expect((await client.get('v1', 'ConfigMap', ns, 'one'))?.['data']).toEqual({ a: '1' });
    expect(await client.get('v1', 'ConfigMap', ns, 'two')).toBeDefined();
  });

  it('a value substituted from a Secret that the apiserver refuses (a label value): the failure never quotes the value (result, history)', async () => {
    const secret = `Hunter2 secret ${randomBytes(4).toString('hex')}`;
    const { result, state } = await secretSubstitution(
      (v) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  labels: { tier: "${v}" }\ndata: { a: "1" }\n`,
      secret,
    );
    expect(result?.outcome).toBe('failed');
    expect(result?.error ?? '').not.toContain(secret);
    expect(JSON.stringify(state.history)).not.toContain(secret);
  });
});
