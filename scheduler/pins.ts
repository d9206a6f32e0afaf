/**
 * Pins: the functions registration asked executors to keep warm, and which executor boots hold
 * them.
 *
 * A `prepare` is sent once and not answered: a sandbox that fails to start under load loses it,
 * and so does an executor that restarts, or one that joins after the registration. So the pin is
 * kept here and sent again: to a boot that has not reported the function warm, every `retryMs`,
 * at most `attempts` times; and to a new boot when fewer than `count` boots hold the function.
 * Once a boot reports a pinned function warm, the function is that boot's to keep or to end
 * (keep-alive), and is never sent to it again.
 *
 * How many boots hold a function: `count` (the scheduler's `pinExecutors`, 2), or the monitor's
 * count for it (`PinCounts`: a hot function on more executors, in proportion to its call rate; a
 * cold one back to the default, or to none). The monitor's counts replace each other and lapse
 * at their `untilMs` (a monitor that stopped sending leaves the defaults). A raised count is
 * topped up at once (`topUp`: boots already warm for it first, then the others in the caller's
 * order, least loaded first); a lowered one stops the re-sends to boots that have not confirmed
 * once enough have, and new boots take on nothing beyond it. The runtimes already warm stay warm
 * until their keep-alive ends them (no executor is told to drop one: its calls keep coming while
 * placement finds it warm).
 */
import { NAME_PATTERN } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';

export interface PinnedFunction {
  readonly name: string;
  readonly version: number;
}

export interface PinsOptions {
  /** Executors each function is pinned on (fewer when fewer are known). */
  readonly count: number;
  readonly retryMs?: number;
  readonly attempts?: number;
  /** Functions pinned at most; the oldest pin is dropped first. */
  readonly max?: number;
}

/** Functions a count may be set for at once, at most (beyond, the message is refused). */
export const PIN_COUNTS_MAX = 10_000;
/** How long the monitor's pin counts hold when its message names no validity, and at most. */
const PIN_COUNTS_VALID_MS = 10_000;
const PIN_COUNTS_VALID_MAX_MS = 10 * 60_000;

/**
 * The monitor's pin counts message, checked as hostile: undefined (refused) for a list longer
 * than PIN_COUNTS_MAX; a name that is no function name is skipped; a count is cut to 0..`countMax`
 * (the executors a scheduler may know), the validity to 10 minutes (10 s when none is named).
 */
export function pinCountsOf(message: PbTypes.IPinCounts, countMax: number): { readonly counts: Map<string, number>; readonly validMs: number } | undefined {
  const entries = message.counts ?? [];
  if (entries.length > PIN_COUNTS_MAX) return undefined;
  const counts = new Map<string, number>();
  for (const entry of entries) {
    const name = entry.name ?? '';
    if (!NAME_PATTERN.test(name)) continue;
    counts.set(name, Math.min(countMax, Math.max(0, Math.floor(entry.count ?? 0))));
  }
  return { counts, validMs: Math.min(PIN_COUNTS_VALID_MAX_MS, message.validMs || PIN_COUNTS_VALID_MS) };
}

interface Holder {
  attempts: number;
  lastSentMs: number;
  confirmed: boolean;
}

interface Pin extends PinnedFunction {
  readonly id: string;
  /** By executor boot (incarnation). */
  readonly holders: Map<string, Holder>;
}

/** One executor boot as the pins see it. */
export interface PinTarget {
  readonly incarnation: string;
  readonly warm: ReadonlySet<string>;
}

export class Pins {
  /** By function name: one pinned version each (a newer registration replaces the older pin). */
  private readonly pins = new Map<string, Pin>();
  /** When each boot was last checked, so a status is not a full scan every time. */
  private readonly checkedMs = new Map<string, number>();
  private readonly retryMs: number;
  private readonly attempts: number;
  private readonly max: number;
  /** The monitor's counts by function name, valid until `countsUntilMs`. */
  private counts: ReadonlyMap<string, number> = new Map();
  private countsUntilMs = 0;

  constructor(private readonly options: PinsOptions) {
    this.retryMs = options.retryMs ?? 5000;
    this.attempts = options.attempts ?? 3;
    this.max = options.max ?? 10_000;
  }

  get size(): number {
    return this.pins.size;
  }

  /** Pins `fn` (its latest version); returns false when an equal or newer version is pinned. */
  add(fn: PinnedFunction): boolean {
    const current = this.pins.get(fn.name);
    if (current !== undefined && current.version >= fn.version) return false;
    this.pins.delete(fn.name);
    this.pins.set(fn.name, { name: fn.name, version: fn.version, id: `${fn.name}@${fn.version}`, holders: new Map() });
    if (this.pins.size > this.max) this.pins.delete(this.pins.keys().next().value!);
    return true;
  }

  /** The default count (the scheduler's `pinExecutors`). */
  get defaultCount(): number {
    return this.options.count;
  }

