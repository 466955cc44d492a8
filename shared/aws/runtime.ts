import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { EksAuth, EndpointAuth, KubeClient } from '../cluster/index.js';
import {
  DEFAULT_RENDER_LIMITS,
  SecretStore,
  ageIdentities,
  awsEndpoint,
  awsRegion,
  deploySettings,
  localSettings,
  parseDuration,
  type DeploySettings,
  type SecretRef,
  type SopsKeys,
} from '../config/index.js';
import { apiUrlFor, appInstallationTokens, githubClients, repoName } from '../github/index.js';
import { TidegateError, UnknownClusterError, errorMessage, redactUrl, type TokenSource } from '../model/index.js';
import type { EngineContext } from '../usecases/index.js';
import type { GitSource } from '../source/index.js';
import { powertoolsLogger, powertoolsMetrics, type Logger, type MetricsSink } from '../telemetry/index.js';
import { ecrLogins } from '../images/index.js';
import { Notifier } from '../notify/index.js';
import type { TrackedRepo } from '../triggers/index.js';
import { SqsQueue } from './sqs-queue.js';

/** What needs the repositories' tokens: the engine and the tracked repositories with their credentials. */
export interface GitAccess {
  engine: EngineContext;
  tracked: Array<TrackedRepo & { source: GitSource }>;
}

/** Everything a Lambda handler needs, built once per container from the deploy-time settings. */
export interface Runtime {
  settings: DeploySettings;
  queue: SqsQueue;
  secrets: SecretStore;
  /** A webhook secret of the deploy-time settings, read on first use; undefined when it is not configured. */
  secret(name: 'webhookSecret' | 'registrySecret' | 'statusSecret'): Promise<string | undefined>;
  /** A client for a cluster alias, without reading any repository token. */
  connect(alias: string): Promise<KubeClient>;
  /** A view-only client for a cluster alias (the status page): another account's cluster through its statusRoleArn. */
  viewer(alias: string): Promise<KubeClient>;
  logger: Logger & { powertools: ReturnType<typeof powertoolsLogger>['powertools'] };
  /** CloudWatch metrics of this function (EMF in its log; the stack names the namespace). */
  metrics: MetricsSink;
  /** Where notifications go (deploy-time settings), without reading any repository token; none configured: undefined. */
  notifier: Notifier | undefined;
  /** The tracked repositories and branches, without credentials (what webhooks route by). */
  repositories: TrackedRepo[];
  /**
   * The engine and the tracked repositories with their tokens, read on first call (once per
   * container): functions that never touch Git (the webhooks, ECR events) never read a token, and
   * their roles need not allow it.
   */
  git(): Promise<GitAccess>;
  driftIntervalMs: number;
  /**
   * The stack's dead-letter queue (TIDEGATE_DEAD_LETTER_QUEUE_URL) and the sync queue's
   * maxReceiveCount (TIDEGATE_MAX_RECEIVES): the poll publishes its depth, the worker tells a
   * message's last failed delivery.
   */
  deadLetter: { queueUrl?: string | undefined; maxReceives?: number | undefined };
}

/** Builds the runtime: clients are created lazily, secrets read on first use, git tokens once. */
export async function createRuntime(service: string, env: NodeJS.ProcessEnv = process.env): Promise<Runtime> {
  const settings = deploySettings(env);
  const endpoint = awsEndpoint(env);
  const region = awsRegion(env);
  const aws = { region, ...(endpoint ? { endpoint } : {}) };
  const secrets = new SecretStore({
    secretsManager: async () => new (await import('@aws-sdk/client-secrets-manager')).SecretsManagerClient(aws),
    ssm: async () => new (await import('@aws-sdk/client-ssm')).SSMClient(aws),
  });
  const logger = powertoolsLogger(service);
  if (!settings.queueUrl)
    throw new TidegateError('SettingsInvalid', "no queue: TIDEGATE_QUEUE_URL (the stack's SyncQueue) is not set");
  const metrics = powertoolsMetrics(service, env['POWERTOOLS_METRICS_NAMESPACE'] ?? 'tidegate', settings.metrics);
  const notifier = settings.notifications ? notifierOf(settings.notifications, secrets, logger) : undefined;
  let git: Promise<GitAccess> | undefined;
  const clusters = clusterAccess(settings, secrets, logger, endpoint);
  let viewers: ReturnType<typeof clusterAccess> | undefined;
  return {
    connect: clusters.connect,
    viewer: (alias) =>
      (viewers ??= clusterAccess(settings, secrets, logger, endpoint, { viewOnly: true })).connect(alias),
    settings,
    queue: new SqsQueue((sdk) => new sdk.SQSClient(aws), settings.queueUrl),
    secrets,
    secret: async (name) => {
      const ref = settings[name];
      return ref ? secrets.get(ref) : undefined;
    },
    logger,
    metrics,
    notifier,
    repositories: settings.repositories.map((r) => ({ url: r.url, branch: r.branch })),
    git: () => {
      git ??= gitAccess(settings, secrets, logger, env, endpoint, clusters, { metrics, notifier }).catch(
        (err: unknown) => {
          git = undefined;
          throw err;
        },
      );
      return git;
    },
    driftIntervalMs: parseDuration(settings.driftInterval) ?? 600_000,
    deadLetter: {
      queueUrl: env['TIDEGATE_DEAD_LETTER_QUEUE_URL'] || undefined,
      maxReceives: Number(env['TIDEGATE_MAX_RECEIVES']) || undefined,
    },
  };
}

