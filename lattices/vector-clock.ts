/** A vector clock: node id -> counter (a map of `Max`), ordered pointwise. */
import { checkString, compareCounts, decodeError, mergeCounts, pack, readCountEntries, writeCountEntries } from './codec.js';
import { LatticeType } from './lattice.js';
import type { Lattice, Ordering } from './lattice.js';

/**
 * A vector clock. Node ids are well-formed Unicode strings and counts safe integers; anything else
 * is refused with `LATTICE_DECODE`. `reveal()` lists the nodes in sorted order.
 *
 * @example
 * ```ts
 * VectorClock.of({ a: 1 }).increment('b').reveal(); // { a: 1, b: 1 }
 * ```
 */
export class VectorClock implements Lattice<VectorClock, Record<string, number>> {
  readonly type = LatticeType.VectorClock;
  static readonly EMPTY = new VectorClock(new Map());
  private constructor(readonly entries: ReadonlyMap<string, number>) {}

  static of(entries: Record<string, number>): VectorClock {
    const map = new Map<string, number>();
    for (const [node, count] of Object.entries(entries)) {
      checkString(node, 'VectorClock.node');
      if (!Number.isSafeInteger(count) || count < 0) throw decodeError(`VectorClock: bad count for ${node}`);
      if (count > 0) map.set(node, count);
    }
    return new VectorClock(map);
  }
  get(node: string): number {
    return this.entries.get(node) ?? 0;
  }
  /** The clock with `node`'s entry advanced by one. */
  increment(node: string): VectorClock {
    checkString(node, 'VectorClock.node');
    const count = this.get(node) + 1;
    // One more would not be a safe integer: its encoding could not be read back.
    if (!Number.isSafeInteger(count)) throw decodeError(`VectorClock: the count of ${node} would pass 2^53 - 1`);
    const next = new Map(this.entries);
    next.set(node, count);
    return new VectorClock(next);
  }
  merge(other: VectorClock): VectorClock {
    const order = this.compare(other);
    if (order === 'gt' || order === 'eq') return this;
    if (order === 'lt') return other;
    return new VectorClock(mergeCounts(this.entries, other.entries));
  }
  reveal(): Record<string, number> {
    return Object.fromEntries(writeCountEntries(this.entries));
  }
  compare(other: VectorClock): Ordering {
    return compareCounts(this.entries, other.entries);
  }
  leq(other: VectorClock): boolean {
    const order = this.compare(other);
    return order === 'lt' || order === 'eq';
  }
  equals(other: VectorClock): boolean {
    return this.compare(other) === 'eq';
  }
  /** The fields of the encoding, for embedding in other lattices. */
  toFields(): [string, number][] {
    return writeCountEntries(this.entries);
  }
  static fromFields(value: unknown, what = 'VectorClock'): VectorClock {
    return new VectorClock(readCountEntries(value, what));
  }
  encode(): Uint8Array {
    return pack([this.type, this.toFields()]);
  }
  static decodeFields(fields: readonly unknown[]): VectorClock {
    if (fields.length !== 1) throw decodeError('VectorClock: expected 1 field');
    return VectorClock.fromFields(fields[0]);
  }
}
