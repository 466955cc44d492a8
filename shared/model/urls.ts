/** Credentials in a URL (`https://user:token@host/...`), the part every message and log leaves out. */
const CREDENTIALS = /\/\/[^/]*@/; // up to the last @ of the authority: a password may hold an @

/** A URL fit for messages and logs: any user and password in it left out. */
export const redactUrl = (url: string): string => url.replace(CREDENTIALS, '//');

/**
 * A repository URL for comparison: lower case, no scheme or credentials, scp-style SSH
 * (`git@host:path`) as host/path, no trailing `.git` or slash.
 */
export function normaliseRepoUrl(url: string): string {
  const scpLike = /^[\w.-]+@([^:/]+):(.+)$/.exec(url.trim()); // git@github.com:acme/gitops.git
  const plain = scpLike ? `ssh://${scpLike[1] ?? ''}/${scpLike[2] ?? ''}` : url.trim();
  return redactUrl(plain.toLowerCase().replace(/^[a-z+]+:\/\//, '//'))
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
}

/**
 * The origin of a repository URL: scheme, host and port (the default port of the scheme made
 * explicit), lower case, without credentials; scp-style SSH (`git@host:path`) is `ssh://host:22`.
 * Undefined for what is not such a URL (a local path).
 */
export function originOf(url: string): string | undefined {
  const scpLike = /^[\w.-]+@([^:/]+):(?!\/\/)/.exec(url.trim());
  if (scpLike) return `ssh://${(scpLike[1] ?? '').toLowerCase()}:22`;
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    return undefined;
  }
  if (!parsed.host) return undefined;
  const scheme = parsed.protocol.replace(/:$/, '').toLowerCase();
  const port = parsed.port || DEFAULT_PORTS[scheme] || '';
  return `${scheme}://${parsed.hostname.toLowerCase()}${port ? `:${port}` : ''}`;
}

const DEFAULT_PORTS: Record<string, string> = { http: '80', https: '443', ssh: '22', git: '9418' };

/** Whether two URLs have one origin (scheme, host and port); false when either is not a URL. */
export const sameOrigin = (a: string, b: string): boolean => {
  const origin = originOf(a);
  return origin !== undefined && origin === originOf(b);
};

/**
 * Where a credential configured for some repositories may be sent: to those repositories and to
 * others on the same origin (scheme, host and port), never anywhere else (another host, another
 * port, plain http for an https repository).
 */
export const tokenReaches = (configuredFor: readonly string[], url: string): boolean =>
  configuredFor.some((repo) => sameOrigin(repo, url));

/** A credential that may change (a GitHub App installation token): asked for before each use; its source caches it. */
export type TokenSource = () => Promise<string>;

/** A `*` glob (the only wildcard) as a regular expression matching the whole string. */
export const globPattern = (pattern: string): RegExp =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