type EksSettings = Extract<DeploySettings['clusters'][string], { eks: unknown }>['eks'];

/**
 * How the status page reaches an EKS cluster: as itself in its own account, through the view-only
 * role of another account (statusRoleArn), never through the worker's role there.
 */
function viewOnly(alias: string, eks: EksSettings): EksSettings {
  if (!eks.roleArn) return eks;
  if (!eks.statusRoleArn)
    throw new TidegateError(
      'SettingsInvalid',
      `cluster ${alias} is in another account (eks.roleArn): the status page reads it through clusters.${alias}.eks.statusRoleArn (infra/cluster-access-role.yml StatusRoleArn), which is not set`,
    );
  return { ...eks, roleArn: eks.statusRoleArn };
}

/** Clusters of the settings, connected on first use (one client per alias for the life of the container). */
function clusterAccess(
  settings: DeploySettings,
  secrets: SecretStore,
  logger: Logger,
  endpoint: string | undefined,
  opts: { viewOnly?: boolean } = {},
): { connect(alias: string): Promise<KubeClient>; credentials: AwsCredentialIdentityProvider } {
  // Credentials for signing EKS tokens and calling ECR: the default chain, loaded on first use.
  let chain: Promise<AwsCredentialIdentityProvider> | undefined;
  const credentials: AwsCredentialIdentityProvider = async (): Promise<AwsCredentialIdentity> => {
    chain ??= import('@aws-sdk/credential-providers').then((m) => m.fromNodeProviderChain());
    return (await chain)();
  };
  const eks = new EksAuth({ credentials, eksEndpoint: endpoint, stsEndpoint: endpoint });
  const clients = new Map<string, Promise<KubeClient>>();
  const open = async (alias: string): Promise<KubeClient> => {
    const cluster = settings.clusters[alias];
    if (!cluster) throw new UnknownClusterError(alias, Object.keys(settings.clusters));
    if ('eks' in cluster) {
      const ref = opts.viewOnly ? viewOnly(alias, cluster.eks) : cluster.eks;
      return new KubeClient(await eks.auth(ref), () => eks.token(ref), { logger });
    }
    const token = await secrets.get(cluster.token);
    const caPem = Buffer.from(cluster.caData, 'base64').toString('utf8');
    return new KubeClient(new EndpointAuth({ server: cluster.server, caPem, token }), undefined, { logger });
  };
  const connect = (alias: string): Promise<KubeClient> => {
    let client = clients.get(alias);
    if (!client) {
      client = open(alias);
      client.catch(() => clients.delete(alias));
      clients.set(alias, client);
    }
    return client;
  };
  return { connect, credentials };
}

