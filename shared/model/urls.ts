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

/** A credential that may change (a GitHub App installation token): asked for before each use; its source caches it. */
export type TokenSource = () => Promise<string>;

/** A `*` glob (the only wildcard) as a regular expression matching the whole string. */
export const globPattern = (pattern: string): RegExp =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
