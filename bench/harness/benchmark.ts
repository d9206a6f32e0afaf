/** A benchmark: runs, then publishes its result document (see report.ts). */
export interface BenchmarkOptions {
  readonly quick: boolean;
  readonly json: boolean;
  readonly resultsDir: string;
}

export type Benchmark = (options: BenchmarkOptions) => Promise<void>;
