import { existsSync, lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parse } from 'yaml';
import { redactUrl } from '../model/index.js';
import type { RenderProblem } from './errors.js';
import { isRemote, kustomizationTree, realRelative } from './inputs.js';

/**
 * What kustomize and helm may read, checked before either runs: files of the repository checkout
 * only (no path or symbolic link leading out of it), and remote bases or chart repositories only
 * from hosts listed in the deploy-time settings.
 */

export const OUTSIDE = 'symbolic link points outside the repository';

/** The host a remote base or chart repository would be fetched from, when one can be read. */
export function remoteHost(ref: string): string | undefined {
  const url = ref.replace(/^git::/, '');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    try {
      return new URL(url).hostname.toLowerCase() || undefined;
    } catch {
      return undefined;
    }
  }
  const scp = /^[^@/]+@([^:/]+):/.exec(url);
  if (scp) return scp[1]?.toLowerCase();
  // host/path without a scheme (github.com/org/repo//dir): kustomize fetches what is not a local path.
  const [first = '', ...rest] = url.split('/');
  return rest.length > 0 && first.includes('.') && !first.startsWith('.') ? first.toLowerCase() : undefined;
}

/** Why a remote reference is refused, or undefined when its host is allowed. */
function remoteRefusal(ref: string, what: string, allowedHosts: readonly string[]): string | undefined {
  const host = remoteHost(ref);
  if (host && allowedHosts.includes(host)) return undefined;
  return `${what} ${redactUrl(ref)} refused: ${host ? `host ${host} is` : 'it names no host that is'} not listed in the deploy-time setting render.allowedHosts`;
}

/** Symbolic links directly in a directory of the repository that lead out of it (or nowhere). */
function linksOut(root: string, dir: string, problems: RenderProblem[], recursive: boolean, budget = { left: 50_000 }) {
  const full = join(root, dir);
  if (!existsSync(full) || !statSync(full).isDirectory()) return;
  for (const entry of readdirSync(full)) {
    if (budget.left-- <= 0) return;
    const rel = posix.join(dir, entry);
    const link = lstatSync(join(root, rel)).isSymbolicLink();
    if (link && realRelative(root, rel) === undefined) problems.push({ file: rel, message: OUTSIDE });
    else if (recursive && !link && lstatSync(join(root, rel)).isDirectory())
      linksOut(root, rel, problems, true, budget);
  }
}

function kustomizeProblems(root: string, path: string, allowedHosts: readonly string[]): RenderProblem[] {
  const problems: RenderProblem[] = [];
  linksOut(root, path, problems, false);
  for (const { kustomization, entry, path: local } of kustomizationTree(root, path)) {
    const remote = isRemote(entry) || (local !== undefined && !existsSync(join(root, local)) && !!remoteHost(entry));
    if (remote) {
      const refused = remoteRefusal(entry, 'remote base', allowedHosts);
      if (refused) problems.push({ file: kustomization, message: refused });
    } else if (local?.startsWith('..')) {
      problems.push({ file: kustomization, message: `${entry} is outside the repository` });
    } else if (local !== undefined && existsSync(join(root, local))) {
      if (realRelative(root, local) === undefined)
        problems.push({ file: kustomization, message: `${entry}: ${OUTSIDE}` });
      else linksOut(root, local, problems, false);
    }
  }
  return problems;
}

function helmProblems(root: string, path: string, allowedHosts: readonly string[]): RenderProblem[] {
  const problems: RenderProblem[] = [];
  linksOut(root, path, problems, true);
  let chart: { dependencies?: Array<{ name?: unknown; repository?: unknown }> } | undefined;
  try {
    chart = parse(readFileSync(join(root, path, 'Chart.yaml'), 'utf8')) as typeof chart;
  } catch {
    return problems; // helm reports it
  }
  for (const dep of chart?.dependencies ?? []) {
    const repo = typeof dep.repository === 'string' ? dep.repository : '';
    if (repo === '' || repo.startsWith('file://')) continue;
    const refused = remoteRefusal(repo, `chart dependency ${String(dep.name)} from`, allowedHosts);
    if (refused) problems.push({ file: posix.join(path, 'Chart.yaml'), message: refused });
  }
  return problems;
}

/** Problems that keep a kustomize or helm render from running at all (real repository root, target path relative to it). */
export function sandboxProblems(
  root: string,
  path: string,
  mode: 'kustomize' | 'helm',
  allowedHosts: readonly string[],
): RenderProblem[] {
  return mode === 'kustomize' ? kustomizeProblems(root, path, allowedHosts) : helmProblems(root, path, allowedHosts);
}
