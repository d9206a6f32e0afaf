/**
 * A map from string keys to nested lattices, merged key by key (a key missing on one side is the
 * bottom). Nested values keep their own type: merging two different types under one key is a
 * `LATTICE_TYPE_MISMATCH`.
 */
import { asArray, asBytes, asString, checkString, combineOrderings, compareStrings, decodeError, pack } from './codec.js';
import { ErrorCode, LfaasError } from './errors.js';
import { LatticeType } from './lattice.js';
import type { AnyLattice, Lattice, Ordering } from './lattice.js';

/**
 * A map of nested lattices. Keys are well-formed Unicode strings (others are refused with
 * `LATTICE_DECODE`); `reveal()` gives a plain object with every key as an own property (even
 * `"__proto__"`), in sorted order.
 *
 * @example
 * ```ts
 * MapLattice.of({ hits: Counter.ZERO.increment('a') }).reveal(); // { hits: 1 }
 * ```
 */
export class MapLattice implements Lattice<MapLattice, Record<string, unknown>> {
  readonly type = LatticeType.Map;
  static readonly EMPTY = new MapLattice(new Map());
  private constructor(readonly entries: ReadonlyMap<string, AnyLattice>) {}

  static of(entries: Record<string, AnyLattice>): MapLattice {
    const pairs = Object.entries(entries);
    for (const [key] of pairs) checkString(key, 'Map.key');
    return MapLattice.EMPTY.setAll(pairs);
  }
  get(key: string): AnyLattice | undefined {
    return this.entries.get(key);
  }
  get size(): number {
    return this.entries.size;
  }
  /** The map with `value` merged into `key`. */
  set(key: string, value: AnyLattice): MapLattice {
    checkString(key, 'Map.key');
    return this.setAll([[key, value]]);
  }
  private setAll(pairs: Iterable<[string, AnyLattice]>): MapLattice {
    const next = new Map(this.entries);
    for (const [key, value] of pairs) {
      const current = next.get(key);
      next.set(key, current === undefined ? value : mergeNested(key, current, value));
    }
    return new MapLattice(next);
  }
  merge(other: MapLattice): MapLattice {
    const order = this.compare(other);
    if (order === 'gt' || order === 'eq') return this;
    if (order === 'lt') return other;
    return this.setAll(other.entries);
  }
  reveal(): Record<string, unknown> {
    // `Object.fromEntries` defines own properties: a key "__proto__" stays a key, where an
    // assignment would set the prototype instead and the key would vanish from what is read.
    return Object.fromEntries([...this.entries.keys()].sort(compareStrings).map((key) => [key, (this.entries.get(key) as AnyLattice).reveal()]));
  }
  compare(other: MapLattice): Ordering {
    const parts: Ordering[] = [];
    for (const [key, value] of this.entries) {
      const theirs = other.entries.get(key);
      parts.push(theirs === undefined ? 'gt' : compareNested(key, value, theirs));
    }
    for (const key of other.entries.keys()) if (!this.entries.has(key)) parts.push('lt');
    return combineOrderings(parts);
  }
  leq(other: MapLattice): boolean {
    const order = this.compare(other);
    return order === 'lt' || order === 'eq';
  }
  equals(other: MapLattice): boolean {
    return this.compare(other) === 'eq';
  }
  encode(): Uint8Array {
    const keys = [...this.entries.keys()].sort(compareStrings);
    return pack([this.type, keys.map((key) => [key, (this.entries.get(key) as AnyLattice).encode()])]);
  }
  static decodeFields(fields: readonly unknown[], decodeNested: (bytes: Uint8Array) => AnyLattice): MapLattice {
    if (fields.length !== 1) throw decodeError('Map: expected 1 field');
    const entries = new Map<string, AnyLattice>();
    let previous: string | undefined;
    for (const entry of asArray(fields[0], 'Map.entries')) {
      const pair = asArray(entry, 'Map.entries');
      if (pair.length !== 2) throw decodeError('Map: expected [key, value] pairs');
      const key = asString(pair[0], 'Map.key');
      if (previous !== undefined && compareStrings(previous, key) >= 0) throw decodeError('Map: keys not strictly sorted');
      previous = key;
      entries.set(key, decodeNested(asBytes(pair[1], 'Map.value')));
    }
    return new MapLattice(entries);
  }
}

function checkSameType(key: string, a: AnyLattice, b: AnyLattice): void {
  if (a.type !== b.type) throw new LfaasError(ErrorCode.LATTICE_TYPE_MISMATCH, `map key ${JSON.stringify(key)} holds type ${a.type}, got ${b.type}`);
}

function mergeNested(key: string, a: AnyLattice, b: AnyLattice): AnyLattice {
  checkSameType(key, a, b);
  return a.merge(b) as AnyLattice;
}

function compareNested(key: string, a: AnyLattice, b: AnyLattice): Ordering {
  checkSameType(key, a, b);
  return a.compare(b);
}
