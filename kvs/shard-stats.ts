/**
 * Per-shard statistics: request counts, a latency histogram, a decaying request rate, the hottest
 * keys and the shard's occupancy. The shard records into it; the monitor gets it as a
 * `StatsReport` (kvs.proto) and Prometheus as a snapshot (metrics-server.ts).
 *
 * It is pure: no I/O and no clock. Time comes in as `nowMs` on every call, so the simulator and
 * tests drive it with virtual time. Rates decay exponentially with one half-life: a count `c` last
 * updated at `t` is worth `c * 2^-((now - t) / halfLife)` at `now`, and a decayed count reads as a
 * rate of `count * ln 2 / halfLifeSeconds` per second (for a steady rate `r`, the count settles at
 * `r * halfLifeSeconds / ln 2`, so the estimate is `r`). Decay is lazy: each key stores its count
 * and when it was last updated, and is decayed only when touched or read.
 *
 * Everything is bounded: the histogram has fixed buckets, the per-key map holds at most
 * `trackedKeysMax` keys (the coldest are dropped, in batches, so the work per access stays constant
 * on average and at most `O(trackedKeysMax log trackedKeysMax)`), and a report holds at most
 * `hotKeysMax` keys.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import type { PbTypes } from '../protocol/index.js';

/** The kinds of request a shard counts. */
export type RequestKindName = 'get' | 'put' | 'delete';

/** The kinds of request, in report order. */
export const REQUEST_KINDS: readonly RequestKindName[] = ['get', 'put', 'delete'];

/**
 * The upper bounds of the latency histogram's buckets, in microseconds (a latency equal to a bound
 * counts in that bucket). The last bucket is unbounded.
 */
export const LATENCY_BOUNDS_US: readonly number[] = Object.freeze([25, 50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 102400, Number.POSITIVE_INFINITY]);

/**
 * The bound a `StatsReport` carries for the unbounded last bucket: the wire's doubles must be finite
 * (validate.ts), so infinity goes out as 10^12 µs (11.6 days), far above any real latency.
 */
export const REPORT_INFINITE_BOUND_US = 1e12;

const DEFAULT_KEY_RATE_HALF_LIFE_MS = 10_000;
const DEFAULT_HOT_KEYS_MAX = 16;
const DEFAULT_TRACKED_KEYS_MAX = 10_000;
/** The largest `shard` a `StatsReport` can carry (uint32). */
const SHARD_MAX = 0xffff_ffff;

export interface ShardStatsOptions {
  /** The node this shard runs on (the report's `nodeId`; not empty). */
  readonly nodeId: string;
  /** The shard's index on its node (a uint32). */
  readonly shard: number;
  /** The half-life of the request rate and of the per-key access rates (default 10 000 ms). */
  readonly keyRateHalfLifeMs?: number;
  /** Keys in `hotKeys` and in a report, at most (default 16). */
  readonly hotKeysMax?: number;
  /** Keys whose access rate is tracked, at most (default 10 000); the coldest are dropped. */
  readonly trackedKeysMax?: number;
}

/** A key and its decayed access rate, in accesses per second. */
export interface KeyRate {
  readonly key: string;
  readonly rate: number;
}

/** Plain numbers for metrics: everything counted since the stats were created. */
export interface ShardStatsSnapshot {
  /** Requests recorded, per kind. */
  readonly requests: Readonly<Record<RequestKindName, number>>;
  /** The histogram's bucket bounds in microseconds ({@link LATENCY_BOUNDS_US}, last one infinite). */
  readonly latencyBoundsUs: readonly number[];
  /** Requests per bucket (not cumulative): `latencyCounts[i]` had `boundsUs[i-1] < latency <= boundsUs[i]`. */
  readonly latencyCounts: readonly number[];
  /** The sum of all recorded latencies, in microseconds. */
  readonly latencySumUs: number;
  readonly occupancyBytes: number;
  readonly keyCount: number;
}

/** A decaying count: its value when it was last updated. */
interface DecayingCount {
  value: number;
  lastUpdateMs: number;
}

/**
 * Statistics of one storage shard. Record every request with {@link ShardStats.recordRequest} and
 * the shard's size with {@link ShardStats.setOccupancy}; read them with `report` (the monitor's
 * `StatsReport`) or `snapshot` (metrics). Reads never change the state.
 *
 * @example
 * ```ts
 * const stats = new ShardStats({ nodeId: 'kvs-1', shard: 0 });
 * stats.recordRequest('get', ['user:1'], 180, clock.nowMs());
 * stats.setOccupancy(store.bytes, store.keyCount);
 * send(monitor, encodeEnvelope({ statsReport: stats.report(clock.nowMs()) }));
 * ```
 */
