import type { GitHub, RepoName } from '../github/index.js';
import type { Approval } from '../model/index.js';

export interface ApprovalCheck {
  /** Why it holds, or undefined when enough valid approvals were given. */
  hold?: string;
  /** The reviews that counted. */
  approvals: Approval[];
}

/**
 * The commit must be the merge of a pull request into the tracked branch, approved by at least
 * `needed` users other than its author, with write access, whose latest review approves the head
 * that was merged (an approval of an earlier push does not count).
 */
export async function checkApprovals(
  github: GitHub,
  repo: RepoName,
  branch: string,
  sha: string,
  needed: number,
): Promise<ApprovalCheck> {
  const merged = (await github.pullRequestsOfCommit(repo, sha)).find(
    (p) => p.mergedAt && p.base === branch && p.mergeCommit === sha,
  );
  if (!merged)
    return {
      hold: `needs ${needed} approval(s): commit ${sha.slice(0, 12)} did not reach ${branch} through a merged pull request`,
      approvals: [],
    };
  const latest = new Map<string, { state: string; commit: string; at: string }>();
  for (const r of await github.reviews(repo, merged.number)) if (r.state !== 'COMMENTED') latest.set(r.user, r);
  const counted: Approval[] = [];
  const refused: string[] = [];
  for (const [user, review] of latest) {
    if (review.state !== 'APPROVED') continue;
    if (user === merged.author) refused.push(`${user} (the author)`);
    else if (review.commit !== merged.head) refused.push(`${user} (approved an earlier push)`);
    else if (!(await github.canWrite(repo, user))) refused.push(`${user} (no write access)`);
    else counted.push({ sha, by: user, at: review.at, via: 'review' });
  }
  if (counted.length >= needed) return { approvals: counted };
  const have = counted.length ? `: ${counted.map((a) => a.by).join(', ')}` : '';
  return {
    hold: `needs ${needed} approval(s) of pull request #${merged.number} after its last push, from users with write access other than its author; has ${counted.length}${have}${refused.length ? `; not counted: ${refused.join(', ')}` : ''}`,
    approvals: counted,
  };
}
