import { createHmac, timingSafeEqual } from 'node:crypto';
import { reply, type HttpResponse } from './http.js';

/** The longest a signed status link may live: a leaked link stops working on its own. */
export const MAX_LINK_SECONDS = 31 * 24 * 3600;

const signature = (secret: string, expires: number): string =>
  createHmac('sha256', secret).update(`tidegate-status:${expires}`).digest('base64url');

/** A link to the status page at `base` (…/status) that works until `expiresAt` (at most 31 days ahead). */
export function signStatusLink(base: string, secret: string, expiresAt: Date): string {
  const expires = Math.floor(expiresAt.getTime() / 1000);
  const url = new URL(base);
  url.searchParams.set('expires', String(expires));
  url.searchParams.set('signature', signature(secret, expires));
  return url.toString();
}

/**
 * Checks a status page request's signed link: HMAC-SHA256 of its expiry under the status secret
 * (compared in constant time), not expired, not longer-lived than 31 days. Undefined when it
 * holds, else the refusal (the page is never served without one).
 */
export function refuseStatusLink(
  query: URLSearchParams,
  secret: string | undefined,
  now: Date = new Date(),
): HttpResponse | undefined {
  if (!secret) return reply(503, 'the status page is not configured (statusSecret)');
  const expiresText = query.get('expires') ?? '';
  const expires = /^\d{1,12}$/.test(expiresText) ? Number(expiresText) : NaN; // one spelling of each instant
  const given = Buffer.from(query.get('signature') ?? '');
  const wanted = Buffer.from(signature(secret, expires));
  if (!Number.isInteger(expires) || given.length !== wanted.length || !timingSafeEqual(given, wanted))
    return reply(401, 'a signed link is required: tidegate status-link');
  const left = expires - now.getTime() / 1000;
  if (left <= 0) return reply(401, 'this link has expired: ask for a new one (tidegate status-link)');
  if (left > MAX_LINK_SECONDS) return reply(401, 'this link lives longer than 31 days: not accepted');
  return undefined;
}
