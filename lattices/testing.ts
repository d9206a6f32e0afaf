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
  fc.constantFrom<unknown>([-0], { n: -0 }, Number.NaN, [Number.NaN], Number.POSITIVE_INFINITY, [Number.NEGATIVE_INFINITY], 2 ** 53, [2 ** 53 + 2]),
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

// ---- edges: the values that made replicas read differently (issue 9, finding 4) ----

/** A NaN whose payload bits are not the canonical NaN's (msgpack would keep them). */
export const NAN_WITH_PAYLOAD: number = new Float64Array(new BigUint64Array([0x7ff8_0000_0000_0001n]).buffer)[0] as number;

/** Numbers at the edges: `-0`, NaNs, the infinities, the 2^53 boundaries, the extremes; and any double. */
export const edgeNumberArbitrary: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    -0, 0, Number.NaN, NAN_WITH_PAYLOAD, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY,
    2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53 - 1), -(2 ** 53), -(2 ** 53) - 2,
    Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE, 0.1, -1.5, 2 ** 31, -(2 ** 31) - 1, 2 ** 32,
  ),
  fc.double(),
);

/** Finite numbers at the edges (for `Max`, `Min` and priorities, which refuse the others). */
export const edgeFiniteArbitrary: fc.Arbitrary<number> = edgeNumberArbitrary.filter((n) => Number.isFinite(n));

/**
 * Well-formed strings at the edges: empty, multi-byte and astral characters, U+FFFD itself,
 * integer-like (JS enumerates those keys first), and long ones (msgpackr decodes strings of 16+ and
 * 64+ bytes along other paths).
 */
export const edgeStringArbitrary: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', 'a', 'b', 'é', '\u{1F600}', '\ufffd', '10', '9', '0', '-1', '__proto', 'x'.repeat(100), `${'y'.repeat(70)}\u{1F600}`),
  fc.string({ unit: 'binary', maxLength: 8 }),
);

/**
 * Strings that are not well-formed Unicode: a lone surrogate (high or low) anywhere, including at
 * the end of a long string (which msgpackr would store as U+FFFD) and a reversed pair.
 */
export const loneSurrogateStringArbitrary: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('\ud800', '\udc00', '\udfff', 'a\ud800', '\udc00\ud800', `${'x'.repeat(100)}\ud800`, `${'x'.repeat(20)}\udbff`),
  fc
    .tuple(edgeStringArbitrary, fc.integer({ min: 0xd800, max: 0xdfff }), fc.nat())
    .map(([base, unit, at]) => {
      const cut = at % (base.length + 1);
      return base.slice(0, cut) + String.fromCharCode(unit) + base.slice(cut);
    }),
).filter((s) => !(s as unknown as { isWellFormed(): boolean }).isWellFormed());

/** Object keys: integer-like and non-ASCII ones mixed with plain ones. */
const edgeKeyArbitrary = fc.constantFrom('a', 'b', 'z', 'é', '\u{1F600}', '10', '9', '0', '');

const edgeLeafArbitrary: fc.Arbitrary<unknown> = fc.oneof(
  edgeNumberArbitrary,
  edgeStringArbitrary,
  fc.constantFrom<unknown>(null, undefined, true, false, 0n, -1n, 2n ** 53n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n, -(2n ** 63n)),
  fc.uint8Array({ maxLength: 4 }),
  fc.uint8Array({ maxLength: 4 }).map((bytes) => Buffer.from(bytes)),
);

/**
 * Plain values with the edges at any depth: `-0`, NaNs, infinities, 2^53 boundaries, 64-bit
 * bigints, bytes (also `Buffer`s), `undefined`, sparse arrays, objects with integer-like keys, with
 * keys in any order, and with a `null` prototype. Every one is accepted by `canonicalValue`.
 */
export const edgeValueArbitrary: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    edgeLeafArbitrary,
    fc.array(tie('value'), { maxLength: 3 }),
    fc.sparseArray(tie('value'), { maxLength: 3 }),
    fc.dictionary(edgeKeyArbitrary, tie('value'), { maxKeys: 3 }),
    fc.dictionary(edgeKeyArbitrary, tie('value'), { maxKeys: 2 }).map((entries) => Object.assign(Object.create(null) as Record<string, unknown>, entries)),
  ),
})).value;

/** Plain values that hold a string that is not well-formed Unicode somewhere: as a value or as a key, at any depth. */
export const illFormedValueArbitrary: fc.Arbitrary<unknown> = fc
  .tuple(loneSurrogateStringArbitrary, edgeValueArbitrary, fc.nat({ max: 5 }), fc.boolean())
  .map(([bad, other, depth, asKey]) => {
    let value: unknown = asKey ? { [bad]: other } : bad;
    for (let i = 0; i < depth; i++) value = i % 2 === 0 ? [other, value] : { a: other, b: value };
    return value;
  });

