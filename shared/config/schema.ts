import { Cron } from 'croner';
import * as z from 'zod';
import { validRange } from 'semver';
import { TidegateError } from '../model/index.js';
import { parseDuration } from './duration.js';

const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'must be a DNS-1123 label (lower case letters, digits, "-")');

/** A Kubernetes object name (ServiceAccounts): a DNS-1123 subdomain. */
const dnsSubdomain = z
  .string()
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'must be a DNS-1123 subdomain (lower case letters, digits, "-", ".")',
  );

const duration = z
  .string()
  .refine((s) => parseDuration(s) !== undefined, 'must be a duration such as 90s, 5m or 1h30m');

/**
 * An image repository as the OCI reference grammar names one (distribution/reference): an optional
 * registry host (with a port), then path components of lowercase letters and digits joined by
 * `.`, `_`, `__` or dashes; no tag or digest.
 */
const IMAGE_REPOSITORY =
  /^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

/** A path inside the repository: relative, no "..", no absolute path. */
const repoPath = z
  .string()
  .refine(
    (p) => !p.startsWith('/') && !p.split('/').includes('..'),
    'must be a path inside the repository (relative, without "..")',
  );

const ref = z
  .object({
    branch: z.string().min(1).optional(),
    tag: z.string().min(1).optional(),
    semver: z.string().min(1).optional().describe('a semver range; the highest matching tag is used'),
    commit: z
      .string()
      .regex(/^[0-9a-f]{40}$/, 'must be a full 40-character commit SHA')
      .optional(),
  })
  .strict()
  .refine(
    (r) => [r.branch, r.tag, r.semver].filter(Boolean).length <= 1,
    'set at most one of branch, tag and semver (commit may pin any of them)',
  );

const source = z
  .object({
    url: z.string().url().optional().describe('repository URL; default: the repository holding tidegate.yaml'),
    ref: ref.optional().describe('default: branch main'),
  })
  .strict();

const selector = z
  .object({
    group: z.string().optional(),
    kind: z.string().optional(),
    name: z.string().optional(),
    namespace: z.string().optional(),
  })
  .strict();

const ignoreRule = z
  .object({
    paths: z.array(z.string().regex(/^\//, 'must be a JSON pointer starting with "/"')).min(1),
    target: selector.optional().describe('objects the rule applies to; default: all'),
  })
  .strict();

/** A ConfigMap or Secret read from the cluster at sync time (substitutions, chart values). */
const clusterSource = {
  kind: z.enum(['ConfigMap', 'Secret']),
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'an object name'),
  namespace: dnsLabel.optional().describe("default: the target's namespace"),
  optional: z.boolean().default(false).describe('a missing object is taken as empty instead of failing the sync'),
};

const valuesFrom = z
  .object({
    ...clusterSource,
    valuesKey: z.string().min(1).default('values.yaml').describe('the key holding the values (YAML)'),
    targetPath: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'a dotted path such as ingress.host')
      .optional()
      .describe("the key's value is set (as a string) at this path instead of being merged as YAML"),
  })
  .strict();

/** Helm's actions, by the hooks they run: install, upgrade, rollback, and delete (a target leaving tidegate.yaml). */
export const HOOK_ACTIONS = ['install', 'upgrade', 'rollback', 'delete'] as const;
export type HookAction = (typeof HOOK_ACTIONS)[number];

const helm = z
  .object({
    releaseName: dnsLabel.optional(),
    values: z.array(repoPath).default([]).describe('values files, relative to the chart path'),
    valuesFrom: z
      .array(valuesFrom)
      .default([])
      .describe(
        'values read from ConfigMaps/Secrets in the cluster at sync time, merged in order, before values files',
      ),
    valuesInline: z
      .record(z.string(), z.unknown())
      .default({})
      .describe('values given here, merged over values files and valuesFrom'),
    set: z.record(z.string(), z.string()).default({}),
    crds: z
      .enum(['apply', 'skip'])
      .default('apply')
      .describe("skip: the chart's CustomResourceDefinitions are not applied"),
    disableHooks: z
      .union([z.boolean(), z.array(z.enum(HOOK_ACTIONS))])
      .default(false)
      .describe(
        "true: the chart's hooks never run; or the actions whose hooks do not run (install, upgrade, rollback, delete)",
      ),
  })
  .strict();

