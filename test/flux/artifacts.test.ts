import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, startHelmRepo, startRegistry, type HelmRepo } from '../../devenv/index.js';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import { renderTarget } from '../../shared/render/index.js';
import { syncRepo } from '../../shared/usecases/index.js';
import { gitopsRepo } from '../helpers/engine.js';
import { testEnv } from '../helpers/env.js';
import { fluxRepository, fluxTree, publishFixtureChart } from './fixture.js';

/**
 * Flux's own example at HEAD (fluxcd/flux2-kustomize-helm-example): the cluster's Kustomizations read
 * ExternalArtifacts an ArtifactGenerator makes of the repository's directories, and the infrastructure
 * charts come from OCIRepositories (chartRef, layerSelector of Helm's layer, a semver ref). These are
 * the files of the fixture (tests/flux/fixture, the layout before) that HEAD changed, written as HEAD
 * writes them; the charts are served by the test registry with token auth.
 */
const headLayout = (id: string, registry: string): Record<string, string> => ({
  // At HEAD the bootstrap writes the sync objects: the file in Git holds a comment only.
  'clusters/production/flux-system/gotk-sync.yaml': '# This file will be generated automatically by flux boostrap.\n',
  'clusters/production/artifacts.yaml': `---
apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata:
  name: flux-system
  namespace: flux-system
spec:
  sources:
    - alias: monorepo
      kind: GitRepository
      name: flux-system
  artifacts:
    - name: infrastructure
      originRevision: "@monorepo"
      copy:
        - from: "@monorepo/infrastructure/**"
          to: "@artifact/"
    - name: apps
      originRevision: "@monorepo"
      copy:
        - from: "@monorepo/apps/base/**"
          to: "@artifact/base/"
        - from: "@monorepo/apps/production/**"
          to: "@artifact/production/"
`,
  'clusters/production/infrastructure.yaml': `---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra-controllers
  namespace: flux-system
spec:
  interval: 1h
  retryInterval: 2m
  timeout: 5m
  sourceRef:
    kind: ExternalArtifact
    name: infrastructure
  path: ./controllers
  prune: true
  wait: true
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: infra-configs
  namespace: flux-system
spec:
  dependsOn:
    - name: infra-controllers
  interval: 1h
  retryInterval: 2m
  timeout: 5m
  sourceRef:
    kind: ExternalArtifact
    name: infrastructure
  path: ./configs
  prune: true
`,
  'clusters/production/apps.yaml': `---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: apps
  namespace: flux-system
spec:
  dependsOn:
    - name: infra-configs
  interval: 1h
  retryInterval: 2m
  timeout: 5m
  sourceRef:
    kind: ExternalArtifact
    name: apps
  path: ./production
  prune: true
  wait: true
`,
  'infrastructure/controllers/widget-operator.yaml': `---
apiVersion: v1
kind: Namespace
metadata:
  name: widgets-${id}
  labels:
    toolkit.fluxcd.io/tenant: sre-team
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: widget-operator
  namespace: widgets-${id}
spec:
  interval: 24h
  url: oci://${registry}/charts/widget-operator
  insecure: true
  layerSelector:
    mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    operation: copy
  ref:
    semver: "1.0.x"
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: widget-operator
  namespace: widgets-${id}
spec:
  interval: 12h
  install:
    strategy:
      name: RetryOnFailure
    disableWait: true
  upgrade:
    strategy:
      name: RetryOnFailure
  chartRef:
    kind: OCIRepository
    name: widget-operator
  values:
    logLevel: info
`,
});

