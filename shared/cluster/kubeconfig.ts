/**
 * kubeconfig support for local shells (CLI, dev server, tests, benchmarks): a second entry of
 * this module, so Lambda bundles never include @kubernetes/client-node.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { TidegateError } from '../model/index.js';

/** The parts of a cluster connection tidegate needs: endpoint, CA and a bearer token. */
export interface ClusterEndpoint {
  name: string;
  server: string;
  /** PEM of the certificate authority. */
  caPem: string;
  token: string;
}

/** A KubeConfig for an endpoint given as parts (EKS DescribeCluster + token, or test servers). */
export function kubeConfigFromEndpoint(endpoint: ClusterEndpoint): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: endpoint.name,
        server: endpoint.server,
        caData: Buffer.from(endpoint.caPem).toString('base64'),
        skipTLSVerify: false,
      },
    ],
    users: [{ name: endpoint.name, token: endpoint.token }],
    contexts: [{ name: endpoint.name, cluster: endpoint.name, user: endpoint.name }],
    currentContext: endpoint.name,
  });
  return kc;
}

/** A KubeConfig from a kubeconfig file, optionally switched to a named context. */
export function kubeConfigFromFile(path: string, context?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  if (context) kc.setCurrentContext(context);
  return kc;
}

/** What deploy-time settings say of a cluster alias: an EKS cluster, or an endpoint. */
export type AliasCluster = { eks?: { name: string; region: string; roleArn?: string }; server?: string };

/**
 * Locally a cluster alias resolves explicitly, never to whatever context happens to be current:
 * the context chosen with --context; else the kubeconfig context named like the alias; else the
 * context of the cluster the deploy-time settings map the alias to (an EKS cluster, found by its
 * ARN as `aws eks update-kubeconfig` names it, or an endpoint, found by its server URL). An alias
 * that resolves to nothing is an error naming the alias and everything looked up. The alias ""
 * (a command given no cluster: status, get, events) is the current context.
 */
export function kubeConfigForAlias(
  path: string,
  alias: string,
  explicitContext?: string,
  settingsClusters: Record<string, AliasCluster> = {},
): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  const names = kc.getContexts().map((c) => c.name);
  const context =
    explicitContext ?? (alias ? contextOfAlias(kc, alias, settingsClusters[alias]) : kc.getCurrentContext());
  if (context === undefined) {
    const mapped = settingsClusters[alias];
    const settings = mapped?.eks
      ? `the settings map it to EKS cluster ${mapped.eks.name} (${mapped.eks.region}) and no context is for that cluster`
      : mapped?.server
        ? `the settings map it to ${mapped.server} and no context is for that server`
        : 'no deploy-time settings named (TIDEGATE_SETTINGS_FILE) map it';
    throw new TidegateError(
      'UnknownCluster',
      `cluster alias "${alias}" resolves to no cluster: kubeconfig ${path} has no context "${alias}" (contexts: ${names.join(', ') || 'none'}), ${settings}, and no --context was given`,
    );
  }
  if (!names.includes(context)) throw new Error(`kubeconfig ${path} has no context "${context}"`);
  kc.setCurrentContext(context);
  return kc;
}

function contextOfAlias(kc: KubeConfig, alias: string, mapped: AliasCluster | undefined): string | undefined {
  const contexts = kc.getContexts();
  if (contexts.some((c) => c.name === alias)) return alias;
  if (!mapped) return undefined;
  const eks = mapped.eks;
  // The cluster's account, when the settings say it (the role assumed for a cluster in another account).
  const account = eks?.roleArn && /^arn:aws[a-z-]*:iam::(\d{12}):/.exec(eks.roleArn)?.[1];
  const arn =
    eks && new RegExp(`^arn:aws[a-z-]*:eks:${escape(eks.region)}:${account || '\\d{12}'}:cluster/${escape(eks.name)}$`);
  const matches = contexts.filter((c) => {
    if (arn) return arn.test(c.name) || arn.test(c.cluster);
    const server = kc.getCluster(c.cluster)?.server;
    return mapped.server !== undefined && server?.replace(/\/+$/, '') === mapped.server.replace(/\/+$/, '');
  });
  // Two contexts for one alias (a cluster of that name in two accounts): no guess.
  if (matches.length > 1)
    throw new TidegateError(
      'UnknownCluster',
      `cluster alias "${alias}" matches more than one kubeconfig context (${matches.map((c) => c.name).join(', ')}): name one with --context`,
    );
  return matches[0]?.name;
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The context names of a kubeconfig file. */
export function kubeconfigContexts(path: string): string[] {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc.getContexts().map((c) => c.name);
}
