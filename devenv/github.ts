import { join } from 'node:path';
import { example, notFound, startGitHubApi, validationFailed, type ApiRequest, type ApiResponse, type GitHubApiServer } from './github-api.js';
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

export interface TestGitHub extends GitHubApiServer {
  token: string;
  /** Pull requests of owner/repo, as GitHub holds them. */
  pulls(owner: string, repo: string): PullRequest[];
}

export async function startGitHub(opts: { token: string; gitRoot: string; login?: string }): Promise<TestGitHub> {
  const pulls = new Map<string, PullRequest[]>();
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
    run('git', ['--git-dir', join(opts.gitRoot, owner, `${repo}.git`), 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]).then(
      (out) => out.trim(),
      () => undefined,
    );
  const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

  const create = async (req: ApiRequest): Promise<ApiResponse> => {
    const { owner = '', repo = '' } = req.params;
    const head = String(req.body['head'] ?? '').replace(new RegExp(`^${owner}:`), '');
    const base = String(req.body['base'] ?? '');
    if (!req.body['title']) return validationFailed([{ resource: 'PullRequest', field: 'title', code: 'missing_field' }]);
    const [headSha, baseSha] = await Promise.all([branchSha(owner, repo, head), branchSha(owner, repo, base)]);
    if (!headSha) return validationFailed([{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
    if (!baseSha) return validationFailed([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
    const list = listOf(req.params);
    if (list.some((p) => p.state === 'open' && p.head.ref === head && p.base.ref === base)) {
      return validationFailed([{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${owner}:${head}.` }]);
    }
    const pr = example<PullRequest>('pull-request');
    const number = nextId++;
    const url = `${apiUrl}/repos/${owner}/${repo}/pulls/${number}`;
    Object.assign(pr, {
      id: number, number, node_id: `PR_${number}`, state: 'open', title: req.body['title'], body: (req.body['body'] as string | undefined) ?? null,
      url, html_url: `https://github.test/${owner}/${repo}/pull/${number}`, created_at: now(), updated_at: now(), closed_at: null, merged_at: null,
      merged: false, draft: Boolean(req.body['draft']), commits: 1,
      // A new pull request has none of these (and the description's example team lacks a required field).
      labels: [], assignee: null, assignees: [], requested_reviewers: [], requested_teams: [], milestone: null, merged_by: null, comments: 0, review_comments: 0,
    });
    pr.user['login'] = login;
    pr.head = { ...pr.head, ref: head, sha: headSha, label: `${owner}:${head}` };
    pr.base = { ...pr.base, ref: base, sha: baseSha, label: `${owner}:${base}` };
    list.push(pr);
    return { status: 201, body: pr };
  };

  const find = (req: ApiRequest): PullRequest | undefined => listOf(req.params).find((p) => p.number === Number(req.params['pull_number']));

  const github = await startGitHubApi({
    token: opts.token,
    handlers: {
      'pulls/create': create,
      'pulls/get': async (req) => {
        const pr = find(req);
        if (!pr) return notFound();
        pr.head.sha = (await branchSha(req.params['owner'] ?? '', req.params['repo'] ?? '', pr.head.ref)) ?? pr.head.sha;
        return { status: 200, body: pr };
      },
      'pulls/list': async (req) => {
        const state = req.query.get('state') ?? 'open';
        const head = req.query.get('head');
        const base = req.query.get('base');
        const list = listOf(req.params).filter((p) => (state === 'all' || p.state === state) && (!head || p.head.label === head) && (!base || p.base.ref === base));
        for (const pr of list) pr.head.sha = (await branchSha(req.params['owner'] ?? '', req.params['repo'] ?? '', pr.head.ref)) ?? pr.head.sha;
        return { status: 200, body: list };
      },
      'pulls/update': (req) => {
        const pr = find(req);
        if (!pr) return notFound();
        for (const field of ['title', 'body', 'state'] as const) if (req.body[field] !== undefined) Object.assign(pr, { [field]: req.body[field] });
        pr.updated_at = now();
        if (pr.state === 'closed') pr.closed_at = now();
        return { status: 200, body: pr };
      },
    },
  });
  apiUrl = github.url;
  return { ...github, token: opts.token, pulls: (owner, repo) => pulls.get(`${owner}/${repo}`) ?? [] };
}
