import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** What the proxy does instead of (or before) forwarding a request. */
export type Fault =
  | { status: number; retryAfter?: number; body?: string }
  /** The connection is destroyed without an answer (the client sees ECONNRESET). */
  | { reset: true }
  /** Forwarded after a delay. */
  | { delayMs: number }
  /** Forwarded and carried out by the apiserver, then the connection is destroyed instead of answering (a lost response). */
  | { loseAnswer: true };

export interface FaultRule {
  method?: string;
  /** Matched against the path (without the query). */
  path?: RegExp;
  /** Matching requests let through before the fault starts (default 0). */
  after?: number;
  /** Matching requests the fault is applied to, then the rule is spent (default: every one). */
  times?: number;
  fault: Fault;
}

export interface ProxiedRequest {
  method: string;
  path: string;
  /** The answer's status; 0 for a reset. */
  status: number;
  at: number;
  /** The fault applied, if any. */
  fault?: Fault;
}

export interface FaultProxy {
  /** https://127.0.0.1:<port>: the same certificate as the apiserver, so the same CA trusts it. */
  server: string;
  /** Adds a rule; rules are checked in order, the first that matches applies. Returns the rule's hit counter. */
  inject(rule: FaultRule): { readonly hits: number };
  /** Removes every rule. */
  clear(): void;
  /**
   * A request arriving on a kept-alive connection idle for at least `ms` is answered by a reset:
   * what a client sees after a NAT or load balancer forgot the connection while the client was
   * frozen (a Lambda between invocations). 0 turns it off.
   */
  resetIdleAfter(ms: number): void;
  /** Every request seen, in order. */
  readonly log: readonly ProxiedRequest[];
  stop(): Promise<void>;
}

interface RuleState extends FaultRule {
  seen: number;
  hits: number;
}

/**
 * An HTTPS proxy in front of the real kube-apiserver that injects faults by method and path on a
 * schedule: 429 with Retry-After, 5xx, connection resets, delays, answers lost after the apiserver
 * acted, and resets of connections that sat idle. Everything else is forwarded as is (headers, bodies, the client's credentials).
 */
export async function startFaultProxy(target: { server: string; caPem: string; certDir: string }): Promise<FaultProxy> {
  const rules: RuleState[] = [];
  const log: ProxiedRequest[] = [];
  const lastUse = new WeakMap<Socket, number>();
  const sockets = new Set<Socket>();
  let idleResetMs = 0;
  const upstream = new URL(target.server);

  const match = (req: IncomingMessage): RuleState | undefined => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    for (const rule of rules) {
      if (rule.method && rule.method !== req.method) continue;
      if (rule.path && !rule.path.test(path)) continue;
      rule.seen++;
      if (rule.seen <= (rule.after ?? 0)) return undefined;
      if (rule.times !== undefined && rule.hits >= rule.times) continue;
      rule.hits++;
      return rule;
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, entry: ProxiedRequest, loseAnswer = false): void => {
    const out = request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        ca: target.caPem,
      },
      (answer) => {
        entry.status = answer.statusCode ?? 0;
        if (loseAnswer) {
          answer.resume();
          answer.on('end', () => req.socket.destroy());
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const socket = req.socket;
    const idleSince = lastUse.get(socket);
    const entry: ProxiedRequest = {
      method: req.method ?? '',
      path: (req.url ?? '/').split('?')[0] ?? '/',
      status: 0,
      at: Date.now(),
    };
    log.push(entry);
    res.on('finish', () => lastUse.set(socket, Date.now()));
    if (idleResetMs > 0 && idleSince !== undefined && Date.now() - idleSince >= idleResetMs) {
      entry.fault = { reset: true };
      socket.destroy();
      return;
    }
    const rule = match(req);
    entry.fault = rule?.fault;
    const fault = rule?.fault;
    if (fault && 'reset' in fault) {
      socket.destroy();
      return;
    }
    if (fault && 'status' in fault) {
      req.resume();
      entry.status = fault.status;
      const body =
        fault.body ??
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: `injected ${fault.status}`,
          reason: fault.status === 429 ? 'TooManyRequests' : 'ServiceUnavailable',
          code: fault.status,
        });
      res
        .writeHead(fault.status, {
          'content-type': 'application/json',
          ...(fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {}),
        })
        .end(body);
      return;
    }
    if (fault && 'delayMs' in fault) await sleep(fault.delayMs);
    forward(req, res, entry, fault !== undefined && 'loseAnswer' in fault);
  };

  const server: Server = createServer(
    {
      cert: readFileSync(join(target.certDir, 'apiserver.crt')),
      key: readFileSync(join(target.certDir, 'apiserver.key')),
      keepAliveTimeout: 600_000,
    },
    (req, res) => void handle(req, res).catch(() => res.destroy()),
  );
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    inject(rule) {
      const state: RuleState = { ...rule, seen: 0, hits: 0 };
      rules.push(state);
      return {
        get hits() {
          return state.hits;
        },
      };
    },
    clear: () => void rules.splice(0),
    resetIdleAfter: (ms) => {
      idleResetMs = ms;
    },
    log,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
