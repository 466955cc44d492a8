import { TidegateError, errorMessage, type TokenSource } from '../model/index.js';
import type { RepoName } from './client.js';

/** A GitHub App tidegate authenticates as (deploy-time settings; the private key read from its secret). */
export interface GitHubAppCredentials {
  appId: number | string;
  privateKey: string;
  /** Found from the repository (GET /repos/{owner}/{repo}/installation) when not given. */
  installationId?: number | undefined;
}

/** Refresh a token once less than this part of its life, or five minutes, is left. */
const refreshWhen = (createdAt: number, expiresAt: number): number =>
  expiresAt - Math.min(5 * 60_000, (expiresAt - createdAt) / 4);

/**
 * Installation tokens of a GitHub App for one repository, for the API and for git over HTTPS: the
 * App's JWT (RS256, signed by @octokit/auth-app) exchanged for an installation token, kept until
 * shortly before it expires, then exchanged again. @octokit/auth-app is loaded on first use.
 */
export function appInstallationTokens(
  app: GitHubAppCredentials,
  apiUrl: string,
  repo: RepoName,
  clock: () => number = Date.now,
): TokenSource {
  type Auth = (opts: Record<string, unknown>) => Promise<{ token: string; expiresAt?: string; createdAt?: string }>;
  let auth: Promise<Auth> | undefined;
  let installationId = app.installationId;
  let current: { token: string; refreshAt: number } | undefined;
  return async () => {
    if (current && clock() < current.refreshAt) return current.token;
    auth ??= Promise.all([import('@octokit/auth-app'), import('@octokit/request')]).then(
      ([{ createAppAuth }, { request }]) =>
        createAppAuth({
          appId: app.appId,
          privateKey: app.privateKey,
          request: request.defaults({ baseUrl: apiUrl, headers: { 'user-agent': 'tidegate' } }),
        }) as unknown as Auth,
    );
    const a = await auth;
    try {
      installationId ??= await findInstallation(a, apiUrl, repo);
      const got = await a({ type: 'installation', installationId, refresh: current !== undefined });
      const created = got.createdAt ? Date.parse(got.createdAt) : clock();
      const expires = got.expiresAt ? Date.parse(got.expiresAt) : created + 60 * 60_000;
      current = { token: got.token, refreshAt: refreshWhen(created, expires) };
      return got.token;
    } catch (err) {
      if (err instanceof TidegateError) throw err;
      const status = (err as { status?: number }).status;
      throw new TidegateError(
        'GitHubAppAuthFailed',
        `GitHub App ${String(app.appId)}: cannot get an installation token for ${repo.owner}/${repo.repo}: ${errorMessage(err)}`,
        { cause: err, transient: status === undefined || status === 429 || status >= 500 },
      );
    }
  };
}

/** The installation of the App on a repository, asked as the App itself (its JWT). */
async function findInstallation(
  auth: (opts: Record<string, unknown>) => Promise<{ token: string }>,
  apiUrl: string,
  repo: RepoName,
): Promise<number> {
  const { token: jwt } = await auth({ type: 'app' });
  const res = await fetch(`${apiUrl}/repos/${repo.owner}/${repo.repo}/installation`, {
    headers: { authorization: `Bearer ${jwt}`, accept: 'application/vnd.github+json', 'user-agent': 'tidegate' },
  });
  if (!res.ok)
    throw new TidegateError(
      'GitHubAppNotInstalled',
      `the GitHub App is not installed on ${repo.owner}/${repo.repo} (GET /repos/${repo.owner}/${repo.repo}/installation: HTTP ${res.status})`,
      { transient: res.status === 429 || res.status >= 500 },
    );
  return ((await res.json()) as { id: number }).id;
}
