/**
 * Causal values. A value is the set of its *maximal versions*: each version is a vector clock with
 * the value written under it (and, for `MultiKeyCausal`, the versions of other keys it depends
 * on). Merge keeps the versions of the union that no other version strictly dominates, so a
 * dominating write replaces and concurrent writes are all kept (for the reader to see both).
 * Taking the maxima of a union is associative, commutative and idempotent, which the simpler
 * "compare two clocks, else union" rule is not (a merged clock can equal a third write's clock).
 */
import { asArray, asString, canonicalKey, canonicalValue, checkString, combine, compareStrings, decodeError, pack } from './codec.js';
import { LatticeType } from './lattice.js';
import type { Lattice, Ordering } from './lattice.js';
import { VectorClock } from './vector-clock.js';

interface Version<T> {
  readonly clock: VectorClock;
  readonly value: T;
  readonly deps: ReadonlyMap<string, VectorClock>;
  /** Identity of the version (clock, value, deps), for sets and sorted encodings. */
  readonly id: string;
}

function versionId(clock: VectorClock, value: unknown, deps: ReadonlyMap<string, VectorClock>): string {
  const depFields = [...deps.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([k, c]) => [k, c.toFields()]);
  return canonicalKey([clock.toFields(), value, depFields]);
}

/**
 * A version with its value in canonical form (a copy; see `canonicalValue`) and its dependencies
 * checked and in sorted order, so `dependencies()` lists them in one order on the writer and on
 * every reader (the writer's object key order is not carried by the encoding).
 */
function makeVersion<T>(clock: VectorClock, value: T, deps: ReadonlyMap<string, VectorClock>): Version<T> {
  for (const key of deps.keys()) checkString(key, 'causal dependency key');
  const sorted = deps.size < 2 ? deps : new Map([...deps.entries()].sort(([a], [b]) => compareStrings(a, b)));
  const canonical = canonicalValue(value);
  return { clock, value: canonical, deps: sorted, id: versionId(clock, canonical, sorted) };
}

/** The versions of `all` that no other version strictly dominates, deduplicated and sorted. */
function maxima<T>(all: readonly Version<T>[]): Version<T>[] {
  const unique = new Map<string, Version<T>>();
  for (const version of all) unique.set(version.id, version);
  const list = [...unique.values()];
  return list.filter((v) => !list.some((w) => v.clock.compare(w.clock) === 'lt')).sort((a, b) => compareStrings(a.id, b.id));
}

/** Hoare order: every version of `a` is below-or-equal some version of `b`. */
function covered<T>(a: readonly Version<T>[], b: readonly Version<T>[]): boolean {
  return a.every((v) => b.some((w) => v.id === w.id || v.clock.compare(w.clock) === 'lt'));
}

abstract class CausalBase<T, Self extends CausalBase<T, Self>> implements Lattice<Self, T[]> {
  abstract readonly type: typeof LatticeType.SingleKeyCausal | typeof LatticeType.MultiKeyCausal;
  protected constructor(readonly versions: readonly Version<T>[]) {}
  protected abstract make(versions: readonly Version<T>[]): Self;

  /** The merge of every maximal version's clock: what a new write must dominate. */
  get clock(): VectorClock {
    return this.versions.reduce((clock, version) => clock.merge(version.clock), VectorClock.EMPTY);
  }
  merge(other: Self): Self {
    if (covered(other.versions, this.versions)) return this as unknown as Self;
    if (covered(this.versions, other.versions)) return other;
    return this.make(maxima([...this.versions, ...other.versions]));
  }
  /** The concurrent values (one unless writes were concurrent), in canonical order. */
  reveal(): T[] {
    return this.versions.map((v) => v.value);
  }
  compare(other: Self): Ordering {
    const below = covered(this.versions, other.versions);
    const above = covered(other.versions, this.versions);
    if (below && above) return 'eq';
    return below ? 'lt' : above ? 'gt' : combine(true, true);
  }
  leq(other: Self): boolean {
    return covered(this.versions, other.versions);
  }
  equals(other: Self): boolean {
    return this.versions.length === other.versions.length && this.versions.every((v, i) => v.id === other.versions[i]?.id);
  }
  protected encodeVersions(withDeps: boolean): Uint8Array {
    return pack([
      this.type,
      this.versions.map((v) => {
        const fields: unknown[] = [v.clock.toFields(), v.value];
        if (withDeps) fields.push([...v.deps.entries()].sort(([a], [b]) => compareStrings(a, b)).map(([k, c]) => [k, c.toFields()]));
        return fields;
      }),
    ]);
  }
  abstract encode(): Uint8Array;

