import { describe, expect, it } from 'vitest';
import { fluxTree } from './fixture.js';
import { localSettings } from '../../shared/config/index.js';
import { readFlux } from '../../shared/flux/index.js';
import { loadConfig } from '../../shared/usecases/index.js';
import { targetSchema } from '../../shared/config/index.js';
import { renderTarget } from '../../shared/render/index.js';

/** A repository of files, written to a temporary directory. */
const repository = (files: Record<string, string>): string => fluxTree(files, 'flux-fields-');

const ROOT_SYNC = `apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: flux-system, namespace: flux-system }
spec: { url: https://github.com/acme/fleet, interval: 1m, ref: { branch: main } }
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: flux-system, namespace: flux-system }
spec: { path: ./clusters/prod, prune: true, interval: 10m, sourceRef: { kind: GitRepository, name: flux-system } }
`;

const KUSTOMIZATIONS = `apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: secrets, namespace: flux-system }
spec:
  path: ./apps
  prune: true
  interval: 10m
  sourceRef: { kind: GitRepository, name: flux-system }
  decryption: { provider: sops, secretRef: { name: sops-age } }
  serviceAccountName: restricted
  kubeConfig: { secretRef: { name: remote } }
  namePrefix: a-
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: { name: from-oci, namespace: flux-system }
spec:
  path: ./
  prune: true
  interval: 10m
  sourceRef: { kind: OCIRepository, name: manifests }
`;

const RELEASES = `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: { name: charts, namespace: flux-system }
spec: { url: oci://123456789012.dkr.ecr.eu-west-1.amazonaws.com/charts, type: oci, provider: aws, interval: 1h }
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: { name: other, namespace: flux-system }
spec: { url: https://github.com/acme/other, interval: 1m, ref: { branch: main }, verify: { mode: HEAD, secretRef: { name: pgp } }, include: [ { repository: { name: x } } ] }
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: web, namespace: flux-system }
spec:
  interval: 10m
  chart:
    spec:
      chart: web
      valuesFiles: [values-prod.yaml]
      sourceRef: { kind: HelmRepository, name: charts }
  install: { createNamespace: true }
  test: { enable: true }
  kubeConfig: { secretRef: { name: remote } }
  postRenderers:
    - kustomize:
        patchesStrategicMerge: [{ kind: Deployment }]
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: oci-ref, namespace: flux-system }
spec:
  interval: 10m
  chartRef: { kind: OCIRepository, name: web-chart }
`;

describe('Flux fields tidegate does not support', () => {
  const dir = repository({
    'clusters/prod/flux-system/gotk-sync.yaml': ROOT_SYNC,
    'clusters/prod/apps.yaml': KUSTOMIZATIONS,
    'clusters/prod/releases.yaml': RELEASES,
    'apps/configmap.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: a }\n',
  });

  it('are each reported with the file, the object and the field, in one table; timing fields carry a note instead', async () => {
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    const table = read.unsupported.map((f) => [f.file, f.object, f.field, f.message]);
    const expected: Array<[string, string, string, RegExp]> = [
      ['clusters/prod/apps.yaml', 'Kustomization flux-system/secrets', 'spec.kubeConfig', /not supported yet/],
      ['clusters/prod/apps.yaml', 'Kustomization flux-system/secrets', 'spec.namePrefix', /not supported yet/],
      [
        'clusters/prod/apps.yaml',
        'Kustomization flux-system/from-oci',
        'spec.sourceRef',
        /^OCIRepository flux-system\/manifests is not declared in the repository$/,
      ],
      ['clusters/prod/releases.yaml', 'GitRepository flux-system/other', 'spec.verify', /not supported yet/],
      ['clusters/prod/releases.yaml', 'GitRepository flux-system/other', 'spec.include', /not supported yet/],
      [
        'clusters/prod/releases.yaml',
        'HelmRelease flux-system/web',
        'spec.chart.spec.valuesFiles',
        /not supported yet/,
      ],
      [
        'clusters/prod/releases.yaml',
        'HelmRelease flux-system/web',
        'spec.test',
        /Helm tests \(enable: true\) are not run by tidegate yet/,
      ],
      ['clusters/prod/releases.yaml', 'HelmRelease flux-system/web', 'spec.kubeConfig', /not supported yet/],
      [
        'clusters/prod/releases.yaml',
        'HelmRelease flux-system/web',
        'spec.postRenderers[0].kustomize.patchesStrategicMerge',
        /not supported yet/,
      ],
      [
        'clusters/prod/releases.yaml',
        'HelmRelease flux-system/oci-ref',
        'spec.chartRef',
        /^OCIRepository flux-system\/web-chart is not declared in the repository$/,
      ],
    ];
    for (const [file, object, field, message] of expected)
      expect(table, `${object} ${field}`).toContainEqual([file, object, field, expect.stringMatching(message)]);
    expect(table).toHaveLength(expected.length);
    // Lines point at the object's document in its file.
    expect(read.unsupported.find((f) => f.object === 'Kustomization flux-system/from-oci')?.line).toBe(14);
    // Timing fields are read differently, not refused.
    expect(read.notes.map((n) => `${n.object} ${n.field}`)).toContain(
      'Kustomization flux-system/secrets spec.interval',
    );
    expect(read.unsupported.map((f) => f.field)).not.toContain('spec.interval');
    // An OCI HelmRepository in ECR (provider: aws) is read: the login is the worker's role's.
    expect(read.notes).toContainEqual(
      expect.objectContaining({
        object: 'HelmRepository flux-system/charts',
        field: 'spec.provider',
        message: expect.stringMatching(/ecr:GetAuthorizationToken/),
      }),
    );
    // SOPS decryption is read (keys from the deploy-time settings, not the Secret secretRef names).
    expect(read.notes.find((n) => n.field === 'spec.decryption.secretRef')?.message).toMatch(
      /keys come from the deploy-time setting sops/,
    );
  });

  it('refuse the whole configuration: the sync of the repository names every one, nothing is synced', async () => {
    await expect(loadConfig(dir, localSettings())).rejects.toThrow(
      /clusters\/prod\/apps\.yaml:1: Kustomization flux-system\/secrets spec\.kubeConfig: not supported yet/,
    );
  });
});