const selectorTarget = z
  .object({
    group: z.string().optional(),
    version: z.string().optional(),
    kind: z.string().optional(),
    name: z.string().optional(),
    namespace: z.string().optional(),
    labelSelector: z.string().optional(),
    annotationSelector: z.string().optional(),
  })
  .strict();

/** kustomize's patches and images, applied to what the target renders (Flux's patches, images and postRenderers). */
const overlay = z
  .object({
    patches: z
      .array(z.object({ patch: z.string().min(1), target: selectorTarget.optional() }).strict())
      .default([])
      .describe('inline strategic-merge or JSON 6902 patches, as in a kustomization'),
    images: z
      .array(
        z
          .object({
            name: z.string().min(1),
            newName: z.string().optional(),
            newTag: z.string().optional(),
            digest: z.string().optional(),
          })
          .strict(),
      )
      .default([]),
  })
  .strict();

/** A cosign signature checked with named trusted keys (charts and artifacts of oci:// registries). */
const cosignVerify = z
  .object({
    provider: z.literal('cosign').describe('a cosign signature of the manifest, made with a key'),
    keys: z
      .array(z.string().min(1))
      .min(1)
      .describe(
        'names of trusted keys (deploy-time setting trustedKeys; locally TIDEGATE_TRUSTED_KEYS): PEM public keys, one of which must have signed the manifest',
      ),
  })
  .strict();

const chart = z
  .object({
    repository: z
      .string()
      .regex(
        /^(https?|oci):\/\/[^\s/@]+(\/[^\s]*)?$/,
        'an http(s) URL of a Helm repository (the directory of its index.yaml) or oci://<registry>/<path>, without credentials',
      )
      .describe(
        'an HTTP(S) Helm repository, or an OCI registry path (oci://); its host must be listed in the deploy-time setting render.allowedHosts',
      ),
    name: z.string().regex(/^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$/i, 'a chart name'),
    version: z
      .string()
      .refine((v) => validRange(v) !== null, 'a version or a semver range, such as 6.5.0 or ">=6.0.0 <7.0.0"')
      .default('*')
      .describe('an exact version or a semver range: the newest matching version at sync time is rendered'),
    tag: z
      .string()
      .regex(/^[\w][\w.-]{0,127}$/, 'an OCI tag')
      .optional()
      .describe('oci:// only: the chart at this tag, whatever version it holds (instead of version)'),
    digest: z
      .string()
      .regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex digits>')
      .optional()
      .describe('oci:// only: the chart at this manifest digest (instead of version or tag)'),
    insecure: z.boolean().default(false).describe('oci:// over plain HTTP (a registry without TLS)'),
    tagPrefixV: z
      .boolean()
      .optional()
      .describe(
        'oci:// only: tags with a "v" prefix (v1.2.3) are versions too, as a Flux OCIRepository reads them (Helm reads strict versions only)',
      ),
    verify: cosignVerify
      .optional()
      .describe(
        'oci:// only: the chart is rendered only when a cosign signature (tag sha256-<digest>.sig) made by one of these keys names its manifest digest',
      ),
  })
  .strict()
  .refine((c) => c.repository.startsWith('oci://') || (c.tag === undefined && c.digest === undefined), {
    message: 'tag and digest pin charts of oci:// registries only',
  })
  .refine((c) => c.repository.startsWith('oci://') || c.verify === undefined, {
    message: 'verify checks charts of oci:// registries only (cosign signatures)',
  });

