/**
 * Replicas must agree on what a value reads as, not only on its bytes (issue 9, finding 4):
 * `reveal()` is a pure function of the state, whatever the merge order, and the value a writer
 * sees is the value every reader decodes. Compared with {@link difference}, which tells `-0` from
 * `0`, holds `NaN` equal to itself, and checks prototypes and key order too.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { MultiKeyCausal, SingleKeyCausal } from './causal.js';
import { Counter } from './counter.js';
import { ErrorCode, isLfaasError } from './errors.js';
import type { AnyLattice } from './lattice.js';
import { Lww } from './lww.js';
import { MapLattice } from './map-lattice.js';
import { Priority } from './priority.js';
import { decodeLattice } from './registry.js';
import { GSet, OrderedSet } from './sets.js';
import { msgpackStringProblem } from './strings.js';
import {
  edgeReplicaArbitraries,
  edgeStringArbitrary,
  edgeValueArbitrary,
  illFormedValueArbitrary,
  loneSurrogateStringArbitrary,
  NAN_WITH_PAYLOAD,
  propertyRuns,
  unplainValueArbitrary,
} from './testing.js';
import { VectorClock } from './vector-clock.js';

const runs = propertyRuns(100);
const at = { wallMs: 1, logical: 0 };
const refused = expect.objectContaining({ code: ErrorCode.LATTICE_DECODE });

/**
 * Where two revealed values differ, or `undefined` when they read the same: numbers by
 * `Object.is`, bytes by type and content, arrays by length, holes and items, objects by prototype,
 * key order and values.
 */
