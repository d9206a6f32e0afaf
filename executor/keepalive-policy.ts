/**
 * Keep-alive policies: how long a function's warm runtime stays loaded after a call, and whether
 * it is unloaded and loaded again just before the next call is expected. Pure: they see idle
 * times (the time from one call of the function to its next) and answer windows; the runtime
 * pool (executor/runtime-pool.ts) keeps one per function version and applies them in real time
 * (scaled by its `keepAliveTimeScale`), the benchmarks replay them in virtual time.
 *
 * - `fixed` (McGrath and Brenner's prototype: 15 minutes): stay loaded for a fixed window.
 * - `adaptive`: the hybrid histogram policy of Shahrad et al. ("Serverless in the Wild", USENIX
 *   ATC 2020). Per function, a histogram of idle times in 1-minute bins over 4 hours. Once it holds
 *   enough idle times and is representative (its bin counts vary enough: a coefficient of
 *   variation of at least 2, i.e. the idle times concentrate in a few bins), the prewarm window is
 *   the 5th percentile (its head) minus 10%, and the keep-alive window runs from there to the
 *   99th percentile (its tail) plus 10%: the runtime is unloaded after a call, loaded again at the
 *   prewarm window, and kept until the end of the keep-alive window. A function with too few idle
 *   times, or a flat histogram, or idle times mostly beyond the histogram's range, gets the
 *   fallback: no prewarm, a fixed keep-alive of the histogram's range (the paper's conservative
 *   choice; its ARIMA forecast for the out-of-range case is not built).
 */

/** What a policy answers after a call: the runtime is unloaded at once and loaded again after `prewarmMs` (0: never unloaded), then kept `keepAliveMs`. */
export interface KeepAliveWindows {
  readonly prewarmMs: number;
  readonly keepAliveMs: number;
}

export interface KeepAlivePolicy {
  /** A call came `idleMs` after the previous one (the first call of a function records nothing). */
  recordIdle(idleMs: number): void;
  /** The windows to apply after the latest call. */
  windows(): KeepAliveWindows;
}

/** Whether a call arriving `idleMs` after the previous one finds a warm runtime, and the idle memory-time it cost (ms). */
export function replayGap(windows: KeepAliveWindows, idleMs: number): { warm: boolean; loadedMs: number } {
  const { prewarmMs, keepAliveMs } = windows;
  if (idleMs < prewarmMs) return { warm: false, loadedMs: 0 };
  const loadedMs = Math.min(idleMs - prewarmMs, keepAliveMs);
  return { warm: idleMs - prewarmMs <= keepAliveMs, loadedMs };
}

export class FixedKeepAlive implements KeepAlivePolicy {
  constructor(readonly keepAliveMs = 15 * 60_000) {
    if (!(keepAliveMs >= 0)) throw new RangeError(`keep-alive of ${keepAliveMs} ms`);
  }

  recordIdle(): void {}

  windows(): KeepAliveWindows {
    return { prewarmMs: 0, keepAliveMs: this.keepAliveMs };
  }
}

export interface HybridOptions {
  /** Bin width (1 minute). */
  readonly binMs?: number;
  /** Bins (240: 4 hours). */
  readonly bins?: number;
  /** Idle times the histogram needs before it is used (10). */
  readonly minSamples?: number;
  /** The bin counts' coefficient of variation from which the histogram is representative (2). */
  readonly cvThreshold?: number;
  /** Percentiles of the head and the tail (5, 99). */
  readonly headPercentile?: number;
  readonly tailPercentile?: number;
  /** Margin on both windows (0.1). */
  readonly margin?: number;
  /** Share of idle times beyond the range above which the histogram is not used (0.5). */
  readonly outOfRangeMax?: number;
}

export class HybridHistogramKeepAlive implements KeepAlivePolicy {
  private readonly counts: Uint32Array;
  private samples = 0;
  private outOfRange = 0;
  private readonly binMs: number;
  private readonly options: Required<HybridOptions>;
  private cached: KeepAliveWindows | undefined;

  constructor(options: HybridOptions = {}) {
    this.options = { binMs: 60_000, bins: 240, minSamples: 10, cvThreshold: 2, headPercentile: 5, tailPercentile: 99, margin: 0.1, outOfRangeMax: 0.5, ...options };
    this.binMs = this.options.binMs;
    this.counts = new Uint32Array(this.options.bins);
  }

  /** The fixed window of the fallback: the histogram's whole range. */
  get rangeMs(): number {
    return this.binMs * this.options.bins;
  }

  recordIdle(idleMs: number): void {
    if (!Number.isFinite(idleMs) || idleMs < 0) return;
    this.cached = undefined;
    this.samples++;
    const bin = Math.floor(idleMs / this.binMs);
    if (bin >= this.options.bins) this.outOfRange++;
    else this.counts[bin]!++;
  }

  windows(): KeepAliveWindows {
    this.cached ??= this.compute();
    return this.cached;
  }

  private compute(): KeepAliveWindows {
    const fallback = { prewarmMs: 0, keepAliveMs: this.rangeMs };
    const inRange = this.samples - this.outOfRange;
    if (this.samples < this.options.minSamples || inRange === 0 || this.outOfRange / this.samples > this.options.outOfRangeMax) return fallback;
    if (this.coefficientOfVariation() < this.options.cvThreshold) return fallback;
    const head = this.percentileBin(this.options.headPercentile, inRange);
    const tail = this.percentileBin(this.options.tailPercentile, inRange);
    // Bins are [b, b+1) minutes: the head's lower edge, the tail's upper edge.
    const prewarmMs = Math.floor(head * this.binMs * (1 - this.options.margin));
    const tailMs = Math.ceil((tail + 1) * this.binMs * (1 + this.options.margin));
    return { prewarmMs, keepAliveMs: Math.max(this.binMs, tailMs - prewarmMs) };
  }

  /** The bin below which `percentile`% of the in-range idle times fall. */
  private percentileBin(percentile: number, inRange: number): number {
    const wanted = Math.max(1, Math.ceil((percentile / 100) * inRange));
    let seen = 0;
    for (let bin = 0; bin < this.counts.length; bin++) {
      seen += this.counts[bin]!;
      if (seen >= wanted) return bin;
    }
    return this.counts.length - 1;
  }

  private coefficientOfVariation(): number {
    const n = this.counts.length;
    let sum = 0;
    for (const count of this.counts) sum += count;
    const mean = sum / n;
    if (mean === 0) return 0;
    let squares = 0;
    for (const count of this.counts) squares += (count - mean) ** 2;
    return Math.sqrt(squares / n) / mean;
  }
}

export type KeepAliveSpec = { readonly kind: 'fixed'; readonly keepAliveMs?: number } | { readonly kind: 'adaptive'; readonly options?: HybridOptions };

/** A new policy for one function. */
export function keepAlivePolicy(spec: KeepAliveSpec): KeepAlivePolicy {
  return spec.kind === 'fixed' ? new FixedKeepAlive(spec.keepAliveMs) : new HybridHistogramKeepAlive(spec.options);
}
