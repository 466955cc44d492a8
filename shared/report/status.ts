import type { GitHub, RepoName } from '../github/index.js';
import { countChanges, type SyncResult } from '../model/index.js';

type State = 'pending' | 'success' | 'failure' | 'error';

/** The commit status a sync result shows on GitHub (context tidegate/<target>): names, counts and reasons, never values. */
function statusOf(result: SyncResult): { state: State; context: string; description: string } {
  const c = countChanges(result.changeSet);
  const plan = `${c.created} to create, ${c.configured} to configure, ${c.deleted} to delete`;
  const context = `tidegate/${result.target}`;
  switch (result.outcome) {
    case 'applied':
    case 'unchanged':
      return {
        state: 'success',
        context,
        description:
          result.outcome === 'unchanged'
            ? 'in sync'
            : `applied: ${c.created} created, ${c.configured} configured, ${c.deleted} deleted`,
      };
    case 'held':
      return { state: 'pending', context, description: `held: ${result.heldFor ?? ''} (plan: ${plan})` };
    case 'progressing':
      return { state: 'pending', context, description: 'applied; waiting for the rollout to become ready' };
    case 'pinned':
    case 'suspended':
      return {
        state: 'pending',
        context,
        description: `not applied: ${result.outcome}${result.error ? ` (${result.error})` : ''}`,
      };
    case 'failed':
      return { state: 'failure', context, description: `failed: ${result.error ?? 'unknown error'}` };
  }
}

const DEPLOYMENT_STATE: Partial<Record<SyncResult['outcome'], 'success' | 'failure' | 'in_progress'>> = {
  applied: 'success',
  progressing: 'in_progress',
  failed: 'failure',
};

/**
 * Sets the commit status of the synced revision and, when the sync applied something (or tried),
 * a GitHub deployment of it to the environment named after the target, with its status.
 * Repeated no-op and held syncs set the commit status only.
 */
export async function reportSync(github: GitHub, repo: RepoName, result: SyncResult): Promise<void> {
  const status = statusOf(result);
  await github.setStatus(repo, result.revision.sha, status);
  // A rollout that was progressing and has settled since: its deployment is resolved (success or failure).
  const state =
    DEPLOYMENT_STATE[result.outcome] ?? (result.settled && result.outcome === 'unchanged' ? 'success' : undefined);
  if (state)
    await github.deploymentStatus(repo, {
      sha: result.revision.sha,
      environment: result.target,
      state,
      description: status.description,
    });
}

/** Marks tidegate's comment on a merged pull request whose revision is held, one per revision. */
export const holdMarker = (sha: string): string => `<!-- tidegate:hold:${sha} -->`;

/** The comment on a merged pull request whose merge is held: per target, what its gate waits for (the commits not signed off, and how to approve). */
export function renderHold(sha: string, results: readonly SyncResult[]): string {
  const held = results.filter((r) => r.outcome === 'held');
  return [
    holdMarker(sha),
    `### tidegate: ${sha.slice(0, 12)} is held`,
    '',
    ...held.flatMap((r) => [`**${r.target}**: ${(r.heldFor ?? '').replace(/\n/g, ' ')}`, '']),
  ].join('\n');
}