function difference(a: unknown, b: unknown, path = '$'): string | undefined {
  if (typeof a !== typeof b) return `${path}: ${typeof a} vs ${typeof b}`;
  if (typeof a !== 'object' || a === null || b === null) return Object.is(a, b) ? undefined : `${path}: ${String(a)} vs ${String(b)}`;
  const x = a as object;
  const y = b as object;
  if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return `${path}: different prototypes`;
  if (x instanceof Uint8Array) return Buffer.compare(x, y as Uint8Array) === 0 ? undefined : `${path}: different bytes`;
  if (Array.isArray(x)) {
    const other = y as unknown[];
    if (x.length !== other.length) return `${path}: length ${x.length} vs ${other.length}`;
    for (let i = 0; i < x.length; i++) {
      if (i in x !== i in other) return `${path}[${i}]: a hole on one side`;
      const found = difference(x[i], other[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  const keys = Object.keys(x);
  const otherKeys = Object.keys(y);
  if (keys.join('\u0000') !== otherKeys.join('\u0000')) return `${path}: keys ${JSON.stringify(keys)} vs ${JSON.stringify(otherKeys)}`;
  for (const key of keys) {
    const found = difference((x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key], `${path}.${key}`);
    if (found !== undefined) return found;
  }
  return undefined;
}

type Outcome = { readonly value: unknown } | { readonly error: string };

/** What reading gives: a value, or the code of the typed error it throws (the same on every replica). */
function read(lattice: AnyLattice): Outcome {
  try {
    return { value: lattice.reveal() };
  } catch (error) {
    if (!isLfaasError(error)) throw error;
    return { error: error.code };
  }
}

function expectSameReading(actual: AnyLattice, expected: AnyLattice, what: string): void {
  const a = read(actual);
  const b = read(expected);
  if ('error' in a || 'error' in b) {
    expect(a, what).toEqual(b);
    return;
  }
  expect(difference(a.value, b.value), what).toBeUndefined();
}

function roundTrips(lattice: AnyLattice): AnyLattice[] {
  return [decodeLattice(lattice.encode()), decodeLattice(lattice.encode(), { verifyCanonical: false })];
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

/** Merges in one order: left to right, or as a balanced tree. */
function mergeAll(items: readonly AnyLattice[], tree: boolean): AnyLattice {
  if (!tree || items.length <= 2) return items.slice(1).reduce((acc: AnyLattice, next) => acc.merge(next) as AnyLattice, items[0] as AnyLattice);
  const middle = Math.ceil(items.length / 2);
  return mergeAll(items.slice(0, middle), true).merge(mergeAll(items.slice(middle), true)) as AnyLattice;
}

describe('reveal is a pure function of the state (property, edge generators)', () => {
  describe.each(Object.entries(edgeReplicaArbitraries))('%s', (_name, arbitrary) => {
    it('is identical across every merge order and across encode/decode', () => {
      fc.assert(
        fc.property(arbitrary, (replicas) => {
          for (const replica of replicas) for (const decoded of roundTrips(replica)) expectSameReading(decoded, replica, 'a replica read back from its encoding');
          const reference = mergeAll(replicas, false);
          const bytes = Buffer.from(reference.encode());
          for (const order of permutations(replicas)) {
            for (const tree of [false, true]) {
              const merged = mergeAll(order, tree);
              expect(merged.equals(reference)).toBe(true);
              expect(Buffer.from(merged.encode()).equals(bytes)).toBe(true);
              expectSameReading(merged, reference, 'another merge order');
              for (const decoded of roundTrips(merged)) expectSameReading(decoded, reference, 'another merge order, read back from its encoding');
            }
          }
        }),
        { numRuns: runs },
      );
    });
  });
});

describe('what cannot be carried faithfully is refused where it is built (property)', () => {
  const builders: ReadonlyArray<readonly [string, (value: unknown) => unknown]> = [
    ['Lww value', (value) => Lww.at(at, 'w', value)],
    ['GSet element', (value) => GSet.of(1, value)],
    ['OrderedSet element', (value) => OrderedSet.of(value)],
    ['GSet.add', (value) => GSet.of<unknown>('a').add(value)],
    ['Priority value', (value) => new Priority(1, value)],
    ['SingleKeyCausal value', (value) => SingleKeyCausal.write(VectorClock.of({ a: 1 }), value)],
    ['SingleKeyCausal.next', (value) => SingleKeyCausal.EMPTY.next('a', value as never)],
    ['MultiKeyCausal value', (value) => MultiKeyCausal.write(VectorClock.of({ a: 1 }), value)],
  ];
  it.each(builders)('%s: ill-formed strings at any depth, and values that are not plain', (_name, build) => {
    fc.assert(
      fc.property(fc.oneof(illFormedValueArbitrary, unplainValueArbitrary), (value) => {
        expect(() => build(value)).toThrow(refused);
      }),
      { numRuns: runs },
    );
  });
  it('and every edge value that is plain is accepted and reads the same after encode/decode', () => {
    fc.assert(
      fc.property(edgeValueArbitrary, (value) => {
        const lww = Lww.at(at, 'w', value);
        for (const decoded of roundTrips(lww)) expect(difference(decoded.reveal(), lww.reveal())).toBeUndefined();
      }),
      { numRuns: runs * 3 },
    );
  });

  const ids: ReadonlyArray<readonly [string, (id: string) => unknown]> = [
    ['Lww writer id', (id) => Lww.at(at, id, 1)],
    ['Counter.increment writer', (id) => Counter.ZERO.increment(id)],
    ['Counter.decrement writer', (id) => Counter.ZERO.decrement(id)],
    ['VectorClock.of node', (id) => VectorClock.of({ [id]: 1 })],
    ['VectorClock.increment node', (id) => VectorClock.EMPTY.increment(id)],
    ['MapLattice.of key', (id) => MapLattice.of({ [id]: Counter.ZERO })],
    ['MapLattice.set key', (id) => MapLattice.EMPTY.set(id, Counter.ZERO)],
    ['MultiKeyCausal dependency key', (id) => MultiKeyCausal.write(VectorClock.of({ a: 1 }), 1, { [id]: VectorClock.EMPTY })],
    ['an object key inside a value', (id) => Lww.at(at, 'w', { [id]: 1 })],
  ];
  it.each(ids)('%s: refused when not well-formed, accepted when it is', (_name, build) => {
    fc.assert(
      fc.property(loneSurrogateStringArbitrary, edgeStringArbitrary, (bad, good) => {
        expect(() => build(bad)).toThrow(refused);
        expect(() => build(good)).not.toThrow();
      }),
      { numRuns: runs },
    );
  });
});

describe('issue 9, finding 4: the reported cases', () => {
  it('a Counter past 2^53 reads the same whatever the merge order (the exact sum, refused as a number)', () => {
    const replicas = [Counter.ZERO.increment('a', 2 ** 53 - 1), Counter.ZERO.increment('b', 2), Counter.ZERO.increment('c', 1)];
    const readings = permutations(replicas).map((order) => read(mergeAll(order, false)));
    for (const reading of readings) expect(reading).toEqual(readings[0]);
    const merged = mergeAll(replicas, false) as Counter;
    expect(() => merged.reveal()).toThrow(refused);
    expect(merged.revealBigInt()).toBe(2n ** 53n + 2n);
    // Decrements that bring it back into range make it readable again, exactly.
    expect(merged.decrement('d', 4).reveal()).toBe(2 ** 53 - 2);
    const mixed = merged.decrement('d', 2 ** 53 - 1);
    expect(mixed.reveal()).toBe(3);
  });

  it('a Counter refuses a local step past ±(2^53 - 1), before the value is lost', () => {
    const full = Counter.ZERO.increment('a', 2 ** 53 - 1);
    expect(() => full.increment('b', 1)).toThrow(refused);
    expect(() => Counter.ZERO.decrement('a', 2 ** 53 - 1).decrement('b')).toThrow(refused);
    expect(full.decrement('b', 2 ** 53 - 1).increment('c', 5).reveal()).toBe(5);
    expect(() => full.increment('b', 0)).not.toThrow();
  });

  it('a nested -0 reads as 0 on the writer, as on every reader', () => {
    for (const value of [[-0], { a: { b: [-0] } }, [[[-0]]]]) {
      const written = Lww.at(at, 'w', value);
      for (const decoded of roundTrips(written)) expect(difference(decoded.reveal(), written.reveal())).toBeUndefined();
      expect(difference(written.reveal(), JSON.parse(JSON.stringify(value)))).toBeUndefined();
      const priority = new Priority(-0, value);
      expect(Object.is(priority.priority, 0)).toBe(true);
      expect(difference(decodeLattice(priority.encode()).reveal(), priority.reveal())).toBeUndefined();
      const set = GSet.of(value);
      expect(difference(decodeLattice(set.encode()).reveal(), set.reveal())).toBeUndefined();
    }
    expect(Object.is((Lww.at(at, 'w', [-0]).reveal() as number[])[0], 0)).toBe(true);
  });

  it('an OrderedSet with NaN reads in one order (a total order: NaN after every number)', () => {
    expect(difference(OrderedSet.of(Number.NaN, 0, 2, -1).reveal(), OrderedSet.of(2, -1, 0, Number.NaN).reveal())).toBeUndefined();
    expect(difference(OrderedSet.of(Number.NaN, 0, 2, -1).reveal(), [-1, 0, 2, Number.NaN])).toBeUndefined();
    const all = [Number.NaN, Number.POSITIVE_INFINITY, 1, -0, Number.NEGATIVE_INFINITY, 'a', 2 ** 53];
    const expected = [Number.NEGATIVE_INFINITY, 0, 1, 2 ** 53, Number.POSITIVE_INFINITY, Number.NaN, 'a'];
    for (const order of permutations(all.slice(0, 5)).slice(0, 40)) {
      expect(difference(OrderedSet.of(...order, ...all.slice(5)).reveal(), expected)).toBeUndefined();
    }
  });

  it('GSet membership: NaN is one element equal to itself, -0 is 0, whatever NaN bits arrive', () => {
    const set = GSet.of(Number.NaN, NAN_WITH_PAYLOAD, 0, -0);
    expect(set.size).toBe(2);
    expect(set.has(Number.NaN)).toBe(true);
    expect(set.has(NAN_WITH_PAYLOAD)).toBe(true);
    expect(set.has(-0)).toBe(true);
    const one = GSet.of(NAN_WITH_PAYLOAD).merge(GSet.of(Number.NaN));
    const other = GSet.of(Number.NaN).merge(GSet.of(NAN_WITH_PAYLOAD));
    expect(Buffer.from(one.encode()).equals(Buffer.from(other.encode()))).toBe(true);
    expect(Buffer.from(Lww.at(at, 'w', [NAN_WITH_PAYLOAD]).encode()).equals(Buffer.from(Lww.at(at, 'w', [Number.NaN]).encode()))).toBe(true);
  });

  it('lone surrogates are refused at construction, short or long, and never stored changed', () => {
    expect(() => Lww.at(at, 'w', `${'x'.repeat(100)}\ud800`)).toThrow(refused);
    expect(() => Lww.at(at, 'w', 'a\ud800')).toThrow(refused);
    expect(() => GSet.of('\ud800', '\udc00')).toThrow(refused);
    expect(() => OrderedSet.of('\udc00')).toThrow(refused);
    expect(() => Lww.at(at, '\ud800', 'v')).toThrow(refused);
    expect(() => new Priority(1, { k: ['\udfff'] })).toThrow(refused);
    // A well-formed pair is one character, and fine.
    expect(GSet.of('\ud800\udc00').reveal()).toEqual(['\u{10000}']);
  });

  it('decoding refuses strings that are not well-formed UTF-8, with or without the canonical check', () => {
    const packr = new Packr({ useRecords: false });
    const lww = (value: unknown, writer: unknown = 'w'): Buffer => Buffer.from(packr.pack([1, 5, 0, writer, value]));
    // A string of the payload with its bytes swapped for ill-formed ones of the same length (so the msgpack framing holds).
    const withBadString = (payload: Buffer, marker: string, replacement: number[]): Buffer => {
      const at = payload.indexOf(Buffer.from(marker));
      return Buffer.concat([payload.subarray(0, at), Buffer.from(replacement), payload.subarray(at + marker.length)]);
    };
    const cases = [
      withBadString(lww('Zab'), 'ab', [0xe2, 0x82]), // a three-byte sequence cut short
      withBadString(lww('abc'), 'abc', [0xed, 0xa0, 0x80]), // a lone surrogate, CESU-style
      withBadString(lww(`${'q'.repeat(97)}abc`), 'abc', [0xed, 0xa0, 0x80]), // the same in a long string
      withBadString(lww('v', 'abc'), 'abc', [0xc0, 0x80, 0x41]), // an overlong writer id
      withBadString(lww({ abc: 1 }), 'abc', [0xff, 0x41, 0x41]), // an invalid byte in an object key
      withBadString(lww(['xy']), 'xy', [0xc3, 0x28]), // a broken two-byte sequence inside an array
    ];
    for (const bytes of cases) {
      expect(msgpackStringProblem(bytes)).toMatch(/not well-formed UTF-8/);
      expect(() => decodeLattice(bytes)).toThrow(refused);
      expect(() => decodeLattice(bytes, { verifyCanonical: false })).toThrow(refused);
    }
    // Nested in a map: the inner payload is checked too.
    const inner = cases[1] as Buffer;
    const map = Buffer.from(packr.pack([8, [['k', inner]]]));
    expect(() => decodeLattice(map, { verifyCanonical: false })).toThrow(refused);
    // A map key that is not a string would come back as a string: refused too.
    const integerKey = Buffer.from([0x95, 0x01, 0x05, 0x00, 0xa1, 0x77, 0x81, 0x01, 0x02]); // [1, 5, 0, 'w', {1: 2}]
    expect(() => decodeLattice(integerKey, { verifyCanonical: false })).toThrow(refused);
    expect(() => decodeLattice(integerKey)).toThrow(refused);
  });
});

describe('the same class of bug elsewhere', () => {
  it('a value is the lattice own copy: mutating the argument afterwards changes nothing', () => {
    const value = { list: [1, 2], bytes: Uint8Array.of(1) };
    const lww = Lww.at(at, 'w', value);
    const set = GSet.of<unknown>(value);
    const bytes = Buffer.from(set.encode());
    value.list.push(3);
    value.bytes[0] = 9;
    expect(lww.reveal()).toEqual({ bytes: Uint8Array.of(1), list: [1, 2] });
    expect(Buffer.from(set.encode()).equals(bytes)).toBe(true);
    expect(() => decodeLattice(set.encode())).not.toThrow();
  });

  it('objects reveal with the plain prototype and only what the codec carries (no null prototype, symbols, extra array properties)', () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: 2 });
    const extra = Object.assign([1, 2], { note: 'dropped' });
    const withSymbol = { a: 1, [Symbol('s')]: 2 };
    const counted = { get n() { return 7; } };
    for (const value of [bare, extra, withSymbol, [bare], counted]) {
      const written = Lww.at(at, 'w', value);
      expect(difference(decodeLattice(written.encode()).reveal(), written.reveal())).toBeUndefined();
    }
    expect(Object.getPrototypeOf(Lww.at(at, 'w', bare).reveal())).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(Lww.at(at, 'w', counted).reveal(), 'n')).toEqual({ value: 7, writable: true, enumerable: true, configurable: true });
  });

  it('holes, undefined, Buffers, bigints and infinities read the same on the writer and on a reader', () => {
    // eslint-disable-next-line no-sparse-arrays
    const values: unknown[] = [[, 1], [undefined], { a: undefined }, Buffer.from([1, 2]), 2n ** 64n - 1n, -(2n ** 63n), [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY], { 10: 'a', 9: 'b', x: 'c' }];
    for (const value of values) {
      const written = Lww.at(at, 'w', value);
      expect(difference(decodeLattice(written.encode()).reveal(), written.reveal()), String(value)).toBeUndefined();
    }
    expect(Object.getPrototypeOf(Lww.at(at, 'w', Buffer.from([1])).reveal())).toBe(Uint8Array.prototype);
  });

  it('GSet.has compares in canonical form: a Date or a Map is never the empty object', () => {
    const set = GSet.of<unknown>({}, [undefined, 1]);
    expect(set.has(new Date(0))).toBe(false);
    expect(set.has(new Map())).toBe(false);
    expect(set.has('\ud800')).toBe(false);
    // eslint-disable-next-line no-sparse-arrays
    expect(set.has([, 1])).toBe(true);
    expect(set.has({})).toBe(true);
  });

  it('a Map key "__proto__" reads as a key, on the writer and on readers', () => {
    const map = MapLattice.EMPTY.set('__proto__', Counter.ZERO.increment('a', 2)).set('x', Counter.ZERO);
    const revealed = map.reveal();
    expect(Object.keys(revealed)).toEqual(['__proto__', 'x']);
    expect(Object.getPrototypeOf(revealed)).toBe(Object.prototype);
    expect(difference(decodeLattice(map.encode()).reveal(), revealed)).toBeUndefined();
  });

  it('MultiKeyCausal dependencies list in one order on the writer and on readers', () => {
    const written = MultiKeyCausal.write(VectorClock.of({ a: 1 }), 'x', { b: VectorClock.of({ n: 1 }), a: VectorClock.of({ n: 2 }) });
    const decoded = decodeLattice(written.encode()) as MultiKeyCausal;
    expect([...written.dependencies().keys()]).toEqual(['a', 'b']);
    expect([...decoded.dependencies().keys()]).toEqual([...written.dependencies().keys()]);
  });

  it('a VectorClock refuses to count past 2^53 - 1 (its encoding could not be read back)', () => {
    const full = VectorClock.of({ a: 2 ** 53 - 1 });
    expect(() => full.increment('a')).toThrow(refused);
    expect(full.increment('b').get('b')).toBe(1);
  });
});