/** An OCI artifact of manifests: its repository and one reference (Flux's OCIRepository). */
const artifact = z
  .object({
    url: z
      .string()
      .regex(/^oci:\/\/[^\s/@]+\/[^\s@]+$/, 'oci://<registry>/<repository>, without credentials')
      .describe('its host must be listed in the deploy-time setting render.allowedHosts'),
    ref: z
      .object({
        tag: z
          .string()
          .regex(/^[\w][\w.-]{0,127}$/, 'an OCI tag')
          .optional(),
        semver: z
          .string()
          .refine((v) => validRange(v) !== null, 'a semver range')
          .optional()
          .describe('the newest tag in the range (tags with a "v" prefix too)'),
        digest: z
          .string()
          .regex(/^sha256:[0-9a-f]{64}$/, 'sha256:<64 hex digits>')
          .optional(),
      })
      .strict()
      .default({})
      .describe("Flux's precedence: digest, then semver, then tag; latest when none"),
    insecure: z.boolean().default(false).describe('over plain HTTP (a registry without TLS)'),
    mediaType: z.string().optional().describe('the layer to extract (default: the first)'),
    verify: cosignVerify
      .optional()
      .describe("the artifact's cosign signature, checked at every sync before its layer is read"),
  })
  .strict();

const cron = z.string().refine((expr) => {
  try {
    new Cron(expr, { paused: true });
    return true;
  } catch {
    return false;
  }
}, 'must be a cron expression such as "0 18 * * FRI"');

/** A change window: a cron schedule (5 fields) in a time zone, open for `duration` from each firing. */
export const windowSchema = z
  .object({
    allow: cron.optional().describe('cron: syncs may apply only inside such windows (when any allow window is set)'),
    deny: cron.optional().describe('cron: no sync applies inside such windows; deny wins over allow'),
    duration: duration,
    timeZone: z
      .string()
      .default('UTC')
      .refine((tz) => {
        try {
          new Intl.DateTimeFormat('en', { timeZone: tz });
          return true;
        } catch {
          return false;
        }
      }, 'must be an IANA time zone such as Europe/Berlin'),
  })
  .strict()
  .refine((w) => (w.allow === undefined) !== (w.deny === undefined), 'set exactly one of allow and deny');

/**
 * When a reload of a workload whose ConfigMaps/Secrets changed may roll it: per target in
 * tidegate.yaml, and in the deploy-time settings as the floor every target gets (the stricter wins).
 */
export const reloadPolicyFields = {
  windows: z
    .array(windowSchema)
    .default([])
    .describe(
      'reloads roll only inside these windows (allow/deny, as gate windows); a held reload rolls when one opens',
    ),
  mode: z
    .enum(['roll', 'notify'])
    .default('roll')
    .describe('notify: report each workload whose sources changed (status, notifications) and roll nothing'),
  approve: z
    .boolean()
    .default(false)
    .describe(
      'a reload waits for `tidegate approve <target> --reload` or a `/tidegate approve reload <target>` comment, approving exactly the changed sources held',
    ),
};

/** Sign-off before a sync applies: evaluated in order (suspend, windows, approvals, manual); the first that holds says why. */
export const gateSchema = z
  .object({
    approvals: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(0)
      .describe(
        'every commit of a change (since the last signed-off revision, changing what the target renders) needs this many approvals by people with write access who did not write, commit or push it: reviews of the merged pull request that brought it, or approvals naming a revision that contains it',
      ),
    manual: z
      .boolean()
      .default(false)
      .describe(
        'every commit of a change needs an approval naming a revision that contains it: `tidegate approve <target> <revision>` or a `/tidegate approve <revision>` comment',
      ),
    approvers: z
      .object({
        users: z.array(z.string().min(1)).default([]),
        teams: z.array(z.string().regex(/^[^/]+\/[^/]+$/, 'must be org/team-slug')).default([]),
      })
      .strict()
      .optional()
      .describe('who may sign off (reviews and `/tidegate approve` comments); default: users with write access'),
    windows: z.array(windowSchema).default([]),
    verify: z
      .object({
        mode: z
          .enum(['HEAD', 'Tag', 'TagAndHEAD'])
          .default('HEAD')
          .describe('HEAD: the commit must be signed; Tag: the annotated tag; TagAndHEAD: both'),
        keys: z
          .array(z.string().min(1))
          .min(1)
          .describe('names of trusted keys (OpenPGP or SSH) from the deploy-time settings'),
      })
      .strict()
      .optional()
      .describe('only revisions signed by a trusted key apply'),
  })
  .strict();

