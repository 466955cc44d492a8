import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  /** Fault injection: stop listening (connections refused) until up(); every request delayed by slow(ms). */
  down(): Promise<void>;
  up(): Promise<void>;
  slow(delayMs: number): void;
  stop(): Promise<void>;
}

const SERVICES = /\/(info\/refs|git-upload-pack|git-receive-pack|HEAD|objects\/.*)$/;

function authorised(req: IncomingMessage, opts: GitServerOptions): boolean {
  if (opts.token === undefined && !opts.accepts) return true;
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return false;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const password = decoded.slice(decoded.indexOf(':') + 1);
  return password === opts.token || (opts.accepts?.(password) ?? false);
}

/** Runs `git http-backend` as a CGI for one request and streams its answer back. */
function serveCgi(req: IncomingMessage, res: ServerResponse, root: string): void {
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
  cgi.stdout.on('end', () => res.end());
  cgi.on('error', () => {
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
}

/** A git smart-HTTP server on loopback: `git http-backend` behind a small Node server, push enabled. */
export async function startGitServer(opts: GitServerOptions): Promise<GitServer> {
  mkdirSync(opts.root, { recursive: true });
  const requests = new Map<string, number>();
  let delayMs = 0;
  const server: Server = createServer((req, res) => {
    const service = SERVICES.exec(new URL(req.url ?? '/', 'http://localhost').pathname)?.[1] ?? 'other';
    requests.set(service, (requests.get(service) ?? 0) + 1);
    if (!authorised(req, opts)) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="tidegate-test"' }).end();
      return;
    }
    if (delayMs > 0) setTimeout(() => serveCgi(req, res, opts.root), delayMs);
    else serveCgi(req, res, opts.root);
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

/** Git identity and auth for the git CLI, without touching the user's global config. */
function gitEnv(info: GitServerInfo): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Test Author',
    GIT_AUTHOR_EMAIL: 'author@example.test',
    GIT_COMMITTER_NAME: 'Test Author',
    GIT_COMMITTER_EMAIL: 'author@example.test',
    GIT_TERMINAL_PROMPT: '0',
    ...(info.token
      ? {
          GIT_CONFIG_COUNT: '1',
          GIT_CONFIG_KEY_0: 'http.extraHeader',
          GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`git:${info.token}`).toString('base64')}`,
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
  ) {}

  static async clone(info: GitServerInfo, url: string): Promise<GitWorkspace> {
    const dir = mkdtempSync(join(info.root, '..', 'work-'));
    const env = gitEnv(info);
    await run('git', ['clone', '--quiet', url, dir], { env });
    await run('git', ['checkout', '--quiet', '-B', 'main'], { cwd: dir, env }).catch(() => undefined);
    return new GitWorkspace(dir, url, env);
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
