import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { redactUrl } from '../model/index.js';
import type { RenderProblem } from './errors.js';
import { isRemote, kustomizationTree, realRelative, type KustomizationEntry } from './inputs.js';
import { BuildInputTooLarge, parseBuildInput } from './yaml.js';

/**
 * What kustomize and helm may read, checked before either runs: files of the repository checkout
 * only (no path or symbolic link leading out of it), and remote bases or chart repositories only
 * from hosts listed in the deploy-time settings.
 */

export const OUTSIDE = 'symbolic link points outside the repository';

/**
 * The host a remote base or chart repository would be fetched from, when one can be read without
 * doubt: a URL whose authority has user information, a backslash or anything but a host name and
 * port names none (parsers disagree on such URLs, and the one that fetches is not the one that checks).
 */
export function remoteHost(ref: string): string | undefined {
  const url = ref.replace(/^git::/, '');
  if (/[\\\s]/.test(url)) return undefined;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(url);
  if (scheme) return hostOf(scheme[1] ?? '');
  const scp = /^[^@/:]+@([^:/]+):/.exec(url);
  if (scp) return hostOf(scp[1] ?? '');
  // host/path without a scheme (github.com/org/repo//dir): kustomize fetches what is not a local path.
  const [first = '', ...rest] = url.split('/');
  return rest.length > 0 && first.includes('.') && !first.startsWith('.') ? hostOf(first) : undefined;
}

