/**
 * Per-function call metrics, kept where calls are seen (every run on an executor, however it came;
 * the calls a scheduler schedules): a count per function, version and outcome code, and a duration
 * histogram per function and version, in the layout Prometheus reads (bucket bounds in seconds).
 *
 * Cheap on the hot path: `record` is two Map lookups (name, then version: no string is built per
 * call), a short bucket scan and a few additions. Bounded label cardinality: at most
 * `functionsMax` (name, version) pairs get series of their own; calls of any other go under
 * `function="_other"` (version and owner `_other` too), so a flood of names cannot blow up a
 * scrape. The owner label is the namespace of the name (`alice` for `alice/resize`), or `admin`
 * for a name in no namespace (the cluster administrator's).
 *
 * Plain numbers, no prom-client: a sans-I/O machine keeps one, and the process turns it into
 * {@link MetricSample}s at each scrape ({@link FunctionCallMetrics.samples}).
 */
import type { HistogramSample, MetricSample } from './metrics-server.js';

/** The owner label of names in no namespace. */
export const ADMIN_OWNER = 'admin';
/** The function (and version, and owner) label of calls beyond the tracked functions. */
export const OTHER_FUNCTION = '_other';
/** (name, version) pairs tracked by default. */
export const FUNCTIONS_MAX_DEFAULT = 256;
/** Outcome codes per function at most (ErrorCode has fewer); beyond, counted under `_other`. */
const CODES_MAX = 64;

/**
 * Bucket bounds in seconds for function durations: 1 ms to 60 s, roughly x2.5 apart (a warm call
 * takes a millisecond or two, a cold one a few hundred, a long function up to its timeout).
 */
export const DURATION_BOUNDS_SECONDS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);

interface Entry {
  readonly labels: Readonly<Record<string, string>>;
  /** Calls per outcome code. */
  readonly codes: Map<string, number>;
  /** Non-cumulative: one more than the bounds (the last beyond every bound). */
  readonly buckets: number[];
  sumSeconds: number;
}

export interface FunctionCallMetricsOptions {
  /** (name, version) pairs with series of their own, at most (default {@link FUNCTIONS_MAX_DEFAULT}). */
  readonly functionsMax?: number;
  readonly bounds?: readonly number[];
}

/** The owner label of a function name: its namespace, or {@link ADMIN_OWNER}. */
export function ownerLabel(name: string): string {
  const slash = name.indexOf('/');
  return slash > 0 ? name.slice(0, slash) : ADMIN_OWNER;
}

export class FunctionCallMetrics {
  private readonly byName = new Map<string, Map<number, Entry>>();
  private readonly other: Entry;
  private tracked = 0;
  private readonly functionsMax: number;
  private readonly bounds: readonly number[];

  constructor(options: FunctionCallMetricsOptions = {}) {
    this.functionsMax = Math.max(0, options.functionsMax ?? FUNCTIONS_MAX_DEFAULT);
    this.bounds = options.bounds ?? DURATION_BOUNDS_SECONDS;
    this.other = this.entry(OTHER_FUNCTION, OTHER_FUNCTION, OTHER_FUNCTION);
  }

  /** One call of `name`@`version` ended with `code` (`OK` or an ErrorCode) after `durationMs` (omit: counted, not timed). */
  record(name: string, version: number, code: string, durationMs?: number): void {
    const entry = this.lookup(name, version);
    const codes = entry.codes;
    const count = codes.get(code);
    if (count !== undefined) codes.set(code, count + 1);
    else if (codes.size < CODES_MAX) codes.set(code, 1);
    else codes.set(OTHER_FUNCTION, (codes.get(OTHER_FUNCTION) ?? 0) + 1);
    if (durationMs === undefined || !(durationMs >= 0)) return;
    const seconds = durationMs / 1000;
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && seconds > bounds[bucket]!) bucket++;
    entry.buckets[bucket]!++;
    entry.sumSeconds += seconds;
  }

  /** (name, version) pairs with series of their own. */
  get trackedCount(): number {
    return this.tracked;
  }

  /**
   * The series now: `<prefix>_calls_total{function,version,owner,code}` (counter) and
   * `<durationName>{function,version,owner}` (histogram), each also labelled with `labels`.
   */
  samples(names: { readonly calls: string; readonly callsHelp: string; readonly duration: string; readonly durationHelp: string }, labels: Readonly<Record<string, string>>): MetricSample[] {
    const samples: MetricSample[] = [];
    const entries = [...[...this.byName.values()].flatMap((versions) => [...versions.values()]), this.other];
    for (const entry of entries) {
      const seen = [...entry.codes.values()].reduce((sum, count) => sum + count, 0);
      if (seen === 0) continue;
      for (const [code, value] of entry.codes) samples.push({ name: names.calls, help: names.callsHelp, type: 'counter', value, labels: { ...labels, ...entry.labels, code } });
      const histogram: HistogramSample = { name: names.duration, help: names.durationHelp, type: 'histogram', bounds: this.bounds, counts: [...entry.buckets], sum: entry.sumSeconds, labels: { ...labels, ...entry.labels } };
      samples.push(histogram);
    }
    return samples;
  }

  private lookup(name: string, version: number): Entry {
    let versions = this.byName.get(name);
    const found = versions?.get(version);
    if (found !== undefined) return found;
    if (this.tracked >= this.functionsMax) return this.other;
    if (versions === undefined) {
      versions = new Map();
      this.byName.set(name, versions);
    }
    const entry = this.entry(name, String(version), ownerLabel(name));
    versions.set(version, entry);
    this.tracked++;
    return entry;
  }

  private entry(fn: string, version: string, owner: string): Entry {
    return { labels: { function: fn, version, owner }, codes: new Map(), buckets: new Array<number>(this.bounds.length + 1).fill(0), sumSeconds: 0 };
  }
}
