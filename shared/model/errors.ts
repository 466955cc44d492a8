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