/** A bare host name (and optional port) from an authority; undefined for anything else. */
function hostOf(authority: string): string | undefined {
  const m = /^([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::\d{1,5})?$/i.exec(authority);
  return m?.[1]?.toLowerCase();
}

/** A remote kustomize base: the git repository, the directory in it, and the ref (tag or branch). */
export interface RemoteBase {
  url: string;
  dir: string;
  ref?: string | undefined;
}

/**
 * A remote entry of a kustomization read as kustomize reads a git base: `<repository>//<dir>?ref=`,
 * `<repository>.git/<dir>`, or github.com / gitlab.com `org/repo/<dir>`; HTTP(S) only. Undefined
 * for anything else (a remote file, ssh, scp-like): those are not fetched.
 */
export function parseRemoteBase(entry: string): RemoteBase | undefined {
  let url = entry.replace(/^git::/, '');
  if (/^(github\.com|gitlab\.com)\//.test(url)) url = `https://${url}`;
  const m = /^(https?:\/\/[^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?$/i.exec(url);
  if (!m || !remoteHost(url)) return undefined;
  const origin = m[1] ?? '';
  const split = splitRepository(origin, m[2] ?? '');
  if (!split) return undefined;
  const dir = posix.normalize(split.dir || '.');
  if (dir.startsWith('..') || dir.startsWith('/')) return undefined;
  const query = new URLSearchParams(m[3] ?? '');
  const ref = query.get('ref') ?? query.get('version') ?? undefined;
  return { url: `${origin}${split.repo}`, dir, ref: ref || undefined };
}

/** Where the repository ends in a remote base's path: at "//", after ".git", or (github.com, gitlab.com) after org/repo. */
function splitRepository(origin: string, path: string): { repo: string; dir: string } | undefined {
  const split = path.indexOf('//');
  if (split >= 0) return { repo: path.slice(0, split), dir: path.slice(split + 2) };
  const dotGit = /\.git(\/|$)/.exec(path);
  if (dotGit) return { repo: path.slice(0, dotGit.index + 4), dir: path.slice(dotGit.index + 5) };
  if (!/^https:\/\/(github\.com|gitlab\.com)$/i.test(origin)) return undefined;
  const parts = path.split('/').filter(Boolean);
  return { repo: `/${parts.slice(0, 2).join('/')}`, dir: parts.slice(2).join('/') };
}

/** Why a remote reference is refused, or undefined when its host is allowed. */
function remoteRefusal(ref: string, what: string, allowedHosts: readonly string[]): string | undefined {
  const host = remoteHost(ref);
  if (host && allowedHosts.includes(host)) return undefined;
  return `${what} ${redactUrl(ref)} refused: ${host ? `host ${host} is` : 'it names no host that is'} not listed in the deploy-time setting render.allowedHosts`;
}

/**
 * Symbolic links in a directory of the repository that lead out of it (or nowhere); with
 * `recursive`, through every subdirectory, including those reached through links that stay inside
 * (helm follows them).
 */
function linksOut(
  root: string,
  dir: string,
  problems: RenderProblem[],
  recursive: boolean,
  walk = { left: 50_000, seen: new Set<string>() },
): void {
  const real = realRelative(root, dir);
  if (real === undefined || walk.seen.has(real)) return;
  walk.seen.add(real);
  const full = join(root, real);
  if (!statSync(full).isDirectory()) return;
  for (const entry of readdirSync(full)) {
    if (walk.left-- === 0) {
      // Not checked is not rendered: a link past the budget would be followed by helm unseen.
      problems.push({ file: dir, message: 'more than 50,000 files to check for symbolic links; it is not rendered' });
      return;
    }
    if (walk.left < 0) return;
    const rel = posix.join(real, entry);
    const link = lstatSync(join(root, rel)).isSymbolicLink();
    const target = realRelative(root, rel);
    if (link && target === undefined) problems.push({ file: posix.join(dir, entry), message: OUTSIDE });
    else if (recursive && target !== undefined && statSync(join(root, target)).isDirectory())
      linksOut(root, rel, problems, true, walk);
  }
}

function kustomizeCheck(root: string, path: string, allowedHosts: readonly string[]): SandboxCheck {
  const problems: RenderProblem[] = [];
  linksOut(root, path, problems, false);
  const { entries, unreadable } = kustomizationTree(root, path);
  const remoteEntries = entries.filter((e) => isRemote(e.entry));
  for (const { file, reason } of unreadable) problems.push({ file, message: `${reason}; it is not rendered` });
  for (const { kustomization, entry, path: local } of entries) {
    const remote = isRemote(entry) || (local !== undefined && !existsSync(join(root, local)) && !!remoteHost(entry));
    if (remote) {
      const refused = remoteRefusal(entry, 'remote base', allowedHosts);
      if (refused) problems.push({ file: kustomization, message: refused });
      else if (!parseRemoteBase(entry))
        problems.push({
          file: kustomization,
          message: `remote base ${redactUrl(entry)} refused: only git repositories over HTTP(S) are fetched (<repository>//<dir>?ref=<tag or branch>), not files`,
        });
    } else if (local?.startsWith('..')) {
      problems.push({ file: kustomization, message: `${entry} is outside the repository` });
    } else if (local !== undefined && existsSync(join(root, local))) {
      if (realRelative(root, local) === undefined)
        problems.push({ file: kustomization, message: `${entry}: ${OUTSIDE}` });
      else linksOut(root, local, problems, false);
    }
  }
  return { problems, remote: remoteEntries };
}

function helmProblems(root: string, path: string, allowedHosts: readonly string[]): RenderProblem[] {
  const problems: RenderProblem[] = [];
  linksOut(root, path, problems, true);
  let chart: { dependencies?: Array<{ name?: unknown; repository?: unknown }> } | undefined;
  try {
    chart = parseBuildInput(join(root, path, 'Chart.yaml')) as typeof chart;
  } catch (err) {
    // What cannot be checked is not rendered; anything else helm reports.
    if (err instanceof BuildInputTooLarge)
      problems.push({ file: posix.join(path, 'Chart.yaml'), message: `${err.message}: it is not rendered` });
    return problems;
  }
  for (const dep of chart?.dependencies ?? []) {
    const repo = typeof dep.repository === 'string' ? dep.repository : '';
    if (repo === '' || repo.startsWith('file://')) continue;
    const refused = remoteRefusal(repo, `chart dependency ${String(dep.name)} from`, allowedHosts);
    if (refused) problems.push({ file: posix.join(path, 'Chart.yaml'), message: refused });
  }
  return problems;
}

/** What keeps a kustomize or helm render from running at all, and the remote bases it names (fetched by tidegate first). */
export interface SandboxCheck {
  problems: RenderProblem[];
  remote: KustomizationEntry[];
}

/**
 * Directories a build of `path` reads besides what its kustomization names (a target's components,
 * the directories of a generated kustomization), as entries relative to `path`: each must stay
 * inside the repository, and so must everything its own kustomization reaches. One that does not
 * exist is left to kustomize to report.
 */
function addedDirsCheck(root: string, path: string, dirs: readonly string[], allowedHosts: readonly string[]) {
  const out: SandboxCheck = { problems: [], remote: [] };
  for (const entry of dirs) {
    const local = posix.normalize(posix.join(path, entry));
    if (local.startsWith('..') || posix.isAbsolute(entry)) {
      out.problems.push({ file: path, message: `${entry} is outside the repository` });
      continue;
    }
    if (!existsSync(join(root, local))) continue;
    const real = realRelative(root, local);
    if (real === undefined) {
      out.problems.push({ file: path, message: `${entry}: ${OUTSIDE}` });
      continue;
    }
    const check = kustomizeCheck(root, real, allowedHosts);
    out.problems.push(...check.problems);
    out.remote.push(...check.remote);
  }
  return out;
}

/**
 * The check of a render's inputs (real repository root, target path relative to it), before the
 * tool runs; `added`: directories a kustomize build reads besides what the kustomization names.
 */
export function sandboxCheck(
  root: string,
  path: string,
  mode: 'kustomize' | 'helm',
  allowedHosts: readonly string[],
  added: readonly string[] = [],
): SandboxCheck {
  if (mode === 'helm') return { problems: helmProblems(root, path, allowedHosts), remote: [] };
  const own = kustomizeCheck(root, path, allowedHosts);
  const more = addedDirsCheck(root, path, added, allowedHosts);
  return { problems: [...own.problems, ...more.problems], remote: [...own.remote, ...more.remote] };
}