/**
 * The HelmRelease lifecycle settings real fleets patch into every release (install/upgrade
 * strategy, remediation, timeouts, cleanupOnFail, force, replace, uninstall, rollback, tests off):
 * settings of Helm actions tidegate never runs, each accepted with a note saying so.
 */
describe('HelmRelease lifecycle settings as fleets write them', () => {
  const dir = repository({
    'clusters/prod/flux-system/gotk-sync.yaml': ROOT_SYNC,
    'clusters/prod/releases.yaml': `apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: { name: charts, namespace: flux-system }
spec: { url: https://charts.example.com, interval: 1h }
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: web, namespace: flux-system }
spec:
  interval: 30m
  timeout: 10m
  chart:
    spec: { chart: web, version: 1.x, sourceRef: { kind: HelmRepository, name: charts } }
  install:
    crds: CreateReplace
    strategy: { name: RetryOnFailure, retryInterval: 2m }
    remediation: { retries: -1 }
    timeout: 10m
    replace: true
  upgrade:
    crds: CreateReplace
    cleanupOnFail: true
    force: true
    strategy: { name: RemediateOnFailure }
    remediation: { retries: 3, strategy: rollback }
    timeout: 10m
    preserveValues: false
    disableWaitForJobs: true
  rollback: { cleanupOnFail: true, recreate: true }
  uninstall: { keepHistory: false, deletionPropagation: background, disableHooks: true }
  test: { enable: false }
  driftDetection: { mode: enabled }
`,
  });

  it('are each accepted with a note saying what tidegate does instead; nothing is refused', async () => {
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(read.unsupported).toEqual([]);
    const notes = new Map(read.notes.map((n) => [n.field, n.message]));
    for (const field of [
      'spec.install.strategy',
      'spec.install.remediation',
      'spec.install.timeout',
      'spec.install.replace',
      'spec.upgrade.cleanupOnFail',
      'spec.upgrade.force',
      'spec.upgrade.strategy',
      'spec.upgrade.remediation',
      'spec.upgrade.timeout',
      'spec.upgrade.preserveValues',
      'spec.upgrade.disableWaitForJobs',
      'spec.rollback.cleanupOnFail',
      'spec.rollback.recreate',
      'spec.uninstall.keepHistory',
      'spec.uninstall.deletionPropagation',
      'spec.test',
    ])
      expect(notes.get(field), field).toMatch(/\w/);
    expect(notes.get('spec.uninstall.keepHistory')).toMatch(/no Helm install, upgrade, rollback or uninstall runs/);
    expect(notes.get('spec.test')).toMatch(/Helm tests are not run \(none are asked for\)/);
    // The release is a target, read as written.
    const web = (await loadConfig(dir, localSettings())).targets.find((t) => t.name === 'prod-web');
    expect(web?.name).toBe('prod-web');
    // The uninstall's disableHooks: the release's delete hooks do not run when it leaves Git; others do.
    expect(web?.helm?.disableHooks).toEqual(['delete']);
  });
});

