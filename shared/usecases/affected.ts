import { orderTargets, type TargetSpec } from '../config/index.js';
import { normaliseRepoUrl, type PushMessage } from '../model/index.js';
import { CONFIG_FILE } from './repo-config.js';

const under = (path: string, dir: string): boolean =>
  dir === '.' || dir === '' || path === dir || path.startsWith(`${dir.replace(/\/+$/, '')}/`);

/**
 * Targets a push affects: those that follow this repository and branch, and whose inputs changed:
 * tidegate.yaml, anything under the target's path, or (given `inputsOf`) anything else its render
 * reads: a kustomize base or component elsewhere in the repository, a local chart dependency, a
 * values file.
 */
export function affectedTargets(
  targets: readonly TargetSpec[],
  msg: Pick<PushMessage, 'repo' | 'ref' | 'paths'>,
  inputsOf: (target: TargetSpec) => readonly string[] = (t) => [
    t.path,
    ...(t.helm?.values ?? []).map((v) => `${t.path}/${v}`),
  ],
): TargetSpec[] {
  return targets.filter((t) => {
    const sameRepo = t.source.url === undefined || normaliseRepoUrl(t.source.url) === normaliseRepoUrl(msg.repo);
    const ref = t.source.ref ?? {};
    const tracksBranch = !ref.tag && !ref.semver && !ref.commit && `refs/heads/${ref.branch ?? 'main'}` === msg.ref;
    if (!sameRepo || !tracksBranch) return false;
    if (msg.paths === null || msg.paths.includes(CONFIG_FILE)) return true;
    const inputs = inputsOf(t);
    return msg.paths.some((p) => inputs.some((dir) => under(p, dir)));
  });
}

/**
 * Affected targets grouped into dependency chains: targets of one cluster connected by dependsOn
 * (either way) form one chain, in dependency order, so a dependant is synced after its dependency
 * at the same revision and never when it failed or was held; unrelated targets stay apart (and
 * run in parallel).
 */
export function dependencyChains(targets: readonly TargetSpec[]): TargetSpec[][] {
  const byName = new Map(targets.map((t) => [t.name, t]));
  const root = new Map(targets.map((t) => [t.name, t.name]));
  const find = (n: string): string => {
    const r = root.get(n) ?? n;
    if (r === n) return n;
    const top = find(r);
    root.set(n, top);
    return top;
  };
  for (const t of targets) {
    for (const dep of t.dependsOn) {
      const d = byName.get(dep);
      if (d && d.cluster === t.cluster) root.set(find(t.name), find(d.name));
    }
  }
  const chains = new Map<string, TargetSpec[]>();
  for (const t of orderTargets(targets)) chains.set(find(t.name), [...(chains.get(find(t.name)) ?? []), t]);
  return [...chains.values()];
}
