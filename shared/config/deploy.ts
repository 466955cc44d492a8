import * as z from 'zod';
import { parseDuration } from './duration.js';
import { floorSchema, reloadPolicyFields } from './schema.js';

/** Where a secret lives: Secrets Manager, SSM Parameter Store (SecureString), or inline (local runs only). */
const secretRef = z.union([
  z.object({ secretsManager: z.string().min(1) }).strict(),
  z.object({ ssm: z.string().min(1) }).strict(),
  z.object({ value: z.string().min(1) }).strict(),
]);

/** A GitHub App tidegate authenticates as: installation tokens for the API and git over HTTPS. */
const githubApp = z
  .object({
    appId: z.union([z.number().int().positive(), z.string().regex(/^\d+$/)]),
    installationId: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('default: found from the repository (GET /repos/{owner}/{repo}/installation)'),
    privateKey: secretRef.describe("the App's private key (PEM)"),
  })
  .strict();

/** What notifications can be about (the shape of Flux's Alert event types). */
export const NOTIFY_EVENTS = [
  'applied',
  'failed',
  'held',
  'reload-held',
  'rolled-back',
  'drift-corrected',
  'image-committed',
  'image-proposed',
  'preview-published',
  'dead-lettered',
  'alarm',
] as const;

/** Bounds of every render (deploy-time settings render.*). The memory defaults are sized for the 1024 MB worker. */
export const renderSettingsSchema = z
  .object({
    allowedHosts: z
      .array(z.string().regex(/^[a-z0-9.-]+$/i, 'a host name, without scheme or port'))
      .default([])
      .describe('hosts remote kustomize bases and helm chart repositories may be fetched from; none by default'),
    timeout: z
      .string()
      .refine((s) => parseDuration(s) !== undefined, 'must be a duration')
      .default('2m'),
    maxOutputMiB: z.number().int().min(1).max(1024).default(64),
    maxMemoryMiB: z
      .number()
      .int()
      .min(32)
      .max(10240)
      .default(512)
      .describe('resident memory of kustomize or helm (with its children): past it the tool is stopped'),
    maxFileMiB: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(8)
      .describe("the largest plain YAML file of a target's path, and the largest document a tool prints"),
    maxDocuments: z.number().int().min(1).max(1_000_000).default(10_000).describe('YAML documents of one render'),
    maxDocumentTokens: z
      .number()
      .int()
      .min(1000)
      .max(100_000_000)
      .default(250_000)
      .describe('YAML tokens of one document (parsing costs up to ~350 bytes of memory per token)'),
  })
  .strict()
  .default({
    allowedHosts: [],
    timeout: '2m',
    maxOutputMiB: 64,
    maxMemoryMiB: 512,
    maxFileMiB: 8,
    maxDocuments: 10_000,
    maxDocumentTokens: 250_000,
  });

/** What one checkout of a repository may take (deploy-time settings source.*): a repository past them is not synced. */
export const sourceSettingsSchema = z
  .object({
    maxFetchMiB: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(128)
      .describe('bytes received from the git server for one fetch (isomorphic-git holds ~4.5 times that in memory)'),
    maxFileMiB: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(64)
      .describe('the largest file (git object) of the repository'),
    maxTreeMiB: z
      .number()
      .int()
      .min(1)
      .max(16384)
      .default(512)
      .describe('the files of one checkout together, and what one fetch unpacks to'),
    maxFiles: z.number().int().min(1).max(10_000_000).default(100_000).describe('files of one checkout'),
  })
  .strict()
  .default({ maxFetchMiB: 128, maxFileMiB: 64, maxTreeMiB: 512, maxFiles: 100_000 });

/** Keys for SOPS-encrypted files: age identities in secrets, and the AWS KMS keys the worker may decrypt data keys with. */
const sopsKeys = z
  .object({
    ageKeys: z.array(secretRef).default([]).describe('secrets holding age identities (AGE-SECRET-KEY-1…, one a line)'),
    kmsKeyArns: z
      .array(
        z
          .string()
          .regex(
            /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/.+$/,
            'a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)',
          ),
      )
      .default([])
      .describe('AWS KMS keys whose data keys the worker may decrypt (with its own role)'),
  })
  .strict();