  /** Whether `name` is pinned (some version of it). */
  has(name: string): boolean {
    return this.pins.has(name);
  }

  /** A function deleted (all versions, or the pinned one). */
  remove(name: string, version = 0): void {
    const pin = this.pins.get(name);
    if (pin !== undefined && (version === 0 || pin.version === version)) this.pins.delete(name);
  }

  /**
   * The monitor's counts (they replace the previous ones), valid until `untilMs`. Returns the
   * names whose count rose (to top up now).
   */
  setCounts(counts: ReadonlyMap<string, number>, untilMs: number, nowMs: number): string[] {
    const raised: string[] = [];
    for (const [name, count] of counts) if (count > this.countOf(name, nowMs)) raised.push(name);
    this.counts = counts;
    this.countsUntilMs = untilMs;
    return raised;
  }

  /** Boots `name` is to be held by (before the executors known bound it). */
  countOf(name: string, nowMs: number): number {
    const set = nowMs < this.countsUntilMs ? this.counts.get(name) : undefined;
    return set ?? this.options.count;
  }

  /**
   * Boots to send a pin to now, so that each of `names` is held by as many boots as its count:
   * first the boots of `targets` already warm for it (recorded, nothing to send), then the others
   * in the order given. The caller sends each pin returned (and calls `sent`).
   */
  topUp(names: readonly string[], targets: readonly PinTarget[], nowMs: number): { fn: PinnedFunction; incarnation: string }[] {
    const out: { fn: PinnedFunction; incarnation: string }[] = [];
    for (const name of names) {
      const pin = this.pins.get(name);
      if (pin === undefined) continue;
      const want = Math.min(this.countOf(name, nowMs), targets.length);
      let live = this.liveHolders(pin);
      for (const target of targets) {
        if (live >= want) break;
        if (pin.holders.has(target.incarnation) || !target.warm.has(pin.id)) continue;
        pin.holders.set(target.incarnation, { attempts: 0, lastSentMs: nowMs, confirmed: true });
        live++;
      }
      for (const target of targets) {
        if (live >= want) break;
        if (pin.holders.has(target.incarnation)) continue;
        out.push({ fn: pin, incarnation: target.incarnation });
        live++;
      }
    }
    return out;
  }

  /** `fn`'s prepare was sent to `incarnation` at `nowMs`. */
  sent(fn: PinnedFunction, incarnation: string, nowMs: number): void {
    const pin = this.pins.get(fn.name);
    if (pin === undefined || pin.version !== fn.version) return;
    const holder = pin.holders.get(incarnation);
    if (holder === undefined) pin.holders.set(incarnation, { attempts: 1, lastSentMs: nowMs, confirmed: false });
    else {
      holder.attempts++;
      holder.lastSentMs = nowMs;
    }
  }

  /** A boot left the view: it holds nothing now. */
  forget(incarnation: string): void {
    this.checkedMs.delete(incarnation);
    for (const pin of this.pins.values()) pin.holders.delete(incarnation);
  }

  /**
   * The pins to (re)send to `target` now, given its latest report. At most one scan per boot per
   * `retryMs`.
   */
  due(target: PinTarget, nowMs: number, executorsKnown: number): PinnedFunction[] {
    const checked = this.checkedMs.get(target.incarnation);
    if (checked !== undefined && nowMs - checked < this.retryMs) return [];
    this.checkedMs.set(target.incarnation, nowMs);
    const out: PinnedFunction[] = [];
    for (const pin of this.pins.values()) {
      const want = Math.min(this.countOf(pin.name, nowMs), executorsKnown);
      const holder = pin.holders.get(target.incarnation);
      if (target.warm.has(pin.id)) {
        if (holder === undefined) pin.holders.set(target.incarnation, { attempts: 0, lastSentMs: nowMs, confirmed: true });
        else holder.confirmed = true;
        continue;
      }
      if (holder !== undefined) {
        // Sent again while fewer than its count have confirmed (a lowered count stops it).
        if (!holder.confirmed && holder.attempts < this.attempts && nowMs - holder.lastSentMs >= this.retryMs && this.confirmedHolders(pin) < want) out.push(pin);
        continue;
      }
      // A boot that holds nothing of it: taken on when the function is short of holders (ones
      // that gave up do not count).
      if (this.liveHolders(pin) < want) out.push(pin);
    }
    return out;
  }

  /** Boots that hold the pin or may yet (sent it, with attempts left). */
  private liveHolders(pin: Pin): number {
    let live = 0;
    for (const holder of pin.holders.values()) if (holder.confirmed || holder.attempts < this.attempts) live++;
    return live;
  }

  private confirmedHolders(pin: Pin): number {
    let confirmed = 0;
    for (const holder of pin.holders.values()) if (holder.confirmed) confirmed++;
    return confirmed;
  }
}
