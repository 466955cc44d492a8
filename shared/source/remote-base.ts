import type { HttpClient } from 'isomorphic-git';
import type { LocalSettings } from '../config/index.js';
import { errorMessage, redactUrl } from '../model/index.js';
import { SourceError, checkoutRevision, listBranches, resolveRevision, type GitSource } from './git.js';

/**
 * An HTTP client for git that reaches only the listed hosts and follows no redirect: what a remote
 * kustomize base is fetched with (a listed host that redirects elsewhere cannot lead the worker there).
 */
export function allowedHostsHttp(allowedHosts: readonly string[]): HttpClient {
  return {
    async request({ url, method = 'GET', headers = {}, body }) {
      const host = new URL(url).hostname.toLowerCase();
      if (!allowedHosts.includes(host))
        throw new Error(`host ${host} is not listed in the deploy-time setting render.allowedHosts`);
      const chunks: Uint8Array[] = [];
      if (body) for await (const chunk of body) chunks.push(chunk);
      const res = await fetch(url, {
        method,
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
        redirect: 'manual',
      });
      if (res.status >= 300 && res.status < 400)
        throw new Error(`${host} answered with a redirect (HTTP ${res.status}); redirects are not followed`);
      const data = new Uint8Array(await res.arrayBuffer());
      return {
        url,
        method,
        statusCode: res.status,
        statusMessage: res.statusText,
        headers: Object.fromEntries(res.headers.entries()),
        body: (async function* () {
          yield data;
        })(),
      };
    },
  };
}

/**
 * The tree of a git repository a remote kustomize base names, at its ref (a tag or branch; the
 * default branch main, else master): fetched with isomorphic-git from listed hosts only, into the
 * cache. Returns the directory of the tree.
 */
export async function fetchRemoteBase(
  base: { url: string; ref?: string | undefined },
  allowedHosts: readonly string[],
  cacheDir: string,
): Promise<string> {
  const src: GitSource = { url: base.url, http: allowedHostsHttp(allowedHosts) };
  try {
    let revision;
    if (base.ref) {
      revision = await resolveRevision(src, { tag: base.ref }).catch(() => resolveRevision(src, { branch: base.ref }));
    } else {
      const branches = await listBranches(src);
      const branch = ['main', 'master'].find((b) => branches.has(`refs/heads/${b}`));
      if (!branch) throw new Error('it has no branch main or master; name one with ?ref=');
      revision = await resolveRevision(src, { branch });
    }
    return (await checkoutRevision(src, revision, cacheDir)).dir;
  } catch (err) {
    throw new SourceError(
      `remote base ${redactUrl(base.url)}${base.ref ? `?ref=${base.ref}` : ''}: ${errorMessage(err)}`,
      { cause: err },
    );
  }
}

/** The fetcher renders use for remote kustomize bases: the hosts and cache of these settings. */
export const remoteBases =
  (settings: LocalSettings) =>
  (base: { url: string; ref?: string | undefined }): Promise<string> =>
    fetchRemoteBase(base, settings.render.allowedHosts, settings.cacheDir);
