import { hostname, userInfo } from 'node:os';
import type { KubeClient } from '../cluster/index.js';
import type { FloorPolicy, LocalSettings, ReloadPolicySetting, SopsKeys, TenantLockdown } from '../config/index.js';
import type { GitHub } from '../github/index.js';
import type { RegistryAccess } from '../images/index.js';
import type { ReloadScope, ReloadStrategy } from '../reload/index.js';
import type { GitSource, TrustedKey } from '../source/index.js';
import type { Logger, MetricsSink } from '../telemetry/index.js';
import type { Notifier } from '../notify/index.js';
import { normaliseRepoUrl, sameOrigin, type KubeObject, type SyncProgress, type TokenSource } from '../model/index.js';

/** What the engine needs from its shell (Lambda, CLI, tests). */
export interface EngineContext {
  settings: LocalSettings;
  /** A client for a cluster alias (EKS from deploy-time settings, a kubeconfig context locally). */
  connect(cluster: string): Promise<KubeClient>;
  /** Credentials for a repository URL. */
  gitSource(url: string): GitSource;
  logger?: Logger;
  now?: () => Date;
  /** The GitOps repositories and tracked branches (image automation writes to them). */
  repositories?: ReadonlyArray<{
    url: string;
    branch: string;
    clusterResources?: readonly string[] | undefined;
    serviceAccount?: TenantLockdown | undefined;
    /** Keys only this repository's targets decrypt SOPS files with (instead of settings.sops). */
    sops?: SopsKeys | undefined;
    /** Tokens for other Git repositories this repository's targets read (by URL): for those URLs and these targets only. */
    sourceTokens?: ReadonlyMap<string, TokenSource> | undefined;
  }>;
  /** The policy floor of a cluster alias (deploy-time settings): gates tidegate.yaml cannot lower. */
  floor?: (cluster: string) => FloorPolicy | undefined;
  /** Trusted signing keys by name (deploy-time settings; TIDEGATE_TRUSTED_KEYS locally); unknown names are left out. */
  trustedKeys?: (names: readonly string[]) => Promise<TrustedKey[]>;
  /** The GitHub API for a repository URL (approvals, statuses, image pull requests); undefined when it has none. */
  github?: (repoUrl: string) => GitHub | undefined;
  /** Registry access for image automation (ECR endpoint and credentials, other registries' credentials). */
  registry?: RegistryAccess;
  /** The reload defaults (deploy-time settings): the strategy targets use unless they set one, the scheduled pass's scope, its debounce and throttle. */
  reload?: {
    strategy: ReloadStrategy;
    scope: ReloadScope;
    debounceMs?: number | undefined;
    maxRolls?: number | undefined;
    /** The deploy-time reload policy: the floor of every target's (windows, notify, approve). */
    floor?: ReloadPolicySetting | undefined;
  };
  /**
   * Who writes target state here (a Lambda request id, user@host), and how long to wait for a
   * target's lease while another writer holds it. Default: user@host of this process, 30 s.
   */
  lease?: { holder: string; waitMs: number; durationSeconds?: number; clockSkewSeconds?: number };
  /** Progress of each sync (the CLI shows it on a terminal). */
  progress?: (p: SyncProgress) => void;
  /**
   * The objects a sync would apply, once placed (namespace, labels) and before the dry-run, and the
   * chart's hooks, placed alike (`tidegate render`).
   */
  prepared?: (
    target: string,
    objects: ReadonlyArray<{ object: KubeObject; source: string }>,
    hooks: ReadonlyArray<{ object: KubeObject; source: string; hook: { phases: readonly string[]; weight: number } }>,
  ) => void;
  /** Where each sync's outcome, duration and push→applied latency are counted (CloudWatch metrics on Lambda); none locally. */
  metrics?: Pick<MetricsSink, 'sync'>;
  /**
   * Nothing retries this run (the command line): what may pass on its own (a cluster out of reach, an
   * apiserver or webhook answering 5xx) fails that target, saying so, and the run goes on to the
   * others. Without it (the worker) it is thrown, and the queue retries the message.
   */
  noRetry?: boolean;
  /** Where notifications go (deploy-time settings: providers and alerts); none: nothing is sent. */
  notifier?: Pick<Notifier, 'notify'>;
  /** Every cluster alias the shell knows (deploy-time settings), so targets removed from tidegate.yaml are found on clusters it no longer names. */
  clusters?: () => string[];
}

