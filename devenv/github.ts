import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
import { ACTIVITY_FILE, noreplyEmail, recordActivity, type RefActivity } from './git-server.js';
import { run } from './process.js';

/**
 * GitHub for tests: the OpenAPI-driven API server with the state of the repositories on the
 * test git server (branches are read from the bare repositories, so a pull request's head is the
 * commit that was really pushed). Serves the pull request operations tidegate uses, and what
 * GitHub tells of commits and pushes: a commit's author/committer logins (from
 * `<login>@users.noreply.github.test` addresses), its files and verification; a pull request's
 * commits and the pull requests of a commit; the repository's activity (the pushes the git server
 * recorded, with the basic-auth user name as actor, and this server's own merges).
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

export type MergeMethod = 'merge' | 'squash' | 'rebase';

/** What a merge did: the base before it, the head it merged, the commits it made on the base (oldest first). */
interface MergeRecord {
  method: MergeMethod;
  base: string;
  head: string;
  made: string[];
}

/** A commit as git holds it. */
interface GitCommit {
  sha: string;
  tree: string;
  parents: string[];
  author: { name: string; email: string; date: string };
  committer: { name: string; email: string; date: string };
  message: string;
  /** The signature (gpgsig header), and the commit without it (what was signed). */
  signature: string | undefined;
  payload: string;
}

const GIT_STATUS: Record<string, string> = {
  A: 'added',
  D: 'removed',
  M: 'modified',
  R: 'renamed',
  C: 'copied',
  T: 'changed',
};

