/**
 * Test support: fast-check arbitraries for every lattice type, shared by the law tests here and by
 * other folders' tests (`lattices/testing.js`).
 */
import fc from 'fast-check';
import { Counter } from './counter.js';
import type { AnyLattice } from './lattice.js';
import { Lww } from './lww.js';
import { MapLattice } from './map-lattice.js';
import { Priority } from './priority.js';
import { Bool, Max, Min } from './scalars.js';
import { GSet, OrderedSet } from './sets.js';
import { MultiKeyCausal, SingleKeyCausal } from './causal.js';
import { VectorClock } from './vector-clock.js';

const writer = fc.constantFrom('a', 'b', 'c', 'd');
/**
 * Plain values with many collisions: equal objects built with different key orders, `-0` beside
 * `0`, bigints, bytes, null and nested arrays, so identity and encoding bugs show up.
 */
export const plainValueArbitrary: fc.Arbitrary<unknown> = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom('x', 'y', 'z', '', -0, 0.5, null, true, 7n, 2n ** 63n),
  fc.constantFrom({ k: 1 }, { k: 2 }, [1, 2], [[1], { a: [] }]),
  fc.constantFrom<unknown>({ a: 1, b: 2 }, { b: 2, a: 1 }, { z: { y: 1, x: 2 } }, { z: { x: 2, y: 1 } }, [{ q: 1, p: 0 }], [{ p: 0, q: 1 }]),
  fc.constantFrom<unknown>(Uint8Array.of(1, 2), Uint8Array.of(), undefined, { a: undefined }, 'é', '\u{1F600}', -(2n ** 63n), 1e300),
);
const smallValue = plainValueArbitrary;
const finite = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.double({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 }));

export const maxArbitrary = finite.map((n) => new Max(n));
export const minArbitrary = finite.map((n) => new Min(n));
export const boolArbitrary = fc.boolean().map((b) => Bool.of(b));
/** Few distinct timestamps, so ties on time (and on time and writer) are common. */
export const lwwArbitrary = fc
  .record({ wallMs: fc.integer({ min: 0, max: 3 }), logical: fc.integer({ min: 0, max: 2 }), writer, value: smallValue })
  .map((r) => new Lww(r.wallMs, r.logical, r.writer, r.value));
export const priorityArbitrary = fc.record({ priority: fc.integer({ min: 0, max: 3 }), value: smallValue }).map((r) => new Priority(r.priority, r.value));
export const gsetArbitrary = fc.array(smallValue, { maxLength: 5 }).map((items) => GSet.of(...items));
export const orderedSetArbitrary = fc.array(smallValue, { maxLength: 5 }).map((items) => OrderedSet.of(...items));
export const vectorClockArbitrary = fc.dictionary(writer, fc.integer({ min: 0, max: 3 })).map((entries) => VectorClock.of(entries));
export const counterArbitrary = fc
  .array(fc.tuple(writer, fc.nat({ max: 5 }), fc.boolean()), { maxLength: 6 })
  .map((ops) => ops.reduce((c, [w, n, up]) => (up ? c.increment(w, n) : c.decrement(w, n)), Counter.ZERO));
const versions = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.array(arb, { minLength: 0, maxLength: 3 });
export const singleKeyCausalArbitrary = versions(fc.tuple(vectorClockArbitrary, smallValue)).map((vs) =>
  vs.reduce((acc, [clock, value]) => acc.merge(SingleKeyCausal.write(clock, value)), SingleKeyCausal.EMPTY as SingleKeyCausal<unknown>),
);
const depsArbitrary = fc.dictionary(fc.constantFrom('k1', 'k2'), vectorClockArbitrary, { maxKeys: 2 });
export const multiKeyCausalArbitrary = versions(fc.tuple(vectorClockArbitrary, smallValue, depsArbitrary)).map((vs) =>
  vs.reduce((acc, [clock, value, deps]) => acc.merge(MultiKeyCausal.write(clock, value, deps)), MultiKeyCausal.EMPTY as MultiKeyCausal<unknown>),
);
/** Maps of counters, and maps of maps of counters: the nested case the issue names. */
export const mapOfCountersArbitrary = fc.dictionary(fc.constantFrom('p', 'q', 'r'), counterArbitrary, { maxKeys: 3 }).map((e) => MapLattice.of(e));
export const nestedMapArbitrary = fc.dictionary(fc.constantFrom('m1', 'm2'), mapOfCountersArbitrary, { maxKeys: 2 }).map((e) => MapLattice.of(e));

/** Maps whose keys hold different types (one type per key, so merges never mismatch). */
export const mixedMapArbitrary = fc
  .record({ c: counterArbitrary, l: lwwArbitrary, s: gsetArbitrary, m: mapOfCountersArbitrary }, { requiredKeys: [] })
  .map((e) => MapLattice.of(e as Record<string, AnyLattice>));

/** Every type by name, each generator giving values of one type. */
export const latticeArbitraries: Readonly<Record<string, fc.Arbitrary<AnyLattice>>> = {
  Lww: lwwArbitrary,
  GSet: gsetArbitrary,
  OrderedSet: orderedSetArbitrary,
  Max: maxArbitrary,
  Min: minArbitrary,
  Bool: boolArbitrary,
  Priority: priorityArbitrary,
  VectorClock: vectorClockArbitrary,
  Counter: counterArbitrary,
  SingleKeyCausal: singleKeyCausalArbitrary,
  MultiKeyCausal: multiKeyCausalArbitrary,
  'Map<Counter>': mapOfCountersArbitrary,
  'Map<Map<Counter>>': nestedMapArbitrary,
  'Map<mixed>': mixedMapArbitrary,
};

/** A lattice of any type. */
export const anyLatticeArbitrary: fc.Arbitrary<AnyLattice> = fc.oneof(...Object.values(latticeArbitraries));

/** Two values of one type (any type), for laws that merge or compare. */
export function sameTypePair(arbitraries: Readonly<Record<string, fc.Arbitrary<AnyLattice>>> = latticeArbitraries): fc.Arbitrary<[AnyLattice, AnyLattice]> {
  return fc.oneof(...Object.values(arbitraries).map((arbitrary) => fc.tuple(arbitrary, arbitrary)));
}

/** Three values of one type (any type), for associativity. */
export function sameTypeTriple(
  arbitraries: Readonly<Record<string, fc.Arbitrary<AnyLattice>>> = latticeArbitraries,
): fc.Arbitrary<[AnyLattice, AnyLattice, AnyLattice]> {
  return fc.oneof(...Object.values(arbitraries).map((arbitrary) => fc.tuple(arbitrary, arbitrary, arbitrary)));
}

/** fast-check runs per property: quick by default, 20x with LFAAS_LONG=1. */
export function propertyRuns(quick: number): number {
  return process.env['LFAAS_LONG'] === '1' ? quick * 20 : quick;
}
