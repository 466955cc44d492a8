/**
 * Which fields of each Flux kind tidegate reads. A field not listed is reported as not supported
 * (never ignored without a word); a field tidegate reads differently or not at all carries a note.
 */
type Shape =
  | 'ok'
  | { note: string }
  | { judge: (value: unknown) => 'ok' | { note: string } | { refuse: string } }
  | { [field: string]: Shape }
  | [Shape];

const ok = 'ok' as const;
const note = (text: string) => ({ note: text });

const POLL = note(
  'the scheduled poll (deploy-time setting) decides how often tidegate looks; this interval is not used',
);
const RETRY = note('a failed sync is retried by the queue; this interval is not used');
const CREDENTIALS = note('credentials come from the deploy-time settings, not from a Secret in the cluster');
const SOURCE_REF = { kind: ok, name: ok, namespace: ok, apiVersion: ok };
const DEPENDS = [{ name: ok, namespace: ok }] as [Shape];
const SELECTOR = {
  group: ok,
  version: ok,
  kind: ok,
  name: ok,
  namespace: ok,
  labelSelector: ok,
  annotationSelector: ok,
};
const PATCHES = [{ patch: ok, target: SELECTOR }] as [Shape];
const IMAGES = [{ name: ok, newName: ok, newTag: ok, digest: ok }] as [Shape];
const CLUSTER_SOURCE = { kind: ok, name: ok, optional: ok };

const KUSTOMIZATION: Shape = {
  path: ok,
  sourceRef: SOURCE_REF,
  prune: ok,
  dependsOn: DEPENDS,
  targetNamespace: ok,
  serviceAccountName: ok,
  postBuild: { substitute: ok, substituteFrom: [CLUSTER_SOURCE] },
  patches: PATCHES,
  images: IMAGES,
  timeout: ok,
  wait: ok,
  healthChecks: note('tidegate waits for every object the target applies (wait: true), a superset of these'),
  suspend: ok,
  force: ok,
  components: ok,
  commonMetadata: { labels: ok, annotations: ok },
  deletionPolicy: {
    judge: (value) =>
      value === 'WaitForTermination'
        ? note(
            'when the Kustomization leaves Git its objects are deleted (as Delete), in the background: the removal does not wait for them to be gone',
          )
        : ['MirrorPrune', 'Delete', 'Orphan'].includes(String(value))
          ? ok
          : { refuse: `deletionPolicy ${String(value)}: not one of MirrorPrune, Delete, WaitForTermination, Orphan` },
  },
  healthCheckExprs: note(
    "CEL expressions are not evaluated: tidegate judges a custom kind's health by its status (a Stalled condition fails, a Ready condition decides once observedGeneration is current, a kind with neither is healthy once applied)",
  ),
  ignore: [{ paths: ok, target: { group: ok, kind: ok, name: ok, namespace: ok } }] as [Shape],
  interval: POLL,
  retryInterval: RETRY,
  decryption: {
    provider: {
      judge: (value) =>
        value === 'sops'
          ? note('SOPS-encrypted files are decrypted at render with age or AWS KMS keys (deploy-time setting sops)')
          : { refuse: `decryption provider ${String(value)}: only sops is supported` },
    },
    secretRef: note(
      'keys come from the deploy-time setting sops (age keys in secrets, AWS KMS key ARNs), not from a Secret in the cluster',
    ),
  },
};

const CHART_TEMPLATE = {
  spec: {
    chart: ok,
    version: ok,
    sourceRef: SOURCE_REF,
    interval: POLL,
    reconcileStrategy: note('the chart is read at every sync'),
  },
};

const REMEDIATION = note('a failed sync is recorded and retried on the next push or poll; no Helm rollback runs');
/** Settings of Helm actions tidegate never runs: it renders the chart and applies the objects with server-side apply. */
const NO_HELM_ACTION = note(
  'no Helm install, upgrade, rollback or uninstall runs (the chart is rendered and applied with server-side apply): this setting has nothing to act on',
);
const ACTION_TIMEOUT = note("the release's spec.timeout bounds the wait for its objects");
const VALIDATION = note('the apiserver validates every object in a server-side dry run before anything is applied');
const HELM_ACTION = {
  crds: ok,
  disableWait: ok,
  remediation: REMEDIATION,
  strategy: REMEDIATION,
  timeout: ACTION_TIMEOUT,
  disableHooks: ok,
  disableOpenAPIValidation: VALIDATION,
  disableSchemaValidation: VALIDATION,
  disableTakeOwnership: NO_HELM_ACTION,
  disableWaitForJobs: note('tidegate waits for Jobs of the release like every other object (wait: true)'),
};
/** `spec.test`: Helm tests are never run; asking for none is a note, asking for them is refused (nothing would run them). */
const HELM_TEST: Shape = {
  judge: (value) =>
    (value as { enable?: unknown } | null)?.enable === true
      ? {
          refuse:
            'Helm tests (enable: true) are not run by tidegate yet: its health checks wait for the objects instead',
        }
      : note('Helm tests are not run (none are asked for); test hooks are left out of the release'),
};

