import { spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { freePort, run } from './process.js';

export interface GitServerOptions {
  /** Directory holding the bare repositories. */
  root: string;
  /** When set, every request must carry HTTP basic auth with this password (any user name). */
  token?: string;
  /** Or: a check of the password (GitHub App installation tokens that expire). */
  accepts?: (password: string) => boolean;
}

export interface GitServerInfo {
  /** Base URL; a repository named `apps` is at `${url}/apps.git`. */
  url: string;
  root: string;
  token: string | undefined;
}

export interface GitServer extends GitServerInfo {
  /** Requests served so far, per git service (info/refs, upload-pack, receive-pack). */
  readonly requests: Map<string, number>;
  /** Every request received, in order, with the Authorization header it carried (what a client sent this server). */
  readonly received: ReceivedRequest[];
  /** Fault injection: stop listening (connections refused) until up(); every request delayed by slow(ms). */
  down(): Promise<void>;
  up(): Promise<void>;
  slow(delayMs: number): void;
  stop(): Promise<void>;
}

/** One request as the git server received it. */
export interface ReceivedRequest {
  method: string;
  path: string;
  /** The Authorization header, as sent (undefined: none). */
  authorization: string | undefined;
}

const SERVICES = /\/(info\/refs|git-upload-pack|git-receive-pack|HEAD|objects\/.*)$/;

/** The file in a bare repository where the git server records every ref update a push made, one JSON object a line. */
export const ACTIVITY_FILE = 'tidegate-activity.jsonl';

/** One ref update, as GitHub's repository activity API describes it (`actor` is a login, or `anonymous`). */
export interface RefActivity {
  id: number;
  before: string;
  after: string;
  ref: string;
  timestamp: string;
  activity_type: 'push' | 'force_push' | 'branch_creation' | 'branch_deletion' | 'pr_merge' | 'merge_queue_merge';
  actor: string;
}

export const ZERO_SHA = '0'.repeat(40);

let activitySeq = 0;
/** A new activity id: increasing within a process, unique across the processes that append to one file. */
const activityId = (): number => Date.now() * 1000 + (activitySeq++ % 1000);

/** Appends one activity to a bare repository's activity file (a whole line in one write). */
export function recordActivity(bareDir: string, activity: Omit<RefActivity, 'id' | 'timestamp'>): RefActivity {
  const entry: RefActivity = {
    id: activityId(),
    before: activity.before,
    after: activity.after,
    ref: activity.ref,
    timestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    activity_type: activity.activity_type,
    actor: activity.actor,
  };
  appendFileSync(join(bareDir, ACTIVITY_FILE), `${JSON.stringify(entry)}\n`);
  return entry;
}

/** Every ref of a bare repository and the object it points at. */
async function refsOf(bareDir: string): Promise<Map<string, string>> {
  const out = await run('git', ['--git-dir', bareDir, 'for-each-ref', '--format=%(objectname) %(refname)']).catch(
    () => '',
  );
  const refs = new Map<string, string>();
  for (const line of out.split('\n')) {
    const space = line.indexOf(' ');
    if (space > 0) refs.set(line.slice(space + 1), line.slice(0, space));
  }
  return refs;
}

/** Records one activity per ref that differs between two snapshots of a bare repository's refs. */
async function recordRefChanges(
  bareDir: string,
  before: Map<string, string>,
  after: Map<string, string>,
  actor: string,
): Promise<void> {
  for (const ref of new Set([...before.keys(), ...after.keys()])) {
    const old = before.get(ref) ?? ZERO_SHA;
    const now = after.get(ref) ?? ZERO_SHA;
    if (old === now) continue;
    const activity_type =
      old === ZERO_SHA
        ? 'branch_creation'
        : now === ZERO_SHA
          ? 'branch_deletion'
          : (await run('git', ['--git-dir', bareDir, 'merge-base', '--is-ancestor', old, now]).then(
                () => true,
                () => false,
              ))
            ? 'push'
            : 'force_push';
    recordActivity(bareDir, { before: old, after: now, ref, activity_type, actor });
  }
}

/** The user name of a request's HTTP basic auth, or `anonymous` without one. */
function basicUser(req: IncomingMessage): string {
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return 'anonymous';
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return (colon < 0 ? decoded : decoded.slice(0, colon)) || 'anonymous';
}

function authorised(req: IncomingMessage, opts: GitServerOptions): boolean {
  if (opts.token === undefined && !opts.accepts) return true;
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const password = decoded.slice(decoded.indexOf(':') + 1);
  return password === opts.token || (opts.accepts?.(password) ?? false);
}

/**
 * Runs `git http-backend` as a CGI for one request and streams its answer back; resolves when the
 * CGI has exited. With `beforeEnd`, the response is ended only after it ran (so a push's client
 * returns after what `beforeEnd` records).
 */
function serveCgi(
  req: IncomingMessage,
  res: ServerResponse,
  root: string,
  beforeEnd?: () => Promise<void>,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'],
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    GIT_CONFIG_NOSYSTEM: '1',
    REQUEST_METHOD: req.method,
    PATH_INFO: decodeURIComponent(url.pathname),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_USER: 'tidegate-test', // http-backend enables receive-pack for authenticated users
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
    ...(req.headers['content-encoding'] ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] } : {}),
    ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
  };
  const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  req.pipe(cgi.stdin);
  // A request cut off mid-body (a client gone, the server taken down) is not ended by pipe: end it, so the CGI exits.
  req.on('close', () => cgi.stdin.end());
  cgi.stdin.on('error', () => undefined); // a CGI that exits before reading all of it
  let head = Buffer.alloc(0);
  let headersDone = false;
  cgi.stdout.on('data', (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    headersDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    res.write(head.subarray(end + 4));
  });
  return new Promise((resolve) => {
    let failed = false;
    cgi.on('error', () => {
      failed = true;
      if (!res.headersSent) res.writeHead(500);
      res.end();
      resolve();
    });
    if (!beforeEnd) cgi.stdout.on('end', () => res.end());
    cgi.on('close', () => {
      if (failed) return;
      if (!beforeEnd) return resolve();
      beforeEnd()
        .catch(() => undefined)
        .finally(() => {
          if (!res.headersSent) res.writeHead(500);
          res.end();
          resolve();
        });
    });
  });
}

