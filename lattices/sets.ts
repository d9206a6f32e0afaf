/**
 * Grow-only sets of plain values. Elements are identified by their canonical encoding, so
 * `{a:1,b:2}` and `{b:2,a:1}` are one element. `GSet` reveals elements in canonical order,
 * `OrderedSet` in natural order (numbers, then strings, then the rest canonically).
 */
import { asArray, canonicalKey, canonicalValue, combine, compareStrings, decodeError, pack } from './codec.js';
import { LatticeType } from './lattice.js';
import type { Lattice, Ordering } from './lattice.js';

abstract class GrowSet<T, Self extends GrowSet<T, Self>> implements Lattice<Self, T[]> {
  abstract readonly type: typeof LatticeType.GSet | typeof LatticeType.OrderedSet;
  /** canonical key -> element */
  protected constructor(readonly elements: ReadonlyMap<string, T>) {}
  protected abstract make(elements: ReadonlyMap<string, T>): Self;

  get size(): number {
    return this.elements.size;
  }
  has(element: T): boolean {
    return this.elements.has(canonicalKey(element));
  }
  /** The set with `items` added. */
  add(...items: T[]): Self {
    const next = new Map(this.elements);
    for (const item of items) {
      const canonical = canonicalValue(item);
      next.set(canonicalKey(canonical), canonical);
    }
    return next.size === this.elements.size ? (this as unknown as Self) : this.make(next);
  }
  merge(other: Self): Self {
    if (other.elements.size === 0) return this as unknown as Self;
    let next: Map<string, T> | undefined;
    for (const [key, element] of other.elements) {
      if (this.elements.has(key)) continue;
      next ??= new Map(this.elements);
      next.set(key, element);
    }
    if (next === undefined) return this as unknown as Self;
    // |this ∪ other| = |other| means this ⊆ other: the other side dominates, return it as is.
    return next.size === other.elements.size ? other : this.make(next);
  }
  compare(other: Self): Ordering {
    let less = false;
    let greater = false;
    for (const key of this.elements.keys()) if (!other.elements.has(key)) greater = true;
    for (const key of other.elements.keys()) if (!this.elements.has(key)) less = true;
    return combine(less, greater);
  }
  leq(other: Self): boolean {
    for (const key of this.elements.keys()) if (!other.elements.has(key)) return false;
    return true;
  }
  equals(other: Self): boolean {
    return this.elements.size === other.elements.size && this.leq(other);
  }
  protected sortedKeys(): string[] {
    return [...this.elements.keys()].sort(compareStrings);
  }
  abstract reveal(): T[];
  encode(): Uint8Array {
    return pack([this.type, this.sortedKeys().map((key) => this.elements.get(key))]);
  }
  protected static readElements(fields: readonly unknown[], what: string): Map<string, unknown> {
    if (fields.length !== 1) throw decodeError(`${what}: expected 1 field`);
    const elements = new Map<string, unknown>();
    let previous: string | undefined;
    for (const raw of asArray(fields[0], what)) {
      const element = canonicalValue(raw);
      const key = canonicalKey(element);
      if (previous !== undefined && compareStrings(previous, key) >= 0) throw decodeError(`${what}: elements not strictly sorted`);
      previous = key;
      elements.set(key, element);
    }
    return elements;
  }
}

/** A grow-only set. */
export class GSet<T = unknown> extends GrowSet<T, GSet<T>> {
  readonly type = LatticeType.GSet;
  static of<T>(...items: T[]): GSet<T> {
    return new GSet<T>(new Map()).add(...items);
  }
  protected make(elements: ReadonlyMap<string, T>): GSet<T> {
    return new GSet(elements);
  }
  reveal(): T[] {
    return this.sortedKeys().map((key) => this.elements.get(key) as T);
  }
  static decodeFields(fields: readonly unknown[]): GSet {
    return new GSet(GrowSet.readElements(fields, 'GSet'));
  }
}

function naturalOrder(a: unknown, b: unknown): number {
  const rank = (v: unknown): number => (typeof v === 'number' ? 0 : typeof v === 'string' ? 1 : 2);
  const byRank = rank(a) - rank(b);
  if (byRank !== 0) return byRank;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return compareStrings(a, b);
  return compareStrings(canonicalKey(a), canonicalKey(b));
}

/** A grow-only set revealed in natural order. */
export class OrderedSet<T = unknown> extends GrowSet<T, OrderedSet<T>> {
  readonly type = LatticeType.OrderedSet;
  static of<T>(...items: T[]): OrderedSet<T> {
    return new OrderedSet<T>(new Map()).add(...items);
  }
  protected make(elements: ReadonlyMap<string, T>): OrderedSet<T> {
    return new OrderedSet(elements);
  }
  reveal(): T[] {
    return [...this.elements.values()].sort(naturalOrder);
  }
  static decodeFields(fields: readonly unknown[]): OrderedSet {
    return new OrderedSet(GrowSet.readElements(fields, 'OrderedSet'));
  }
}