  protected static readVersions(fields: readonly unknown[], what: string, withDeps: boolean): Version<unknown>[] {
    if (fields.length !== 1) throw decodeError(`${what}: expected 1 field`);
    const versions: Version<unknown>[] = [];
    for (const raw of asArray(fields[0], `${what}.versions`)) {
      const parts = asArray(raw, `${what}.version`);
      if (parts.length !== (withDeps ? 3 : 2)) throw decodeError(`${what}: bad version shape`);
      const clock = VectorClock.fromFields(parts[0], `${what}.clock`);
      const deps = new Map<string, VectorClock>();
      if (withDeps) {
        let previous: string | undefined;
        for (const dep of asArray(parts[2], `${what}.deps`)) {
          const pair = asArray(dep, `${what}.deps`);
          if (pair.length !== 2) throw decodeError(`${what}: bad dependency`);
          const key = asString(pair[0], `${what}.deps`);
          if (previous !== undefined && compareStrings(previous, key) >= 0) throw decodeError(`${what}: dependencies not sorted`);
          previous = key;
          deps.set(key, VectorClock.fromFields(pair[1], `${what}.deps`));
        }
      }
      versions.push(makeVersion(clock, parts[1], deps));
    }
    const normal = maxima(versions);
    // A canonical encoding holds exactly its maxima, sorted: anything else is not one of ours.
    if (normal.length !== versions.length || normal.some((v, i) => v.id !== versions[i]?.id)) throw decodeError(`${what}: versions not canonical`);
    return versions;
  }
}

/**
 * A single key's causal value: concurrent writes kept side by side, revealed in canonical order.
 * Values are kept in canonical form (see `canonicalValue`); what the codec cannot carry faithfully
 * is refused with `LATTICE_DECODE`.
 *
 * @example
 * ```ts
 * const a = SingleKeyCausal.write(VectorClock.of({ n1: 1 }), 'x');
 * const b = SingleKeyCausal.write(VectorClock.of({ n2: 1 }), 'y');
 * a.merge(b).reveal(); // ['x', 'y'] (concurrent); a.merge(b).next('n1', 'z').reveal(): ['z']
 * ```
 */
export class SingleKeyCausal<T = unknown> extends CausalBase<T, SingleKeyCausal<T>> {
  readonly type = LatticeType.SingleKeyCausal;
  static readonly EMPTY = new SingleKeyCausal<never>([]);
  /** A value written under `clock`. */
  static write<T>(clock: VectorClock, value: T): SingleKeyCausal<T> {
    return new SingleKeyCausal([makeVersion(clock, value, new Map())]);
  }
  /** A write by `node` that supersedes everything this value holds. */
  next(node: string, value: T): SingleKeyCausal<T> {
    return SingleKeyCausal.write(this.clock.increment(node), value);
  }
  protected make(versions: readonly Version<T>[]): SingleKeyCausal<T> {
    return new SingleKeyCausal(versions);
  }
  encode(): Uint8Array {
    return this.encodeVersions(false);
  }
  static decodeFields(fields: readonly unknown[]): SingleKeyCausal {
    return new SingleKeyCausal(CausalBase.readVersions(fields, 'SingleKeyCausal', false));
  }
}

/**
 * A causal value that also records the versions of other keys it depends on (dependency keys are
 * well-formed Unicode strings, like every id).
 *
 * @example
 * ```ts
 * MultiKeyCausal.write(VectorClock.of({ n1: 1 }), 'x', { other: VectorClock.of({ n1: 1 }) }).reveal(); // ['x']
 * ```
 */
export class MultiKeyCausal<T = unknown> extends CausalBase<T, MultiKeyCausal<T>> {
  readonly type = LatticeType.MultiKeyCausal;
  static readonly EMPTY = new MultiKeyCausal<never>([]);
  static write<T>(clock: VectorClock, value: T, deps: Readonly<Record<string, VectorClock>> = {}): MultiKeyCausal<T> {
    return new MultiKeyCausal([makeVersion(clock, value, new Map(Object.entries(deps)))]);
  }
  next(node: string, value: T, deps: Readonly<Record<string, VectorClock>> = {}): MultiKeyCausal<T> {
    return MultiKeyCausal.write(this.clock.increment(node), value, deps);
  }
  /** The dependencies of every maximal version, merged per key: the causal cut a reader must see. */
  dependencies(): Map<string, VectorClock> {
    const out = new Map<string, VectorClock>();
    for (const version of this.versions) for (const [key, clock] of version.deps) out.set(key, (out.get(key) ?? VectorClock.EMPTY).merge(clock));
    return out;
  }
  protected make(versions: readonly Version<T>[]): MultiKeyCausal<T> {
    return new MultiKeyCausal(versions);
  }
  encode(): Uint8Array {
    return this.encodeVersions(true);
  }
  static decodeFields(fields: readonly unknown[]): MultiKeyCausal {
    return new MultiKeyCausal(CausalBase.readVersions(fields, 'MultiKeyCausal', true));
  }
}
