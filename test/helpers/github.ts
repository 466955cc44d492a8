import { createRequire } from 'node:module';
import type { TestGitHub } from '../../devenv/index.js';
import { routeGithubEvent } from '../../shared/triggers/index.js';

// GitHub's recorded issue_comment delivery (@octokit/webhooks-examples), made a pull request comment.
const commentExample = createRequire(import.meta.url)('@octokit/webhooks-examples/api.github.com/index.json').find(
  (e: { name: string }) => e.name === 'issue_comment',
).examples[0] as Record<string, any>;

/** A comment by `user` on pull request `pr` of owner/name, routed as the webhook would route it. */
export function prComment(
  github: TestGitHub,
  repo: { owner: string; name: string; url: string },
  pr: number,
  comment: { user: string; body: string; id: number },
) {
  const payload = structuredClone(commentExample);
  payload.comment = {
    ...payload.comment,
    id: comment.id,
    body: comment.body,
    user: { ...payload.comment.user, login: comment.user },
  };
  payload.issue = {
    ...payload.issue,
    number: pr,
    pull_request: {
      url: `${github.url}/repos/${repo.owner}/${repo.name}/pulls/${pr}`,
      html_url: '',
      diff_url: '',
      patch_url: '',
      merged_at: null,
    },
  };
  payload.repository = {
    ...payload.repository,
    clone_url: repo.url,
    html_url: repo.url.replace(/\.git$/, ''),
    full_name: `${repo.owner}/${repo.name}`,
  };
  return routeGithubEvent({ id: String(comment.id), event: 'issue_comment', payload }, [
    { url: repo.url, branch: 'main' },
  ]);
}

const pullRequestExample = createRequire(import.meta.url)('@octokit/webhooks-examples/api.github.com/index.json')
  .find((e: { name: string }) => e.name === 'pull_request')
  .examples.find((e: Record<string, unknown>) => e['action'] === 'opened') as Record<string, any>;

/** A pull_request event (opened, synchronize, …) of pull request `pr`, routed as the webhook would route it. */
export function prEvent(
  repo: { owner: string; name: string; url: string },
  pr: { number: number; action: string; sha: string; branch: string; fork?: string },
) {
  return routeGithubEvent({ id: `${pr.number}-${pr.sha}`, event: 'pull_request', payload: prPayload(repo, pr) }, [
    { url: repo.url, branch: 'main' },
  ]);
}

/** The payload GitHub delivers for a pull_request event (its recorded example, made this pull request's). */
export function prPayload(
  repo: { owner: string; name: string; url: string },
  pr: { number: number; action: string; sha: string; branch: string; fork?: string },
): Record<string, any> {
  const payload = structuredClone(pullRequestExample);
  payload.action = pr.action;
  payload.number = pr.number;
  payload.repository = {
    ...payload.repository,
    clone_url: repo.url,
    html_url: repo.url.replace(/\.git$/, ''),
    full_name: `${repo.owner}/${repo.name}`,
  };
  payload.pull_request = {
    ...payload.pull_request,
    number: pr.number,
    head: {
      ...payload.pull_request.head,
      sha: pr.sha,
      ref: pr.branch,
      repo: pr.fork ? { ...payload.repository, full_name: pr.fork, fork: true } : payload.repository,
    },
    base: { ...payload.pull_request.base, ref: 'main', repo: payload.repository },
  };
  return payload;
}