/** The lease options of a context, with the defaults. */
export function leaseOf(ctx: Pick<EngineContext, 'lease'>): NonNullable<EngineContext['lease']> {
  return ctx.lease ?? { holder: `${userInfo().username}@${hostname()}:${process.pid}`, waitMs: 30_000 };
}

/**
 * Whether `url` is the repository `repo` itself: the same once normalised, and on the same origin (a
 * URL whose "credentials" hide another host, `https://evil.example?@github.com/org/repo`, normalises
 * to the repository's but is not it).
 */
const ownUrl = (repo: string | undefined, url: string): boolean =>
  repo === undefined || url === repo || (normaliseRepoUrl(repo) === normaliseRepoUrl(url) && sameOrigin(repo, url));

/** The GitHub API of `url` for a target of `repo`: none for another repository's URL (its token is not the target's). */
export const githubFor = (
  ctx: Pick<EngineContext, 'github'>,
  repo: string | undefined,
  url: string,
): GitHub | undefined => (ownUrl(repo, url) ? ctx.github?.(url) : undefined);

/**
 * How a target of `repo` reaches `url`: with the repository's own credentials when it is the
 * repository itself; another URL (a target's source.url, a Flux GitRepository) with the token the
 * deploy-time settings give `repo` for that URL (a tenant's repository: its own credentials), else
 * without any; each with a cache of its own, so a writer of one repository never reads another
 * tracked repository with that repository's token. A token given for a URL goes to that URL's origin only
 * (scheme, host and port: never to the same path over plain http, or on another port).
 */
export function sourceFor(
  ctx: Pick<EngineContext, 'gitSource' | 'repositories'>,
  repo: string | undefined,
  url: string,
): GitSource {
  if (ownUrl(repo, url)) return ctx.gitSource(url);
  const { token: _token, username: _username, ...rest } = ctx.gitSource(url);
  const given = [...(repositoryOf(ctx, repo)?.sourceTokens ?? [])].find(
    ([u]) => normaliseRepoUrl(u) === normaliseRepoUrl(url) && sameOrigin(u, url),
  )?.[1];
  return given
    ? { ...rest, token: given, cacheScope: `source-of:${normaliseRepoUrl(repo ?? '')}` }
    : { ...rest, cacheScope: 'anonymous' };
}

const repositoryOf = (ctx: Pick<EngineContext, 'repositories'>, repo: string | undefined) =>
  repo === undefined ? undefined : ctx.repositories?.find((r) => normaliseRepoUrl(r.url) === normaliseRepoUrl(repo));

/** The cluster-scoped kinds a repository's targets may apply (deploy-time settings); undefined: every kind. */
export const clusterResourcesOf = (ctx: Pick<EngineContext, 'repositories'>, repo: string | undefined) =>
  repositoryOf(ctx, repo)?.clusterResources;

/** The settings a repository's renders run with: its own SOPS keys, when it has them. */
export const settingsFor = (ctx: Pick<EngineContext, 'repositories' | 'settings'>, repo: string | undefined) => {
  const sops = repositoryOf(ctx, repo)?.sops;
  return sops ? { ...ctx.settings, sops } : ctx.settings;
};

/** The tenant lockdown of a repository (deploy-time `repositories[].serviceAccount`), if any. */
export const lockdownOf = (ctx: Pick<EngineContext, 'repositories'>, repo: string | undefined) =>
  repositoryOf(ctx, repo)?.serviceAccount;

/** What a sync of a target needs of the reload defaults: its strategy (the target's, else the deploy-time one), the scope and the floor. */
export function reloadInputs(
  ctx: Pick<EngineContext, 'reload'>,
  spec: { reload: { strategy?: ReloadStrategy | undefined } },
): {
  reloadStrategy: ReloadStrategy;
  reloadScope: ReloadScope | undefined;
  reloadFloor: ReloadPolicySetting | undefined;
} {
  return {
    reloadStrategy: spec.reload.strategy ?? ctx.reload?.strategy ?? 'annotations',
    reloadScope: ctx.reload?.scope,
    reloadFloor: ctx.reload?.floor,
  };
}

/** The options of a reload pass the deployed functions run (scope, strategy, debounce, throttle, floor). */
export function reloadPassOptions(ctx: Pick<EngineContext, 'reload'>) {
  return {
    ...(ctx.reload?.scope ?? {}),
    strategy: ctx.reload?.strategy ?? ('annotations' as const),
    debounceMs: ctx.reload?.debounceMs,
    maxRolls: ctx.reload?.maxRolls,
    floor: ctx.reload?.floor,
  };
}
