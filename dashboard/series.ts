/**
 * Short time series for the dashboard's charts: one point per collection round, the last
 * `pointsMax` (300: five minutes at one round a second). Each point holds the cluster's total
 * calls/s and errors/s, and per function its calls/s, p50 and p99 (at most FUNCTIONS_PER_POINT_MAX
 * functions a point, the busiest). A view carries the `shownMax` functions busiest over the window,
 * as columns aligned on the time axis (uPlot's data layout): a function absent from a point reads 0
 * calls/s and no latency (null).
 */
import type { FunctionRow } from './aggregate.js';

const FUNCTIONS_PER_POINT_MAX = 64;

interface Point {
  readonly atMs: number;
  readonly calls: number;
  readonly errors: number;
  readonly functions: ReadonlyMap<string, { readonly calls: number; readonly p50Ms: number; readonly p99Ms: number }>;
}

export interface FunctionColumns {
  readonly name: string;
  readonly calls: readonly number[];
  readonly p50Ms: readonly (number | null)[];
  readonly p99Ms: readonly (number | null)[];
}

export interface SeriesView {
  /** Seconds since the epoch, one per point. */
  readonly t: readonly number[];
  readonly calls: readonly number[];
  readonly errors: readonly number[];
  readonly functions: readonly FunctionColumns[];
}

export class FunctionSeries {
  private readonly points: Point[] = [];

  constructor(
    private readonly pointsMax = 300,
    private readonly shownMax = 6,
  ) {}

  get length(): number {
    return this.points.length;
  }

  add(atMs: number, functions: readonly FunctionRow[]): void {
    const busiest = [...functions].sort((a, b) => b.callsPerSecond - a.callsPerSecond).slice(0, FUNCTIONS_PER_POINT_MAX);
    this.points.push({
      atMs,
      calls: functions.reduce((sum, fn) => sum + fn.callsPerSecond, 0),
      errors: functions.reduce((sum, fn) => sum + fn.errorsPerSecond, 0),
      functions: new Map(busiest.filter((fn) => fn.callsPerSecond > 0 || fn.p99Ms > 0).map((fn) => [fn.name, { calls: fn.callsPerSecond, p50Ms: fn.p50Ms, p99Ms: fn.p99Ms }])),
    });
    if (this.points.length > this.pointsMax) this.points.splice(0, this.points.length - this.pointsMax);
  }

  view(): SeriesView {
    const peak = new Map<string, number>();
    for (const point of this.points) for (const [name, load] of point.functions) peak.set(name, Math.max(peak.get(name) ?? 0, load.calls));
    const shown = [...peak].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, this.shownMax).map(([name]) => name).sort();
    return {
      t: this.points.map((point) => point.atMs / 1000),
      calls: this.points.map((point) => point.calls),
      errors: this.points.map((point) => point.errors),
      functions: shown.map((name) => ({
        name,
        calls: this.points.map((point) => point.functions.get(name)?.calls ?? 0),
        p50Ms: this.points.map((point) => point.functions.get(name)?.p50Ms ?? null),
        p99Ms: this.points.map((point) => point.functions.get(name)?.p99Ms ?? null),
      })),
    };
  }
}
