import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../telemetry/index.js';
import { globPattern } from '../model/index.js';
import type { NotifyEvent, NotifyEventKind } from './events.js';
import { requestFor, type ProviderType } from './providers.js';

/** Where messages go: a provider of a type, its webhook URL (a secret: it carries a token) and, for generic, its signing key. */
export interface Provider {
  name: string;
  type: ProviderType;
  url: () => Promise<string>;
  secret?: (() => Promise<string>) | undefined;
}

/** Which events go to which provider, for which targets (`*` globs; default every target). */
export interface Alert {
  provider: string;
  events: readonly NotifyEventKind[];
  targets?: readonly string[] | undefined;
}

export interface NotifierOptions {
  /** Per attempt (default 5 s). */
  timeoutMs?: number;
  /** All attempts of one event to one provider, waits included (default 6 s): well inside what a worker keeps in reserve. */
  budgetMs?: number;
  /** Attempts per provider (default 3), with backoff doubling from backoffMs (default 500 ms). */
  attempts?: number;
  backoffMs?: number;
  logger?: Logger | undefined;
}

export interface Delivery {
  provider: string;
  delivered: boolean;
  attempts: number;
  status?: number | undefined;
}

/** Retry-After in ms, at most 5 s (a notification never holds the worker longer). */
const retryAfter = (res: Response): number | undefined => {
  const s = Number(res.headers.get('retry-after'));
  return Number.isFinite(s) && s >= 0 ? Math.min(s * 1000, 5000) : undefined;
};

/** Why a provider's URL is not used (never the URL itself: it carries a token). */
function urlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    return 'the webhook URL is not a URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'the webhook URL is not http(s)';
  if (url.username || url.password) return 'the webhook URL carries credentials (user:password@)';
  return undefined;
}

/** What failed, without the URL: an error's name and code (fetch's messages may quote the URL). */
const failure = (err: unknown): string => {
  const e = err as { name?: string; code?: string; cause?: { code?: string } };
  return [e.name ?? 'Error', e.code ?? e.cause?.code].filter(Boolean).join(' ');
};

/**
 * Sends events to the providers whose alerts ask for them, as Flux's notification-controller does
 * with Provider and Alert objects: each attempt bounded in time and all of them within a budget,
 * retried with backoff on failures that may pass (network, 408, 429, 5xx), redirects never
 * followed, answers never read, and never thrown: a provider that is down costs a sync nothing but
 * a logged warning (its name and status, never its URL).
 */
export class Notifier {
  private readonly byName: Map<string, Provider>;

  constructor(
    providers: readonly Provider[],
    private readonly alerts: readonly Alert[],
    private readonly opts: NotifierOptions = {},
  ) {
    this.byName = new Map(providers.map((p) => [p.name, p]));
  }

  /** The providers an event goes to (each once). */
  providersFor(e: NotifyEvent): Provider[] {
    const names = new Set(
      this.alerts
        .filter((a) => a.events.includes(e.kind))
        .filter((a) => e.target === undefined || (a.targets ?? ['*']).some((t) => globPattern(t).test(e.target ?? '')))
        .map((a) => a.provider),
    );
    return [...names].flatMap((n) => this.byName.get(n) ?? []);
  }

  /** Sends an event to its providers side by side; settles within the budget, or when the signal aborts. */
  async notify(e: NotifyEvent, signal?: AbortSignal): Promise<Delivery[]> {
    return Promise.all(this.providersFor(e).map((p) => this.deliver(p, e, signal)));
  }

  private async deliver(p: Provider, e: NotifyEvent, signal?: AbortSignal): Promise<Delivery> {
    const until = Date.now() + (this.opts.budgetMs ?? 6000);
    const warn = (message: string, fields: Record<string, unknown>): void =>
      this.opts.logger?.warn(message, { provider: p.name, event: e.kind, ...fields });
    const url = await p.url().then(
      (u) => ({ url: u.trim(), problem: urlProblem(u) }),
      (err: unknown) => ({ url: '', problem: `its webhook URL could not be read (${failure(err)})` }),
    );
    if (url.problem) {
      warn('notification not sent', { reason: url.problem });
      return { provider: p.name, delivered: false, attempts: 0 };
    }
    const attempts = this.opts.attempts ?? 3;
    let last: Attempt = { done: false };
    let attempt = 0;
    while (attempt < attempts && Date.now() < until && !signal?.aborted) {
      attempt++;
      last = await this.send(p, e, url.url, until, signal).catch((err: unknown) => {
        warn('notification attempt failed', { attempt, error: failure(err) });
        return { done: false };
      });
      if (last.done) break;
      const left = until - Date.now();
      const wait = last.retryAfterMs ?? (this.opts.backoffMs ?? 500) * 2 ** (attempt - 1);
      if (attempt < attempts && left > 0)
        await sleep(Math.min(wait, left), undefined, signal ? { signal } : {}).catch(() => undefined);
    }
    if (last.delivered) return { provider: p.name, delivered: true, attempts: attempt, status: last.status };
    warn('notification not delivered', { status: last.status, attempts: attempt, reason: last.reason });
    return { provider: p.name, delivered: false, attempts: attempt, status: last.status };
  }

  /** One attempt: done when delivered or when trying again cannot help (a 4xx, a redirect). */
  private async send(p: Provider, e: NotifyEvent, url: string, until: number, signal?: AbortSignal): Promise<Attempt> {
    const req = requestFor(p.type, e, p.secret ? await p.secret() : undefined);
    const timeout = AbortSignal.timeout(Math.max(1, Math.min(this.opts.timeoutMs ?? 5000, until - Date.now())));
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'tidegate',
        'accept-encoding': 'identity',
        ...req.headers,
      },
      body: req.body,
      redirect: 'manual',
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
    });
    const status = res.status;
    await res.body?.cancel().catch(() => undefined); // the answer is never read: its size is the receiver's
    if (res.ok) return { done: true, delivered: true, status };
    if (status >= 300 && status < 400) return { done: true, status, reason: 'redirects are not followed' };
    if (status < 500 && status !== 408 && status !== 429) return { done: true, status }; // the request itself is wrong
    return { done: false, status, retryAfterMs: retryAfter(res) };
  }
}

interface Attempt {
  done: boolean;
  delivered?: boolean;
  status?: number | undefined;
  reason?: string;
  retryAfterMs?: number | undefined;
}
