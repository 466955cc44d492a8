import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { awsEndpoint, awsRegion, renderSettingsSchema, sourceSettingsSchema } from './deploy.js';
import { settingsSource } from './settings-file.js';

/** Bounds of every render (kustomize, helm, plain YAML): deploy-time settings, or the environment for local runs. */
export interface RenderLimits {
  /** Hosts remote kustomize bases and helm chart repositories may come from (none by default). */
  allowedHosts: readonly string[];
  timeoutMs: number;
  /** The most a render may produce (tool output, or plain YAML read). */
  maxBytes: number;
}

export const DEFAULT_RENDER_LIMITS: RenderLimits = { allowedHosts: [], timeoutMs: 120_000, maxBytes: 64 * 1024 * 1024 };

const MiB = 1024 * 1024;

/** What bounds the memory of a render beyond its time and output (deploy-time settings render.*). */
export interface RenderBudget {
  /** Resident memory of kustomize or helm with its children (render.maxMemoryMiB); GOMEMLIMIT is set below it. */
  maxMemoryBytes: number;
  /** The largest plain YAML file of a target, and the largest document of a tool's output (render.maxFileMiB). */
  maxFileBytes: number;
  /** Documents of one render (render.maxDocuments). */
  maxDocuments: number;
  /** YAML tokens of one document (render.maxDocumentTokens): what parsing it costs in memory and time. */
  maxDocumentTokens: number;
}

/** What one checkout of a repository may take (deploy-time settings source.*). */
export interface SourceLimits {
  /** Bytes received from the git server for one fetch (source.maxFetchMiB): isomorphic-git holds ~4.5 times that in memory. */
  maxFetchBytes: number;
  /** The largest object (file) of the repository (source.maxFileMiB). */
  maxFileBytes: number;
  /** The files of the exported tree, and what one fetch unpacks to (source.maxTreeMiB). */
  maxTreeBytes: number;
  /** Files of the exported tree (source.maxFiles). */
  maxFiles: number;
}

/** The memory budgets of a checkout and a render: sized for a 1024 MB worker function. */
export interface Budgets {
  render: RenderBudget;
  source: SourceLimits;
}

export const DEFAULT_BUDGETS: Budgets = {
  render: { maxMemoryBytes: 512 * MiB, maxFileBytes: 8 * MiB, maxDocuments: 10_000, maxDocumentTokens: 250_000 },
  source: { maxFetchBytes: 128 * MiB, maxFileBytes: 64 * MiB, maxTreeBytes: 512 * MiB, maxFiles: 100_000 },
};

/**
 * The keys SOPS-encrypted files of targets with `decryption` are decrypted with. Locally: age keys
 * from SOPS_AGE_KEY, SOPS_AGE_KEY_FILE or sops's default key file, and AWS KMS with the default AWS
 * credentials (any key they may use). On AWS: the deploy-time setting sops (age keys read from
 * their secrets, KMS only for the key ARNs it lists, with the worker's role).
 */
export interface SopsKeys {
  /** age identities (AGE-SECRET-KEY-1…). */
  ageKeys: readonly string[];
  /** AWS KMS: the key ARNs data keys may be decrypted with (undefined: any), and the endpoint and default region. */
  kms: { keyArns: readonly string[] | undefined; region: string; endpoint: string | undefined };
}

/** The age identities of a key file's text (one a line; comments and blank lines skipped, as age-keygen writes them). */
export const ageIdentities = (text: string): string[] =>
  text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('AGE-SECRET-KEY-'));

/** Local SOPS keys: SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, else sops's default file ($XDG_CONFIG_HOME/sops/age/keys.txt). */
function localSopsKeys(env: NodeJS.ProcessEnv, onLambda: boolean): SopsKeys {
  const file =
    env['SOPS_AGE_KEY_FILE'] ??
    (onLambda
      ? undefined
      : join(env['XDG_CONFIG_HOME'] ?? join(env['HOME'] ?? homedir(), '.config'), 'sops', 'age', 'keys.txt'));
  const fromFile = file && existsSync(file) ? ageIdentities(readFileSync(file, 'utf8')) : [];
  return {
    ageKeys: [...ageIdentities(env['SOPS_AGE_KEY'] ?? ''), ...fromFile],
    kms: { keyArns: undefined, region: awsRegion(env), endpoint: awsEndpoint(env) },
  };
}

