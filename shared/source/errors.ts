import { TidegateError, isNetworkFailure } from '../model/index.js';

/** A source that cannot be read: transient when the git server could not be reached or failed for now (the queue retries), else permanent (a missing ref, refused credentials). */
export class SourceError extends TidegateError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SourceFailed', message, { ...options, transient: isNetworkFailure(options?.cause) });
  }
}
