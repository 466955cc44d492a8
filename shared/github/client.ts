import type { Octokit } from '@octokit/core';
import { errorMessage, TidegateError, clip, redactUrl, type TokenSource } from '../model/index.js';

/** owner/repo of a GitHub repository. */
export interface RepoName {
  owner: string;
  repo: string;
}

/** owner/repo from a clone URL: https://github.com/acme/gitops(.git), git@github.com:acme/gitops.git, or any host's last two path segments. */
export function repoName(url: string): RepoName {
  const path = url
    .replace(/^[a-z+]+:\/\/[^/]+\//i, '')
    .replace(/^[^@/]+@[^:]+:/, '')
    .replace(/\/+$/, '')
    .replace(/\.git$/, '');
  const parts = path.split('/').filter(Boolean);
  const [owner, repo] = parts.slice(-2);
  if (parts.length < 2 || !owner || !repo)
    throw new TidegateError('GitHubRepoUnknown', `cannot tell owner/repo from ${redactUrl(url)}`);
  return { owner, repo };
}

/** The REST API that serves a repository URL: api.github.com for github.com, otherwise it must be given (GitHub Enterprise: https://host/api/v3). */
export function apiUrlFor(repoUrl: string, configured?: string): string | undefined {
  if (configured) return configured.replace(/\/+$/, '');
  return /^(?:https:\/\/(?:[^@/]*@)?|[^@/]+@)github\.com[/:]/.test(repoUrl) ? 'https://api.github.com' : undefined;
}

export interface MergedPullRequest {
  number: number;
  author: string;
  base: string;
  /** The head commit when it was merged (reviews of other commits are stale). */
  head: string;
  /** The head branch, and whether it lives in another repository (a fork; also when that fork was deleted). */
  headBranch: string;
  fork: boolean;
  open: boolean;
  mergedAt: string | undefined;
  mergeCommit: string | undefined;
}

/** The fields tidegate reads of a pull request, as GitHub's REST API returns one. */
interface RestPullRequest {
  number: number;
  user: { login: string } | null;
  state: string;
  head: { sha: string; ref: string; repo: { full_name: string } | null };
  base: { ref: string; repo: { full_name: string } };
  merged_at: string | null;
  merge_commit_sha: string | null;
}

const asPullRequest = (p: RestPullRequest): MergedPullRequest => ({
  number: p.number,
  author: p.user?.login ?? '',
  base: p.base.ref,
  head: p.head.sha,
  headBranch: p.head.ref,
  fork: p.head.repo?.full_name !== p.base.repo.full_name,
  open: p.state === 'open',
  mergedAt: p.merged_at ?? undefined,
  mergeCommit: p.merge_commit_sha ?? undefined,
});

/** A commit as GitHub knows it (see GitHub.commit). */
export interface CommitIdentity {
  sha: string;
  authorLogin?: string | undefined;
  committerLogin?: string | undefined;
  madeByGitHub: boolean;
}

/** One update of a branch (GitHub's repository activity). */
export interface RefUpdate {
  before: string;
  after: string;
  type: string;
  actor: string;
  at: string;
}

/** Pages of a branch's activity read at most (100 updates each) to find who pushed a commit. */
const ACTIVITY_PAGES = 20;

/** Answers kept per client at most (commits never change); past it the memo starts again. */
const MEMO_LIMIT = 10_000;

export interface Review {
  user: string;
  state: string;
  commit: string;
  at: string;
}

/**
 * One GitHub client per repository URL, made on first use: its API (api.github.com for github.com,
 * else the configured GitHub Enterprise URL) and its token. Undefined without either.
 */
export function githubClients(
  access: (repoUrl: string) => { apiUrl?: string | undefined; token?: string | TokenSource | undefined },
): (repoUrl: string) => GitHub | undefined {
  const clients = new Map<string, GitHub | undefined>();
  return (repoUrl) => {
    if (!clients.has(repoUrl)) {
      const { apiUrl, token } = access(repoUrl);
      const api = apiUrlFor(repoUrl, apiUrl);
      clients.set(repoUrl, api && token ? new GitHub({ apiUrl: api, token }) : undefined);
    }
    return clients.get(repoUrl);
  };
}

export interface PullRequestRef {
  number: number;
  url: string;
  action: 'created' | 'updated' | 'unchanged';
}

/**
 * The GitHub calls tidegate makes, on @octokit/core (no generated endpoint table in the bundle),
 * loaded on first use so functions that never call GitHub do not pay for it at cold start.
 */
export class GitHub {
  private client: Promise<Octokit> | undefined;
  private readonly commits = new Map<string, CommitIdentity>();

  /** `token`: a personal or fine-grained token, or a source of GitHub App installation tokens (asked before each request). */
  constructor(private readonly opts: { apiUrl: string; token: string | TokenSource }) {}

  private get octokit(): Promise<Octokit> {
    const { apiUrl, token } = this.opts;
    this.client ??= import('@octokit/core').then(({ Octokit }) => {
      if (typeof token === 'string') return new Octokit({ baseUrl: apiUrl, auth: token, userAgent: 'tidegate' });
      const octokit = new Octokit({ baseUrl: apiUrl, userAgent: 'tidegate' });
      octokit.hook.before('request', async (options) => {
        options.headers.authorization = `token ${await token()}`;
      });
      return octokit;
    });
    return this.client;
  }

  /**
   * Opens a pull request from head into base, or updates the open one for the same head and base
   * (title and body), so one branch never has more than one open pull request.
   */
  async ensurePullRequest(
    name: RepoName,
    pr: { head: string; base: string; title: string; body: string },
  ): Promise<PullRequestRef> {
    const open = await this.findOpen(name, pr.head, pr.base);
    if (open) {
      if (open.title === pr.title && (open.body ?? '') === pr.body)
        return { number: open.number, url: open.html_url, action: 'unchanged' };
      const { data } = await this.call(
        'update pull request',
        (await this.octokit).request('PATCH /repos/{owner}/{repo}/pulls/{pull_number}', {
          ...name,
          pull_number: open.number,
          title: pr.title,
          body: pr.body,
        }),
      );
      return { number: data.number, url: data.html_url, action: 'updated' };
    }
    try {
      const { data } = await (
        await this.octokit
      ).request('POST /repos/{owner}/{repo}/pulls', {
        ...name,
        head: pr.head,
        base: pr.base,
        title: pr.title,
        body: pr.body,
        maintainer_can_modify: true,
      });
      return { number: data.number, url: data.html_url, action: 'created' };
    } catch (err) {
      // Another worker opened it between our list and create: update that one instead.
      if ((err as { status?: number }).status === 422 && (await this.findOpen(name, pr.head, pr.base)))
        return this.ensurePullRequest(name, pr);
      throw this.failed('open pull request', err);
    }
  }

  /** Pull requests that contain a commit (merged ones included), as GitHub associates them. */
  async pullRequestsOfCommit(name: RepoName, sha: string): Promise<MergedPullRequest[]> {
    const { data } = await this.call(
      'list pull requests of a commit',
      (await this.octokit).request('GET /repos/{owner}/{repo}/commits/{commit_sha}/pulls', {
        ...name,
        commit_sha: sha,
        per_page: 100,
      }),
    );
    return data.map(asPullRequest);
  }

  /**
   * Who a commit is, as GitHub knows it: the users its author and committer emails belong to, and
   * whether GitHub made it itself (a merge, squash or rebase done on github.com: committed by
   * web-flow and signed by GitHub). Commits never change: each is asked for once per client.
   */
  async commit(name: RepoName, sha: string): Promise<CommitIdentity> {
    const key = `${name.owner}/${name.repo}@${sha}`;
    const known = this.commits.get(key);
    if (known) return known;
    const { data } = await this.call(
      'read a commit',
      (await this.octokit).request('GET /repos/{owner}/{repo}/commits/{ref}', { ...name, ref: sha, per_page: 1 }),
    );
    const identity: CommitIdentity = {
      sha: data.sha,
      authorLogin: data.author && 'login' in data.author ? data.author.login : undefined,
      committerLogin: data.committer && 'login' in data.committer ? data.committer.login : undefined,
      madeByGitHub: data.committer?.login === 'web-flow' && data.commit.verification?.verified === true,
    };
    if (this.commits.size >= MEMO_LIMIT) this.commits.clear();
    this.commits.set(key, identity);
    return identity;
  }

  /** The commits of a pull request (GitHub lists at most 250), oldest first, with who wrote and committed each. */
  async pullRequestCommits(name: RepoName, pullNumber: number): Promise<CommitIdentity[]> {
    const out: CommitIdentity[] = [];
    for (let page = 1; page <= 3; page++) {
      const { data } = await this.call(
        'list the commits of a pull request',
        (await this.octokit).request('GET /repos/{owner}/{repo}/pulls/{pull_number}/commits', {
          ...name,
          pull_number: pullNumber,
          per_page: 100,
          page,
        }),
      );
      out.push(
        ...data.map((c) => ({
          sha: c.sha,
          authorLogin: c.author && 'login' in c.author ? c.author.login : undefined,
          committerLogin: c.committer && 'login' in c.committer ? c.committer.login : undefined,
          madeByGitHub: c.committer?.login === 'web-flow' && c.commit.verification?.verified === true,
        })),
      );
      if (data.length < 100) break;
    }
    return out;
  }

  /**
   * Who moved a branch, newest first (GitHub's repository activity: pushes, force pushes, the
   * branch's creation and merges of pull requests), page after page (100 each) until `enough` says
   * so or the activity ends, at most `maxPages` pages. `complete`: nothing was left unread.
   */
  async refUpdates(
    name: RepoName,
    branch: string,
    opts: { enough?: (updates: readonly RefUpdate[]) => boolean; maxPages?: number } = {},
  ): Promise<{ updates: RefUpdate[]; complete: boolean }> {
    const updates: RefUpdate[] = [];
    let after: string | undefined;
    for (let page = 0; page < (opts.maxPages ?? ACTIVITY_PAGES); page++) {
      const { data, headers } = await this.call(
        'list the activity of a branch',
        (await this.octokit).request('GET /repos/{owner}/{repo}/activity', {
          ...name,
          ref: `refs/heads/${branch}`,
          direction: 'desc',
          per_page: 100,
          ...(after ? { after } : {}),
        }),
      );
      updates.push(
        ...data.map((a) => ({
          before: a.before,
          after: a.after,
          type: a.activity_type,
          actor: a.actor?.login ?? '',
          at: a.timestamp,
        })),
      );
      const cursor = /<[^>]*[?&]after=([^&>]+)[^>]*>;\s*rel="next"/.exec(headers.link ?? '')?.[1];
      after = cursor === undefined ? undefined : decodeURIComponent(cursor);
      if (!after) return { updates, complete: true };
      if (opts.enough?.(updates)) return { updates, complete: true };
    }
    return { updates, complete: false };
  }

  /** Every review of a pull request, oldest first. */
  async reviews(name: RepoName, pullNumber: number): Promise<Review[]> {
    const reviews: Review[] = [];
    for (let page = 1; ; page++) {
      const { data } = await this.call(
        'list reviews',
        (await this.octokit).request('GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews', {
          ...name,
          pull_number: pullNumber,
          per_page: 100,
          page,
        }),
      );
      reviews.push(
        ...data.map((r) => ({
          user: r.user?.login ?? '',
          state: r.state,
          commit: r.commit_id ?? '',
          at: r.submitted_at ?? '',
        })),
      );
      if (data.length < 100) return reviews;
    }
  }

  /** A completed check run on a commit (needs a GitHub App token; statuses work with any token). */
  async checkRun(
    name: RepoName,
    run: {
      headSha: string;
      name: string;
      conclusion: 'success' | 'failure' | 'neutral';
      title: string;
      summary: string;
    },
  ): Promise<void> {
    await this.call(
      'create a check run',
      (await this.octokit).request('POST /repos/{owner}/{repo}/check-runs', {
        ...name,
        head_sha: run.headSha,
        name: run.name,
        status: 'completed',
        conclusion: run.conclusion,
        output: { title: run.title, summary: clip(run.summary, 65_535) },
      }),
    );
  }

  private self: Promise<string | undefined> | undefined;

  /**
   * Whom the token acts as: the user of a personal or fine-grained token (GET /user); undefined for
   * a GitHub App installation token, which cannot read it (its comments are the App bot's).
   */
  private login(): Promise<string | undefined> {
    this.self ??= this.octokit.then((octokit) =>
      octokit.request('GET /user').then(
        ({ data }) => data.login,
        (err: unknown) => {
          const status = (err as { status?: number }).status;
          if (status === 401 || status === 403 || status === 404) return undefined; // an installation token
          this.self = undefined; // not known for now: asked again next time
          throw this.failed("read the token's user", err);
        },
      ),
    );
    return this.self;
  }

  /**
   * One comment per pull request and marker, tidegate's own: updated in place when it exists,
   * created otherwise. `body` may be a function of the comment's current body (undefined when
   * there is none) to change a part of it.
   */
  async upsertComment(
    name: RepoName,
    issue: number,
    marker: string,
    body: string | ((current: string | undefined) => string),
  ): Promise<'created' | 'updated'> {
    const text = (current: string | undefined): string => (typeof body === 'string' ? body : body(current));
    const octokit = await this.octokit;
    for (let page = 1; ; page++) {
      const { data } = await this.call(
        'list comments',
        octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', {
          ...name,
          issue_number: issue,
          per_page: 100,
          page,
        }),
      );
      const self = await this.login();
      // Only a comment of tidegate's own is updated: a marker planted in someone else's comment is not.
      const mine = data.find(
        (c) =>
          c.body?.startsWith(marker) &&
          (self ? c.user?.login === self : c.user?.type === 'Bot' || Boolean(c.performed_via_github_app)),
      );
      if (mine) {
        await this.call(
          'update a comment',
          octokit.request('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', {
            ...name,
            comment_id: mine.id,
            body: text(mine.body ?? undefined),
          }),
        );
        return 'updated';
      }
      if (data.length < 100) break;
    }
    await this.call(
      'create a comment',
      octokit.request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', {
        ...name,
        issue_number: issue,
        body: text(undefined),
      }),
    );
    return 'created';
  }

  /** A GitHub deployment of a commit to an environment (found, or created), and a status on it. */
  async deploymentStatus(
    name: RepoName,
    d: {
      sha: string;
      environment: string;
      state: 'success' | 'failure' | 'in_progress' | 'inactive';
      description: string;
      /** Where the environment is reached (a preview's URL). */
      url?: string | undefined;
      /** An environment that goes away (a pull request's preview). */
      transient?: boolean;
    },
  ): Promise<number> {
    const octokit = await this.octokit;
    const { data: existing } = await this.call(
      'list deployments',
      octokit.request('GET /repos/{owner}/{repo}/deployments', {
        ...name,
        sha: d.sha,
        environment: d.environment,
        per_page: 1,
      }),
    );
    let id = existing[0] ? Number(existing[0].id) : undefined;
    if (id === undefined) {
      const created = await this.call(
        'create a deployment',
        octokit.request('POST /repos/{owner}/{repo}/deployments', {
          ...name,
          ref: d.sha,
          environment: d.environment,
          auto_merge: false,
          required_contexts: [],
          description: d.transient ? 'tidegate preview' : 'tidegate sync',
          ...(d.transient ? { transient_environment: true, production_environment: false } : {}),
        }),
      );
      if (!('id' in created.data))
        throw new TidegateError(
          'GitHubFailed',
          `GitHub: deployment of ${d.sha.slice(0, 12)} not created: ${created.data.message ?? ''}`,
        );
      id = Number(created.data.id);
    }
    await this.call(
      'create a deployment status',
      octokit.request('POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses', {
        ...name,
        deployment_id: id,
        state: d.state,
        description: clip(d.description, 140),
        environment: d.environment,
        ...(d.url ? { environment_url: d.url } : {}),
      }),
    );
    return id;
  }

  /** A pull request: its state, and the merge commit once merged. */
  async pullRequest(name: RepoName, pullNumber: number): Promise<MergedPullRequest> {
    const { data: p } = await this.call(
      'read a pull request',
      (await this.octokit).request('GET /repos/{owner}/{repo}/pulls/{pull_number}', {
        ...name,
        pull_number: pullNumber,
      }),
    );
    return asPullRequest(p);
  }

  /** Whether a user is an active member of an organisation's team. */
  async inTeam(org: string, team: string, user: string): Promise<boolean> {
    try {
      const { data } = await (
        await this.octokit
      ).request('GET /orgs/{org}/teams/{team_slug}/memberships/{username}', { org, team_slug: team, username: user });
      return data.state === 'active';
    } catch (err) {
      if ((err as { status?: number }).status === 404) return false;
      throw this.failed('read a team membership', err);
    }
  }

  /** Whether a user may push to the repository (admin, maintain or write). */
  async canWrite(name: RepoName, user: string): Promise<boolean> {
    return ['admin', 'maintain', 'write'].includes(await this.permission(name, user));
  }

  /** A user's permission on the repository: admin, maintain, write, triage, read or none. */
  async permission(name: RepoName, user: string): Promise<string> {
    const { data } = await this.call(
      'read a collaborator permission',
      (await this.octokit).request('GET /repos/{owner}/{repo}/collaborators/{username}/permission', {
        ...name,
        username: user,
      }),
    );
    return data.role_name || data.permission;
  }

  /** A commit status (context tidegate/<target>); the description is cut to GitHub's 140 characters. */
  async setStatus(
    name: RepoName,
    sha: string,
    status: { state: 'pending' | 'success' | 'failure' | 'error'; context: string; description: string },
  ): Promise<void> {
    await this.call(
      'set a commit status',
      (await this.octokit).request('POST /repos/{owner}/{repo}/statuses/{sha}', {
        ...name,
        sha,
        state: status.state,
        context: status.context,
        description: clip(status.description, 140),
      }),
    );
  }

  private async findOpen(
    name: RepoName,
    head: string,
    base: string,
  ): Promise<{ number: number; html_url: string; title: string; body: string | null } | undefined> {
    const { data } = await this.call(
      'list pull requests',
      (await this.octokit).request('GET /repos/{owner}/{repo}/pulls', {
        ...name,
        state: 'open',
        head: `${name.owner}:${head}`,
        base,
        per_page: 10,
      }),
    );
    return data[0];
  }

  private async call<T>(what: string, p: Promise<T>): Promise<T> {
    try {
      return await p;
    } catch (err) {
      throw this.failed(what, err);
    }
  }

  private failed(what: string, err: unknown): TidegateError {
    // Getting a credential failed (a GitHub App not installed, a bad key): that error says which and whether to retry.
    if (err instanceof TidegateError) return err;
    const status = (err as { status?: number }).status;
    // No status: the request never got an answer (a reset, a timeout); 429 and 5xx: GitHub is throttling or failing for now.
    const transient = status === undefined || status === 429 || status >= 500;
    return new TidegateError(
      'GitHubFailed',
      `GitHub: cannot ${what}${status ? ` (HTTP ${status})` : ''}: ${errorMessage(err)}`,
      { cause: err, transient },
    );
  }
}
