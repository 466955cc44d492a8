import { createPublicKey, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  example,
  notFound,
  startGitHubApi,
  validationFailed,
  type ApiRequest,
  type ApiResponse,
  type GitHubApiServer,
} from './github-api.js';
import { run } from './process.js';

/**
 * GitHub for tests: the OpenAPI-driven API server with the state of the repositories on the
 * test git server (branches are read from the bare repositories, so a pull request's head is the
 * commit that was really pushed). Serves the pull request operations tidegate uses.
 */

interface PullRequest {
  [key: string]: unknown;
  user: Record<string, unknown>;
  number: number;
  state: 'open' | 'closed';
  title: string;
  body: string | null;
  head: { ref: string; sha: string; label: string; repo: Record<string, unknown> };
  base: { ref: string; sha: string; label: string; repo: Record<string, unknown> };
}

/** A deployment as the test GitHub holds it: its statuses' states, oldest first, and the last environment URL given. */
export interface Deployment {
  id: number;
  sha: string;
  environment: string;
  transient: boolean;
  statuses: string[];
  url?: string;
}

export interface TestGitHub extends GitHubApiServer {
  token: string;
  /** Pull requests of owner/repo, as GitHub holds them. */
  pulls(owner: string, repo: string): PullRequest[];
  /**
   * A person opens a pull request (not tidegate): head branch into base. With `fork` (owner/name),
   * the head is in that fork: the branch is still read from the base repository, as GitHub serves
   * it through refs/pull/<n>/head.
   */
  openPullRequest(
    owner: string,
    repo: string,
    pr: { head: string; base: string; author: string; title?: string; fork?: string },
  ): Promise<PullRequest>;
  /** What GitHub does when the head of a pull request from a fork moves: refs/pull/<n>/head follows it. */
  updatePullRef(owner: string, repo: string, number: number, sha: string): Promise<void>;
  /** A person reviews a pull request; by default the review is of its current head. */
  review(
    owner: string,
    repo: string,
    number: number,
    review: { user: string; state: 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED'; commit?: string },
  ): Promise<void>;
  /** A person closes a pull request without merging it. */
  close(owner: string, repo: string, number: number): void;
  /** Merges a pull request into its base with a merge commit (really, in the git server's repository); returns that commit. */
  merge(owner: string, repo: string, number: number, by?: string): Promise<string>;
  /** Sets a user's permission on a repository (default: none). */
  grant(
    owner: string,
    repo: string,
    user: string,
    permission: 'admin' | 'maintain' | 'write' | 'triage' | 'read',
  ): void;
  /** Adds a user to an organisation's team (active membership). */
  addTeamMember(org: string, team: string, user: string): void;
  /** Comments on an issue or pull request, oldest first. */
  comments(owner: string, repo: string, issue: number): Array<{ id: number; body: string; user: string }>;
  /** A person comments on an issue or pull request (not tidegate). */
  comment(owner: string, repo: string, issue: number, user: string, body: string): void;
  /** Check runs created on a repository. */
  checkRuns(
    owner: string,
    repo: string,
  ): Array<{ head_sha: string; name: string; conclusion: string; output: { title: string; summary: string } }>;
  /** Deployments created on a repository, with the states of their statuses. */
  deployments(owner: string, repo: string): Deployment[];
  /** Commit statuses tidegate set, oldest first. */
  statuses(owner: string, repo: string, sha: string): Array<{ state: string; context: string; description: string }>;
  /** Whether a token is the static one or an installation token that has not expired (the git server asks this). */
  tokenValid(token: string): boolean;
  /** Installation tokens issued so far, oldest first. */
  issuedTokens(): string[];
}

/** A GitHub App the test GitHub knows: JWTs are checked with its public key, installation tokens expire after `tokenTtlSeconds`. */
export interface TestGitHubApp {
  id: number;
  publicKey: string;
  installationId: number;
  tokenTtlSeconds: number;
}

/** Verifies an App JWT as GitHub does: RS256 with the App's public key, issuer = App ID, not expired, at most 10 minutes long. */
function validJwt(jwt: string, app: TestGitHubApp): boolean {
  const [header = '', payload = '', signature = ''] = jwt.split('.');
  const ok = verify(
    'RSA-SHA256',
    Buffer.from(`${header}.${payload}`),
    createPublicKey(app.publicKey),
    Buffer.from(signature, 'base64url'),
  );
  if (!ok) return false;
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as {
    iss?: unknown;
    exp?: number;
    iat?: number;
  };
  const now = Date.now() / 1000;
  return (
    String(claims.iss) === String(app.id) && (claims.exp ?? 0) > now && (claims.exp ?? 0) - (claims.iat ?? 0) <= 660
  );
}

export async function startGitHub(opts: {
  token: string;
  gitRoot: string;
  login?: string;
  app?: TestGitHubApp;
}): Promise<TestGitHub> {
  const issued = new Map<string, number>(); // installation token → expiry (ms)
  const tokenValid = (token: string): boolean => token === opts.token || (issued.get(token) ?? 0) > Date.now();
  const APP_OPERATIONS = new Set(['apps/get-repo-installation', 'apps/create-installation-access-token']);
  const authorize = (auth: string, operationId: string | undefined): boolean => {
    const [scheme = '', credential = ''] = auth.split(' ');
    if (opts.app && operationId && APP_OPERATIONS.has(operationId))
      return scheme.toLowerCase() === 'bearer' && validJwt(credential, opts.app);
    return ['token', 'bearer'].includes(scheme.toLowerCase()) && tokenValid(credential);
  };
  const pulls = new Map<string, PullRequest[]>();
  const reviews = new Map<string, Array<Record<string, unknown>>>();
  const permissions = new Map<string, string>();
  const teams = new Map<string, Set<string>>();
  const comments = new Map<string, Array<Record<string, unknown> & { id: number; body: string }>>();
  const checkRuns = new Map<string, Array<Record<string, unknown>>>();
  let nextComment = 1;
  const deployments = new Map<string, Deployment[]>();
  let nextDeployment = 1;
  const statuses = new Map<string, Array<{ state: string; context: string; description: string }>>();
  const login = opts.login ?? 'tidegate-bot';
  let nextId = 1;
  let apiUrl = '';
  const listOf = (p: Record<string, string>): PullRequest[] => {
    const key = `${p['owner']}/${p['repo']}`;
    const list = pulls.get(key) ?? [];
    pulls.set(key, list);
    return list;
  };
  const branchSha = async (owner: string, repo: string, branch: string): Promise<string | undefined> =>
    run('git', [
      '--git-dir',
      join(opts.gitRoot, owner, `${repo}.git`),
      'rev-parse',
      '--verify',
      '--quiet',
      `refs/heads/${branch}`,
    ]).then(
      (out) => out.trim(),
      () => undefined,
    );
  const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

  const create = async (req: ApiRequest, author = login): Promise<ApiResponse> => {
    const { owner = '', repo = '' } = req.params;
    const head = String(req.body['head'] ?? '').replace(new RegExp(`^${owner}:`), '');
    const base = String(req.body['base'] ?? '');
    if (!req.body['title'])
      return validationFailed([{ resource: 'PullRequest', field: 'title', code: 'missing_field' }]);
    const [headSha, baseSha] = await Promise.all([branchSha(owner, repo, head), branchSha(owner, repo, base)]);
    if (!headSha) return validationFailed([{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
    if (!baseSha) return validationFailed([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
    const list = listOf(req.params);
    if (list.some((p) => p.state === 'open' && p.head.ref === head && p.base.ref === base)) {
      return validationFailed([
        { resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${owner}:${head}.` },
      ]);
    }
    const pr = example<PullRequest>('pull-request');
    const number = nextId++;
    const url = `${apiUrl}/repos/${owner}/${repo}/pulls/${number}`;
    Object.assign(pr, {
      id: number,
      number,
      node_id: `PR_${number}`,
      state: 'open',
      title: req.body['title'],
      body: (req.body['body'] as string | undefined) ?? null,
      url,
      html_url: `https://github.test/${owner}/${repo}/pull/${number}`,
      created_at: now(),
      updated_at: now(),
      closed_at: null,
      merged_at: null,
      merged: false,
      draft: Boolean(req.body['draft']),
      commits: 1,
      // A new pull request has none of these (and the description's example team lacks a required field).
      labels: [],
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      milestone: null,
      merged_by: null,
      comments: 0,
      review_comments: 0,
    });
    pr.user = { ...pr.user, login: author };
    const full_name = `${owner}/${repo}`;
    pr.head = { ...pr.head, ref: head, sha: headSha, label: `${owner}:${head}`, repo: { ...pr.head.repo, full_name } };
    pr.base = { ...pr.base, ref: base, sha: baseSha, label: `${owner}:${base}`, repo: { ...pr.base.repo, full_name } };
    list.push(pr);
    return { status: 201, body: pr };
  };

  const addComment = (key: string, author: string, body: Record<string, unknown>) => {
    const id = nextComment++;
    const comment = {
      ...example<Record<string, unknown>>('issue-comment'),
      id,
      node_id: `IC_${id}`,
      body: String(body['body']),
      user: { ...example<Record<string, unknown>>('simple-user'), login: author },
      created_at: now(),
      updated_at: now(),
    };
    comments.set(key, [...(comments.get(key) ?? []), comment]);
    return comment;
  };

  const find = (req: ApiRequest): PullRequest | undefined =>
    listOf(req.params).find((p) => p.number === Number(req.params['pull_number']));

  const github = await startGitHubApi({
    token: authorize,
    handlers: {
      'apps/get-repo-installation': () =>
        opts.app
          ? {
              status: 200,
              body: {
                ...example<Record<string, unknown>>('installation'),
                id: opts.app.installationId,
                app_id: opts.app.id,
              },
            }
          : notFound(),
      'apps/create-installation-access-token': (req) => {
        if (!opts.app || Number(req.params['installation_id']) !== opts.app.installationId) return notFound();
        const token = `ghs_${randomBytes(18).toString('hex')}`;
        const expires = Date.now() + opts.app.tokenTtlSeconds * 1000;
        issued.set(token, expires);
        return {
          status: 201,
          body: {
            ...example<Record<string, unknown>>('installation-token'),
            token,
            expires_at: new Date(expires).toISOString().replace(/\.\d+Z$/, 'Z'),
          },
        };
      },
      'pulls/create': create,
      'pulls/get': async (req) => {
        const pr = find(req);
        if (!pr) return notFound();
        pr.head.sha =
          (await branchSha(req.params['owner'] ?? '', req.params['repo'] ?? '', pr.head.ref)) ?? pr.head.sha;
        return { status: 200, body: pr };
      },
      'pulls/list': async (req) => {
        const state = req.query.get('state') ?? 'open';
        const head = req.query.get('head');
        const base = req.query.get('base');
        const list = listOf(req.params).filter(
          (p) =>
            (state === 'all' || p.state === state) &&
            (!head || p.head.label === head) &&
            (!base || p.base.ref === base),
        );
        for (const pr of list)
          pr.head.sha =
            (await branchSha(req.params['owner'] ?? '', req.params['repo'] ?? '', pr.head.ref)) ?? pr.head.sha;
        return { status: 200, body: list };
      },
      'repos/list-pull-requests-associated-with-commit': (req) => {
        const sha = req.params['commit_sha'];
        return {
          status: 200,
          body: listOf(req.params).filter((p) => p['merge_commit_sha'] === sha || p.head.sha === sha),
        };
      },
      'pulls/list-reviews': (req) => ({
        status: 200,
        body: reviews.get(`${req.params['owner']}/${req.params['repo']}#${req.params['pull_number']}`) ?? [],
      }),
      'repos/get-collaborator-permission-level': (req) => {
        const permission =
          permissions.get(`${req.params['owner']}/${req.params['repo']}:${req.params['username']}`) ?? 'none';
        const user = {
          ...example<Record<string, unknown>>('simple-user'),
          login: req.params['username'],
          role_name: permission,
        };
        return {
          status: 200,
          body: {
            permission: permission === 'maintain' ? 'write' : permission === 'triage' ? 'read' : permission,
            role_name: permission,
            user,
          },
        };
      },
      'teams/get-membership-for-user-in-org': (req) => {
        if (!teams.get(`${req.params['org']}/${req.params['team_slug']}`)?.has(req.params['username'] ?? ''))
          return notFound();
        return {
          status: 200,
          body: {
            ...example<Record<string, unknown>>('team-membership-response-if-user-is-a-team-maintainer'),
            role: 'member',
            state: 'active',
          },
        };
      },
      'issues/list-comments': (req) => {
        const all = comments.get(`${req.params['owner']}/${req.params['repo']}#${req.params['issue_number']}`) ?? [];
        const perPage = Number(req.query.get('per_page') ?? 30);
        const page = Number(req.query.get('page') ?? 1);
        return { status: 200, body: all.slice((page - 1) * perPage, page * perPage) };
      },
      'issues/create-comment': (req) => ({
        status: 201,
        body: addComment(`${req.params['owner']}/${req.params['repo']}#${req.params['issue_number']}`, login, req.body),
      }),
      'users/get-authenticated': () => ({
        status: 200,
        body: { ...example<Record<string, unknown>>('private-user'), login },
      }),
      'issues/update-comment': (req) => {
        const comment = [...comments.entries()]
          .filter(([k]) => k.startsWith(`${req.params['owner']}/${req.params['repo']}#`))
          .flatMap(([, list]) => list)
          .find((c) => c.id === Number(req.params['comment_id']));
        if (!comment) return notFound();
        Object.assign(comment, { body: String(req.body['body']), updated_at: now() });
        return { status: 200, body: comment };
      },
      'repos/list-deployments': (req) => {
        const list = (deployments.get(`${req.params['owner']}/${req.params['repo']}`) ?? []).filter(
          (d) =>
            (!req.query.get('sha') || d.sha === req.query.get('sha')) &&
            (!req.query.get('environment') || d.environment === req.query.get('environment')),
        );
        return {
          status: 200,
          body: list.map((d) => ({
            ...example<Record<string, unknown>>('deployment'),
            id: d.id,
            node_id: `D_${d.id}`,
            sha: d.sha,
            ref: d.sha,
            environment: d.environment,
            creator: { ...example<Record<string, unknown>>('simple-user'), login },
          })),
        };
      },
      'repos/create-deployment': (req) => {
        const key = `${req.params['owner']}/${req.params['repo']}`;
        const d = {
          id: nextDeployment++,
          sha: String(req.body['ref']),
          environment: String(req.body['environment'] ?? 'production'),
          transient: req.body['transient_environment'] === true,
          statuses: [] as string[],
        };
        deployments.set(key, [...(deployments.get(key) ?? []), d]);
        return {
          status: 201,
          body: {
            ...example<Record<string, unknown>>('deployment'),
            id: d.id,
            node_id: `D_${d.id}`,
            sha: d.sha,
            ref: d.sha,
            environment: d.environment,
            creator: { ...example<Record<string, unknown>>('simple-user'), login },
          },
        };
      },
      'repos/create-deployment-status': (req) => {
        const d = (deployments.get(`${req.params['owner']}/${req.params['repo']}`) ?? []).find(
          (x) => x.id === Number(req.params['deployment_id']),
        );
        if (!d) return notFound();
        d.statuses.push(String(req.body['state']));
        if (typeof req.body['environment_url'] === 'string') d.url = req.body['environment_url'];
        return {
          status: 201,
          body: {
            ...example<Record<string, unknown>>('deployment-status'),
            state: req.body['state'],
            description: req.body['description'] ?? '',
            environment: d.environment,
            creator: { ...example<Record<string, unknown>>('simple-user'), login },
          },
        };
      },
      'checks/create': (req) => {
        const key = `${req.params['owner']}/${req.params['repo']}`;
        const list = checkRuns.get(key) ?? [];
        const run = {
          ...example<Record<string, unknown>>('check-run'),
          id: list.length + 1,
          head_sha: req.body['head_sha'],
          name: req.body['name'],
          status: req.body['status'] ?? 'queued',
          conclusion: req.body['conclusion'] ?? null,
          output: {
            ...(example<Record<string, unknown>>('check-run')['output'] as Record<string, unknown>),
            ...(req.body['output'] as Record<string, unknown>),
          },
        };
        checkRuns.set(key, [...list, run]);
        return { status: 201, body: run };
      },
      'repos/create-commit-status': (req) => {
        const key = `${req.params['owner']}/${req.params['repo']}@${req.params['sha']}`;
        const entry = {
          state: String(req.body['state']),
          context: String(req.body['context'] ?? 'default'),
          description: String(req.body['description'] ?? ''),
        };
        statuses.set(key, [...(statuses.get(key) ?? []), entry]);
        return {
          status: 201,
          body: { ...example<Record<string, unknown>>('status'), ...entry, created_at: now(), updated_at: now() },
        };
      },
      'pulls/update': (req) => {
        const pr = find(req);
        if (!pr) return notFound();
        for (const field of ['title', 'body', 'state'] as const)
          if (req.body[field] !== undefined) Object.assign(pr, { [field]: req.body[field] });
        pr.updated_at = now();
        if (pr.state === 'closed') pr.closed_at = now();
        return { status: 200, body: pr };
      },
    },
  });
  apiUrl = github.url;
  const pr = (owner: string, repo: string, number: number): PullRequest => {
    const found = listOf({ owner, repo }).find((p) => p.number === number);
    if (!found) throw new Error(`no pull request #${number} in ${owner}/${repo}`);
    return found;
  };
  const updatePullRef = async (owner: string, repo: string, number: number, sha: string): Promise<void> => {
    await run('git', [
      '--git-dir',
      join(opts.gitRoot, owner, `${repo}.git`),
      'update-ref',
      `refs/pull/${number}/head`,
      sha,
    ]);
  };
  return {
    ...github,
    token: opts.token,
    tokenValid,
    issuedTokens: () => [...issued.keys()],
    pulls: (owner, repo) => pulls.get(`${owner}/${repo}`) ?? [],
    openPullRequest: async (owner, repo, p) => {
      const out = await create(
        {
          operationId: 'pulls/create',
          params: { owner, repo },
          query: new URLSearchParams(),
          body: { head: p.head, base: p.base, title: p.title ?? `change from ${p.author}` },
        },
        p.author,
      );
      if (out.status !== 201) throw new Error(`cannot open the pull request: ${JSON.stringify(out.body)}`);
      const opened = out.body as PullRequest;
      if (p.fork) {
        opened.head = {
          ...opened.head,
          label: `${p.fork.split('/')[0] ?? ''}:${p.head}`,
          repo: { ...opened.head.repo, full_name: p.fork, fork: true },
        };
        await updatePullRef(owner, repo, opened.number, opened.head.sha);
      }
      return opened;
    },
    updatePullRef,
    review: async (owner, repo, number, r) => {
      const target = pr(owner, repo, number);
      const head = (await branchSha(owner, repo, target.head.ref)) ?? target.head.sha;
      const key = `${owner}/${repo}#${number}`;
      const list = reviews.get(key) ?? [];
      const review = {
        ...example<Record<string, unknown>>('pull-request-review'),
        id: list.length + 1,
        node_id: `R_${number}_${list.length + 1}`,
        user: { ...example<Record<string, unknown>>('simple-user'), login: r.user },
        state: r.state,
        commit_id: r.commit ?? head,
        submitted_at: now(),
        body: '',
      };
      reviews.set(key, [...list, review]);
    },
    close: (owner, repo, number) => void Object.assign(pr(owner, repo, number), { state: 'closed', closed_at: now() }),
    merge: async (owner, repo, number, by = 'maintainer') => {
      const target = pr(owner, repo, number);
      const work = mkdtempSync(join(tmpdir(), 'tidegate-merge-'));
      try {
        const env = {
          ...process.env,
          GIT_CONFIG_NOSYSTEM: '1',
          GIT_CONFIG_GLOBAL: '/dev/null',
          GIT_AUTHOR_NAME: by,
          GIT_AUTHOR_EMAIL: `${by}@example.test`,
          GIT_COMMITTER_NAME: 'GitHub',
          GIT_COMMITTER_EMAIL: 'noreply@github.test',
        };
        await run(
          'git',
          ['clone', '--quiet', '--branch', target.base.ref, join(opts.gitRoot, owner, `${repo}.git`), work],
          { env },
        );
        await run('git', ['fetch', '--quiet', 'origin', target.head.ref], { cwd: work, env });
        target.head.sha = (await run('git', ['rev-parse', 'FETCH_HEAD'], { cwd: work, env })).trim();
        await run(
          'git',
          ['merge', '--quiet', '--no-ff', '-m', `Merge pull request #${number} from ${target.head.ref}`, 'FETCH_HEAD'],
          { cwd: work, env },
        );
        await run('git', ['push', '--quiet', 'origin', `HEAD:refs/heads/${target.base.ref}`], { cwd: work, env });
        const sha = (await run('git', ['rev-parse', 'HEAD'], { cwd: work, env })).trim();
        Object.assign(target, {
          state: 'closed',
          merged: true,
          merged_at: now(),
          closed_at: now(),
          merge_commit_sha: sha,
          merged_by: { ...example<Record<string, unknown>>('simple-user'), login: by },
        });
        return sha;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
    grant: (owner, repo, user, permission) => void permissions.set(`${owner}/${repo}:${user}`, permission),
    addTeamMember: (org, team, user) =>
      void teams.set(`${org}/${team}`, new Set([...(teams.get(`${org}/${team}`) ?? []), user])),
    statuses: (owner, repo, sha) => statuses.get(`${owner}/${repo}@${sha}`) ?? [],
    deployments: (owner, repo) => deployments.get(`${owner}/${repo}`) ?? [],
    comments: (owner, repo, issue) =>
      (comments.get(`${owner}/${repo}#${issue}`) ?? []).map((c) => ({
        id: c.id,
        body: c.body,
        user: String((c['user'] as { login: string }).login),
      })),
    comment: (owner, repo, issue, user, body) => void addComment(`${owner}/${repo}#${issue}`, user, { body }),
    checkRuns: (owner, repo) => (checkRuns.get(`${owner}/${repo}`) ?? []) as ReturnType<TestGitHub['checkRuns']>,
  };
}
