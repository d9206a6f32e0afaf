/**
 * Function loads: per function, the call rate and the latency of the recent calls on this
 * executor, for its status (the monitor pins a function on more executors in proportion to its
 * call rate).
 *
 * Why here and not in the scheduler: a leased client sends its calls straight to the executor
 * (direct dispatch), so a scheduler sees about one call per lease and none of the latencies; the
 * executor sees every call it runs, however it came.
 *
 * - Errors: failed calls per second, decaying the same way (a failed call counts in the rate too).
 * - Rate: calls finished per second, an exponentially decaying average (time constant `tauMs`,
 *   2 s): each call adds 1/tau and the sum decays as e^(-t/tau), so a steady rate r reads r, a
 *   step shows within a few seconds and a function that stops fades out. O(1) per call.
 * - Latency: the last `samples` (64) durations of each function, kept in a ring; p50 and p99 are
 *   read from a sorted copy when a status is built, for the reported functions only.
 * - Bounded: at most `max` (1,024) functions are tracked (a new one replaces the one called least
 *   recently), at most `reported` (32, the hottest) go in a status, and one faded below
 *   `RATE_FLOOR` for `forgetMs` is dropped.
 */

export interface FunctionLoad {
  readonly name: string;
  /** Calls finished per second (decaying average). */
  readonly rate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Failed calls per second (decaying like `rate`; they count in `rate` too). */
  readonly errors: number;
}

export interface FunctionLoadsOptions {
  readonly tauMs?: number;
  readonly samples?: number;
  readonly max?: number;
  readonly reported?: number;
  readonly forgetMs?: number;
}

/** Below this rate (calls/s) a function is not reported. */
export const RATE_FLOOR = 0.01;

interface Tracked {
  /** The decayed sum (calls/s) as of `atMs`. */
  rate: number;
  /** The decayed sum of failed calls (calls/s) as of `atMs`. */
  errors: number;
  atMs: number;
  readonly durations: number[];
  next: number;
}

export class FunctionLoads {
  private readonly tracked = new Map<string, Tracked>();
  private readonly tauMs: number;
  private readonly samples: number;
  private readonly max: number;
  private readonly reported: number;
  private readonly forgetMs: number;

  constructor(options: FunctionLoadsOptions = {}) {
    this.tauMs = Math.max(1, options.tauMs ?? 2000);
    this.samples = Math.max(1, options.samples ?? 64);
    this.max = Math.max(1, options.max ?? 1024);
    this.reported = Math.max(0, options.reported ?? 32);
    this.forgetMs = options.forgetMs ?? 60_000;
  }

  get size(): number {
    return this.tracked.size;
  }

  /** A call of `name` finished at `nowMs` after `durationMs`; `failed`: with an error. */
  record(name: string, durationMs: number, nowMs: number, failed = false): void {
    let entry = this.tracked.get(name);
    if (entry === undefined) {
      if (this.tracked.size >= this.max) this.evict();
      entry = { rate: 0, errors: 0, atMs: nowMs, durations: [], next: 0 };
      this.tracked.set(name, entry);
    }
    const decay = this.decay(entry, nowMs);
    entry.rate = entry.rate * decay + 1000 / this.tauMs;
    entry.errors = entry.errors * decay + (failed ? 1000 / this.tauMs : 0);
    entry.atMs = Math.max(entry.atMs, nowMs);
    const duration = Number.isFinite(durationMs) ? Math.max(0, durationMs) : 0;
    if (entry.durations.length < this.samples) entry.durations.push(duration);
    else entry.durations[entry.next] = duration;
    entry.next = (entry.next + 1) % this.samples;
  }

  /** The hottest functions now (at most `reported`), hottest first; forgets the faded ones. */
  report(nowMs: number): FunctionLoad[] {
    const live: { name: string; rate: number; entry: Tracked }[] = [];
    for (const [name, entry] of this.tracked) {
      const rate = this.decayed(entry, nowMs);
      if (rate >= RATE_FLOOR) live.push({ name, rate, entry });
      else if (nowMs - entry.atMs > this.forgetMs) this.tracked.delete(name);
    }
    live.sort((a, b) => b.rate - a.rate);
    return live.slice(0, this.reported).map(({ name, rate, entry }) => {
      const sorted = [...entry.durations].sort((a, b) => a - b);
      return { name, rate, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), errors: entry.errors * this.decay(entry, nowMs) };
    });
  }

  private decayed(entry: Tracked, nowMs: number): number {
    return entry.rate * this.decay(entry, nowMs);
  }

  private decay(entry: Tracked, nowMs: number): number {
    return Math.exp(-Math.max(0, nowMs - entry.atMs) / this.tauMs);
  }

  /** Makes room: drops the function whose last call is the oldest. */
  private evict(): void {
    let oldest: string | undefined;
    let oldestMs = Infinity;
    for (const [name, entry] of this.tracked) {
      if (entry.atMs < oldestMs) {
        oldestMs = entry.atMs;
        oldest = name;
      }
    }
    if (oldest !== undefined) this.tracked.delete(oldest);
  }
}

/** The `q` quantile of sorted values (nearest rank); 0 when empty. */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