describe("Flux's own example at HEAD: ExternalArtifacts of an ArtifactGenerator, charts from OCIRepositories", () => {
  let helm: HelmRepo;
  let registry: Awaited<ReturnType<typeof startRegistry>>;
  let dir: string;
  const user = { username: 'flux-charts', password: 'flux-head-registry-password' };
  beforeAll(async () => {
    helm = await startHelmRepo(testEnv().tools.helm);
    dir = mkdtempSync(join(tmpdir(), 'flux-head-'));
    registry = await startRegistry(dir, { tokenAuth: user });
  });
  afterAll(async () => {
    await helm?.stop();
    await registry?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Pushes a chart archive with helm push; the manifest digest helm reports. */
  const push = async (archive: string): Promise<string> => {
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
    return digest;
  };

  it('read as written: every Kustomization and HelmRelease a target, in order, synced end to end, and a second sync writes nothing', async () => {
    const id = randomBytes(3).toString('hex');
    const digests = new Map<string, string>();
    for (const [chart, version] of [
      ['widget-operator', '1.0.0'],
      ['widget-operator', '1.1.0'],
      ['podinfo', '1.0.0'],
    ] as const) {
      const archive = await publishFixtureChart(helm, chart, version, id);
      if (chart === 'widget-operator') digests.set(version, await push(archive));
    }
    const files = { ...fluxRepository(id, helm.url), ...headLayout(id, registry.host) };
    const checked = await readFlux(
      fluxTree(files, 'flux-head-'),
      [{ path: 'clusters/production', cluster: 'test' }],
      localSettings(),
    );
    expect(checked.unsupported).toEqual([]);
    expect(checked.mapped).toContainEqual({
      file: 'clusters/production/artifacts.yaml',
      object: 'ArtifactGenerator flux-system/flux-system',
      becomes: 'the files of ExternalArtifact flux-system/apps: apps/',
    });

    const repo = await gitopsRepo('flux-head');
    const prefix = `h${id}-`;
    await repo.commit({
      ...files,
      'tidegate.yaml': stringify({ flux: [{ path: 'clusters/production', cluster: 'test', prefix }] }),
    });
    const settings = localSettings();
    const ctx = {
      ...repo.engine,
      settings: { ...settings, render: { ...settings.render, allowedHosts: ['127.0.0.1'] } },
      registry: { credentials: (host: string) => (host === registry.host ? user : undefined) },
    };
    const client = repo.engine.client;
    const requestsBefore = helm.requests.length;
    const results = await syncRepo(ctx, { repo: repo.url });
    for (const r of results) expect(r.outcome, `${r.target}: ${r.error ?? ''}`).toMatch(/applied|unchanged/);
    const order = results.map((r) => r.target);
    const operator = `${prefix}widgets-${id}-widget-operator`;
    const podinfo = `${prefix}podinfo-${id}-podinfo`;
    expect([...order].sort()).toEqual(
      [
        `${prefix}flux-system`,
        `${prefix}infra-controllers`,
        `${prefix}infra-configs`,
        `${prefix}apps`,
        operator,
        podinfo,
      ].sort(),
    );
    expect(order.indexOf(operator)).toBeLessThan(order.indexOf(`${prefix}infra-configs`));
    expect(order.indexOf(`${prefix}infra-configs`)).toBeLessThan(order.indexOf(`${prefix}apps`));
    expect(order.indexOf(`${prefix}apps`)).toBeLessThan(order.indexOf(podinfo));
    // The OCIRepository's semver range picked 1.0.0 from the registry's tags; podinfo came from the HTTP repository.
    expect(results.find((r) => r.target === operator)?.chart).toMatchObject({
      name: 'widget-operator',
      version: '1.0.0',
    });
    const config = await client.get('v1', 'ConfigMap', `widgets-${id}`, 'widget-operator-config');
    expect(config?.['data']).toEqual({ version: '1.0.0', logLevel: 'info' });
    expect(await client.get(`t${id}.example.dev/v1`, 'Widget', `widgets-${id}`, 'default-widget')).toBeDefined();
    const deployment = await client.get('apps/v1', 'Deployment', `podinfo-${id}`, 'podinfo');
    expect((deployment?.['spec'] as { replicas: number }).replicas).toBe(2);
    expect(helm.requests.length).toBeGreaterThan(requestsBefore);
    const second = await syncRepo(ctx, { repo: repo.url });
    expect(second.map((r) => [r.target, r.outcome])).toEqual(results.map((r) => [r.target, 'unchanged']));

    // The OCIRepository pinned to a digest: the chart of that manifest (1.1.0), whatever the tags say.
    const pinned = (files['infrastructure/controllers/widget-operator.yaml'] ?? '').replace(
      'semver: "1.0.x"',
      `digest: ${digests.get('1.1.0')}`,
    );
    await repo.commit({ 'infrastructure/controllers/widget-operator.yaml': pinned });
    const third = await syncRepo(ctx, { repo: repo.url });
    const upgraded = third.find((r) => r.target === operator);
    expect(upgraded?.outcome, upgraded?.error).toBe('applied');
    expect(upgraded?.chart).toMatchObject({ name: 'widget-operator', version: digests.get('1.1.0') });
    const after = await client.get('v1', 'ConfigMap', `widgets-${id}`, 'widget-operator-config');
    expect((after?.['data'] as Record<string, string>)['version']).toBe('1.1.0');
  });
});

describe('ArtifactGenerators and OCIRepositories tidegate cannot read as Flux would', () => {
  const ROOT = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: flux-system, namespace: flux-system }
spec: { path: ./clusters/prod, prune: true, interval: 10m, sourceRef: { kind: GitRepository, name: flux-system } }
`;
  const dir = fluxTree(
    {
      'clusters/prod/sync.yaml': ROOT,
      'clusters/prod/artifacts.yaml': `apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata: { name: gen, namespace: flux-system }
spec:
  sources: [{ alias: repo, kind: GitRepository, name: flux-system }]
  artifacts:
    - name: moved
      copy:
        - { from: "@repo/apps/base/**", to: "@artifact/common/" }
    - name: filtered
      copy:
        - { from: "@repo/apps/**", to: "@artifact/", exclude: ["**/secret.yaml"] }
    - name: whole
      copy:
        - { from: "@repo/apps/**", to: "@artifact/" }
`,
      'clusters/prod/apps.yaml': `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: moved, namespace: flux-system }
spec: { path: ./common, prune: true, interval: 10m, sourceRef: { kind: ExternalArtifact, name: moved } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: filtered, namespace: flux-system }
spec: { path: ./, prune: true, interval: 10m, sourceRef: { kind: ExternalArtifact, name: filtered } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: nowhere, namespace: flux-system }
spec: { path: ./, prune: true, interval: 10m, sourceRef: { kind: ExternalArtifact, name: nobody-makes-it } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: whole, namespace: flux-system }
spec: { path: ./base, prune: true, interval: 10m, sourceRef: { kind: ExternalArtifact, name: whole } }
`,
      'clusters/prod/charts.yaml': `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: { name: signed, namespace: flux-system }
spec:
  url: oci://ghcr.io/acme/charts/web
  ref: { tag: 2.0.0 }
  verify: { provider: cosign, matchOIDCIdentity: [{ issuer: x, subject: y }] }
  layerSelector: { mediaType: application/vnd.acme.bundle.v1.tar+gzip }
  provider: azure
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: { name: edge, namespace: flux-system }
spec: { url: oci://ghcr.io/acme/charts/edge, ref: { tag: edge }, provider: aws }
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: edge, namespace: flux-system }
spec: { chartRef: { kind: OCIRepository, name: edge } }
`,
      'apps/base/configmap.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n',
      'apps/base/kustomization.yaml': 'resources: [configmap.yaml]\n',
      // Left out by the exclude of the artifact "filtered".
      'apps/secret.yaml': 'apiVersion: v1\nkind: Secret\nmetadata: { name: excluded }\n',
    },
    'flux-artifacts-',
  );

  it('are refused by name, file and line (an artifact nobody makes, keyless verification, another provider); rules that move or filter files are copied at render time', async () => {
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(read.unsupported.map((u) => [u.file, u.line, u.object, u.field, u.message])).toEqual(
      expect.arrayContaining([
        [
          'clusters/prod/apps.yaml',
          11,
          'Kustomization flux-system/nowhere',
          'spec.sourceRef',
          'no ArtifactGenerator in the repository makes ExternalArtifact flux-system/nobody-makes-it',
        ],
        [
          'clusters/prod/charts.yaml',
          1,
          'OCIRepository flux-system/signed',
          'spec.verify',
          expect.stringMatching(/keyless cosign verification \(Fulcio\/Rekor\) is not supported yet/),
        ],
        [
          'clusters/prod/charts.yaml',
          1,
          'OCIRepository flux-system/signed',
          'spec.provider',
          expect.stringMatching(/provider azure/),
        ],
      ]),
    );
    expect(read.unsupported).toHaveLength(3);
    expect(read.unsupported.every((u) => u.cluster === 'prod')).toBe(true);
    // Rules that move or filter files: the target reads path in what they copy, rendered as Flux would.
    const moved = read.targets.find((t) => t.name === 'moved');
    expect(moved?.assemble).toEqual([{ from: 'apps/base/**', to: 'common/' }]);
    expect(moved?.origin?.inputs).toContain('apps/base');
    const names = async (name: string) =>
      (
        await renderTarget(
          read.targets.find((t) => t.name === name)!,
          dir,
          localSettings(),
        )
      ).objects.map((o) => o.object.metadata.name);
    expect(await names('moved')).toEqual(['a']);
    expect(await names('filtered')).toEqual(['a']);
    // An artifact of a whole directory is that directory; a non-semver tag is a tag; provider aws is a note.
    const whole = read.targets.find((t) => t.name === 'whole');
    expect(whole?.path).toBe('apps/base');
    expect(whole?.origin?.inputs).toContain('clusters/prod');
    const edge = read.targets.find((t) => t.name === 'edge');
    expect(edge?.chart).toMatchObject({ repository: 'oci://ghcr.io/acme/charts', name: 'edge', tag: 'edge' });
    expect(read.notes).toContainEqual(
      expect.objectContaining({
        object: 'OCIRepository flux-system/edge',
        field: 'spec.provider',
        message: expect.stringMatching(/ecr:GetAuthorizationToken/),
      }),
    );
  });
});

/** A HelmRelease whose chartRef is an ExternalArtifact a copy rule makes of a chart directory elsewhere in the repository. */
describe('a chart from an ExternalArtifact', () => {
  it('is the directory its copy rules make: rendered from the copied chart', async () => {
    const dir = fluxTree(
      {
        'clusters/prod/sync.yaml': `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: flux-system, namespace: flux-system }
spec: { path: ./clusters/prod, prune: true, interval: 10m, sourceRef: { kind: GitRepository, name: flux-system } }
`,
        'clusters/prod/chart.yaml': `apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata: { name: charts, namespace: flux-system }
spec:
  sources: [{ alias: repo, kind: GitRepository, name: flux-system }]
  artifacts:
    - name: web-chart
      copy:
        - { from: "@repo/charts/web/**", to: "@artifact/" }
        - { from: "@repo/config/web-values.yaml", to: "@artifact/values.yaml" }
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: web, namespace: flux-system }
spec: { interval: 10m, chartRef: { kind: ExternalArtifact, name: web-chart } }
`,
        'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
        'charts/web/values.yaml': 'greeting: from the chart\n',
        'charts/web/templates/cm.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: web }\ndata: { greeting: {{ .Values.greeting | quote }} }\n',
        'config/web-values.yaml': 'greeting: from the generator\n',
      },
      'flux-artifact-chart-',
    );
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(read.unsupported).toEqual([]);
    const web = read.targets.find((t) => t.name === 'web');
    expect(web?.assemble).toBeDefined();
    const { objects } = await renderTarget(web!, dir, localSettings());
    // The generator's second rule overwrote the chart's values.yaml, as its copy order says.
    expect(objects.map((o) => o.object['data'])).toEqual([{ greeting: 'from the generator' }]);
  });
});
