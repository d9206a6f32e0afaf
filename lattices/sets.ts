/**
 * Grow-only sets of plain values. Elements are kept in canonical form (see `canonicalValue`) and
 * identified by their canonical key, so `{a:1,b:2}` and `{b:2,a:1}` are one element, `-0` is `0`,
 * and `NaN` is one element equal to itself (SameValueZero, like a JS `Set`). `GSet` reveals elements
 * in canonical-key order, `OrderedSet` in natural order (numbers, then strings, then the rest by
 * canonical key). Both orders are total, so what a set reveals depends on its elements only, never
 * on the order they were added or merged in.
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
  /** Whether the set holds `element` (compared in canonical form; a value no set can hold is not in it). */
  has(element: T): boolean {
    let canonical: T;
    try {
      canonical = canonicalValue(element);
    } catch {
      return false;
    }
    return this.elements.has(canonicalKey(canonical));
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

/**
 * A grow-only set, revealed in canonical-key order. Elements that the codec cannot carry faithfully
 * (a lone surrogate, a `Date`, ...) are refused by `of` and `add` with `LATTICE_DECODE`.
 *
 * @example
 * ```ts
 * GSet.of('b', 'a').merge(GSet.of('c')).reveal(); // ['a', 'b', 'c']
 * ```
 */
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

/**
 * The natural order of canonical elements, a total order: numbers first, ascending, from -Infinity
 * to Infinity with `NaN` last (`a - b` is not an order once `NaN` is in: the sort result then
 * depends on the input order); then strings by UTF-16 code unit; then everything else by canonical
 * key. Distinct canonical elements never compare equal (`-0` is never an element, there is one
 * `NaN`), so the sorted list is one list whatever order the elements arrive in.
 */
function naturalOrder(a: unknown, b: unknown): number {
  const rank = (v: unknown): number => (typeof v === 'number' ? 0 : typeof v === 'string' ? 1 : 2);
  const byRank = rank(a) - rank(b);
  if (byRank !== 0) return byRank;
  if (typeof a === 'number' && typeof b === 'number') return compareNumbers(a, b);
  if (typeof a === 'string' && typeof b === 'string') return compareStrings(a, b);
  return compareStrings(canonicalKey(a), canonicalKey(b));
}

/** A total order of numbers: the usual one, with `NaN` after everything (and equal to itself). */
function compareNumbers(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) return 0;
  return Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : -1;
}

/**
 * A grow-only set revealed in natural order: numbers ascending (`NaN` last), then strings, then the
 * rest by canonical key.
 *
 * @example
 * ```ts
 * OrderedSet.of(2, Number.NaN, -1, 'b', 'a').reveal(); // [-1, 2, NaN, 'a', 'b']
 * ```
 */
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
