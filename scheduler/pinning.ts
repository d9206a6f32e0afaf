/**
 * The scheduler machine's pinning: which executors a pinned function's `prepare` goes to. The
 * book of pins (what is pinned, which boots hold it, how many should) is scheduler/pins.ts; this
 * chooses the executors and sends.
 *
 * - At registration (`pin`): each function on as many executors as its count, chosen by the
 *   placement policy (so the pins land where its calls will).
 * - The monitor's pin counts (`onPinCounts`): they replace the previous ones for a while; a
 *   function whose count rose is prepared at once on as many more executors (warm ones first,
 *   then the least loaded, none saturated or draining). A function registered through another
 *   scheduler is looked up in the registry first (a few per message).
 * - An executor's report (`due`): the pins it should hold and does not report warm are sent
 *   again (pins.ts decides when).
 */
import type { LfaasError } from '../lattices/index.js';
import { envelopeWith } from '../protocol/index.js';
import type { Effect, PbTypes, Random } from '../protocol/index.js';
import { admissionLoadOf } from './placement.js';
import type { PlacementPolicy } from './placement.js';
import { Pins, pinCountsOf } from './pins.js';
import type { PinnedFunction } from './pins.js';
import type { FunctionMeta } from './registry.js';
import type { ExecutorEntry } from './run-books.js';

/** Functions raised by one pin counts message that are looked up in the registry (not pinned here yet), at most. */
const PIN_LOOKUPS_MAX = 64;

/** The scheduler's counters pinning moves. */
export interface PinningCounters {
  pinsSent: number;
  pinCountsReceived: number;
  pinCountsRefused: number;
}

/** What pinning needs of the scheduler machine, each named. */
export interface PinningHost {
  /** The scheduler's address (the sender of its prepares). */
  readonly id: string;
  /** The executors alive, by address. */
  readonly executors: ReadonlyMap<string, ExecutorEntry>;
  readonly placement: PlacementPolicy;
  readonly random: Random;
  readonly counters: PinningCounters;
  now(): number;
  /** The registry's lookup of a function (version 0: its newest). */
  withFunction(name: string, version: number, then: (error: LfaasError | undefined, meta: FunctionMeta | undefined) => Effect[]): Effect[];
}

export interface PinningOptions {
  /** Executors each function is pinned on by default. */
  readonly count: number;
  /** Calls per runtime slot past which an executor has no room (no top-up goes there). */
  readonly overloadMax: number;
  /** Executors a scheduler knows at most (a pin count is cut to it). */
  readonly executorsMax: number;
}

/**
 * Sends the pins: at registration, when the monitor raises a count, and again to an executor
 * that has not reported a pinned function warm.
 *
 * @example
 * const pinning = new Pinning(host, { count: 2, overloadMax: 2, executorsMax: 1024 });
 * effects.push(...pinning.pin([{ name: 'alice/resize', version: 3 }]));
 */
export class Pinning {
  private readonly pins: Pins;

  constructor(
    private readonly host: PinningHost,
    private readonly options: PinningOptions,
  ) {
    this.pins = new Pins({ count: options.count });
  }

  /**
   * Prefetching: the functions' code goes to executors, which specialise a runtime before any
   * call. The pins are kept and sent again until warm (see {@link Pins}).
   */
  pin(functions: readonly { name: string; version: number }[]): Effect[] {
    const views = [...this.host.executors.values()];
    const effects: Effect[] = [];
    for (const fn of functions) {
      this.pins.add(fn);
      const count = Math.min(views.length, this.pins.countOf(fn.name, this.host.now()));
      const chosen = new Set<ExecutorEntry>();
      for (let attempt = 0; chosen.size < count && attempt < count * 4; attempt++) {
        const view = this.host.placement.place({ functionId: `${fn.name}@${fn.version}`, keys: [] }, views.filter((v) => !chosen.has(v)), this.host.random);
        if (view === undefined) break;
        chosen.add(view as ExecutorEntry);
      }
      for (const view of chosen) effects.push(this.prepare(view, fn));
    }
    return effects;
  }

  /**
   * The monitor's pin counts: they replace the previous ones until `validMs` from now. A function
   * whose count rose is prepared at once on as many more executors (warm ones first, then the
   * least loaded, none saturated or draining); a lowered count only stops the pinning beyond it.
   * Hostile values are checked by `pinCountsOf` (scheduler/pins.ts).
   */
  onPinCounts(message: PbTypes.IPinCounts): Effect[] {
    const checked = pinCountsOf(message, this.options.executorsMax);
    if (checked === undefined) {
      this.host.counters.pinCountsRefused++;
      return [];
    }
    this.host.counters.pinCountsReceived++;
    const { counts, validMs } = checked;
    const nowMs = this.host.now();
    const raised = this.pins.setCounts(counts, nowMs + validMs, nowMs);
    const effects = raised.length === 0 ? [] : this.topUp(raised);
    // A function registered through another scheduler (or before this one started) is not pinned
    // here: its newest version is read from the registry (cached), then pinned and topped up; a
    // few lookups per message, and again with the next message if one failed.
    let lookups = 0;
    for (const [name, count] of counts) {
      if (count <= this.pins.defaultCount || this.pins.has(name)) continue;
      if (lookups++ >= PIN_LOOKUPS_MAX) break;
      effects.push(
        ...this.host.withFunction(name, 0, (error, meta) => {
          if (error !== undefined || meta === undefined) return [];
          this.pins.add({ name, version: meta.version });
          return this.topUp([name]);
        }),
      );
    }
    return effects;
  }

  /** The prepares due to an executor that just reported (pins it should hold and does not report warm). */
  due(view: ExecutorEntry): Effect[] {
    return this.pins.due(view, this.host.now(), this.host.executors.size).map((fn) => this.prepare(view, fn));
  }

  /** A function version was deleted: it is no longer pinned (version 0: every version). */
  remove(name: string, version: number): void {
    this.pins.remove(name, version);
  }

  /** An executor boot left the view: it holds no pin any more. */
  forget(incarnation: string): void {
    this.pins.forget(incarnation);
  }

  /**
   * Prepares `names` on as many more executors as their counts ask: least loaded first, so the new
   * holders have room for the calls (not a saturated or draining one: its prepare would wait
   * behind its queue, or it is going away).
   */
  private topUp(names: readonly string[]): Effect[] {
    const targets = [...this.host.executors.values()].filter((view) => admissionLoadOf(view) < this.options.overloadMax).sort((a, b) => admissionLoadOf(a) - admissionLoadOf(b));
    const byIncarnation = new Map(targets.map((view) => [view.incarnation, view]));
    const effects: Effect[] = [];
    for (const { fn, incarnation } of this.pins.topUp(names, targets, this.host.now())) {
      const view = byIncarnation.get(incarnation);
      if (view !== undefined) effects.push(this.prepare(view, fn));
    }
    return effects;
  }

  private prepare(view: ExecutorEntry, fn: PinnedFunction): Effect {
    this.pins.sent(fn, view.incarnation, this.host.now());
    this.host.counters.pinsSent++;
    return { kind: 'send', to: view.address, envelope: envelopeWith({ prepare: { functions: [{ name: fn.name, version: fn.version }] } }, { sender: this.host.id }) };
  }
}
