import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KubeClient } from '../shared/cluster/index.js';
import { localSettings, parseDuration } from '../shared/config/index.js';
import { TidegateError, errorMessage, tokenReaches } from '../shared/model/index.js';
import type { EngineContext } from '../shared/usecases/index.js';
import { githubClients } from '../shared/github/index.js';
import { jsonLogger } from '../shared/telemetry/index.js';
import { kubeConfigForAlias } from '../shared/cluster/kubeconfig.js';
import { hostname, userInfo } from 'node:os';

export interface LocalOptions {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  verbose?: boolean;
  /** How long to wait for a target another writer is changing (a duration; default 60s). */
  wait?: string | undefined;
  /** The GitOps repository and the branch it tracks (--repo, --branch; default main). */
  repo?: string | undefined;
  branch?: string | undefined;
  /** The local working tree (--dir; default .): without --repo, TIDEGATE_GIT_TOKEN is for its origin's repository. */
  dir?: string | undefined;
}

/** The URL of a working tree's origin remote (the repository its targets belong to), when it has one. */
export function originUrl(dir: string): string | undefined {
  try {
    return (
      execFileSync('git', ['remote', 'get-url', 'origin'], { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/**
 * Where TIDEGATE_GIT_TOKEN may go: the repository it is given for (--repo; else the origin of the
 * --dir checkout) and other repositories on the same origin (scheme, host and port). A URL a commit
 * names elsewhere (a target's source.url, a Flux GitRepository, a remote base) is read without it.
 * The checkout's origin is read once, on first use.
 */
export function localTokenScope(opts: Pick<LocalOptions, 'repo' | 'dir'>): (url: string) => boolean {
  let home: string[] | undefined;
  return (url) => {
    home ??= [opts.repo ?? originUrl(resolve(opts.dir ?? '.'))].filter((u): u is string => u !== undefined);
    return tokenReaches(home, url);
  };
}

/** The engine wired for a local run: cluster aliases are kubeconfig contexts; `role` names this writer in target leases. */
export function localEngine(opts: LocalOptions, role = 'tidegate', settings = localSettings()): EngineContext {
  const kubeconfig = opts.kubeconfig ?? settings.kubeconfig;
  const waitMs = opts.wait === undefined ? 60_000 : parseDuration(opts.wait);
  if (waitMs === undefined)
    throw new TidegateError('Usage', `--wait must be a duration such as 30s or 5m, not "${opts.wait ?? ''}"`);
  const logger = jsonLogger(opts.verbose ? 'debug' : 'warn');
  const clients = new Map<string, KubeClient>();
  const reaches = localTokenScope(opts);
  const token = (url: string): string | undefined =>
    settings.gitToken && reaches(url) ? settings.gitToken : undefined;
  return {
    lease: { holder: `${userInfo().username}@${hostname()} (${role})`, waitMs },
    // A command is run once: one cluster out of reach fails its targets, the others are synced.
    noRetry: true,
    ...(opts.repo ? { repositories: [{ url: opts.repo, branch: opts.branch ?? 'main' }] } : {}),
    settings,
    connect: async (alias) => {
      // One client per alias for the command: connections and discovery are reused across its targets.
      let client = clients.get(alias);
      if (!client) {
        let kc;
        try {
          kc = kubeConfigForAlias(kubeconfig, alias, opts.context, settings.clusterAliases);
        } catch (err) {
          if (err instanceof TidegateError) throw err;
          const why = errorMessage(err).replace(/^ENOENT: no such file or directory, open .*$/, 'no such file');
          throw new TidegateError(
            'NoCluster',
            `no cluster for ${alias}: cannot read the kubeconfig ${kubeconfig} (${why})`,
          );
        }
        clients.set(alias, (client = new KubeClient(kc, undefined, { logger })));
      }
      return client;
    },
    gitSource: (url) => ({ url, ...(token(url) ? { token: token(url) } : {}) }),
    // The GitHub API of a repository the token reaches (its API host: api.github.com, or TIDEGATE_GITHUB_API_URL).
    github: githubClients((url) => ({ apiUrl: settings.githubApiUrl, token: token(url) })),
    trustedKeys: (names) => Promise.resolve(readTrustedKeys(settings.trustedKeysDir, names)),
    logger,
  };
}

/** Trusted keys from a directory: <name>, <name>.asc or <name>.pub. */
function readTrustedKeys(dir: string | undefined, names: readonly string[]): Array<{ name: string; key: string }> {
  if (!dir) return [];
  return names.flatMap((name) => {
    const file = [name, `${name}.asc`, `${name}.pub`].map((f) => join(dir, f)).find((f) => existsSync(f));
    return file ? [{ name, key: readFileSync(file, 'utf8') }] : [];
  });
}