/**
 * Serves a push (`git-receive-pack`) and records the ref updates it made in the repository's
 * activity file. Pushes to one repository are served one at a time, so each one's before/after
 * snapshot of the refs is its own.
 */
function servePush(req: IncomingMessage, res: ServerResponse, root: string, locks: Map<string, Promise<void>>): void {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
  const bareDir = join(root, path.replace(/\/git-receive-pack$/, ''));
  const actor = basicUser(req);
  const previous = locks.get(bareDir) ?? Promise.resolve();
  const done = previous.then(async () => {
    if (!existsSync(bareDir) || !bareDir.startsWith(join(root, '/'))) return serveCgi(req, res, root);
    const before = await refsOf(bareDir);
    await serveCgi(req, res, root, async () => recordRefChanges(bareDir, before, await refsOf(bareDir), actor));
  });
  const settled = done.catch(() => undefined);
  locks.set(bareDir, settled);
  void settled.then(() => {
    if (locks.get(bareDir) === settled) locks.delete(bareDir);
  });
}

/** A git smart-HTTP server on loopback: `git http-backend` behind a small Node server, push enabled. */
export async function startGitServer(opts: GitServerOptions): Promise<GitServer> {
  mkdirSync(opts.root, { recursive: true });
  const requests = new Map<string, number>();
  const received: ReceivedRequest[] = [];
  const locks = new Map<string, Promise<void>>();
  let delayMs = 0;
  const server: Server = createServer((req, res) => {
    const service = SERVICES.exec(new URL(req.url ?? '/', 'http://localhost').pathname)?.[1] ?? 'other';
    requests.set(service, (requests.get(service) ?? 0) + 1);
    received.push({ method: req.method ?? 'GET', path: req.url ?? '/', authorization: req.headers.authorization });
    if (!authorised(req, opts)) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="tidegate-test"' }).end();
      return;
    }
    const serve = (): void => {
      if (service === 'git-receive-pack' && req.method === 'POST') servePush(req, res, opts.root, locks);
      else void serveCgi(req, res, opts.root);
    };
    if (delayMs > 0) setTimeout(serve, delayMs);
    else serve();
  });
  const port = await freePort();
  const listen = () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  await listen();
  return {
    url: `http://127.0.0.1:${port}`,
    root: opts.root,
    token: opts.token,
    requests,
    received,
    down: close,
    up: listen,
    slow: (ms) => {
      delayMs = ms;
    },
    stop: () => (server.listening ? close() : Promise.resolve()),
  };
}

