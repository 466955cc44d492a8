/**
 * A counting reverse proxy in front of the kube-apiserver: TLS (HTTP/1.1) towards the clients,
 * re-originated over kept-alive HTTPS connections to the apiserver. Every request is counted once
 * when it arrives (a watch is one request however long it streams), by Kubernetes verb, HTTP
 * method and client (the first word of its User-Agent). Nothing is changed on the way through.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent, createServer as createHttpsServer, request } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';

/** Requests seen by the proxy: a snapshot, safe to keep and subtract. */
export interface RequestCounts {
  total: number;
  /** get, list, watch, create, update, patch, delete, deletecollection, discovery, other */
  byVerb: Record<string, number>;
  /** GET, POST, PUT, PATCH, DELETE */
  byMethod: Record<string, number>;
  /** First word of the User-Agent (source-controller, kustomize-controller, ...). */
  byClient: Record<string, number>;
  /** `${verb} ${resource}` with resource as group/resource[/subresource] (core group: resource). */
  byResource: Record<string, number>;
}

export interface CountingProxy {
  /** https://127.0.0.1:<port> (http:// when no serving certificate was given). */
  server: string;
  requests(): RequestCounts;
  /** Requests in flight right now (open watches included). */
  inFlight(): number;
  stop(): Promise<void>;
}

export const emptyCounts = (): RequestCounts => ({
  total: 0,
  byVerb: {},
  byMethod: {},
  byClient: {},
  byResource: {},
});

/** b − a, per key (keys that did not change are left out). */
export function diffCounts(a: RequestCounts, b: RequestCounts): RequestCounts {
  const sub = (x: Record<string, number>, y: Record<string, number>): Record<string, number> =>
    Object.fromEntries(
      Object.entries(y)
        .map(([k, v]) => [k, v - (x[k] ?? 0)] as const)
        .filter(([, v]) => v !== 0),
    );
  return {
    total: b.total - a.total,
    byVerb: sub(a.byVerb, b.byVerb),
    byMethod: sub(a.byMethod, b.byMethod),
    byClient: sub(a.byClient, b.byClient),
    byResource: sub(a.byResource, b.byResource),
  };
}

/** "12 (get 3, list 2, watch 1, patch 6)" */
export function formatCounts(c: RequestCounts): string {
  const verbs = Object.entries(c.byVerb)
    .sort(([, x], [, y]) => y - x)
    .map(([k, v]) => `${k} ${v}`);
  return `${c.total}${verbs.length ? ` (${verbs.join(', ')})` : ''}`;
}

/** The Kubernetes verb and resource of a request, from its method, path and query. */
export function classify(method: string, url: string): { verb: string; resource: string } {
  const u = new URL(url, 'http://x');
  const parts = u.pathname.split('/').filter(Boolean);
  let group = '';
  let rest: string[];
  if (parts[0] === 'api' && parts.length >= 2) rest = parts.slice(2);
  else if (parts[0] === 'apis' && parts.length >= 3) {
    group = parts[1] ?? '';
    rest = parts.slice(3);
  } else return { verb: parts[0] === 'api' || parts[0] === 'apis' ? 'discovery' : 'other', resource: u.pathname };
  if (rest.length === 0) return { verb: 'discovery', resource: u.pathname };
  let watch = u.searchParams.get('watch') === 'true' || u.searchParams.get('watch') === '1';
  if (rest[0] === 'watch') {
    watch = true;
    rest = rest.slice(1);
  }
  // namespaces/<ns>/<resource>... ; a bare namespaces[/<name>] is the Namespace resource itself
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  const named = rest.length >= 2;
  const resource = `${group ? `${group}/` : ''}${rest[0] ?? ''}${rest.length >= 3 ? `/${rest.slice(2).join('/')}` : ''}`;
  const verb = (() => {
    switch (method) {
      case 'GET':
        return watch ? 'watch' : named ? 'get' : 'list';
      case 'POST':
        return 'create';
      case 'PUT':
        return 'update';
      case 'PATCH':
        return 'patch';
      case 'DELETE':
        return named ? 'delete' : 'deletecollection';
      default:
        return method.toLowerCase();
    }
  })();
  return { verb, resource };
}

/**
 * Starts the proxy on loopback. With `certDir` holding apiserver.crt and apiserver.key (devenv's
 * kube-apiserver certificate directory) it serves TLS with the apiserver's own certificate, so the
 * apiserver's CA trusts it; without, it serves plain HTTP.
 */
export async function startCountingProxy(target: {
  server: string;
  caPem: string;
  certDir?: string | undefined;
}): Promise<CountingProxy> {
  const upstream = new URL(target.server);
  const agent = new Agent({ keepAlive: true, ca: target.caPem, maxFreeSockets: 64 });
  const counts = emptyCounts();
  let inFlight = 0;
  const sockets = new Set<Socket>();
  const bump = (m: Record<string, number>, k: string): void => {
    m[k] = (m[k] ?? 0) + 1;
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET';
    const { verb, resource } = classify(method, req.url ?? '/');
    counts.total++;
    bump(counts.byVerb, verb);
    bump(counts.byMethod, method);
    bump(counts.byClient, (req.headers['user-agent'] ?? 'unknown').split(/[\s/]/)[0] || 'unknown');
    bump(counts.byResource, `${verb} ${resource}`);
    inFlight++;
    let done = false;
    const finish = (): void => {
      if (!done) {
        done = true;
        inFlight--;
      }
    };
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method,
        path: req.url,
        headers: { ...req.headers, host: upstream.host },
        agent,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
        answer.on('error', () => res.destroy());
      },
    );
    out.on('error', () => {
      finish();
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('proxy: upstream failed');
      else res.destroy();
    });
    // The client went away (a watch it stopped, a timeout): drop the upstream request with it.
    res.on('close', () => {
      finish();
      if (!res.writableFinished) out.destroy();
    });
    req.pipe(out);
  };

  const crt = target.certDir ? join(target.certDir, 'apiserver.crt') : '';
  const key = target.certDir ? join(target.certDir, 'apiserver.key') : '';
  const tls = Boolean(target.certDir && existsSync(crt) && existsSync(key));
  const server: Server = tls
    ? createHttpsServer({ cert: readFileSync(crt), key: readFileSync(key), keepAliveTimeout: 600_000 }, handle)
    : createHttpServer({ keepAliveTimeout: 600_000 }, handle);
  server.requestTimeout = 0; // watches stream for minutes
  server.headersTimeout = 60_000;
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    server: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    requests: () => structuredClone(counts),
    inFlight: () => inFlight,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
