/**
 * A PN-counter: per-writer totals of increments and of decrements, each merged by max. The shared
 * counter primitive: concurrent increments from many writers are never lost.
 */
import { combineOrderings, compareCounts, decodeError, mergeCounts, pack, readCountEntries, writeCountEntries } from './codec.js';
import { LatticeType } from './lattice.js';
import type { Lattice, Ordering } from './lattice.js';

export class Counter implements Lattice<Counter, number> {
  readonly type = LatticeType.Counter;
  static readonly ZERO = new Counter(new Map(), new Map());
  private constructor(
    readonly increments: ReadonlyMap<string, number>,
    readonly decrements: ReadonlyMap<string, number>,
  ) {}

  /** The counter with `amount` (>= 0) more increments by `writer`. */
  increment(writer: string, amount = 1): Counter {
    return new Counter(Counter.add(this.increments, writer, amount), this.decrements);
  }
  /** The counter with `amount` (>= 0) more decrements by `writer`. */
  decrement(writer: string, amount = 1): Counter {
    return new Counter(this.increments, Counter.add(this.decrements, writer, amount));
  }
  private static add(map: ReadonlyMap<string, number>, writer: string, amount: number): Map<string, number> {
    if (!Number.isSafeInteger(amount) || amount < 0) throw decodeError(`Counter: amount must be a non-negative integer, got ${amount}`);
    const next = new Map(map);
    const total = (map.get(writer) ?? 0) + amount;
    if (!Number.isSafeInteger(total)) throw decodeError('Counter: total beyond 2^53');
    if (total > 0) next.set(writer, total);
    return next;
  }
  merge(other: Counter): Counter {
    const order = this.compare(other);
    if (order === 'gt' || order === 'eq') return this;
    if (order === 'lt') return other;
    return new Counter(mergeCounts(this.increments, other.increments), mergeCounts(this.decrements, other.decrements));
  }
  reveal(): number {
    let sum = 0;
    for (const count of this.increments.values()) sum += count;
    for (const count of this.decrements.values()) sum -= count;
    return sum;
  }
  compare(other: Counter): Ordering {
    return combineOrderings([compareCounts(this.increments, other.increments), compareCounts(this.decrements, other.decrements)]);
  }
  leq(other: Counter): boolean {
    const order = this.compare(other);
    return order === 'lt' || order === 'eq';
  }
  equals(other: Counter): boolean {
    return this.compare(other) === 'eq';
  }
  encode(): Uint8Array {
    return pack([this.type, writeCountEntries(this.increments), writeCountEntries(this.decrements)]);
  }
  static decodeFields(fields: readonly unknown[]): Counter {
    if (fields.length !== 2) throw decodeError('Counter: expected 2 fields');
    return new Counter(readCountEntries(fields[0], 'Counter.increments'), readCountEntries(fields[1], 'Counter.decrements'));
  }
}
