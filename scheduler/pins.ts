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
 */

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

  /** A function deleted (all versions, or the pinned one). */
  remove(name: string, version = 0): void {
    const pin = this.pins.get(name);
    if (pin !== undefined && (version === 0 || pin.version === version)) this.pins.delete(name);
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
    const want = Math.min(this.options.count, executorsKnown);
    const out: PinnedFunction[] = [];
    for (const pin of this.pins.values()) {
      const holder = pin.holders.get(target.incarnation);
      if (target.warm.has(pin.id)) {
        if (holder === undefined) pin.holders.set(target.incarnation, { attempts: 0, lastSentMs: nowMs, confirmed: true });
        else holder.confirmed = true;
        continue;
      }
      if (holder !== undefined) {
        if (!holder.confirmed && holder.attempts < this.attempts && nowMs - holder.lastSentMs >= this.retryMs) out.push(pin);
        continue;
      }
      // A boot that holds nothing of it: taken on when the function is short of holders (ones
      // that gave up do not count).
      let live = 0;
      for (const other of pin.holders.values()) if (other.confirmed || other.attempts < this.attempts) live++;
      if (live < want) out.push(pin);
    }
    return out;
  }
}
