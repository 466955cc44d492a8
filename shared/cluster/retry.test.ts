import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY, backoffMs, decide, parseRetryAfter, type Failure } from './retry.js';

const half = () => 0.5;

describe('which failed apiserver requests are tried again, and when', () => {
  it.each<[string, string, Failure, number, { retry: boolean; delayMs?: number; why: RegExp }]>([
    [
      '429 honours Retry-After over a shorter backoff',
      'PATCH',
      { kind: 'status', status: 429, retryAfter: '2' },
      1,
      { retry: true, delayMs: 2000, why: /HTTP 429/ },
    ],
    [
      '429 on POST: the server did nothing',
      'POST',
      { kind: 'status', status: 429 },
      1,
      { retry: true, delayMs: 150, why: /HTTP 429/ },
    ],
    ['503 on GET', 'GET', { kind: 'status', status: 503 }, 2, { retry: true, delayMs: 300, why: /HTTP 503/ }],
    [
      '503 on POST may have created the object',
      'POST',
      { kind: 'status', status: 503 },
      1,
      { retry: false, why: /POST is not repeated after HTTP 503/ },
    ],
    [
      'a Retry-After past the bound goes back to the caller',
      'GET',
      { kind: 'status', status: 429, retryAfter: '120' },
      1,
      { retry: false, why: /Retry-After 120000 ms is longer/ },
    ],
    ['404 is an answer', 'GET', { kind: 'status', status: 404 }, 1, { retry: false, why: /HTTP 404 is not transient/ }],
    ['409 is an answer', 'PUT', { kind: 'status', status: 409 }, 1, { retry: false, why: /HTTP 409/ }],
    [
      'a 500 for an object that does not fit its schema',
      'PATCH',
      {
        kind: 'status',
        status: 500,
        message:
          'failed to create typed patch object (ns/x; apps/v1, Kind=Deployment): .spec.replicas: expected numeric',
      },
      1,
      { retry: false, why: /not transient/ },
    ],
    [
      'a stale kept-alive socket: at once, any method',
      'POST',
      { kind: 'network', code: 'ECONNRESET', reusedSocket: true },
      1,
      { retry: true, delayMs: 0, why: /stale kept-alive socket/ },
    ],
    [
      'a reset on a fresh connection of a POST',
      'POST',
      { kind: 'network', code: 'ECONNRESET', reusedSocket: false },
      1,
      { retry: false, why: /POST is not repeated after ECONNRESET/ },
    ],
    [
      'connection refused: nothing was sent',
      'POST',
      { kind: 'network', code: 'ECONNREFUSED', reusedSocket: false },
      3,
      { retry: true, delayMs: 600, why: /ECONNREFUSED/ },
    ],
    [
      'an unknown socket error',
      'GET',
      { kind: 'network', code: 'ERR_TLS_CERT_ALTNAME_INVALID', reusedSocket: false },
      1,
      { retry: false, why: /not transient/ },
    ],
    ['a timeout of a GET', 'GET', { kind: 'timeout' }, 1, { retry: true, delayMs: 150, why: /no answer within/ }],
    [
      'a timeout of a POST',
      'POST',
      { kind: 'timeout' },
      1,
      { retry: false, why: /POST is not repeated after a timeout/ },
    ],
    [
      'the last try',
      'GET',
      { kind: 'status', status: 503 },
      DEFAULT_RETRY.attempts,
      { retry: false, why: /gave up after 6 tries/ },
    ],
  ])('%s', (_name, method, failure, attempt, expected) => {
    const d = decide(method, failure, attempt, DEFAULT_RETRY, half);
    expect(d.retry).toBe(expected.retry);
    expect(d.why).toMatch(expected.why);
    if (d.retry) expect(d.delayMs).toBe(expected.delayMs);
  });

  it.each([
    [1, 100, 200],
    [2, 200, 400],
    [3, 400, 800],
    [7, 4000, 8000], // capped at maxMs
    [20, 4000, 8000],
  ])('backoff of try %i lies in [%i, %i] ms: exponential with equal jitter', (attempt, min, max) => {
    expect(backoffMs(attempt, DEFAULT_RETRY, () => 0)).toBe(min);
    expect(backoffMs(attempt, DEFAULT_RETRY, () => 1)).toBe(max);
  });

  it.each<[string | undefined, number | undefined]>([
    ['3', 3000],
    [' 0 ', 0],
    ['Wed, 21 Oct 2015 07:28:10 GMT', 10_000],
    ['soon', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('Retry-After %j is %j ms', (header, ms) => {
    expect(parseRetryAfter(header, Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(ms);
  });
});
