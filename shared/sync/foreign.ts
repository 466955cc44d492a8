import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { MANAGED_BY_LABEL, TARGET_LABEL } from '../apply/index.js';
import { isPreviewTarget, normaliseRepoUrl, type KubeObject } from '../model/index.js';
import { readTargetState } from '../state/index.js';

/** The target named by an object's owner labels, when tidegate applied it. */
export const ownerTarget = (obj: KubeObject | undefined): string | undefined => {
  const labels = obj?.metadata.labels;
  return labels?.[MANAGED_BY_LABEL] === 'tidegate' ? labels[TARGET_LABEL] : undefined;
};

/**
 * Which repository a target belongs to, when it is another one than `repo`: the target's own
 * state says. The target itself, previews and removed targets are never foreign. One lookup a target.
 */
export function foreignRepository(
  client: KubeClient,
  self: string,
  repo: string | undefined,
  signal?: AbortSignal,
): (owner: string | undefined) => Promise<string | undefined> {
  const repoOf = new Map<string, Promise<string | undefined>>();
  return async (owner) => {
    if (!owner || owner === self || isPreviewTarget(owner)) return undefined;
    let theirs = repoOf.get(owner);
    if (!theirs) {
      theirs = readTargetState(client, owner, signal).then((s) => (s.removed ? undefined : s.repo));
      repoOf.set(owner, theirs);
    }
    const url = await theirs;
    return url && (!repo || normaliseRepoUrl(url) !== normaliseRepoUrl(repo)) ? url : undefined;
  };
}

/** The Namespace object, or undefined where it does not exist or the identity may not read it. */
export async function readNamespace(
  client: KubeClient,
  name: string,
  signal?: AbortSignal,
): Promise<{ exists: boolean; object?: KubeObject }> {
  try {
    const object = await client.get('v1', 'Namespace', '', name, signal);
    return object ? { exists: true, object } : { exists: false };
  } catch (err) {
    if (err instanceof KubeApiError && err.status === 403) return { exists: true };
    throw err;
  }
}