const HELM_RELEASE: Shape = {
  chart: CHART_TEMPLATE,
  chartRef: SOURCE_REF,
  values: ok,
  valuesFrom: [{ ...CLUSTER_SOURCE, valuesKey: ok, targetPath: ok }],
  releaseName: ok,
  targetNamespace: ok,
  serviceAccountName: ok,
  storageNamespace: note('tidegate keeps no Helm release Secrets: the release state lives in tidegate-system'),
  install: { ...HELM_ACTION, createNamespace: ok, replace: NO_HELM_ACTION, skipCRDs: ok },
  upgrade: {
    ...HELM_ACTION,
    cleanupOnFail: note('a failed sync leaves what it applied; the next sync converges and prunes what left the chart'),
    force: note('objects are applied with server-side apply, taking the fields tidegate owns'),
    preserveValues: note('values come from Git at every sync'),
  },
  uninstall: {
    disableHooks: ok,
    keepHistory: NO_HELM_ACTION,
    deletionPropagation: NO_HELM_ACTION,
    disableWait: NO_HELM_ACTION,
    timeout: ACTION_TIMEOUT,
  },
  rollback: {
    disableHooks: ok,
    timeout: ACTION_TIMEOUT,
    disableWait: NO_HELM_ACTION,
    disableWaitForJobs: NO_HELM_ACTION,
    recreate: NO_HELM_ACTION,
    force: NO_HELM_ACTION,
    cleanupOnFail: NO_HELM_ACTION,
  },
  test: HELM_TEST,
  postRenderers: [{ kustomize: { patches: PATCHES, images: IMAGES } }],
  dependsOn: DEPENDS,
  driftDetection: {
    mode: ok,
    ignore: [
      {
        paths: note(
          "tidegate's ignore: the fields are sent when an object is created and never corrected after (also when Git changes them; Flux applies them again on an upgrade)",
        ),
        target: { group: ok, kind: ok, name: ok, namespace: ok },
      },
    ] as [Shape],
  },
  timeout: ok,
  suspend: ok,
  interval: POLL,
  maxHistory: note('history is kept in tidegate-system (its own limit)'),
};

/** Where a registry's credentials come from: the settings by host, or (ECR) the worker's own role. */
const PROVIDER: Shape = {
  judge: (value) =>
    value === 'generic'
      ? note('credentials come from the deploy-time setting registryCredentials, by host')
      : value === 'aws'
        ? note("ECR credentials come from the worker's own role (ecr:GetAuthorizationToken)")
        : { refuse: `provider ${String(value)}: only generic and aws registries are supported` },
};

/**
 * An OCIRepository's verify: cosign with the public keys of a Secret becomes the chart's verify with
 * the trusted key of the Secret's name (sources.ts ociChart); keyless cosign and notation are refused.
 */
function judgeVerify(value: unknown): { note: string } | { refuse: string } {
  const verify = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  const provider = verify['provider'] ?? 'cosign';
  const secret = (verify['secretRef'] as { name?: unknown } | null | undefined)?.name;
  const other = Object.keys(verify).filter((k) => !['provider', 'secretRef', 'matchOIDCIdentity'].includes(k));
  if (provider !== 'cosign')
    return { refuse: `${String(provider)} signature verification is not supported yet: only cosign with a public key` };
  if (typeof secret !== 'string' || secret === '' || verify['matchOIDCIdentity'] !== undefined)
    return {
      refuse:
        'keyless cosign verification (Fulcio/Rekor) is not supported yet: only cosign with a public key (verify.secretRef)',
    };
  if (other.length > 0) return { refuse: `verify.${other.join(', verify.')}: not supported yet` };
  return note(
    `the cosign signature (of the chart or the artifact) is verified with the deploy-time trusted key named ${secret} (setting trustedKeys; TIDEGATE_TRUSTED_KEYS locally), not with the keys of the Secret in the cluster; the transparency log (Rekor) is not checked, as Flux does not for a public key`,
  );
}
/** An OCIRepository: a HelmRelease's chart (chartRef), or a Kustomization's manifests (sourceRef). */
const OCI_REPOSITORY: Shape = {
  url: ok,
  ref: { tag: ok, semver: ok, digest: ok },
  insecure: ok,
  layerSelector: { mediaType: ok, operation: ok },
  provider: PROVIDER,
  secretRef: CREDENTIALS,
  serviceAccountName: CREDENTIALS,
  verify: { judge: judgeVerify },
  suspend: ok,
  interval: POLL,
  timeout: ok,
};