/** Where tidegate keeps caches and finds its helper binaries on this machine. */
export interface LocalSettings {
  /** Cache root: built test servers, extracted tools, cloned repositories. */
  cacheDir: string;
  /** Explicit kubectl / helm paths, when the user set them. */
  kubectl: string | undefined;
  helm: string | undefined;
  /** The PATH to search last. */
  searchPath: string;
  /** kubeconfig for local runs: $KUBECONFIG (first entry) or ~/.kube/config. */
  kubeconfig: string;
  /** Token for HTTPS git sources and the GitHub API in local runs (TIDEGATE_GIT_TOKEN). */
  gitToken: string | undefined;
  /** GitHub Enterprise API for local runs (TIDEGATE_GITHUB_API_URL); github.com needs none. */
  githubApiUrl: string | undefined;
  /** A directory of trusted signing keys for local runs (TIDEGATE_TRUSTED_KEYS): a file <name>, <name>.asc or <name>.pub per key. */
  trustedKeysDir: string | undefined;
  render: RenderLimits;
  /**
   * Memory budgets of a checkout and a render: the deploy-time settings (settingsSource)
   * (render.maxMemoryMiB, source.maxFetchMiB, ...) when it is set, else the defaults.
   */
  budgets: Budgets;
  /** Keys for SOPS-encrypted files (targets with decryption). */
  sops: SopsKeys;
  /**
   * What the deploy-time settings the operator names (TIDEGATE_SETTINGS or TIDEGATE_SETTINGS_FILE;
   * never a file found in the working directory, which a commit could have put there) map each
   * cluster alias to: how a local run finds an alias's kubeconfig context when none is named like it.
   */
  clusterAliases: Record<string, { eks?: { name: string; region: string; roleArn?: string }; server?: string }>;
}

/** The clusters map of deploy-time settings, read leniently (a local run only looks up aliases in it). */
function clusterAliases(env: NodeJS.ProcessEnv): LocalSettings['clusterAliases'] {
  try {
    const clusters = (JSON.parse(settingsSource(env)?.text ?? '{}') as { clusters?: unknown }).clusters;
    return clusters && typeof clusters === 'object' ? (clusters as LocalSettings['clusterAliases']) : {};
  } catch {
    return {};
  }
}

/**
 * The budgets the deploy-time settings (their render and source sections) give;
 * undefined without them. Settings that do not validate give nothing here: deploySettings refuses them.
 */
function deployedBudgets(raw: string | undefined): Budgets | undefined {
  if (!raw) return undefined;
  let json: { render?: unknown; source?: unknown };
  try {
    json = JSON.parse(raw) as typeof json;
  } catch {
    return undefined;
  }
  const render = renderSettingsSchema.safeParse(json?.render ?? {});
  const source = sourceSettingsSchema.safeParse(json?.source ?? {});
  if (!render.success || !source.success) return undefined;
  return {
    render: {
      maxMemoryBytes: render.data.maxMemoryMiB * MiB,
      maxFileBytes: render.data.maxFileMiB * MiB,
      maxDocuments: render.data.maxDocuments,
      maxDocumentTokens: render.data.maxDocumentTokens,
    },
    source: {
      maxFetchBytes: source.data.maxFetchMiB * MiB,
      maxFileBytes: source.data.maxFileMiB * MiB,
      maxTreeBytes: source.data.maxTreeMiB * MiB,
      maxFiles: source.data.maxFiles,
    },
  };
}

/** Reads the local settings from the environment (this module is the only reader of process.env). */
export function localSettings(env: NodeJS.ProcessEnv = process.env): LocalSettings {
  const onLambda = env['AWS_LAMBDA_FUNCTION_NAME'] !== undefined;
  const cacheDir =
    env['TIDEGATE_CACHE'] ?? (onLambda ? '/tmp/tidegate' : join(env['HOME'] ?? homedir(), '.cache', 'tidegate'));
  const kubeconfig = env['KUBECONFIG']?.split(':')[0] || join(env['HOME'] ?? homedir(), '.kube', 'config');
  return {
    cacheDir,
    kubectl: env['TIDEGATE_KUBECTL'],
    helm: env['TIDEGATE_HELM'],
    searchPath: env['PATH'] ?? '',
    kubeconfig,
    gitToken: env['TIDEGATE_GIT_TOKEN'],
    githubApiUrl: env['TIDEGATE_GITHUB_API_URL'],
    trustedKeysDir: env['TIDEGATE_TRUSTED_KEYS'],
    budgets: deployedBudgets(settingsSource(env)?.text) ?? DEFAULT_BUDGETS,
    sops: localSopsKeys(env, onLambda),
    clusterAliases: onLambda ? {} : clusterAliases(env),
    render: {
      ...DEFAULT_RENDER_LIMITS,
      allowedHosts: (env['TIDEGATE_RENDER_HOSTS'] ?? '')
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    },
  };
}