/** The namespace of a pull request's preview environment: a template of {{number}} (required) and {{target}}. */
const previewNamespace = z
  .string()
  .regex(
    /^(?:[a-z0-9-]|\{\{(?:number|target)\}\})+$/,
    'may hold lower case letters, digits, "-", {{number}} and {{target}}',
  )
  .refine((t) => t.includes('{{number}}'), 'must contain {{number}}: two pull requests never share a namespace');

/** A pull request's own copy of the target, in a namespace of its own (see docs/previews.md). */
export const previewSchema = z
  .object({
    enabled: z.boolean().default(false),
    namespace: previewNamespace.default('pr-{{number}}-{{target}}'),
    ttl: duration.default('72h').describe('torn down when no push reached the pull request for this long'),
    maxConcurrent: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(10)
      .describe('previews running at once on the cluster; the next waits until one is torn down'),
    substitute: z
      .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string())
      .default({})
      .describe("variables for the preview (over the target's substitute); values may use {{number}} and {{target}}"),
    url: z
      .string()
      .regex(
        /^https?:\/\/[^\s<>|"'`]+$/,
        'an http(s) URL (no spaces, quotes or <>|), such as https://pr-{{number}}.example.com',
      )
      .optional()
      .describe('the environment URL shown on GitHub, e.g. https://pr-{{number}}.preview.example.com'),
  })
  .strict();

