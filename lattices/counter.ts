/**
 * A PN-counter: per-writer totals of increments and of decrements, each merged by max. The shared
 * counter primitive: concurrent increments from many writers are never lost.
 *
 * Its value is `sum(increments) - sum(decrements)`, computed exactly. Summing doubles in map order
 * would not be: past 2^53 float addition is not associative, so two replicas holding the same state
 * (same bytes, `equals` true) but built by different merge orders would read different values.
 */
import { checkString, combineOrderings, compareCounts, decodeError, mergeCounts, pack, readCountEntries, writeCountEntries } from './codec.js';
import { LatticeType } from './lattice.js';
import type { Lattice, Ordering } from './lattice.js';

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A PN-counter whose value is a safe integer.
 *
 * The rule beyond 2^53: every per-writer total is a safe integer (a larger one could not be encoded
 * as one), and the value `reveal()` returns must be exact, so it must lie in
 * [-(2^53 - 1), 2^53 - 1]. A local step that would take the value out of that range is refused with
 * `LATTICE_DECODE` (like Redis refusing an `INCRBY` that overflows). Merging cannot refuse (merge is
 * total, or the lattice laws break), and concurrent increments on two replicas, each in range, can
 * merge to a value beyond it; then `reveal()` throws `LATTICE_DECODE` on every replica alike
 * rather than return a rounded number (rounding would be deterministic too, but it would change a
 * counter silently), and {@link Counter.revealBigInt} gives the exact value. Decrements that bring the
 * value back into range are accepted, and `reveal()` works again.
 *
 * @example
 * ```ts
 * const counter = Counter.ZERO.increment('a', 3).decrement('b');
 * counter.reveal(); // 2
 * ```
 */
export class Counter implements Lattice<Counter, number> {
  readonly type = LatticeType.Counter;
  static readonly ZERO = new Counter(new Map(), new Map());
  private constructor(
    readonly increments: ReadonlyMap<string, number>,
    readonly decrements: ReadonlyMap<string, number>,
  ) {}

  /** The counter with `amount` (>= 0) more increments by `writer`; refused past 2^53 - 1 (see the class). */
  increment(writer: string, amount = 1): Counter {
    const next = new Counter(Counter.add(this.increments, writer, amount), this.decrements);
    if (amount > 0 && Counter.sum(next.increments) > Number.MAX_SAFE_INTEGER && next.revealBigInt() > MAX_SAFE) throw decodeError('Counter: the value would pass 2^53 - 1');
    return next;
  }
  /** The counter with `amount` (>= 0) more decrements by `writer`; refused past -(2^53 - 1) (see the class). */
  decrement(writer: string, amount = 1): Counter {
    const next = new Counter(this.increments, Counter.add(this.decrements, writer, amount));
    if (amount > 0 && Counter.sum(next.decrements) > Number.MAX_SAFE_INTEGER && next.revealBigInt() < -MAX_SAFE) throw decodeError('Counter: the value would pass -(2^53 - 1)');
    return next;
  }
  private static add(map: ReadonlyMap<string, number>, writer: string, amount: number): Map<string, number> {
    checkString(writer, 'Counter.writer');
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
  /**
   * The value, exact. Throws `LATTICE_DECODE` when it is beyond ±(2^53 - 1) (only concurrent
   * writers can get it there; see the class), the same on every replica; use {@link revealBigInt}.
   */
  reveal(): number {
    // Fast path: non-negative safe integers summed in any order stay exact while every partial sum
    // is at most 2^53 (and a partial sum past it rounds to at least 2^53), so two sums that end at
    // or below 2^53 - 1 are exact, and so is their difference.
    const up = Counter.sum(this.increments);
    const down = Counter.sum(this.decrements);
    if (up <= Number.MAX_SAFE_INTEGER && down <= Number.MAX_SAFE_INTEGER) return up - down;
    const exact = this.revealBigInt();
    if (exact > MAX_SAFE || exact < -MAX_SAFE) throw decodeError(`Counter: the value ${exact} is beyond 2^53 - 1; read it with revealBigInt()`);
    return Number(exact);
  }
  /** The value as an exact bigint, whatever its size. */
  revealBigInt(): bigint {
    let sum = 0n;
    for (const count of this.increments.values()) sum += BigInt(count);
    for (const count of this.decrements.values()) sum -= BigInt(count);
    return sum;
  }
  private static sum(map: ReadonlyMap<string, number>): number {
    let sum = 0;
    for (const count of map.values()) sum += count;
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
