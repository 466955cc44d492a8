import { orderTargets, type TargetSpec } from '../config/index.js';
import { normaliseRepoUrl, type PushMessage, type RemoveMessage, type SyncMessage } from '../model/index.js';
import { CONFIG_FILE } from './repo-config.js';

/** Whether a repository path is a directory of the inputs, or lies below one. */
export const under = (path: string, dir: string): boolean =>
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
 * Targets connected by dependsOn (either way, on any cluster): each target's set, named by the set's
 * first target in dependency order. Every sync of a set goes through one message group, so two
 * pushes never run a dependant ahead of its dependency. The name is a bare target name, unique within
 * this repository only: the message group adds the repository (messageKeys, queue.ts).
 */
export function dependencySets(targets: readonly TargetSpec[]): Map<string, string> {
  const byName = new Map(targets.map((t) => [t.name, t]));
  const root = new Map(targets.map((t) => [t.name, t.name]));
  const find = (n: string): string => {
    const r = root.get(n) ?? n;
    if (r === n) return n;
    const top = find(r);
    root.set(n, top);
    return top;
  };
  for (const t of targets) for (const dep of t.dependsOn) if (byName.has(dep)) root.set(find(t.name), find(dep));
  const names = new Map<string, string>();
  for (const t of orderTargets(targets)) if (!names.has(find(t.name))) names.set(find(t.name), t.name);
  return new Map(targets.map((t) => [t.name, names.get(find(t.name)) ?? t.name]));
}

export interface Chain {
  /** The dependsOn set the targets belong to (see dependencySets). */
  set: string;
  /** In dependency order. */
  targets: TargetSpec[];
}

/**
 * Some targets grouped into dependency chains: those of one dependsOn set (`all` says which
 * targets are connected) form one chain, in dependency order, so a dependant is synced after its
 * dependency at the same revision and never when it failed or was held; unrelated targets stay
 * apart (and run in parallel).
 */
export function dependencyChains(targets: readonly TargetSpec[], all: readonly TargetSpec[] = targets): Chain[] {
  const sets = dependencySets(all);
  const chains = new Map<string, Chain>();
  for (const t of orderTargets(targets)) {
    const set = sets.get(t.name) ?? t.name;
    const chain = chains.get(set) ?? { set, targets: [] };
    chain.targets.push(t);
    chains.set(set, chain);
  }
  return [...chains.values()];
}

/** These targets and every target that depends on one of them, directly or not. */
export function withDependants(all: readonly TargetSpec[], names: readonly string[]): TargetSpec[] {
  const wanted = new Set(names);
  // In dependency order a dependant comes after its dependencies: one pass collects them all.
  for (const t of orderTargets(all)) if (t.dependsOn.some((d) => wanted.has(d))) wanted.add(t.name);
  return all.filter((t) => wanted.has(t.name));
}

/** The sync message of a chain: its first target, the chain when longer, and the set's message group. */
export function chainMessage(
  chain: Chain,
  fields: Pick<SyncMessage, 'repo' | 'revision' | 'reason' | 'bucket' | 'receivedAt'>,
): SyncMessage {
  const [first, ...rest] = chain.targets;
  return {
    type: 'sync',
    ...fields,
    target: first?.name ?? '',
    ...(rest.length > 0 ? { chain: chain.targets.map((t) => t.name) } : {}),
    ...(chain.set !== first?.name ? { set: chain.set } : {}),
  };
}

/**
 * The remove messages of targets a revision no longer declares on a cluster. A name still declared
 * (moved to another cluster) is synced in its dependsOn set's message group: its removal is sent in
 * that group too, so the two never overlap.
 */
export function removalMessages(
  removed: ReadonlyArray<{ cluster: string; target: string }>,
  targets: readonly TargetSpec[],
  fields: Pick<RemoveMessage, 'repo' | 'revision'> & { bucket?: number },
): RemoveMessage[] {
  const sets = dependencySets(targets);
  return removed.map((r) => {
    const set = sets.get(r.target);
    return { type: 'remove', ...fields, ...r, ...(set && set !== r.target ? { set } : {}) };
  });
}
