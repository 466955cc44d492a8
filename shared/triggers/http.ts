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
}

export const reply = (status: number, message: string, extra: Record<string, unknown> = {}): HttpResponse => ({
  status,
  body: { message, ...extra },
});

/** Byte length of a body as received. */
export const bodyBytes = (body: string): number => Buffer.byteLength(body, 'utf8');
