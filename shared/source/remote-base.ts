import type { HttpClient } from 'isomorphic-git';
import type { LocalSettings } from '../config/index.js';
import { boundedBody, errorMessage, redactUrl } from '../model/index.js';
import { SourceError, checkoutRevision, listBranches, resolveRevision, type GitSource } from './git.js';

/** Bounds of one remote base's fetch: a point in time by which it is done, and the bytes it may read. */
export interface FetchBounds {
  deadline: number;
  maxBytes: number;
}

/**
 * One request to a listed host, no redirect followed, by the deadline, its body read up to
 * `left.bytes`: what remote kustomize bases and chart repositories are fetched with (a listed host
 * that redirects elsewhere cannot lead the worker there, nor stall or flood it).
 */
export async function boundedRequest(
  url: string | URL,
  init: { method: string; headers: Record<string, string>; body?: Uint8Array | undefined },
  allowedHosts: readonly string[],
  deadline: number,
  left: { bytes: number },
  redirects: 'refuse' | 'return' = 'refuse',
): Promise<{ res: Response; data: Uint8Array }> {
  const host = new URL(url).hostname.toLowerCase();
  if (!allowedHosts.includes(host))
    throw new Error(`host ${host} is not listed in the deploy-time setting render.allowedHosts`);
  const timeLeft = deadline - Date.now();
  if (timeLeft <= 0) throw new Error('the render time limit passed (deploy-time setting render.timeout)');
  const res = await fetch(url, { ...init, redirect: 'manual', signal: AbortSignal.timeout(timeLeft) }).catch(
    (err: unknown) => {
      throw (err as Error).name === 'TimeoutError'
        ? new Error(`${host} did not answer within the render time limit (deploy-time setting render.timeout)`)
        : err;
    },
  );
  if (res.status >= 300 && res.status < 400) {
    if (redirects === 'return') return { res, data: new Uint8Array() };
    throw new Error(`${host} answered with a redirect (HTTP ${res.status}); redirects are not followed`);
  }
  return {
    res,
    data: await boundedBody(
      res,
      left,
      () => new Error(`${host} sent more than the render output limit (deploy-time setting render.maxOutputMiB)`),
    ),
  };
}

/** A GET of a listed host within the bounds; anything but 200 is an error. */
export async function boundedGet(
  url: URL,
  allowedHosts: readonly string[],
  bounds: FetchBounds,
  headers: Record<string, string> = {},
): Promise<Uint8Array> {
  const { res, data } = await boundedRequest(url, { method: 'GET', headers }, allowedHosts, bounds.deadline, {
    bytes: bounds.maxBytes,
  });
  if (res.status !== 200) throw new Error(`GET ${redactUrl(url.href)} answered HTTP ${res.status}`);
  return data;
}

/** An HTTP client for git with the bounds of boundedRequest (one byte budget for the whole fetch). */
export function allowedHostsHttp(allowedHosts: readonly string[], bounds: FetchBounds): HttpClient {
  const left = { bytes: bounds.maxBytes };
  return {
    async request({ url, method = 'GET', headers = {}, body }) {
      const chunks: Uint8Array[] = [];
      if (body) for await (const chunk of body) chunks.push(chunk);
      const { res, data } = await boundedRequest(
        url,
        { method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined },
        allowedHosts,
        bounds.deadline,
        left,
      );
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
  bounds: FetchBounds,
): Promise<string> {
  const src: GitSource = { url: base.url, http: allowedHostsHttp(allowedHosts, bounds) };
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

/** The fetcher renders use for remote kustomize bases: the hosts, cache and output limit of these settings, by the render's deadline. */
export const remoteBases =
  (settings: LocalSettings) =>
  (base: { url: string; ref?: string | undefined }, deadline: number): Promise<string> =>
    fetchRemoteBase(base, settings.render.allowedHosts, settings.cacheDir, {
      deadline,
      maxBytes: settings.render.maxBytes,
    });
