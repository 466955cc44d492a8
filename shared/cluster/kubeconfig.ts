/**
 * kubeconfig support for local shells (CLI, dev server, tests, benchmarks): a second entry of
 * this module, so Lambda bundles never include @kubernetes/client-node.
 */
import { KubeConfig } from '@kubernetes/client-node';

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

/**
 * Locally a cluster alias is a kubeconfig context: the context of that name when it exists,
 * else the explicitly chosen context, else the current one.
 */
export function kubeConfigForAlias(path: string, alias: string, explicitContext?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  const names = kc.getContexts().map((c) => c.name);
  const context = explicitContext ?? (names.includes(alias) ? alias : kc.getCurrentContext());
  if (!names.includes(context)) throw new Error(`kubeconfig ${path} has no context "${context}"`);
  kc.setCurrentContext(context);
  return kc;
}
