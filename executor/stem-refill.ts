/**
 * The runtime pool's stem pools kept at their targets: refilled when below (stems started a few
 * at a time, a little after one was taken), trimmed when above (idle runtimes beyond their pool's
 * target ended by the pool's sweep). What the targets are and which stems to start is
 * executor/stem-pools.ts; the pool owns the runtimes and starts and ends them; this decides when.
 *
 * - A stem taken by a call (or a target that rose) is replaced a little later (`later`,
 *   STEM_TOP_UP_DELAY_MS), off the path of the call that took it: forking a process blocks the
 *   event loop for milliseconds and its start takes a core for ~100 ms (measured, specialising a
 *   stem took 8.8 ms p50 with the replacement started at once, 4.7 ms without).
 * - A top-up (`topUp`) starts what the targets miss, the class `memoryMb` first, then other
 *   classes, then owners, STEMS_PER_TOP_UP at most; the rest at a later one. An owner's stem is
 *   bound to it at once.
 * - Surplus (`surplus`): a runtime left with no function bound to an owner ends unless its
 *   owner's pool keeps it; an unbound one beyond its class's target ends once idle for
 *   `idleWorkerMs`.
 */
import { StemPools, ownerKey } from './stem-pools.js';
import type { StemPoolsOptions, StemTarget, StemView } from './stem-pools.js';

/** How long after a stem is taken its replacement starts. */
const STEM_TOP_UP_DELAY_MS = 50;

/** What the refill needs to know of a runtime. */
export interface RefillRuntime extends StemView {
  /** When it last finished a call (Date.now()). */
  readonly idleSinceMs: number;
}

/** What the refill needs of the runtime pool, each named. */
export interface StemRefillHost<R extends RefillRuntime> {
  /** The pool's runtimes now. */
  runtimes(): readonly R[];
  /** How many more runtimes the pool may start. */
  runtimesFree(): number;
  /** Starts a stem of the class `memoryMb`, bound to `owner` at once (undefined: unbound). */
  startStem(memoryMb: number, owner: string | undefined): void;
  /** The pool closed: nothing starts any more. */
  closed(): boolean;
  readonly counters: { stemsRefilled: number };
}

export interface StemRefillOptions extends StemPoolsOptions {
  /** An unbound stem beyond its class's target ends once idle this long. */
  readonly idleWorkerMs: number;
}

/**
 * The stem pools of one runtime pool, with their targets, refills and surplus.
 *
 * @example
 * const stems = new StemRefill(host, { isolation: 'process', memoryMb: 128, prewarm: 2, stemsMax: 4, idleWorkerMs: 60_000 });
 * stems.later(); // a stem was taken: refilled in 50 ms
 */
export class StemRefill<R extends RefillRuntime> {
  /** The targets, per memory class and per owner in a class. */
  private readonly pools: StemPools;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: StemRefillHost<R>,
    private readonly options: StemRefillOptions,
  ) {
    this.pools = new StemPools(options);
  }

  /** A cold start that needed a fresh runtime: counted for the class (an unbound one taken or started) and the owner. */
  recordCold(memoryMb: number, owner: string | undefined, unbound: boolean, nowMs: number): void {
    this.pools.recordCold(memoryMb, owner, unbound, nowMs);
  }

  /** A runtime took `tookMs` from its start to ready. */
  recordStart(tookMs: number): void {
    this.pools.recordStart(tookMs);
  }

  /** The targets now with the stems waiting in each (metrics). */
  report(nowMs: number): StemTarget[] {
    return this.pools.report(this.host.runtimes(), nowMs);
  }

  /** A stem's start time as the targets assume it (a moving average of the measured ones), ms. */
  get startEstimateMs(): number {
    return this.pools.startEstimateMs;
  }

  /** A stem was taken (or a target rose): the pools are topped up a little later, once. */
  later(): void {
    if (this.timer !== undefined || this.host.closed()) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.topUp();
    }, STEM_TOP_UP_DELAY_MS);
    this.timer.unref();
  }

  /** Starts the stems the targets miss, a few at a time, within the stem and runtime bounds. */
  topUp(): void {
    if (this.host.closed()) return;
    const { start, more } = this.pools.plan(this.host.runtimes(), Date.now(), this.host.runtimesFree());
    for (const { memoryMb, owner } of start) {
      this.host.startStem(memoryMb, owner);
      this.host.counters.stemsRefilled++;
    }
    if (more) this.later();
  }

  /**
   * The idle runtimes with no function loaded beyond their pool's target, to end: an owner's
   * beyond its owner's target at once, an unbound one beyond its class's target once idle for
   * `idleWorkerMs`.
   */
  surplus(nowMs: number): R[] {
    const { classes, owners } = this.pools.targets(nowMs);
    const classKept = new Map<number, number>();
    const ownerKept = new Map<string, number>();
    const out: R[] = [];
    for (const runtime of this.host.runtimes()) {
      if (runtime.busy || runtime.ended || runtime.loaded.size > 0) continue;
      if (runtime.owner !== undefined) {
        // An owner's process never serves another: cold, it ends, unless its owner's pool keeps it.
        const key = ownerKey(runtime.owner, runtime.memoryMb);
        const kept = ownerKept.get(key) ?? 0;
        if (kept < (owners.get(key) ?? 0)) ownerKept.set(key, kept + 1);
        else out.push(runtime);
        continue;
      }
      const kept = classKept.get(runtime.memoryMb) ?? 0;
      classKept.set(runtime.memoryMb, kept + 1);
      if (kept >= (classes.get(runtime.memoryMb) ?? 0) && nowMs - runtime.idleSinceMs > this.options.idleWorkerMs) out.push(runtime);
    }
    return out;
  }

  /** The pool closed: no top-up is left pending. */
  close(): void {
    clearTimeout(this.timer);
  }
}