export const targetSchema = z
  .object({
    name: dnsLabel,
    cluster: z
      .string()
      .min(1)
      .describe('cluster alias: deploy-time settings map it to an EKS cluster; locally a kubeconfig context'),
    source: source.default({}),
    path: repoPath.default('.'),
    render: z.enum(['auto', 'yaml', 'kustomize', 'helm']).default('auto'),
    helm: helm.optional(),
    assemble: z
      .array(
        z
          .object({
            from: z.string().min(1).describe('a path of the repository, or a glob (apps/base/**)'),
            to: z.string().describe('a directory ("base/", "" for the top) or a file path'),
            exclude: z.array(z.string()).optional(),
          })
          .strict(),
      )
      .optional()
      .describe(
        "read path in a directory of the repository's files copied by these rules (an ArtifactGenerator's ExternalArtifact)",
      ),
    artifact: artifact
      .optional()
      .describe(
        "render the files of this OCI artifact (Flux's OCIRepository, as `flux push artifact` makes them) at path, instead of files in Git",
      ),
    chart: chart
      .optional()
      .describe(
        'render this chart from a Helm repository (values files from path, with helm.values) instead of files in Git',
      ),
    targetNamespace: dnsLabel.optional().describe('namespace set on every namespaced object; created if missing'),
    namespace: dnsLabel
      .optional()
      .describe("namespace of namespaced objects that name none (and helm's release namespace); not created"),
    createNamespace: z
      .boolean()
      .default(false)
      .describe('create namespace when it does not exist (never pruned), as targetNamespace is'),
    serviceAccountName: dnsSubdomain
      .optional()
      .describe(
        "apply as this ServiceAccount (Kubernetes impersonation), as Flux's serviceAccountName: it lives in targetNamespace, else namespace (a Flux object's own namespace for targets read from Flux)",
      ),
    kustomize: overlay.optional().describe('patches and image overrides applied to the rendered objects'),
    components: z
      .array(
        z
          .string()
          .min(1)
          .refine(
            (p) => !p.startsWith('/') && !/^[a-z][a-z0-9+.-]*:|^git@|^github\.com[:/]/i.test(p),
            'must be a local path relative to the target path (no URL, no absolute path)',
          ),
      )
      .optional()
      .describe(
        "kustomize Components added to the path's kustomization (one is generated for a path without), relative to path, as a Flux Kustomization's spec.components",
      ),
    commonMetadata: z
      .object({
        labels: z.record(z.string(), z.string()).default({}),
        annotations: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .optional()
      .describe(
        "labels and annotations set on every rendered object (over its own), after patches and substitution, as a Flux Kustomization's spec.commonMetadata",
      ),
    decryption: z
      .object({ provider: z.literal('sops') })
      .strict()
      .optional()
      .describe(
        'decrypt SOPS-encrypted manifests, secretGenerator files and helm values files (age and AWS KMS keys from the deploy-time setting sops)',
      ),
    prune: z.boolean().default(true),
    deletionPolicy: z
      .enum(['mirrorPrune', 'delete', 'orphan'])
      .optional()
      .describe(
        'when the target leaves tidegate.yaml: mirrorPrune (default) deletes its objects when prune is true; delete deletes them anyway; orphan leaves them',
      ),
    allowEmpty: z.boolean().default(false).describe('allow a render with no objects to prune everything'),
    timeout: duration.default('5m'),
    wait: z.boolean().default(true).describe('wait for applied objects to become ready, up to timeout'),
    dependsOn: z.array(dnsLabel).default([]),
    substitute: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    substituteFrom: z
      .array(z.object(clusterSource).strict())
      .default([])
      .describe('variables from ConfigMaps/Secrets in the cluster at sync time; substitute wins over them'),
    suspend: z.boolean().default(false),
    gate: gateSchema.default({ approvals: 0, manual: false, windows: [] }),
    ignore: z.array(ignoreRule).default([]),
    force: z.boolean().default(false).describe('recreate objects whose immutable fields changed'),
    drift: z.enum(['correct', 'warn']).default('correct'),
    rollback: z
      .object({
        onFailedHealth: z
          .boolean()
          .default(false)
          .describe('re-apply the last healthy revision and pin the target when health fails'),
      })
      .strict()
      .default({ onFailedHealth: false }),
    reload: z
      .object({
        enabled: z
          .boolean()
          .default(true)
          .describe('roll workloads with Reloader annotations whose ConfigMaps/Secrets changed, right after apply'),
        strategy: z
          .enum(['annotations', 'env-vars'])
          .optional()
          .describe('default: the deploy-time setting (annotations)'),
        ...reloadPolicyFields,
      })
      .strict()
      .default({ enabled: true, windows: [], mode: 'roll', approve: false }),
    preview: previewSchema.optional(),
  })
  .strict()
  .refine((t) => !t.chart || t.render === 'auto' || t.render === 'helm', {
    message: 'a target with chart renders with helm (render: auto or helm)',
    path: ['render'],
  });

const order = z.enum(['asc', 'desc']).default('asc');

/** An image policy, in the shape of Flux's ImageRepository + ImagePolicy. */
export const imagePolicySchema = z
  .object({
    name: z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be lower case letters, digits and "-"'),
    namespace: z
      .string()
      .optional()
      .describe(
        'when set, only markers "<namespace>:<name>" match; otherwise any namespace does (Flux markers work unchanged)',
      ),
    repository: z
      .string()
      .min(1)
      .max(255)
      .regex(IMAGE_REPOSITORY, 'must be an image repository of the OCI reference grammar, such as ghcr.io/acme/app')
      .describe(
        'image repository, e.g. ghcr.io/stefanprodan/podinfo or 123456789012.dkr.ecr.eu-west-1.amazonaws.com/podinfo',
      ),
    insecure: z.boolean().default(false).describe('plain HTTP (a registry on localhost)'),
    policy: z.union([
      z.object({ semver: z.object({ range: z.string().min(1) }).strict() }).strict(),
      z.object({ alphabetical: z.object({ order }).strict() }).strict(),
      z.object({ numerical: z.object({ order }).strict() }).strict(),
    ]),
    filterTags: z
      .object({ pattern: z.string().min(1), extract: z.string().optional() })
      .strict()
      .optional(),
    digest: z.boolean().default(false).describe('pin the digest: image references become name:tag@sha256:...'),
    writeBack: z
      .enum(['auto', 'commit', 'pullRequest'])
      .default('auto')
      .describe(
        'commit: push to the tracked branch; pullRequest: push branch tidegate/images/<name> and open or update one pull request (needs GitHub API access); auto: pullRequest when a target of the repository requires approvals (its gate or its cluster floor), else commit',
      ),
  })
  .strict();

/** A Flux repository read as configuration: the path Flux's flux-system Kustomization syncs, on a cluster. */
export const fluxEntrySchema = z
  .object({
    path: repoPath.describe('the directory flux bootstrap wrote, e.g. clusters/production'),
    cluster: z.string().min(1).describe('cluster alias of every target read from it'),
    prefix: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?-$/, 'lower case letters, digits and "-", ending with "-"')
      .optional()
      .describe('put before the name of every target read from it (needed when two paths declare the same names)'),
  })
  .strict();

export const configSchema = z
  .object({
    targets: z.array(targetSchema).default([]),
    flux: z
      .array(fluxEntrySchema)
      .default([])
      .describe('Flux repositories read as configuration: their Kustomizations and HelmReleases become targets'),
    images: z.array(imagePolicySchema).default([]),
    imageAutomation: z
      .object({
        author: z
          .object({ name: z.string().min(1), email: z.string().min(1) })
          .strict()
          .default({ name: 'tidegate', email: 'tidegate@users.noreply.github.com' }),
      })
      .strict()
      .default({ author: { name: 'tidegate', email: 'tidegate@users.noreply.github.com' } }),
  })
  .passthrough()
  .refine((c) => c.targets.length > 0 || c.flux.length > 0, {
    message: 'declare at least one target (or a flux path)',
    path: ['targets'],
  });

export type ImagePolicySpec = z.output<typeof imagePolicySchema>;

/** Where a target was read from when a Flux object declared it. */
export interface TargetOrigin {
  kind: 'Kustomization' | 'HelmRelease';
  namespace: string;
  name: string;
  file: string;
  /** The root Kustomization (flux-system): Flux's own components in it are never applied. */
  root?: boolean;
  /** The repository paths whose change may change this target's declaration (the path that declares it). */
  inputs: string[];
  /**
   * The ServiceAccount of the Kustomization declaring it, when that one applies as one: in Flux that
   * ServiceAccount creates this object, so a sync first asks the apiserver whether it may, and a
   * target naming no ServiceAccount of its own applies as that one (never as tidegate).
   */
  declaredBy?: { namespace: string; name: string } | undefined;
}

export type TargetSpec = z.output<typeof targetSchema> & { origin?: TargetOrigin };

/** The namespace a sync creates when it is missing (and never prunes): targetNamespace, or namespace with createNamespace. */
/** The Secrets a target's render reads values from (substituteFrom, helm.valuesFrom), as "field: name". */
export const secretSources = (spec: TargetSpec): string[] => [
  ...(spec.decryption ? ['decryption: SOPS-encrypted files'] : []),
  ...spec.substituteFrom.filter((s) => s.kind === 'Secret').map((s) => `substituteFrom: ${s.name}`),
  ...(spec.helm?.valuesFrom ?? []).filter((s) => s.kind === 'Secret').map((s) => `helm.valuesFrom: ${s.name}`),
];

/** Whether the target's chart hooks of an action do not run (helm.disableHooks). */
export function hooksDisabled(spec: Pick<TargetSpec, 'helm'>, action: HookAction): boolean {
  const disabled = spec.helm?.disableHooks;
  return disabled === true || (Array.isArray(disabled) && disabled.includes(action));
}

export const createdNamespace = (spec: TargetSpec): string | undefined =>
  spec.targetNamespace ?? (spec.createNamespace ? spec.namespace : undefined);

/** The ServiceAccount a target applies as, and the Kubernetes user name that is (`system:serviceaccount:<namespace>:<name>`). */
export interface TargetServiceAccount {
  namespace: string;
  name: string;
  user: string;
}

/** The deploy-time tenant lockdown of a repository: its targets apply as ServiceAccounts of this namespace. */
export interface TenantLockdown {
  namespace: string;
  /** The ServiceAccount of a target that names none. */
  name: string;
}

/**
 * The ServiceAccount a target applies as. Under its repository's lockdown: a ServiceAccount of the
 * lockdown's namespace, whatever namespace the target names (the repository chooses the name only:
 * its serviceAccountName, else the lockdown's). Without one: its serviceAccountName, in the
 * namespace of the Flux object it was read from (Flux's rule), else its targetNamespace, else its
 * namespace; none when it names none. A name with no namespace to find it in is an error.
 */
export function serviceAccountOf(spec: TargetSpec, lockdown?: TenantLockdown): TargetServiceAccount | undefined {
  // Who decides: the lockdown (its namespace always, its name by default), else the target's own
  // name (in its namespace), else the ServiceAccount that declared it in Flux (that one, whole).
  const own = spec.serviceAccountName
    ? { name: spec.serviceAccountName, namespace: spec.origin?.namespace ?? spec.targetNamespace ?? spec.namespace }
    : spec.origin?.declaredBy;
  const name = spec.serviceAccountName ?? lockdown?.name ?? own?.name;
  if (!name) return undefined;
  const namespace = lockdown ? lockdown.namespace : own?.namespace;
  if (!namespace)
    throw new TidegateError(
      'ConfigInvalid',
      `target ${spec.name} applies as ServiceAccount ${name}, but names no namespace to find it in: set targetNamespace or namespace`,
    );
  return { namespace, name, user: `system:serviceaccount:${namespace}:${name}` };
}
export type FluxEntry = z.output<typeof fluxEntrySchema>;
export type ClusterSource = z.output<z.ZodObject<typeof clusterSource>>;
export type ValuesFrom = z.output<typeof valuesFrom>;
export type TidegateConfig = z.output<typeof configSchema>;
export type IgnoreRule = z.output<typeof ignoreRule>;
export type GatePolicy = z.output<typeof gateSchema>;
export type PreviewSpec = z.output<typeof previewSchema>;

/** A cluster's floor (deploy-time settings): the gate no tidegate.yaml lowers, and whether previews may run there. */
export const floorSchema = gateSchema.extend({
  previews: z.boolean().optional().describe('false: no pull request preview environment runs on this cluster'),
});
export type FloorPolicy = z.output<typeof floorSchema>;
export type ChangeWindow = z.output<typeof windowSchema>;
/** A reload policy (tidegate.yaml's reload of a target, or the deploy-time floor). */
export interface ReloadPolicySetting {
  windows: ChangeWindow[];
  mode: 'roll' | 'notify';
  approve: boolean;
}
/** Which signatures a gate's verify checks: the commit (HEAD), the annotated tag (Tag), or both. */
export type VerifyMode = NonNullable<GatePolicy['verify']>['mode'];
export type SourceRef = z.output<typeof ref>;

/** The JSON Schema of tidegate.yaml, for editors (yaml-language-server). */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
