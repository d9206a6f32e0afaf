/**
 * How many stems (unspecialised runtimes) a pool keeps waiting for one key (a memory class, or an
 * owner in a memory class), adapted to the rate of cold starts that needed one. Pure: the pool
 * hands in the time, so the tests run it in virtual time.
 *
 * Each key keeps an exponentially decaying count of its recent cold starts (time constant
 * `decayMs`): c(t) = sum over cold starts i of e^-(t - t_i)/decayMs, so c/decayMs estimates their
 * rate λ. By Little's law, the cold starts that arrive while a taken stem is replaced are λ·W on
 * average, W the measured time a stem takes to start; the target is the key's floor plus
 * ceil(headroom · λ · W) (headroom covers the arrivals' variance), at most `max`. While fewer than
 * `activeAbove` cold starts are recent (the decayed count), the rate adds nothing: the target
 * decays back to the floor once cold starts stop (a single cold start with the default 0.5 keeps
 * one stem above the floor for decayMs · ln 2; an owner's pool, with 1.5, needs two in quick
 * succession). Keys whose count has decayed to nothing are dropped; at most `keysMax` are kept
 * (the one with the fewest recent cold starts goes first).
 */

export interface StemTargetOptions {
  /** Time constant of the decaying count of cold starts, in ms (default 10 s). */
  readonly decayMs?: number;
  /** Stems per expected cold start during a stem's start (default 2). */
  readonly headroom?: number;
  /** The decayed count of recent cold starts from which the rate adds to the floor (default 0.5). */
  readonly activeAbove?: number;
  /** A key's target at most, floor included (default unbounded). */
  readonly max?: number;
  /** Keys tracked at most (default 1024). */
  readonly keysMax?: number;
}

/** A decayed count below this is no count at all: the key is dropped. */
const NEGLIGIBLE = 0.01;

interface Recent {
  count: number;
  atMs: number;
}

export class StemTargets<K> {
  private readonly recent = new Map<K, Recent>();
  readonly decayMs: number;
  readonly headroom: number;
  readonly activeAbove: number;
  readonly max: number;
  readonly keysMax: number;

  constructor(options: StemTargetOptions = {}) {
    this.decayMs = options.decayMs ?? 10_000;
    this.headroom = options.headroom ?? 2;
    this.activeAbove = options.activeAbove ?? 0.5;
    this.max = options.max ?? Number.POSITIVE_INFINITY;
    this.keysMax = options.keysMax ?? 1024;
    if (!(this.decayMs > 0)) throw new RangeError(`decay of ${this.decayMs} ms`);
    if (!(this.headroom >= 0)) throw new RangeError(`headroom of ${this.headroom}`);
    if (!(this.keysMax >= 1)) throw new RangeError(`${this.keysMax} keys at most`);
  }

  /** A cold start of `key` that needed a stem (it took one, or had to start a runtime). */
  record(key: K, nowMs: number): void {
    const entry = this.recent.get(key);
    if (entry !== undefined) {
      entry.count = this.decayed(entry, nowMs) + 1;
      entry.atMs = Math.max(entry.atMs, nowMs);
      return;
    }
    if (this.recent.size >= this.keysMax) this.makeRoom(nowMs);
    this.recent.set(key, { count: 1, atMs: nowMs });
  }

  /** The decayed count of `key`'s recent cold starts. */
  recentColdStarts(key: K, nowMs: number): number {
    const entry = this.recent.get(key);
    return entry === undefined ? 0 : this.decayed(entry, nowMs);
  }

  /** The estimated rate of `key`'s cold starts, per second. */
  ratePerSecond(key: K, nowMs: number): number {
    return (this.recentColdStarts(key, nowMs) / this.decayMs) * 1000;
  }

  /** Stems `key` should have waiting: `floor` plus ceil(headroom · λ · W) while cold starts are recent, at most `max` (the floor always). */
  target(key: K, nowMs: number, stemStartMs: number, floor = 0): number {
    const count = this.recentColdStarts(key, nowMs);
    if (count < this.activeAbove) return floor;
    const inFlight = this.headroom * (count / this.decayMs) * Math.max(0, stemStartMs);
    // A tiny epsilon: a product that is an integer up to rounding is not rounded up past it.
    const extra = Math.max(1, Math.ceil(inFlight - 1e-9));
    return Math.max(floor, Math.min(this.max, floor + extra));
  }

  /** The keys with recent cold starts (those decayed to nothing are dropped first). */
  keys(nowMs: number): K[] {
    this.prune(nowMs);
    return [...this.recent.keys()];
  }

  get size(): number {
    return this.recent.size;
  }

  /** Drops keys whose count has decayed to nothing. */
  prune(nowMs: number): void {
    for (const [key, entry] of this.recent) if (this.decayed(entry, nowMs) < NEGLIGIBLE) this.recent.delete(key);
  }

  private makeRoom(nowMs: number): void {
    this.prune(nowMs);
    if (this.recent.size < this.keysMax) return;
    let weakest: K | undefined;
    let weakestCount = Number.POSITIVE_INFINITY;
    for (const [key, entry] of this.recent) {
      const count = this.decayed(entry, nowMs);
      if (count < weakestCount) {
        weakest = key;
        weakestCount = count;
      }
    }
    this.recent.delete(weakest as K);
  }

  private decayed(entry: Recent, nowMs: number): number {
    const elapsed = Math.max(0, nowMs - entry.atMs);
    return entry.count * Math.exp(-elapsed / this.decayMs);
  }
}