export const SHAPES: Readonly<Record<string, Shape>> = {
  Kustomization: KUSTOMIZATION,
  HelmRelease: HELM_RELEASE,
  GitRepository: {
    url: ok,
    ref: { branch: ok, tag: ok, semver: ok, commit: ok },
    ignore: note(
      "files these patterns exclude from Flux's artifact are not left out: tidegate renders the repository's files as they are (a path without a kustomization reads its .yaml, .yml and .json files, leaving out dot-files and dot-directories)",
    ),
    secretRef: CREDENTIALS,
    interval: POLL,
    timeout: ok,
  },
  HelmRepository: {
    url: ok,
    type: ok,
    insecure: ok,
    provider: PROVIDER,
    secretRef: CREDENTIALS,
    interval: POLL,
    timeout: ok,
  },
  HelmChart: CHART_TEMPLATE.spec,
  OCIRepository: OCI_REPOSITORY,
  ArtifactGenerator: {
    sources: [{ alias: ok, kind: ok, name: ok, namespace: ok }],
    artifacts: [
      {
        name: ok,
        copy: ok,
        revision: note('the revision a sync records is the commit it synced'),
        originRevision: note('the revision a sync records is the commit it synced'),
      },
    ],
  },
  ImageRepository: { image: ok, insecure: ok, secretRef: CREDENTIALS, interval: POLL, timeout: ok },
  ImagePolicy: {
    imageRepositoryRef: SOURCE_REF,
    policy: {
      semver: { range: ok },
      alphabetical: { order: ok },
      numerical: { order: ok },
    },
    filterTags: { pattern: ok, extract: ok },
    digestReflectionPolicy: ok,
  },
  ImageUpdateAutomation: {
    sourceRef: SOURCE_REF,
    git: {
      checkout: { ref: { branch: ok } },
      commit: { author: { name: ok, email: ok }, messageTemplate: note('tidegate writes its own commit message') },
      push: { branch: ok },
    },
    update: { path: note('every file of the repository is searched for markers'), strategy: ok },
    interval: POLL,
  },
};

export interface FieldFinding {
  field: string;
  note?: string;
  /** Why it is refused, when the field's value decides (else the generic reason). */
  refuse?: string;
}

/** The fields of a spec that tidegate does not read (no note) or reads differently (with its note). */
export function checkFields(spec: unknown, shape: Shape, path = 'spec'): FieldFinding[] {
  if (shape === 'ok') return [];
  if ('note' in shape && typeof shape.note === 'string') return [{ field: path, note: shape.note }];
  if ('judge' in shape && typeof shape.judge === 'function') {
    const judged = shape.judge(spec);
    return judged === 'ok' ? [] : [{ field: path, ...judged }];
  }
  if (Array.isArray(shape))
    return Array.isArray(spec) ? spec.flatMap((item, i) => checkFields(item, shape[0], `${path}[${i}]`)) : [];
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return [];
  const fields = shape as Record<string, Shape>;
  return Object.entries(spec).flatMap(([key, value]) =>
    Object.hasOwn(fields, key)
      ? checkFields(value, fields[key] as Shape, `${path}.${key}`)
      : [{ field: `${path}.${key}` }],
  );
}

/**
 * Flux kinds tidegate does not map to targets: a note where leaving them out is what it means to
 * do, a refusal (by name) where what they generate would be left out.
 */
export const UNMAPPED_KINDS: Readonly<Record<string, { note: string } | { refuse: string }>> = {
  FluxInstance: note(
    "the Flux Operator's FluxInstance installs Flux: tidegate applies neither (it does Flux's work itself)",
  ),
  ResourceSet: {
    refuse: 'a ResourceSet is not rendered by tidegate yet: the objects it generates from its inputs would be left out',
  },
  ResourceSetInputProvider: { refuse: 'not read by tidegate yet (it feeds a ResourceSet, which is not rendered)' },
  ExternalArtifact: {
    refuse:
      'an ExternalArtifact written into the repository is not read: tidegate reads those an ArtifactGenerator of the repository makes',
  },
};