/** A git identity line's `Name <email> <unix time> <zone>`, with the time as GitHub gives it (UTC, no millis). */
function identity(value: string): { name: string; email: string; date: string } {
  const m = /^(.*?) ?<([^>]*)> (\d+) [+-]\d{4}$/.exec(value);
  if (!m) return { name: value, email: '', date: new Date(0).toISOString().replace(/\.\d+Z$/, 'Z') };
  return {
    name: m[1] ?? '',
    email: m[2] ?? '',
    date: new Date(Number(m[3]) * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

/** Parses `git cat-file commit` output. */
function parseCommit(sha: string, raw: string): GitCommit {
  const split = raw.indexOf('\n\n');
  const headerText = split < 0 ? raw : raw.slice(0, split);
  const message = split < 0 ? '' : raw.slice(split + 2);
  const headers: Array<[string, string]> = [];
  for (const line of headerText.split('\n')) {
    const last = headers.at(-1);
    if (line.startsWith(' ') && last) last[1] += `\n${line.slice(1)}`;
    else {
      const space = line.indexOf(' ');
      headers.push([line.slice(0, space), line.slice(space + 1)]);
    }
  }
  const get = (name: string) => headers.find(([k]) => k === name)?.[1];
  const signature = get('gpgsig') ?? get('gpgsig-sha256');
  const unsigned = headers
    .filter(([k]) => k !== 'gpgsig' && k !== 'gpgsig-sha256')
    .map(([k, v]) => `${k} ${v.replace(/\n/g, '\n ')}`)
    .join('\n');
  return {
    sha,
    tree: get('tree') ?? '',
    parents: headers.filter(([k]) => k === 'parent').map(([, v]) => v),
    author: identity(get('author') ?? ''),
    committer: identity(get('committer') ?? ''),
    message: message.replace(/\n+$/, ''),
    signature: signature === undefined ? undefined : `${signature}\n`,
    payload: `${unsigned}\n\n${message}`,
  };
}

/** The login of a GitHub no-reply address (`login@…` or `id+login@users.noreply.github.test`), if it is one. */
function loginOf(email: string): string | undefined {
  return /^(?:\d+\+)?([A-Za-z0-9](?:[A-Za-z0-9-]*)(?:\[bot\])?)@users\.noreply\.github\.test$/i.exec(email)?.[1];
}

/** A file path in a URL: each segment escaped. */
const urlPath = (path: string): string => path.split('/').map(encodeURIComponent).join('/');

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
  /**
   * Merges a pull request into its base, really, in the git server's repository, as GitHub's merge
   * button does (committer `GitHub <noreply@github.test>`, shown as `web-flow`, verified):
   * `merge` makes a `--no-ff` merge commit authored by `by`; `squash` one commit of the pull
   * request's changes authored by its author, message `<title> (#<number>)`; `rebase` replays each of
   * its commits onto the base (authors kept). Records a `pr_merge` activity by `by`. Returns the
   * merge commit SHA GitHub reports (merge: the merge commit; squash: the squash commit; rebase:
   * the last rebased commit). Throws on a conflict or when the pull request is already merged.
   */
  merge(owner: string, repo: string, number: number, by?: string, method?: MergeMethod): Promise<string>;
  /** The commits a merge of a pull request made on its base, oldest first (empty before it is merged). */
  mergeCommits(owner: string, repo: string, number: number): string[];
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
  const gitDir = (owner: string, repo: string): string => join(opts.gitRoot, owner, `${repo}.git`);
  const git = (owner: string, repo: string, ...args: string[]): Promise<string> =>
    run('git', ['--git-dir', gitDir(owner, repo), ...args]);
  /** Merges this server made, per `owner/repo#number`, and the commits it made, per `owner/repo` (SHA → when). */
  const merges = new Map<string, MergeRecord>();
  const madeCommits = new Map<string, Map<string, string>>();

  /** A GitHub user as the API shows one (`simple-user`), with an id of its own. */
  const userOf = (name: string): Record<string, unknown> => {
    const id =
      name === 'web-flow' ? 19864447 : createHash('sha256').update(name).digest().readUInt32BE(0) % 100_000_000;
    return {
      ...example<Record<string, unknown>>('simple-user'),
      login: name,
      id,
      node_id: `U_${Buffer.from(name).toString('base64url')}`,
      url: `${apiUrl}/users/${encodeURIComponent(name)}`,
      html_url: `https://github.test/${encodeURIComponent(name)}`,
      type: name.endsWith('[bot]') ? 'Bot' : 'User',
    };
  };

  /** The full SHA of a commit GitHub's `ref` names: a SHA (or its prefix), a branch, `heads/<branch>` or `tags/<tag>`. */
  const resolveCommit = async (owner: string, repo: string, ref: string): Promise<string | undefined> => {
    if (!/^[A-Za-z0-9_][\w./-]*$/.test(ref) || ref.includes('..') || ref.endsWith('.lock')) return undefined;
    const name = /^(heads|tags)\//.test(ref) ? `refs/${ref}` : ref;
    return git(owner, repo, 'rev-parse', '--verify', '--quiet', `${name}^{commit}`).then(
      (out) => out.trim() || undefined,
      () => undefined,
    );
  };

  const readCommit = async (owner: string, repo: string, sha: string): Promise<GitCommit> =>
    parseCommit(sha, await git(owner, repo, 'cat-file', 'commit', sha));

  /** The files a commit changed against its first parent (every file of a root commit), as GitHub's diff entries. */
  const changedFiles = async (owner: string, repo: string, c: GitCommit): Promise<Array<Record<string, unknown>>> => {
    const range = c.parents[0] ? [c.parents[0], c.sha] : ['--root', c.sha];
    const [raw, numstat] = await Promise.all([
      git(owner, repo, 'diff-tree', '-r', '-M', '--no-commit-id', '--raw', '-z', ...range),
      git(owner, repo, 'diff-tree', '-r', '-M', '--no-commit-id', '--numstat', '-z', ...range),
    ]);
    const counts = new Map<string, { additions: number; deletions: number }>();
    const nums = numstat.split('\0');
    for (let i = 0; i < nums.length; i++) {
      const [added = '', deleted = '', path = ''] = (nums[i] ?? '').split('\t');
      if (added === '') continue;
      const file = path === '' ? nums[(i += 2)] : path; // a rename: the old and new paths follow
      counts.set(file ?? '', {
        additions: added === '-' ? 0 : Number(added),
        deletions: deleted === '-' ? 0 : Number(deleted),
      });
    }
    const files: Array<Record<string, unknown>> = [];
    const tokens = raw.split('\0');
    for (let i = 0; i < tokens.length; i++) {
      const meta = tokens[i] ?? '';
      if (!meta.startsWith(':')) continue;
      const [, , src = '', dst = '', status = ''] = meta.slice(1).split(' ');
      const letter = status.charAt(0);
      const from = tokens[++i] ?? '';
      const to = letter === 'R' || letter === 'C' ? (tokens[++i] ?? '') : from;
      const { additions = 0, deletions = 0 } = counts.get(to) ?? {};
      files.push({
        sha: letter === 'D' ? src : dst,
        filename: to,
        status: GIT_STATUS[letter] ?? 'changed',
        additions,
        deletions,
        changes: additions + deletions,
        blob_url: `https://github.test/${owner}/${repo}/blob/${c.sha}/${urlPath(to)}`,
        raw_url: `https://github.test/${owner}/${repo}/raw/${c.sha}/${urlPath(to)}`,
        contents_url: `${apiUrl}/repos/${owner}/${repo}/contents/${urlPath(to)}?ref=${c.sha}`,
        ...(letter === 'R' || letter === 'C' ? { previous_filename: from } : {}),
      });
    }
    return files;
  };

  /** A commit as GitHub's REST API shows one (`commit`); with its files and stats for get-commit. */
  const commitJson = async (
    owner: string,
    repo: string,
    sha: string,
    withFiles: boolean,
  ): Promise<Record<string, unknown>> => {
    const c = await readCommit(owner, repo, sha);
    const api = `${apiUrl}/repos/${owner}/${repo}`;
    const html = `https://github.test/${owner}/${repo}`;
    const madeAt = madeCommits.get(`${owner}/${repo}`)?.get(sha);
    const verification =
      madeAt !== undefined
        ? {
            verified: true,
            reason: 'valid',
            // GitHub signs the commits of its merge button; this server only says so.
            signature:
              '-----BEGIN PGP SIGNATURE-----\n\n(made by the test GitHub; not a real signature)\n-----END PGP SIGNATURE-----\n',
            payload: c.payload,
            verified_at: madeAt,
          }
        : c.signature
          ? // Signed, but this server knows no user's keys.
            { verified: false, reason: 'unknown_key', signature: c.signature, payload: c.payload, verified_at: null }
          : { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null };
    const person = (email: string) => {
      const name = loginOf(email);
      return name ? userOf(name) : null;
    };
    const out: Record<string, unknown> = {
      url: `${api}/commits/${sha}`,
      sha,
      node_id: `C_${Buffer.from(`${owner}/${repo}:${sha}`).toString('base64url')}`,
      html_url: `${html}/commit/${sha}`,
      comments_url: `${api}/commits/${sha}/comments`,
      commit: {
        url: `${api}/git/commits/${sha}`,
        author: c.author,
        committer: c.committer,
        message: c.message,
        comment_count: 0,
        tree: { sha: c.tree, url: `${api}/git/trees/${c.tree}` },
        verification,
      },
      author: person(c.author.email),
      committer: madeAt !== undefined ? userOf('web-flow') : person(c.committer.email),
      parents: c.parents.map((p) => ({ sha: p, url: `${api}/commits/${p}`, html_url: `${html}/commit/${p}` })),
    };
    if (withFiles) {
      const files = await changedFiles(owner, repo, c);
      const additions = files.reduce((n, f) => n + Number(f['additions']), 0);
      const deletions = files.reduce((n, f) => n + Number(f['deletions']), 0);
      out['stats'] = { additions, deletions, total: additions + deletions };
      out['files'] = files;
    }
    return out;
  };

  /** The head of a pull request: the one merged, once merged; else its branch now (or the last known). */
  const currentHead = async (owner: string, repo: string, p: PullRequest): Promise<string> =>
    p['merged'] === true ? p.head.sha : ((await branchSha(owner, repo, p.head.ref)) ?? p.head.sha);

  /** A pull request's commits, oldest first: base..head, with the base and head as merged (or as they are now). */
  const pullCommits = async (owner: string, repo: string, p: PullRequest): Promise<string[]> => {
    const merged = merges.get(`${owner}/${repo}#${p.number}`);
    const head = merged?.head ?? (await currentHead(owner, repo, p));
    const base = merged?.base ?? (await branchSha(owner, repo, p.base.ref)) ?? p.base.sha;
    const out = await git(owner, repo, 'rev-list', '--reverse', `${base}..${head}`).catch(() => '');
    return out.split('\n').filter(Boolean);
  };

  /** Brings a pull request up to date with its branch (unless merged: GitHub keeps the head it merged). */
  const refresh = async (owner: string, repo: string, p: PullRequest): Promise<PullRequest> => {
    p.head.sha = await currentHead(owner, repo, p);
    p['commits'] = (await pullCommits(owner, repo, p)).length;
    return p;
  };

  /** The repository's activities, oldest first: the pushes the git server recorded and this server's merges. */
  const activities = (owner: string, repo: string): RefActivity[] => {
    const file = join(gitDir(owner, repo), ACTIVITY_FILE);
    if (!existsSync(file)) return [];
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as RefActivity);
  };

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
        return { status: 200, body: await refresh(req.params['owner'] ?? '', req.params['repo'] ?? '', pr) };
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
        for (const pr of list) await refresh(req.params['owner'] ?? '', req.params['repo'] ?? '', pr);
        return { status: 200, body: list };
      },
      'pulls/list-commits': async (req) => {
        const { owner = '', repo = '' } = req.params;
        const pr = find(req);
        if (!pr) return notFound();
        const perPage = Math.min(Number(req.query.get('per_page') || 30), 100);
        const page = Number(req.query.get('page') || 1);
        const shas = (await pullCommits(owner, repo, pr)).slice((page - 1) * perPage, page * perPage);
        return { status: 200, body: await Promise.all(shas.map((sha) => commitJson(owner, repo, sha, false))) };
      },
      // The pull requests that brought a commit (it is one of their commits), merged it (their merge,
      // squash or rebased commits) or whose last known head it is; merged ones first.
      'repos/list-pull-requests-associated-with-commit': async (req) => {
        const { owner = '', repo = '' } = req.params;
        const sha = await resolveCommit(owner, repo, req.params['commit_sha'] ?? '');
        if (!sha) return { status: 200, body: [] };
        const found: PullRequest[] = [];
        for (const p of listOf(req.params)) {
          const made = merges.get(`${owner}/${repo}#${p.number}`)?.made ?? [];
          if (
            p['merge_commit_sha'] === sha ||
            p.head.sha === sha ||
            made.includes(sha) ||
            (await pullCommits(owner, repo, p)).includes(sha)
          )
            found.push(p);
        }
        const merged = found.filter((p) => p['merged'] === true);
        const perPage = Math.min(Number(req.query.get('per_page') || 30), 100);
        const page = Number(req.query.get('page') || 1);
        return {
          status: 200,
          body: [...merged, ...found.filter((p) => p['merged'] !== true)].slice((page - 1) * perPage, page * perPage),
        };
      },
      'repos/get-commit': async (req) => {
        const { owner = '', repo = '' } = req.params;
        const sha = await resolveCommit(owner, repo, req.params['ref'] ?? '');
        if (!sha) return notFound();
        return { status: 200, body: await commitJson(owner, repo, sha, true) };
      },
      // Cursor pagination (`before`/`after`) is left out: the first `per_page` activities are answered.
      'repos/list-activities': (req) => {
        const { owner = '', repo = '' } = req.params;
        const q = (name: string) => req.query.get(name) || undefined;
        const ref = q('ref');
        const wantedRef = ref === undefined ? undefined : ref.startsWith('refs/') ? ref : `refs/heads/${ref}`;
        const days = { day: 1, week: 7, month: 30, quarter: 90, year: 365 }[q('time_period') ?? ''];
        const since = days === undefined ? undefined : Date.now() - days * 86_400_000;
        const list = activities(owner, repo).filter(
          (a) =>
            (wantedRef === undefined || a.ref === wantedRef) &&
            (q('actor') === undefined || a.actor === q('actor')) &&
            (q('activity_type') === undefined || a.activity_type === q('activity_type')) &&
            (since === undefined || Date.parse(a.timestamp) >= since),
        );
        if (q('direction') !== 'asc') list.reverse();
        const perPage = Math.min(Number(q('per_page') ?? 30) || 30, 100);
        // Cursors as GitHub gives them in the Link header: `after` continues past the entry it names.
        const after = q('after');
        const start = after === undefined ? 0 : list.findIndex((a) => String(a.id) === after) + 1;
        const page = list.slice(start, start + perPage);
        const next = start + perPage < list.length ? page.at(-1) : undefined;
        const link = new URL(`${apiUrl}/repos/${owner}/${repo}/activity`);
        for (const [k, v] of req.query) if (k !== 'after') link.searchParams.set(k, v);
        if (next) link.searchParams.set('after', String(next.id));
        return {
          status: 200,
          ...(next ? { headers: { link: `<${link.toString()}>; rel="next"` } } : {}),
          body: page.map((a) => ({
            id: a.id,
            node_id: `RA_${Buffer.from(String(a.id)).toString('base64url')}`,
            before: a.before,
            after: a.after,
            ref: a.ref,
            timestamp: a.timestamp,
            activity_type: a.activity_type,
            actor: a.actor === 'anonymous' ? null : userOf(a.actor),
          })),
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
      const head = await currentHead(owner, repo, target);
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
    merge: async (owner, repo, number, by = 'maintainer', method: MergeMethod = 'merge') => {
      const target = pr(owner, repo, number);
      if (target['merged'] === true) throw new Error(`pull request #${number} in ${owner}/${repo} is already merged`);
      const work = mkdtempSync(join(tmpdir(), 'tidegate-merge-'));
      const env = (author: string) => ({
        ...process.env,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_CONFIG_GLOBAL: '/dev/null',
        GIT_AUTHOR_NAME: author,
        GIT_AUTHOR_EMAIL: noreplyEmail(author),
        GIT_COMMITTER_NAME: 'GitHub',
        GIT_COMMITTER_EMAIL: 'noreply@github.test',
      });
      const inWork = (args: string[], author = by) => run('git', args, { cwd: work, env: env(author) });
      try {
        // A local clone has every object of the repository, so any head is at hand.
        await inWork(['clone', '--quiet', '--branch', target.base.ref, gitDir(owner, repo), work]);
        const head = await currentHead(owner, repo, target);
        const before = (await inWork(['rev-parse', 'HEAD'])).trim();
        if (method === 'merge') {
          await inWork([
            'merge',
            '--quiet',
            '--no-ff',
            '-m',
            `Merge pull request #${number} from ${target.head.label.replace(':', '/')}`,
            head,
          ]);
        } else if (method === 'squash') {
          const author = String((target.user as { login?: unknown }).login);
          await inWork(['merge', '--quiet', '--squash', head], author);
          await inWork(['commit', '--quiet', '--allow-empty', '-m', `${target.title} (#${number})`], author);
        } else {
          const commits = (await inWork(['rev-list', '--reverse', '--no-merges', `${before}..${head}`]))
            .split('\n')
            .filter(Boolean);
          // cherry-pick keeps each commit's author; the committer is GitHub.
          for (const c of commits) await inWork(['cherry-pick', '--allow-empty', '--keep-redundant-commits', c]);
        }
        const after = (await inWork(['rev-parse', 'HEAD'])).trim();
        const made =
          method === 'rebase'
            ? (await inWork(['rev-list', '--reverse', '--first-parent', `${before}..${after}`]))
                .split('\n')
                .filter(Boolean)
            : [after];
        await inWork(['push', '--quiet', 'origin', `HEAD:refs/heads/${target.base.ref}`]);
        const at = now();
        const key = `${owner}/${repo}`;
        const known = madeCommits.get(key) ?? new Map<string, string>();
        for (const c of made) known.set(c, at);
        madeCommits.set(key, known);
        merges.set(`${key}#${number}`, { method, base: before, head, made });
        recordActivity(gitDir(owner, repo), {
          before,
          after,
          ref: `refs/heads/${target.base.ref}`,
          activity_type: 'pr_merge',
          actor: by,
        });
        const sha = made.at(-1) ?? after;
        Object.assign(target, {
          state: 'closed',
          merged: true,
          merged_at: at,
          closed_at: at,
          updated_at: at,
          merge_commit_sha: sha,
          merged_by: userOf(by),
          head: { ...target.head, sha: head },
          base: { ...target.base, sha: before },
        });
        target['commits'] = (await pullCommits(owner, repo, target)).length;
        return sha;
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
    mergeCommits: (owner, repo, number) => [...(merges.get(`${owner}/${repo}#${number}`)?.made ?? [])],
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