/** The engine wired for AWS: repository tokens read now, clusters and their credentials on first use. */
async function gitAccess(
  settings: DeploySettings,
  secrets: SecretStore,
  logger: Logger,
  env: NodeJS.ProcessEnv,
  endpoint: string | undefined,
  clusters: ReturnType<typeof clusterAccess>,
  telemetry: { metrics: MetricsSink; notifier: Notifier | undefined },
): Promise<GitAccess> {
  const { connect, credentials } = clusters;
  // A repository whose credential cannot be read fails its own syncs (with that error), never the others'.
  const tokens = new Map(
    await Promise.all(
      settings.repositories.map(async (r) => {
        try {
          return [r.url, await repositoryToken(settings, r, secrets)] as const;
        } catch (err) {
          logger.error('repository credential not readable', {
            repository: redactUrl(r.url),
            error: errorMessage(err),
          });
          const failing: TokenSource = () => Promise.reject(err);
          return [r.url, failing] as const;
        }
      }),
    ),
  );
  // Registry passwords are read with the tokens (a secret that cannot be read: that registry gets none).
  const registryLogins = new Map(
    await Promise.all(
      Object.entries(settings.registryCredentials).map(async ([host, c]) => {
        const password = await secrets.get(c.password).catch((err: unknown) => {
          logger.warn('registry credentials unreadable', { host, error: errorMessage(err) });
          return undefined;
        });
        return [host.toLowerCase(), password === undefined ? undefined : { username: c.username, password }] as const;
      }),
    ),
  );
  const ecr = ecrLogins({ endpoint, credentials });
  const sops = await sopsKeys(settings.sops, secrets, logger, env);
  // A repository with keys of its own decrypts with those only; the others never get them.
  const repositories = await Promise.all(
    settings.repositories.map(async ({ sops: own, sourceTokens, ...r }) => ({
      ...r,
      ...(own ? { sops: await sopsKeys(own, secrets, logger, env) } : {}),
      // A tenant's repository read with its own token, asked for when used (a secret unread fails that fetch only).
      ...(sourceTokens
        ? {
            sourceTokens: new Map(
              Object.entries(sourceTokens).map(([url, ref]) => [url, () => secrets.get(ref)] as const),
            ),
          }
        : {}),
    })),
  );
  const gitSource = (url: string): GitSource => ({ url, ...(tokens.get(url) ? { token: tokens.get(url) } : {}) });
  const github = githubClients((url) => ({
    apiUrl: settings.repositories.find((r) => r.url === url)?.githubApiUrl,
    token: tokens.get(url),
  }));
  const engine: EngineContext = {
    settings: {
      ...localSettings(env),
      render: {
        allowedHosts: settings.render.allowedHosts.map((h) => h.toLowerCase()),
        timeoutMs: parseDuration(settings.render.timeout) ?? DEFAULT_RENDER_LIMITS.timeoutMs,
        maxBytes: settings.render.maxOutputMiB * 1024 * 1024,
      },
      sops,
    },
    connect,
    gitSource,
    github,
    logger,
    metrics: telemetry.metrics,
    floor: (alias) => settings.clusters[alias]?.floor,
    trustedKeys: async (names) =>
      Promise.all(
        names
          .filter((n) => settings.trustedKeys[n])
          .map(async (name) => ({ name, key: await secrets.get(settings.trustedKeys[name] as SecretRef) })),
      ),
    repositories,
    registry: {
      awsEndpoint: endpoint,
      awsCredentials: credentials,
      // Registries of the settings by host; ECR's with the worker's own role.
      credentials: (host) => registryLogins.get(host.toLowerCase()) ?? ecr(host),
    },
    reload: {
      strategy: settings.reload.strategy,
      scope: settings.reload,
      debounceMs: parseDuration(settings.reload.debounce),
      maxRolls: settings.reload.maxConcurrent,
      floor: { windows: settings.reload.windows, mode: settings.reload.mode, approve: settings.reload.approve },
    },
    clusters: () => Object.keys(settings.clusters),
    ...(telemetry.notifier ? { notifier: telemetry.notifier } : {}),
  };
  return {
    engine,
    tracked: settings.repositories.map((r) => ({ url: r.url, branch: r.branch, source: gitSource(r.url) })),
  };
}

/**
 * The keys of SOPS-encrypted files (deploy-time setting sops): age identities read from their
 * secrets now (one that cannot be read is logged, and files only it opens fail their render), and
 * KMS for the listed key ARNs only, with this function's role.
 */
async function sopsKeys(
  setting: DeploySettings['sops'],
  secrets: SecretStore,
  logger: Logger,
  env: NodeJS.ProcessEnv,
): Promise<SopsKeys> {
  const ageKeys = await Promise.all(
    (setting?.ageKeys ?? []).map((ref) =>
      secrets.get(ref).then(ageIdentities, (err: unknown) => {
        logger.warn('SOPS age key unreadable', { error: errorMessage(err) });
        return [];
      }),
    ),
  );
  return {
    ageKeys: ageKeys.flat(),
    kms: { keyArns: setting?.kmsKeyArns ?? [], region: awsRegion(env), endpoint: awsEndpoint(env) },
  };
}

/** The notifier of the settings: provider URLs and keys read from their secrets on first use. */
function notifierOf(n: NonNullable<DeploySettings['notifications']>, secrets: SecretStore, logger: Logger): Notifier {
  const providers = Object.entries(n.providers).map(([name, p]) => ({
    name,
    type: p.type,
    url: () => secrets.get(p.url),
    ...(p.secret ? { secret: () => secrets.get(p.secret as SecretRef) } : {}),
  }));
  return new Notifier(providers, n.alerts, { logger });
}

/**
 * A repository's credential: its token, or installation tokens of its GitHub App (its own, else
 * the global one), whose private key is read now.
 */
async function repositoryToken(
  settings: DeploySettings,
  repo: DeploySettings['repositories'][number],
  secrets: SecretStore,
): Promise<string | TokenSource | undefined> {
  if (repo.token) return secrets.get(repo.token);
  const app = repo.github?.app ?? settings.github?.app;
  if (!app) return undefined;
  const apiUrl = apiUrlFor(repo.url, repo.githubApiUrl);
  if (!apiUrl)
    throw new TidegateError(
      'SettingsInvalid',
      `${repo.url} uses a GitHub App but has no githubApiUrl (GitHub Enterprise)`,
    );
  return appInstallationTokens(
    { appId: app.appId, installationId: app.installationId, privateKey: await secrets.get(app.privateKey) },
    apiUrl,
    repoName(repo.url),
  );
}

/** A getter that builds the runtime on first call and keeps it for the container; a failed build is retried next call. */
export function lazyRuntime(service: string, env: NodeJS.ProcessEnv = process.env): () => Promise<Runtime> {
  let pending: Promise<Runtime> | undefined;
  return () => {
    pending ??= createRuntime(service, env).catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
