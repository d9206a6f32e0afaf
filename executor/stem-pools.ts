/**
 * The runtime pool's stem pools: how many stems (unspecialised runtimes) each memory class, and
 * each owner within a class, should have waiting, and which to start to get there. The pool owns
 * the runtimes; this decides, from what they are doing (a {@link StemView} of each) and the time.
 *
 * - Targets (executor/stem-targets.ts): a floor (`prewarm` for the class `memoryMb`, 0 otherwise)
 *   plus Little's law on the cold starts that needed a fresh runtime: their decaying rate times the
 *   measured start time of a stem, with headroom. An owner's target counts only at `process` and
 *   `bwrap` (a sandbox process is bound to one owner; threads are shared by all).
 * - A stem's start time is a moving average of the measured ones (100 ms assumed before one).
 * - `plan` names the stems to start: the class `memoryMb` first, then other classes, then owners,
 *   a few at a time (forking blocks the event loop, a start takes a core), within the stem and
 *   runtime bounds.
 */
import type { IsolationLevel } from './isolation.js';
import { StemTargets } from './stem-targets.js';

/** A stem pool's target, for metrics: a memory class's (no `owner`) or an owner's in a class. */
export interface StemTarget {
  readonly memoryMb: number;
  readonly owner?: string;
  /** Stems it should have waiting. */
  readonly target: number;
  /** Stems waiting (idle, nothing loaded; starting ones included). */
  readonly waiting: number;
  /** The decaying rate of its cold starts that needed a stem, per second. */
  readonly coldPerSecond: number;
}

/** What the stem pools need to know of a runtime. */
export interface StemView {
  readonly busy: boolean;
  readonly ended: boolean;
  /** The functions loaded in it. */
  readonly loaded: { readonly size: number };
  /** The owner it is bound to (undefined: unbound). */
  readonly owner: string | undefined;
  readonly memoryMb: number;
}

export interface StemPoolsOptions {
  readonly isolation: IsolationLevel;
  /** The class whose floor is `prewarm`. */
  readonly memoryMb: number;
  readonly prewarm: number;
  /** Stems waiting at most, over all classes and owners. */
  readonly stemsMax: number;
  readonly decayMs?: number;
  readonly headroom?: number;
}

/** Targets by class, and by owner key (`memoryMb:owner`). */
export interface Targets {
  readonly classes: Map<number, number>;
  readonly owners: Map<string, number>;
}

/** A stem's start time assumed before one was measured. */
const STEM_START_GUESS_MS = 100;
/** An owner's pool starts after this many recent cold starts (decayed count; a class's after one). */
const OWNER_STEMS_AFTER = 1.5;
/** Stems started by one top-up at most (each start takes a core for ~100 ms); the rest at the next. */
export const STEMS_PER_TOP_UP = 2;

/** An owner's stem pool key: its memory class and the owner. */
export const ownerKey = (owner: string, memoryMb: number): string => `${memoryMb}:${owner}`;

function splitOwnerKey(key: string): { readonly memoryMb: number; readonly owner: string } {
  const at = key.indexOf(':');
  return { memoryMb: Number(key.slice(0, at)), owner: key.slice(at + 1) };
}

export class StemPools {
  private readonly classTargets: StemTargets<number>;
  private readonly ownerTargets: StemTargets<string>;
  /** A moving average of a stem's start time (spawn to ready), ms. */
  private stemStartMs: number | undefined;

  constructor(private readonly options: StemPoolsOptions) {
    const decayMs = options.decayMs ?? 10_000;
    const headroom = options.headroom ?? 2;
    this.classTargets = new StemTargets({ decayMs, headroom, max: options.stemsMax });
    this.ownerTargets = new StemTargets({ decayMs, headroom, max: options.stemsMax, activeAbove: OWNER_STEMS_AFTER });
  }

  /** A cold start that needed a fresh runtime: counted for the class (an unbound one taken or started) and the owner. */
  recordCold(memoryMb: number, owner: string | undefined, unbound: boolean, nowMs: number): void {
    if (unbound) this.classTargets.record(memoryMb, nowMs);
    if (owner !== undefined) this.ownerTargets.record(ownerKey(owner, memoryMb), nowMs);
  }

  /** A runtime took `tookMs` from its start to ready. */
  recordStart(tookMs: number): void {
    this.stemStartMs = this.stemStartMs === undefined ? tookMs : 0.8 * this.stemStartMs + 0.2 * tookMs;
  }

