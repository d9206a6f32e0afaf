/** Summary statistics of latency samples. */
export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** The q-quantile (0..1) of sorted samples, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[index] as number;
}

/** Summarises latency samples in milliseconds. */
export function summarise(samplesMs: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(samplesMs).sort();
  const list = Array.from(sorted);
  const sum = list.reduce((a, b) => a + b, 0);
  return {
    count: list.length,
    p50Ms: quantile(list, 0.5),
    p99Ms: quantile(list, 0.99),
    meanMs: list.length === 0 ? Number.NaN : sum / list.length,
    minMs: list[0] ?? Number.NaN,
    maxMs: list[list.length - 1] ?? Number.NaN,
  };
}

/** Rounds for tables and JSON: 3 significant decimals on small numbers, integers on large. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value;
  if (Math.abs(value) >= 1000) return Math.round(value);
  return Math.round(value * 1000) / 1000;
}
