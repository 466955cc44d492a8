/** An HTTP request as every shell sees it (API Gateway, the dev server, tests): lower-case headers, raw body. */
export interface HttpRequest {
  method: string;
  path: string;
  headers: Readonly<Record<string, string | undefined>>;
  /** The raw body exactly as received: signatures are computed over these bytes. */
  body: string;
}

export interface HttpResponse {
  status: number;
  body: { message: string; [key: string]: unknown };
  /** A web page instead of the JSON body (the status page). */
  html?: string;
}

/** Headers of every page tidegate serves: never cached, never framed, no script, no referrer (a signed link stays in the URL bar). */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'",
};

export const reply = (status: number, message: string, extra: Record<string, unknown> = {}): HttpResponse => ({
  status,
  body: { message, ...extra },
});

/** Byte length of a body as received. */
export const bodyBytes = (body: string): number => Buffer.byteLength(body, 'utf8');