  /** A stem's start time as the targets assume it, ms. */
  get startEstimateMs(): number {
    return this.stemStartMs ?? STEM_START_GUESS_MS;
  }

  /** The targets now: every class's with a floor or recent cold starts, every owner's above 0. */
  targets(nowMs: number): Targets {
    const startMs = this.startEstimateMs;
    const { memoryMb: floorClass, prewarm } = this.options;
    const classes = new Map<number, number>();
    classes.set(floorClass, this.classTargets.target(floorClass, nowMs, startMs, prewarm));
    for (const memoryMb of this.classTargets.keys(nowMs)) if (memoryMb !== floorClass) classes.set(memoryMb, this.classTargets.target(memoryMb, nowMs, startMs));
    const owners = new Map<string, number>();
    if (this.options.isolation !== 'none') {
      for (const key of this.ownerTargets.keys(nowMs)) {
        const target = this.ownerTargets.target(key, nowMs, startMs);
        if (target > 0) owners.set(key, target);
      }
    }
    return { classes, owners };
  }

  /** The targets now with the stems waiting in each (metrics). */
  report(runtimes: Iterable<StemView>, nowMs: number): StemTarget[] {
    const { classes, owners } = this.targets(nowMs);
    const waiting = waitingStems(runtimes);
    const out: StemTarget[] = [];
    for (const [memoryMb, target] of classes) out.push({ memoryMb, target, waiting: waiting.classes.get(memoryMb) ?? 0, coldPerSecond: this.classTargets.ratePerSecond(memoryMb, nowMs) });
    for (const [key, target] of owners) out.push({ ...splitOwnerKey(key), target, waiting: waiting.owners.get(key) ?? 0, coldPerSecond: this.ownerTargets.ratePerSecond(key, nowMs) });
    return out;
  }

  /**
   * The stems to start now to meet the targets, at most STEMS_PER_TOP_UP, within `room` (stems
   * may wait beyond none of stemsMax; `runtimesFree` more runtimes fit); `more`: targets still
   * missed that a later top-up should fill.
   */
  plan(runtimes: Iterable<StemView>, nowMs: number, runtimesFree: number): { readonly start: { memoryMb: number; owner: string | undefined }[]; readonly more: boolean } {
    const { classes, owners } = this.targets(nowMs);
    const waiting = waitingStems(runtimes);
    let total = waiting.total;
    let free = runtimesFree;
    const start: { memoryMb: number; owner: string | undefined }[] = [];
    let more = false;
    /** Adds the stems one pool misses; false when a bound stops the plan (`more` for the per-top-up one). */
    const fill = (memoryMb: number, owner: string | undefined, target: number, have: number): boolean => {
      for (let missing = target - have; missing > 0; missing--) {
        if (total >= this.options.stemsMax || free <= 0) return false;
        if (start.length >= STEMS_PER_TOP_UP) {
          more = true;
          return false;
        }
        start.push({ memoryMb, owner });
        total++;
        free--;
      }
      return true;
    };
    let going = true;
    for (const [memoryMb, target] of classes) if (going) going = fill(memoryMb, undefined, target, waiting.classes.get(memoryMb) ?? 0);
    for (const [key, target] of owners) {
      if (!going) break;
      const { memoryMb, owner } = splitOwnerKey(key);
      going = fill(memoryMb, owner, target, waiting.owners.get(key) ?? 0);
    }
    return { start, more };
  }
}

/** Stems waiting (idle, nothing loaded, starting ones included): unbound ones per class, bound ones per owner key. */
function waitingStems(runtimes: Iterable<StemView>): { classes: Map<number, number>; owners: Map<string, number>; total: number } {
  const classes = new Map<number, number>();
  const owners = new Map<string, number>();
  let total = 0;
  for (const runtime of runtimes) {
    if (runtime.busy || runtime.ended || runtime.loaded.size > 0) continue;
    total++;
    if (runtime.owner === undefined) classes.set(runtime.memoryMb, (classes.get(runtime.memoryMb) ?? 0) + 1);
    else {
      const key = ownerKey(runtime.owner, runtime.memoryMb);
      owners.set(key, (owners.get(key) ?? 0) + 1);
    }
  }
  return { classes, owners, total };
}
