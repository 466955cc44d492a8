import { TargetOwnedElsewhereError, normaliseRepoUrl, redactUrl } from '../model/index.js';

/**
 * A target name is owned by one repository per cluster (two repositories declaring it would prune
 * each other's objects): another repository's sync or command may not touch it. A target removed
 * from its repository's tidegate.yaml is free again.
 */
export function refuseOtherOwner(
  state: { repo?: string | undefined; removed?: unknown },
  repo: string | undefined,
  target: string,
): void {
  if (!state.repo || state.removed) return;
  if (repo && normaliseRepoUrl(state.repo) === normaliseRepoUrl(repo)) return;
  throw new TargetOwnedElsewhereError(
    `target name ${target} is already used on this cluster by ${redactUrl(state.repo)}; ${repo ? 'target names are cluster-wide, rename one of them' : 'a working tree without that repository as its origin cannot change it (use --repo)'}`,
  );
}
