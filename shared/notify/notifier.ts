import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage } from '../model/index.js';
import type { Logger } from '../telemetry/index.js';
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

const glob = (pattern: string): RegExp =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);

/** Retry-After in ms, at most 5 s (a notification never holds the worker longer). */
const retryAfter = (res: Response): number | undefined => {
  const s = Number(res.headers.get('retry-after'));
  return Number.isFinite(s) && s >= 0 ? Math.min(s * 1000, 5000) : undefined;
};

/**
 * Sends events to the providers whose alerts ask for them, as Flux's notification-controller does
 * with Provider and Alert objects: each attempt bounded in time, retried with backoff on
 * failures that may pass (network, 408, 429, 5xx), and never thrown: a provider that is down costs
 * a sync nothing but a logged warning (its name and status, never its URL).
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
        .filter((a) => e.target === undefined || (a.targets ?? ['*']).some((t) => glob(t).test(e.target ?? '')))
        .map((a) => a.provider),
    );
    return [...names].flatMap((n) => this.byName.get(n) ?? []);
  }

  async notify(e: NotifyEvent): Promise<Delivery[]> {
    return Promise.all(this.providersFor(e).map((p) => this.deliver(p, e)));
  }

  private async deliver(p: Provider, e: NotifyEvent): Promise<Delivery> {
    const attempts = this.opts.attempts ?? 3;
    let status: number | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let wait = (this.opts.backoffMs ?? 500) * 2 ** (attempt - 1);
      try {
        const req = requestFor(p.type, e, p.secret ? await p.secret() : undefined);
        const res = await fetch(await p.url(), {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'tidegate', ...req.headers },
          body: req.body,
          signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000),
        });
        status = res.status;
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return { provider: p.name, delivered: true, attempts: attempt, status };
        if (res.status < 500 && res.status !== 408 && res.status !== 429) break; // the request itself is wrong
        wait = retryAfter(res) ?? wait;
      } catch (err) {
        this.opts.logger?.warn('notification attempt failed', {
          provider: p.name,
          event: e.kind,
          attempt,
          error: errorMessage(err),
        });
      }
      if (attempt < attempts) await sleep(wait);
    }
    this.opts.logger?.warn('notification not delivered', { provider: p.name, event: e.kind, status });
    return { provider: p.name, delivered: false, attempts, status };
  }
}
