/** Base class of every error tidegate raises on purpose: a stable code, a message, a cause. */
export class TidegateError extends Error {
  readonly code: string;
  /**
   * A failure that may pass on its own (throttling, an outage of the apiserver or GitHub): the work
   * is tried again later (the queue), never recorded as a failed sync.
   */
  readonly transient: boolean;

  constructor(code: string, message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.transient = options?.transient ?? false;
  }
}

/** Whether an error may pass on its own: the queue should try the work again, not record a failure. */
export const isTransient = (err: unknown): boolean => err instanceof TidegateError && err.transient;

/** Socket error codes of a network that let a connection down; a later try may well get through. */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** A failure of the network, or an HTTP answer saying the server is throttling or failing for now (429, 5xx), anywhere in a cause chain. */
export function isNetworkFailure(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, status, data } = e as { code?: unknown; status?: unknown; data?: { statusCode?: unknown } };
    const http = typeof status === 'number' ? status : typeof data?.statusCode === 'number' ? data.statusCode : undefined;
    if (http !== undefined) return http === 429 || http >= 500;
    if (typeof code === 'string' && NETWORK_ERROR_CODES.has(code)) return true;
    if (e instanceof Error && e.name === 'TimeoutError') return true;
  }
  return false;
}