export class ShardStats {
  readonly nodeId: string;
  readonly shard: number;
  readonly halfLifeMs: number;
  readonly hotKeysMax: number;
  readonly trackedKeysMax: number;
  private readonly requestCounts: Record<RequestKindName, number> = { get: 0, put: 0, delete: 0 };
  private readonly latencyCounts: number[] = LATENCY_BOUNDS_US.map(() => 0);
  private latencySumUs = 0;
  /** Microseconds spent handling inputs, all told (whole microseconds go out; the rest is kept). */
  private busyUs = 0;
  private occupancyBytes = 0;
  private keyCount = 0;
  private readonly requestRate: DecayingCount = { value: 0, lastUpdateMs: Number.NEGATIVE_INFINITY };
  private readonly keyCounts = new Map<string, DecayingCount>();
  /** The tracked-key count an eviction brings the map down to (some room below the maximum). */
  private readonly trackedKeysLowWater: number;

  constructor(options: ShardStatsOptions) {
    if (options.nodeId.length === 0) throw new LfaasError(ErrorCode.INTERNAL, 'shard stats need a node id');
    if (!Number.isInteger(options.shard) || options.shard < 0 || options.shard > SHARD_MAX) {
      throw new LfaasError(ErrorCode.INTERNAL, `shard must be a uint32, got ${options.shard}`);
    }
    const halfLifeMs = options.keyRateHalfLifeMs ?? DEFAULT_KEY_RATE_HALF_LIFE_MS;
    if (!Number.isFinite(halfLifeMs) || halfLifeMs <= 0) throw new LfaasError(ErrorCode.INTERNAL, `keyRateHalfLifeMs must be a positive number, got ${halfLifeMs}`);
    const hotKeysMax = options.hotKeysMax ?? DEFAULT_HOT_KEYS_MAX;
    if (!Number.isSafeInteger(hotKeysMax) || hotKeysMax < 0) throw new LfaasError(ErrorCode.INTERNAL, `hotKeysMax must be a non-negative integer, got ${hotKeysMax}`);
    const trackedKeysMax = options.trackedKeysMax ?? DEFAULT_TRACKED_KEYS_MAX;
    if (!Number.isSafeInteger(trackedKeysMax) || trackedKeysMax < 1) throw new LfaasError(ErrorCode.INTERNAL, `trackedKeysMax must be a positive integer, got ${trackedKeysMax}`);
    this.nodeId = options.nodeId;
    this.shard = options.shard;
    this.halfLifeMs = halfLifeMs;
    this.hotKeysMax = hotKeysMax;
    this.trackedKeysMax = trackedKeysMax;
    this.trackedKeysLowWater = Math.max(1, trackedKeysMax - Math.ceil(trackedKeysMax / 10));
  }

  /**
   * Records one request: counts it under `kind`, adds `latencyUs` to the histogram, and bumps the
   * request rate and the access rate of every key in `keys` (an empty key is not tracked; a key
   * listed twice is two accesses). Throws INTERNAL on a latency that is not a finite, non-negative
   * number, or a `nowMs` that is not finite (the state is then unchanged).
   */
  /** Time the shard spent handling one input (its CPU use as its event loop sees it). */
  recordBusy(us: number): void {
    if (Number.isFinite(us) && us > 0) this.busyUs += us;
  }

  recordRequest(kind: RequestKindName, keys: readonly string[], latencyUs: number, nowMs: number): void {
    if (!Object.hasOwn(this.requestCounts, kind)) throw new LfaasError(ErrorCode.INTERNAL, `unknown request kind ${String(kind)}`);
    if (!Number.isFinite(latencyUs) || latencyUs < 0) throw new LfaasError(ErrorCode.INTERNAL, `latencyUs must be a non-negative number, got ${latencyUs}`);
    checkNow(nowMs);
    this.requestCounts[kind]++;
    this.latencyCounts[bucketOf(latencyUs)]!++;
    this.latencySumUs += latencyUs;
    this.bump(this.requestRate, nowMs);
    for (const key of keys) {
      if (key.length === 0) continue;
      const count = this.keyCounts.get(key);
      if (count !== undefined) {
        this.bump(count, nowMs);
      } else {
        this.keyCounts.set(key, { value: 1, lastUpdateMs: nowMs });
        if (this.keyCounts.size > this.trackedKeysMax) this.evictColdest(nowMs);
      }
    }
  }

  /** Sets the shard's size: its stored bytes and its key count (non-negative safe integers). */
  setOccupancy(bytes: number, keyCount: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new LfaasError(ErrorCode.INTERNAL, `occupancy bytes must be a non-negative integer, got ${bytes}`);
    if (!Number.isSafeInteger(keyCount) || keyCount < 0) throw new LfaasError(ErrorCode.INTERNAL, `key count must be a non-negative integer, got ${keyCount}`);
    this.occupancyBytes = bytes;
    this.keyCount = keyCount;
  }

  /** The decayed request rate at `nowMs`, in requests per second. */
  requestsPerSecond(nowMs: number): number {
    checkNow(nowMs);
    return this.rateOf(this.decayed(this.requestRate, nowMs));
  }