/** Creates an empty bare repository (default branch `main`) and returns its clone URL. */
export async function createBareRepo(info: GitServerInfo, name: string): Promise<string> {
  const path = join(info.root, `${name}.git`);
  mkdirSync(dirname(path), { recursive: true });
  await run('git', ['init', '--quiet', '--bare', '--initial-branch=main', path]);
  return `${info.url}/${name}.git`;
}

/** The e-mail address a test user commits with: GitHub's no-reply address of that login. */
export const noreplyEmail = (user: string): string => `${user}@users.noreply.github.test`;

/**
 * Git identity and auth for the git CLI, without touching the user's global config. With a user,
 * commits are that user's (`user <user@users.noreply.github.test>`) and the git server sees that
 * user name in HTTP basic auth (sent even when the server takes no token, so it knows who pushed).
 */
function gitEnv(info: GitServerInfo, user?: string): NodeJS.ProcessEnv {
  const name = user ?? 'Test Author';
  const email = user ? noreplyEmail(user) : 'author@example.test';
  const auth = Boolean(info.token) || user !== undefined;
  return {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: name,
    GIT_AUTHOR_EMAIL: email,
    GIT_COMMITTER_NAME: name,
    GIT_COMMITTER_EMAIL: email,
    GIT_TERMINAL_PROMPT: '0',
    ...(auth
      ? {
          GIT_CONFIG_COUNT: '1',
          GIT_CONFIG_KEY_0: 'http.extraHeader',
          GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`${user ?? 'git'}:${info.token ?? ''}`).toString('base64')}`,
        }
      : {}),
  };
}

/**
 * A working copy of one repository, driven with the real git CLI over smart HTTP.
 * `commit` writes (string) or deletes (null) files, commits and pushes; it returns the new SHA.
 */
export class GitWorkspace {
  private constructor(
    readonly dir: string,
    readonly url: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly info: GitServerInfo,
    /** The user this workspace commits and pushes as (undefined: `Test Author`, pushing as `git`). */
    readonly user: string | undefined,
  ) {}

  /**
   * Clones a repository. With `user`, every commit is authored and committed by that user
   * (`user <user@users.noreply.github.test>`) and pushed with that basic-auth user name.
   */
  static async clone(info: GitServerInfo, url: string, opts: { user?: string } = {}): Promise<GitWorkspace> {
    const dir = mkdtempSync(join(info.root, '..', 'work-'));
    const env = gitEnv(info, opts.user);
    await run('git', ['clone', '--quiet', url, dir], { env });
    await run('git', ['checkout', '--quiet', '-B', 'main'], { cwd: dir, env }).catch(() => undefined);
    return new GitWorkspace(dir, url, env, info, opts.user);
  }

  /** The same working copy, committing and pushing as another user (see `clone`). */
  as(user: string): GitWorkspace {
    return new GitWorkspace(this.dir, this.url, gitEnv(this.info, user), this.info, user);
  }

  git(...args: string[]): Promise<string> {
    return run('git', args, { cwd: this.dir, env: this.env });
  }

  /** Writes (or, for null, removes) files, commits them on a branch (SSH-signed when a private key file is given) and pushes. */
  async commit(
    files: Record<string, string | null>,
    message: string,
    branch = 'main',
    sshKey?: string,
  ): Promise<string> {
    await this.git('checkout', '--quiet', '-B', branch);
    for (const [path, content] of Object.entries(files)) {
      const target = join(this.dir, path);
      if (content === null) {
        rmSync(target, { force: true, recursive: true });
      } else {
        mkdirSync(dirname(target), { recursive: true });
        writeFileSync(target, content);
      }
    }
    await this.git('add', '--all');
    const sign = sshKey ? ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${sshKey}`] : [];
    await this.git(...sign, 'commit', '--quiet', '--allow-empty', ...(sshKey ? ['-S'] : []), '-m', message);
    await this.git('push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`);
    return (await this.git('rev-parse', 'HEAD')).trim();
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
