import { TidegateError } from '../model/index.js';

/** One problem found while rendering: the file (and object, when known) it concerns. */
export interface RenderProblem {
  file: string;
  /** Kind/name of the object, or "document N" when the object has no usable identity. */
  object?: string;
  message: string;
  /** tidegate's own words about a file, quoting none of its content (kept when a render's messages are withheld). */
  quotesNothing?: boolean;
}

/** Rendering failed; nothing from this render may be applied or pruned. */
export class RenderError extends TidegateError {
  readonly problems: readonly RenderProblem[];

  constructor(problems: RenderProblem[], options?: { cause?: unknown }) {
    const first = problems[0];
    const summary = first
      ? `${first.file}${first.object ? ` (${first.object})` : ''}: ${first.message}`
      : 'render failed';
    super(
      'RenderFailed',
      problems.length > 1
        ? `${summary} (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})`
        : summary,
      options,
    );
    this.problems = problems;
  }
}