export const deploySettingsSchema = z
  .object({
    /** For editors: the JSON schema the file follows (schema/settings.schema.json). */
    $schema: z.string().optional(),
    /** The GitOps repositories (each holds a tidegate.yaml) and the branch that is applied. */
    repositories: z
      .array(
        z
          .object({
            url: z.string().url(),
            branch: z.string().default('main'),
            token: secretRef.optional().describe('for git over HTTPS and the GitHub API (pull requests)'),
            githubApiUrl: z
              .string()
              .url()
              .optional()
              .describe('GitHub Enterprise: https://<host>/api/v3; github.com needs none'),
            github: z.object({ app: githubApp }).strict().optional().describe('a GitHub App for this repository'),
            clusterResources: z
              .array(z.string().regex(/^([a-z0-9.*-]+\/)?[A-Za-z0-9*]+$/, 'Kind or group/Kind, with * globs'))
              .optional()
              .describe(
                "cluster-scoped kinds this repository's targets may apply (Kind or group/Kind, * globs; core kinds have no group); [] = namespaced objects only; left out = every kind",
              ),
            sourceTokens: z
              .record(z.string().regex(/^https?:\/\/[^\s@]+$/, 'a Git repository URL, without credentials'), secretRef)
              .optional()
              .describe(
                "tokens for other Git repositories this repository's targets read (a tenant's repository, as Flux's GitRepository secretRef): each used for that URL only, by this repository's targets only",
              ),
            sops: sopsKeys
              .optional()
              .describe(
                "keys only this repository's targets decrypt with (instead of the deployment's sops): another repository's targets never get them",
              ),
            serviceAccount: z
              .object({
                namespace: z
                  .string()
                  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a namespace (DNS-1123 label)')
                  .describe(
                    "the tenant's namespace: the ServiceAccounts of this repository's targets are this namespace's",
                  ),
                name: z
                  .string()
                  .max(253)
                  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'a ServiceAccount name')
                  .describe("the ServiceAccount of a target that names none (Flux's --default-service-account)"),
              })
              .strict()
              .optional()
              .describe(
                'the tenant lockdown: every target of this repository applies as a ServiceAccount of this namespace (its serviceAccountName, else name), whatever namespace the target names',
              ),
          })
          .strict(),
      )
      .min(1),
    /**
     * Cluster aliases used in tidegate.yaml → EKS clusters (IAM auth, the usual case), or any
     * cluster by endpoint, CA and a bearer token kept in a secret.
     */
    clusters: z.record(
      z.string(),
      z.union([
        z
          .object({
            eks: z
              .object({
                name: z.string().min(1),
                region: z.string().min(1),
                roleArn: z
                  .string()
                  .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, 'an IAM role ARN')
                  .optional()
                  .describe('a role to assume first: a cluster in another account (serverless.yml clusterRoleArns)'),
                statusRoleArn: z
                  .string()
                  .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/, 'an IAM role ARN')
                  .optional()
                  .describe(
                    "the status page's view-only role for a cluster in another account (infra/cluster-access-role.yml StatusRoleArn output)",
                  ),
                externalId: z.string().min(2).optional(),
                sessionName: z
                  .string()
                  .regex(/^[\w+=,.@-]{2,64}$/)
                  .optional(),
              })
              .strict(),
            floor: floorSchema.optional(),
          })
          .strict(),
        z
          .object({
            server: z.string().url(),
            caData: z.string().min(1).describe('base64 PEM'),
            token: secretRef,
            floor: floorSchema.optional(),
          })
          .strict(),
      ]),
    ),
    /** A GitHub App for every repository that names neither its own App nor a token. */
    github: z.object({ app: githubApp }).strict().optional(),
    /**
     * Keys a gate's verify may name (an armored OpenPGP public key or an SSH public key line) and a
     * chart's verify may name (a cosign PEM public key), each in a secret or inline.
     */
    trustedKeys: z.record(z.string(), secretRef).default({}),
    /** Registries that need credentials (charts from oci://, image automation), by host: a username and a password or token in a secret. */
    registryCredentials: z
      .record(
        z.string().regex(/^[a-z0-9.-]+(:\d+)?$/i, 'a registry host (host or host:port)'),
        z.object({ username: z.string().min(1), password: secretRef }).strict(),
      )
      .default({}),
    /**
     * Keys for SOPS-encrypted files of targets with decryption: age keys (each secret holds one or
     * more AGE-SECRET-KEY-1… lines) and the AWS KMS keys the worker may decrypt data keys with
     * (its role needs kms:Decrypt on them: serverless.yml sopsKmsKeyArns).
     */
    sops: sopsKeys.optional(),
    queueUrl: z.string().optional(),
    webhookSecret: secretRef.optional(),
    registrySecret: secretRef.optional(),
    /** Notifications (Flux's Provider and Alert): where messages go, and which events go where. */
    notifications: z
      .object({
        providers: z.record(
          z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'a provider name: lower case letters, digits, "-"'),
          z
            .object({
              type: z.enum(['slack', 'teams', 'discord', 'generic']),
              url: secretRef.describe('the webhook URL (it carries a token: keep it in a secret)'),
              secret: secretRef.optional().describe('generic: the key its requests are signed with (HMAC-SHA256)'),
            })
            .strict()
            .refine(
              (p) => p.type !== 'generic' || p.secret !== undefined,
              'a generic provider needs a secret: its requests are signed',
            ),
        ),
        alerts: z
          .array(
            z
              .object({
                provider: z.string(),
                events: z.array(z.enum(NOTIFY_EVENTS)).min(1),
                targets: z.array(z.string()).optional().describe('target names, "*" globs; default all'),
              })
              .strict(),
          )
          .default([]),
      })
      .strict()
      .refine((n) => n.alerts.every((a) => a.provider in n.providers), 'every alert must name one of providers')
      .optional(),
    /** Signs links to the status page (GET /status?expires=…&signature=…): without it the page is not served. */
    statusSecret: secretRef.optional(),
    /** The CloudWatch metrics the functions publish (Embedded Metric Format in their logs). */
    metrics: z
      .object({
        perTarget: z
          .boolean()
          .default(false)
          .describe(
            'also publish every sync metric with a Target dimension: CloudWatch bills each metric and target as a custom metric of its own (docs/cost.md); default: per cluster only',
          ),
        unchanged: z
          .boolean()
          .default(false)
          .describe(
            'also publish the metrics of syncs that changed nothing (SyncsUnchanged and their SyncDuration): a drift pass syncs every target every driftInterval, so these series are billed all month (docs/cost.md); default: only syncs that changed, failed or were held',
          ),
      })
      .strict()
      .default({ perTarget: false, unchanged: false }),
    /** The sync worker: how many messages one invocation handles at once. */
    worker: z
      .object({
        concurrency: z
          .number()
          .int()
          .min(1)
          .max(10)
          .default(4)
          .describe(
            "messages of different targets one invocation handles at once (each target's own in order); another starts only while those running have rendered and hold at most half of render.maxDocuments together, and renders run one at a time",
          ),
      })
      .strict()
      .default({ concurrency: 4 }),
    /** The scheduled reload pass (Reloader semantics) and the default strategy for targets. */
    reload: z
      .object({
        strategy: z.enum(['annotations', 'env-vars']).default('annotations'),
        namespaces: z.array(z.string()).optional().describe('namespaces to watch; default: all'),
        ignoreNamespaces: z.array(z.string()).default(['kube-system', 'tidegate-system']),
        resourceSelector: z
          .string()
          .optional()
          .describe('label selector for ConfigMaps/Secrets that may trigger reloads'),
        debounce: z
          .string()
          .refine((s) => parseDuration(s) !== undefined, 'must be a duration')
          .default('30s')
          .describe(
            'out-of-band changes (not from Git) to the sources of a workload within this long of each other roll it once, after the last',
          ),
        maxConcurrent: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe(
            'at most this many workloads rolled per cluster in one pass; the rest wait for the next (reported)',
          ),
        ...reloadPolicyFields,
      })
      .strict()
      .default({
        strategy: 'annotations',
        ignoreNamespaces: ['kube-system', 'tidegate-system'],
        debounce: '30s',
        windows: [],
        mode: 'roll',
        approve: false,
      }),
    /** Bounds of every render: where remote kustomize bases and chart repositories may come from, time, output and memory. */
    render: renderSettingsSchema,
    /** What one checkout of a repository may take: bytes fetched, the largest file, the tree's size and files. */
    source: sourceSettingsSchema,
    /** A poll re-syncs an unchanged revision once per interval, correcting drift. */
    driftInterval: z
      .string()
      .refine((s) => parseDuration(s) !== undefined, 'must be a duration')
      .default('10m'),
  })
  .strict();

export type DeploySettings = z.output<typeof deploySettingsSchema>;
export type NotifyEventKind = (typeof NOTIFY_EVENTS)[number];
export type SecretRef = z.output<typeof secretRef>;

/** AWS endpoint overrides for local runs and tests (AWS_ENDPOINT_URL, as the AWS SDKs define it). */
export const awsEndpoint = (env: NodeJS.ProcessEnv = process.env): string | undefined => env['AWS_ENDPOINT_URL'];
export const awsRegion = (env: NodeJS.ProcessEnv = process.env): string =>
  env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'] ?? 'us-east-1';

/** The deploy-time settings as JSON schema (schema/settings.schema.json, `npm run schema`). */
export function settingsJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(deploySettingsSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