/**
 * A tenant's Kustomization sourced from the tenant's own repository, which holds a HelmRelease: the
 * Flux objects of another repository are not read, and the HelmRelease used to be dropped without a
 * word (the target "unchanged"). Now that target's render fails, naming the HelmRelease and why.
 */
describe("Flux objects in another repository's path", () => {
  it('fail the render of the target sourced from it, naming each Kustomization and HelmRelease; other objects render', async () => {
    const tenant = repository({
      'team/release.yaml': `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: { name: web, namespace: team }
spec: { chart: { spec: { chart: web, sourceRef: { kind: HelmRepository, name: charts } } } }
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: { name: charts, namespace: team }
spec: { url: https://charts.example.com }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: team-settings, namespace: team }
data: { a: "1" }
`,
    });
    const origin = {
      kind: 'Kustomization' as const,
      namespace: 'flux-system',
      name: 'team',
      file: 'clusters/prod/tenants.yaml',
      inputs: [],
    };
    const declared = { name: 'tenant-team', cluster: 'prod', path: 'team' };
    const spec = {
      ...targetSchema.parse({
        ...declared,
        source: { url: 'https://github.com/acme/team-fleet.git', ref: { branch: 'main' } },
      }),
      origin,
    };
    await expect(renderTarget(spec, tenant, localSettings())).rejects.toThrow(
      /team\/release\.yaml \(HelmRelease\.helm\.toolkit\.fluxcd\.io\/team\/web\): a HelmRelease in another repository \(a tenant's\) is not read by tidegate yet/,
    );
    // The same files from this repository: the HelmRelease is configuration tidegate reads (not applied), the ConfigMap renders.
    const own = { ...targetSchema.parse(declared), origin };
    expect((await renderTarget(own, tenant, localSettings())).objects.map((o) => o.object.metadata.name)).toEqual([
      'team-settings',
    ]);
  });
});

/** The Flux Operator's kinds and Flux's source extensions, outside *.toolkit.fluxcd.io. */
describe('Flux kinds outside the toolkit groups', () => {
  const dir = repository({
    'clusters/prod/flux-system/gotk-sync.yaml': ROOT_SYNC,
    // A file holding only the Flux Operator's kinds (fluxcd.controlplane.io), as d2-fleet writes them.
    'clusters/prod/flux-instance.yaml': `apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata: { name: flux, namespace: flux-system }
spec: { distribution: { version: 2.x, registry: ghcr.io/fluxcd } }
`,
    'clusters/prod/operator.yaml': `apiVersion: fluxcd.controlplane.io/v1
kind: ResourceSet
metadata: { name: apps, namespace: flux-system }
spec: { inputs: [{ tenant: a }], resources: [] }
---
apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata: { name: bundle, namespace: flux-system }
spec: { sources: [], artifacts: [] }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: cluster-vars, namespace: flux-system }
data: { a: "1" }
`,
  });

  it('FluxInstance is noted and never applied; ResourceSet is refused by name; an ArtifactGenerator is read, never applied', async () => {
    const read = await readFlux(dir, [{ path: 'clusters/prod', cluster: 'prod' }], localSettings());
    expect(
      read.notes.filter((n) => n.object === 'FluxInstance flux-system/flux').map((n) => [n.file, n.line, n.message]),
    ).toEqual([
      ['clusters/prod/flux-instance.yaml', 1, expect.stringMatching(/installs Flux: tidegate applies neither/)],
    ]);
    expect(read.unsupported.map((u) => [u.file, u.object, u.message])).toEqual([
      [
        'clusters/prod/operator.yaml',
        'ResourceSet flux-system/apps',
        expect.stringMatching(/ResourceSet is not rendered/),
      ],
    ]);
    // The cluster's root target renders none of them: only the ConfigMap is applied.
    const root = read.targets.find((t) => t.origin?.root);
    if (!root) throw new Error('no root target');
    expect(
      (await renderTarget(root, dir, localSettings())).objects.map((o) => `${o.object.kind}/${o.object.metadata.name}`),
    ).toEqual(['ConfigMap/cluster-vars']);
  });
});
