import { KubeApiError, type KubeClient } from '../cluster/index.js';
import { MANAGED_BY_LABEL, appliedBy } from '../apply/index.js';
import { PREVIEW_LABEL, isPreviewTarget, normaliseRepoUrl, previewBase, type KubeObject } from '../model/index.js';
import { readPreviews, readTargetState, type PreviewEntry } from '../state/index.js';

/**
 * The target named by an object's owner labels, when tidegate applied it: its target label, or, on
 * a namespace tidegate created for a preview (which carries no target label), the preview's name.
 */
export const ownerTarget = (obj: KubeObject | undefined): string | undefined => {
  const labels = obj?.metadata.labels;
  const target = appliedBy(labels);
  if (target !== undefined) return target;
  if (labels?.[MANAGED_BY_LABEL] !== 'tidegate') return undefined;
  const preview = labels[PREVIEW_LABEL];
  return preview && isPreviewTarget(preview) ? preview : undefined;
};

/**
 * Which repository a target belongs to, when it is another one than `repo`: the target's own
 * state says. A preview (`pr-<n>.<target>`) is its repository's: the one the previews register
 * admitted it for, else the one its state records, else its base target's. The target itself and
 * removed targets are never foreign. One lookup a target.
 */
export function foreignRepository(
  client: KubeClient,
  self: string,
  repo: string | undefined,
  signal?: AbortSignal,
): (owner: string | undefined) => Promise<string | undefined> {
  const repoOf = new Map<string, Promise<string | undefined>>();
  const stateRepo = (target: string) =>
    readTargetState(client, target, signal).then((s) => (s.removed ? undefined : s.repo));
  let register: Promise<PreviewEntry[]> | undefined;
  const entries = () =>
    (register ??= readPreviews(client, signal).catch((err: unknown) => {
      if (err instanceof KubeApiError && err.status === 403) return [];
      throw err;
    }));
  const previewRepo = async (preview: string): Promise<string | undefined> => {
    const entry = (await entries()).find((e) => e.name === preview);
    if (entry) return entry.repo;
    const base = previewBase(preview);
    return (await stateRepo(preview)) ?? (base ? await stateRepo(base) : undefined);
  };
  return async (owner) => {
    if (!owner || owner === self) return undefined;
    let theirs = repoOf.get(owner);
    if (!theirs) {
      theirs = isPreviewTarget(owner) ? previewRepo(owner) : stateRepo(owner);
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
