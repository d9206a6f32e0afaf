/** A benchmark: runs, then publishes its result document (see report.ts). */
export interface BenchmarkOptions {
  readonly quick: boolean;
  readonly json: boolean;
  readonly resultsDir: string;
  /** The command line after `bench --`, the benchmark's name included: options a benchmark reads itself (`--time-scale 60`). */
  readonly args: readonly string[];
}

export type Benchmark = (options: BenchmarkOptions) => Promise<void>;
