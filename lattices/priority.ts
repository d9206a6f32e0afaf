/**
 * Keeps the value of the lowest priority seen (a min-by lattice); equal priorities go to the
 * smaller canonical encoding so the choice never depends on arrival order.
 */
import { asFinite, canonicalKey, canonicalValue, compareStrings, decodeError, fromSign, pack } from './codec.js';
import { LatticeType } from './lattice.js';
import type { Lattice, Ordering } from './lattice.js';

/**
 * A min-by register: the value with the lowest (finite) priority wins.
 *
 * The value is kept in canonical form (see `canonicalValue`), so the writer reads exactly what every
 * replica decodes; what the codec cannot carry faithfully is refused with `LATTICE_DECODE`.
 *
 * @example
 * ```ts
 * new Priority(2, 'b').merge(new Priority(1, 'a')).reveal(); // 'a'
 * ```
 */
export class Priority<T = unknown> implements Lattice<Priority<T>, T> {
  readonly type = LatticeType.Priority;
  readonly priority: number;
  /** The value, in canonical form (a copy: object keys sorted, `-0` as `0`). */
  readonly value: T;
  constructor(priority: number, value: T) {
    if (!Number.isFinite(priority)) throw decodeError('Priority: priority must be finite');
    this.priority = priority + 0; // -0 becomes 0: one value, one encoding
    this.value = canonicalValue(value);
  }
  /** Sign of (this - other) in the lattice order: a lower priority is higher up. */
  private order(other: Priority<T>): number {
    const byPriority = other.priority - this.priority;
    if (byPriority !== 0 || this.value === other.value) return byPriority;
    return compareStrings(canonicalKey(other.value), canonicalKey(this.value));
  }
  merge(other: Priority<T>): Priority<T> {
    return this.order(other) >= 0 ? this : other;
  }
  reveal(): T {
    return this.value;
  }
  compare(other: Priority<T>): Ordering {
    return fromSign(this.order(other));
  }
  leq(other: Priority<T>): boolean {
    return this.order(other) <= 0;
  }
  equals(other: Priority<T>): boolean {
    return this.order(other) === 0;
  }
  encode(): Uint8Array {
    return pack([this.type, this.priority, this.value]);
  }
  static decodeFields(fields: readonly unknown[]): Priority {
    if (fields.length !== 2) throw decodeError('Priority: expected 2 fields');
    return new Priority(asFinite(fields[0], 'Priority.priority') + 0, fields[1]);
  }
}
