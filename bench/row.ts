/** A row of the benchmark table in docs/benchmarks.md (bench/run.ts writes it). */
export interface BenchRow {
  name: string;
  tidegate: string;
  alternative: string;
  ratio: string;
  /** As the performance issue set it; a run never edits it. */
  goal: string;
  /** null: nothing to meet. */
  met: boolean | null;
}
