/** Base class of every error tidegate raises on purpose: a stable code, a message, a cause. */
export class TidegateError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