/** Values that are not plain values at all: the codec could not carry them back unchanged. */
export const unplainValueArbitrary: fc.Arbitrary<unknown> = fc.constantFrom<unknown>(
  new Date(0), new Map(), new Set(), new Float64Array(1), new ArrayBuffer(1), new (class Point {})(), () => 1, Symbol('s'),
  2n ** 64n, -(2n ** 63n) - 1n, [new Date(0)], { a: new Map() }, JSON.parse('{"__proto__":1}'),
);

/** Writer, node and map-key ids: well-formed, with non-ASCII and integer-like ones. */
const edgeIdArbitrary = fc.constantFrom('a', 'b', 'é', '\u{1F600}', '10', '9', '__proto__');

const replicas = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.array(arbitrary, { minLength: 1, maxLength: 4 });

/** Counter replicas whose per-writer totals sit near 2^53, so merges can take the value past it. */
const edgeCounterArbitrary = fc
  .array(fc.tuple(edgeIdArbitrary, fc.constantFrom(1, 2, 3, 2 ** 52, 2 ** 53 - 2, 2 ** 53 - 1), fc.boolean()), { maxLength: 4 })
  .map((steps) =>
    steps.reduce((counter, [writer, amount, up]) => {
      try {
        return up ? counter.increment(writer, amount) : counter.decrement(writer, amount);
      } catch {
        return counter; // a step past 2^53 - 1 is refused (tested on its own); the replica goes on without it
      }
    }, Counter.ZERO),
  );
const edgeVectorClockArbitrary = fc
  .dictionary(edgeIdArbitrary, fc.constantFrom(0, 1, 2, 2 ** 53 - 1), { maxKeys: 3 })
  .map((entries) => VectorClock.of(entries));
const edgeLwwArbitrary = fc
  .record({ wallMs: fc.integer({ min: 0, max: 2 }), logical: fc.integer({ min: 0, max: 1 }), writer: edgeIdArbitrary, value: edgeValueArbitrary })
  .map((r) => new Lww(r.wallMs, r.logical, r.writer, r.value));

/**
 * For every lattice type, several replicas of it built from the edge values: the reveal property
 * (`reveal.test.ts`) merges them in every order and through encode/decode.
 */
export const edgeReplicaArbitraries: Readonly<Record<string, fc.Arbitrary<AnyLattice[]>>> = {
  Lww: replicas(edgeLwwArbitrary),
  GSet: replicas(fc.array(edgeValueArbitrary, { maxLength: 4 }).map((items) => GSet.of(...items))),
  OrderedSet: replicas(fc.array(fc.oneof(edgeNumberArbitrary, edgeStringArbitrary, edgeValueArbitrary), { maxLength: 5 }).map((items) => OrderedSet.of(...items))),
  Max: replicas(edgeFiniteArbitrary.map((n) => new Max(n))),
  Min: replicas(edgeFiniteArbitrary.map((n) => new Min(n))),
  Bool: replicas(boolArbitrary),
  Priority: replicas(fc.tuple(fc.oneof(edgeFiniteArbitrary, fc.constantFrom(0, -0, 1)), edgeValueArbitrary).map(([priority, value]) => new Priority(priority, value))),
  VectorClock: replicas(edgeVectorClockArbitrary),
  Counter: replicas(edgeCounterArbitrary),
  SingleKeyCausal: replicas(
    versions(fc.tuple(edgeVectorClockArbitrary, edgeValueArbitrary)).map((vs) =>
      vs.reduce((acc, [clock, value]) => acc.merge(SingleKeyCausal.write(clock, value)), SingleKeyCausal.EMPTY as SingleKeyCausal<unknown>),
    ),
  ),
  MultiKeyCausal: replicas(
    versions(fc.tuple(edgeVectorClockArbitrary, edgeValueArbitrary, fc.dictionary(edgeIdArbitrary, edgeVectorClockArbitrary, { maxKeys: 2 }))).map((vs) =>
      vs.reduce((acc, [clock, value, deps]) => acc.merge(MultiKeyCausal.write(clock, value, deps)), MultiKeyCausal.EMPTY as MultiKeyCausal<unknown>),
    ),
  ),
  'Map<Counter>': replicas(fc.dictionary(edgeIdArbitrary, edgeCounterArbitrary, { maxKeys: 3 }).map((entries) => MapLattice.of(entries))),
  'Map<mixed>': replicas(
    fc
      .tuple(fc.option(edgeCounterArbitrary), fc.option(edgeLwwArbitrary), fc.option(fc.array(edgeNumberArbitrary, { maxLength: 3 })), fc.option(edgeLwwArbitrary))
      .map(([counter, lww, numbers, proto]) => {
        let map = MapLattice.EMPTY;
        if (counter !== null) map = map.set('c', counter);
        if (lww !== null) map = map.set('l', lww);
        if (numbers !== null) map = map.set('s', OrderedSet.of(...numbers));
        if (proto !== null) map = map.set('__proto__', proto);
        return map;
      }),
  ),
};