  /** The number of keys whose access rate is tracked (at most `trackedKeysMax`). */
  get trackedKeys(): number {
    return this.keyCounts.size;
  }

  /**
   * The `hotKeysMax` keys with the highest decayed access rate at `nowMs`, hottest first (ties by
   * key), in accesses per second. Costs one pass over the tracked keys.
   */
  hotKeys(nowMs: number): KeyRate[] {
    checkNow(nowMs);
    if (this.hotKeysMax === 0) return [];
    // Top-k by insertion into a sorted array of at most hotKeysMax entries: O(tracked * k), and
    // nearly always O(tracked), since most keys are colder than the k-th and stop at one compare.
    const top: { key: string; value: number }[] = [];
    for (const [key, count] of this.keyCounts) {
      const value = this.decayed(count, nowMs);
      if (top.length === this.hotKeysMax && !hotter(value, key, top[top.length - 1]!)) continue;
      let at = top.length;
      while (at > 0 && hotter(value, key, top[at - 1]!)) at--;
      top.splice(at, 0, { key, value });
      if (top.length > this.hotKeysMax) top.pop();
    }
    return top.map(({ key, value }) => ({ key, rate: this.rateOf(value) }));
  }

  /**
   * The shard's `StatsReport` at `nowMs` (valid by validate.ts, so `encodeEnvelope({ statsReport })`
   * with `validate: true` accepts it). `latency.counts` are per bucket, not cumulative, and the
   * infinite last bound goes out as {@link REPORT_INFINITE_BOUND_US}; `sentAtMs` is `nowMs` rounded
   * down (0 if negative).
   */
  report(nowMs: number): PbTypes.IStatsReport {
    return {
      nodeId: this.nodeId,
      shard: this.shard,
      occupancyBytes: this.occupancyBytes,
      keyCount: this.keyCount,
      requestsPerSecond: this.requestsPerSecond(nowMs),
      latency: {
        boundsUs: LATENCY_BOUNDS_US.map((bound) => (bound === Number.POSITIVE_INFINITY ? REPORT_INFINITE_BOUND_US : bound)),
        counts: [...this.latencyCounts],
      },
      hotKeys: this.hotKeys(nowMs),
      sentAtMs: Math.max(0, Math.floor(nowMs)),
      busyUs: Math.floor(this.busyUs),
    };
  }

  /** Plain numbers for metrics (copies; the counters only grow, except occupancy). */
  snapshot(): ShardStatsSnapshot {
    return {
      requests: { ...this.requestCounts },
      latencyBoundsUs: LATENCY_BOUNDS_US,
      latencyCounts: [...this.latencyCounts],
      latencySumUs: this.latencySumUs,
      occupancyBytes: this.occupancyBytes,
      keyCount: this.keyCount,
    };
  }

  /** A decayed count in events per second. */
  private rateOf(value: number): number {
    return (value * Math.LN2 * 1000) / this.halfLifeMs;
  }

  /** The value of `count` at `nowMs`; a `nowMs` before its last update reads as no time passed. */
  private decayed(count: DecayingCount, nowMs: number): number {
    const elapsedMs = nowMs - count.lastUpdateMs;
    if (count.value === 0 || elapsedMs <= 0) return count.value;
    return count.value * Math.pow(2, -elapsedMs / this.halfLifeMs);
  }

  /** Adds one event at `nowMs` (a clock that went back does not move `lastUpdateMs` back). */
  private bump(count: DecayingCount, nowMs: number): void {
    count.value = this.decayed(count, nowMs) + 1;
    count.lastUpdateMs = Math.max(count.lastUpdateMs, nowMs);
  }

  /**
   * Drops the coldest keys until `trackedKeysLowWater` remain. The room this leaves (a tenth of the
   * maximum) makes evictions rare: their O(n log n) cost is spread over the next n/10 new keys.
   */
  private evictColdest(nowMs: number): void {
    const entries = [...this.keyCounts].map(([key, count]) => ({ key, value: this.decayed(count, nowMs) }));
    // Stable sort: among equal values, the longest-tracked key goes first.
    entries.sort((a, b) => a.value - b.value);
    const excess = entries.length - this.trackedKeysLowWater;
    for (let i = 0; i < excess; i++) this.keyCounts.delete(entries[i]!.key);
  }
}

/** Whether (value, key) ranks before `than`: a higher rate, or an equal rate and a smaller key. */
function hotter(value: number, key: string, than: { readonly key: string; readonly value: number }): boolean {
  return value > than.value || (value === than.value && key < than.key);
}

/** The index of the histogram bucket of `latencyUs`. */
function bucketOf(latencyUs: number): number {
  let bucket = 0;
  while (latencyUs > LATENCY_BOUNDS_US[bucket]!) bucket++;
  return bucket;
}

function checkNow(nowMs: number): void {
  if (!Number.isFinite(nowMs)) throw new LfaasError(ErrorCode.INTERNAL, `nowMs must be a finite number, got ${nowMs}`);
}
