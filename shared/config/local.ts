import { homedir } from 'node:os';
import { join } from 'node:path';

/** Bounds of every render (kustomize, helm, plain YAML): deploy-time settings, or the environment for local runs. */
export interface RenderLimits {
  /** Hosts remote kustomize bases and helm chart repositories may come from (none by default). */
  allowedHosts: readonly string[];
  timeoutMs: number;
  /** The most a render may produce (tool output, or plain YAML read). */
  maxBytes: number;
}

export const DEFAULT_RENDER_LIMITS: RenderLimits = { allowedHosts: [], timeoutMs: 120_000, maxBytes: 64 * 1024 * 1024 };

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
    render: {
      ...DEFAULT_RENDER_LIMITS,
      allowedHosts: (env['TIDEGATE_RENDER_HOSTS'] ?? '')
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    },
  };
}
