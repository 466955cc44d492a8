import { NETWORK_ERROR_CODES } from '../model/index.js';

/**
 * When a failed apiserver request is tried again, and after how long. Pure functions: the client
 * (client.ts) feeds them what happened, tests feed them tables.
 */

export interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  /** Backoff before the second try; doubles per try up to maxMs (with jitter). */
  baseMs: number;
  maxMs: number;
  /** A Retry-After longer than this is not waited for: the error goes to the caller (the queue retries later). */
  maxRetryAfterMs: number;
  /** Bound for one request, from sending to the last byte of the answer. */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 6,
  baseMs: 200,
  maxMs: 8_000,
  maxRetryAfterMs: 30_000,
  timeoutMs: 30_000,
};

/** Answers worth asking again: throttling and the server (or a proxy in front of it) failing for now. */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 500, 502, 503, 504]);

/**
 * 500s the apiserver answers for a request that can never succeed: server-side apply of an object
 * whose fields do not match the schema ("failed to create typed patch object"). Asking again
 * would fail again; the caller reports it on the object.
 */
export const isInvalidObject500 = (status: number, message: string): boolean =>
  status === 500 && /failed to create typed patch object|failed to create typed live object/.test(message);

/** Methods whose repetition changes nothing more (server-side apply and merge patches set, never add). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH']);

/** What a try ended with, as far as retrying is concerned. */
export type Failure =
  | { kind: 'status'; status: number; retryAfter?: string | undefined; message?: string }
  | { kind: 'network'; code: string; reusedSocket: boolean }
  | { kind: 'timeout' };

export type Decision = { retry: false; why: string } | { retry: true; delayMs: number; why: string };

/** Seconds or an HTTP date, in milliseconds from now; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Exponential backoff with equal jitter: half the step fixed, half random, so tries spread out but still grow. */
export function backoffMs(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>,
  random: () => number = Math.random,
): number {
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

function afterStatus(
  method: string,
  failure: Extract<Failure, { kind: 'status' }>,
  idempotent: boolean,
  wait: number,
  policy: RetryPolicy,
): Decision {
  if (!RETRYABLE_STATUS.has(failure.status) || isInvalidObject500(failure.status, failure.message ?? ''))
    return { retry: false, why: `HTTP ${failure.status} is not transient` };
  if (!idempotent && failure.status !== 429)
    return { retry: false, why: `${method} is not repeated after HTTP ${failure.status}` };
  const after = parseRetryAfter(failure.retryAfter);
  if (after !== undefined && after > policy.maxRetryAfterMs)
    return { retry: false, why: `Retry-After ${after} ms is longer than ${policy.maxRetryAfterMs} ms` };
  return { retry: true, delayMs: Math.max(wait, after ?? 0), why: `HTTP ${failure.status}` };
}

function afterNetwork(
  method: string,
  failure: Extract<Failure, { kind: 'network' }>,
  idempotent: boolean,
  wait: number,
): Decision {
  if (!NETWORK_ERROR_CODES.has(failure.code)) return { retry: false, why: `${failure.code} is not transient` };
  // A stale kept-alive socket: the request was never read. Send it again at once, on a new connection.
  if (failure.reusedSocket && (failure.code === 'ECONNRESET' || failure.code === 'EPIPE'))
    return { retry: true, delayMs: 0, why: `stale kept-alive socket (${failure.code})` };
  if (!idempotent && failure.code !== 'ECONNREFUSED')
    return { retry: false, why: `${method} is not repeated after ${failure.code}` };
  return { retry: true, delayMs: wait, why: failure.code };
}

/**
 * Whether try number `attempt` (1-based) of `method` is followed by another, and after how long.
 * A request that never reached the server (connection refused, or a kept-alive socket the server
 * had closed while this process was frozen) is always safe to send again; anything else only when
 * the method is idempotent, or the answer was 429 (the server refused it before doing anything).
 */
export function decide(
  method: string,
  failure: Failure,
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): Decision {
  if (attempt >= policy.attempts) return { retry: false, why: `gave up after ${attempt} tries` };
  const idempotent = IDEMPOTENT.has(method.toUpperCase());
  const wait = backoffMs(attempt, policy, random);
  if (failure.kind === 'status') return afterStatus(method, failure, idempotent, wait, policy);
  if (failure.kind === 'network') return afterNetwork(method, failure, idempotent, wait);
  if (!idempotent) return { retry: false, why: `${method} is not repeated after a timeout` };
  return { retry: true, delayMs: wait, why: `no answer within ${policy.timeoutMs} ms` };
}
