import { TidegateError, formatRef, isTransient, type ObjectRef } from '../model/index.js';

/** One object the apiserver refused (or would refuse): the object, the file it came from, why. */
export interface ObjectProblem {
  ref: ObjectRef;
  source: string;
  message: string;
}

/** Planning or applying failed for the objects listed; nothing of the failing stage was written. */
export class ApplyError extends TidegateError {
  readonly problems: readonly ObjectProblem[];
  readonly phase: 'plan' | 'apply';

  constructor(phase: 'plan' | 'apply', problems: ObjectProblem[], options?: { cause?: unknown }) {
    const first = problems[0];
    const head = first ? `${formatRef(first.ref)} (${first.source}): ${first.message}` : `${phase} failed`;
    super(
      phase === 'plan' ? 'PlanFailed' : 'ApplyFailed',
      problems.length > 1 ? `${head} (and ${problems.length - 1} more)` : head,
      options,
    );
    this.problems = problems;
    this.phase = phase;
  }
}

/**
 * Errors that are not about one object: the apiserver throttling or unreachable after retries, or
 * the deadline. They end the whole operation (thrown, for the queue to retry), never a per-object problem.
 */
export const notAboutTheObject = (err: unknown, signal: AbortSignal | undefined): boolean =>
  isTransient(err) || signal?.aborted === true;
