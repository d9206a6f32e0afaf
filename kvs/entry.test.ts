import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Counter, ErrorCode, GSet, LatticeType, LfaasError, Max, compareTimestamps } from '../lattices/index.js';
import type { AnyLattice, Timestamp } from '../lattices/index.js';
import { counterArbitrary, gsetArbitrary, lwwArbitrary, maxArbitrary, propertyRuns } from '../lattices/testing.js';
import { FIRST_GENERATION, decodeEntry, encodeEntry, entriesEqual, entryFromTuple, entryToTuple, mergeEntries } from './entry.js';
import type { Entry } from './entry.js';

const runs = propertyRuns(150);

/** Few generations, so ties (the interesting case) are common. */
const generationArbitrary: fc.Arbitrary<Timestamp> = fc.oneof(
  fc.constant(FIRST_GENERATION),
  fc.record({ wallMs: fc.integer({ min: 0, max: 2 }), logical: fc.integer({ min: 0, max: 1 }) }),
);
/** Four types (Lww 1, GSet 2, Max 4, Counter 10), so type resolution within a generation is exercised. */
const valueArbitrary: fc.Arbitrary<AnyLattice | undefined> = fc.oneof(
  fc.constant(undefined),
  lwwArbitrary,
  gsetArbitrary,
  maxArbitrary,
  counterArbitrary,
);
const entryArbitrary: fc.Arbitrary<Entry> = fc.record({ generation: generationArbitrary, value: valueArbitrary });

const equal = (a: Entry, b: Entry): void => {
  expect(entriesEqual(a, b), `${describeEntry(a)} vs ${describeEntry(b)}`).toBe(true);
};
function describeEntry(entry: Entry): string {
  const { wallMs, logical } = entry.generation;
  return `gen(${wallMs},${logical}) ${entry.value === undefined ? 'tombstone' : `type ${entry.value.type} ${JSON.stringify(entry.value.reveal(), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))}`}`;
}

/** Every code the lattice decoders may throw. */
function expectLatticeError(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(LfaasError);
    expect((error as LfaasError).code.startsWith('LATTICE_'), String((error as LfaasError).code)).toBe(true);
    return;
  }
}

describe('mergeEntries is a lattice', () => {
  it('is associative', () => {
    fc.assert(
      fc.property(entryArbitrary, entryArbitrary, entryArbitrary, (a, b, c) => equal(mergeEntries(mergeEntries(a, b), c), mergeEntries(a, mergeEntries(b, c)))),
      { numRuns: runs },
    );
  });
  it('is commutative', () => {
    fc.assert(fc.property(entryArbitrary, entryArbitrary, (a, b) => equal(mergeEntries(a, b), mergeEntries(b, a))), { numRuns: runs });
  });
  it('is idempotent', () => {
    fc.assert(
      fc.property(entryArbitrary, entryArbitrary, (a, b) => {
        equal(mergeEntries(a, a), a);
        const ab = mergeEntries(a, b);
        equal(mergeEntries(ab, b), ab);
        equal(mergeEntries(ab, a), ab);
      }),
      { numRuns: runs },
    );
  });
  it('converges for any order of a batch of deliveries', () => {
    fc.assert(
      fc.property(
        fc.array(entryArbitrary, { minLength: 1, maxLength: 6 }).chain((entries) => fc.tuple(fc.constant(entries), fc.shuffledSubarray(entries, { minLength: entries.length, maxLength: entries.length }))),
        ([entries, shuffled]) => {
          equal(shuffled.reduce(mergeEntries), entries.reduce(mergeEntries));
        },
      ),
      { numRuns: runs },
    );
  });
  it('the merge never goes back to an earlier generation', () => {
    fc.assert(
      fc.property(entryArbitrary, entryArbitrary, (a, b) => {
        const m = mergeEntries(a, b);
        expect(compareTimestamps(m.generation, a.generation)).toBeGreaterThanOrEqual(0);
        expect(compareTimestamps(m.generation, b.generation)).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: runs },
    );
  });
});

describe('mergeEntries rules', () => {
  const g1: Timestamp = { wallMs: 100, logical: 0 };
  const g2: Timestamp = { wallMs: 100, logical: 1 };

  it('a later generation wins, whatever either side holds', () => {
    const old: Entry = { generation: g1, value: new Max(1000) };
    const deleted: Entry = { generation: g2, value: undefined };
    expect(mergeEntries(old, deleted)).toBe(deleted);
    expect(mergeEntries(deleted, old)).toBe(deleted);
    const newer: Entry = { generation: g2, value: new Max(1) };
    expect(mergeEntries(old, newer)).toBe(newer);
    expect(mergeEntries(newer, old)).toBe(newer);
    // The first generation loses to any delete.
    const first: Entry = { generation: FIRST_GENERATION, value: Counter.ZERO.increment('a', 5) };
    expect(mergeEntries(first, { generation: { wallMs: 0, logical: 1 }, value: undefined }).value).toBeUndefined();
  });

  it('a tombstone is bottom within its generation', () => {
    const tombstone: Entry = { generation: g1, value: undefined };
    const value: Entry = { generation: g1, value: GSet.of('x') };
    expect(mergeEntries(tombstone, value)).toBe(value);
    expect(mergeEntries(value, tombstone)).toBe(value);
    equal(mergeEntries(tombstone, tombstone), tombstone);
  });

  it('within a generation, values of one type merge', () => {
    const a: Entry = { generation: g1, value: GSet.of('x') };
    const b: Entry = { generation: g1, value: GSet.of('y') };
    const m = mergeEntries(a, b);
    expect(m.generation).toEqual(g1);
    expect(m.value!.equals(GSet.of('x', 'y'))).toBe(true);
    // A side that already dominates is returned as is.
    const big: Entry = { generation: g1, value: new Max(9) };
    expect(mergeEntries(big, { generation: g1, value: new Max(3) })).toBe(big);
  });

  it('two types in one generation resolve to the larger type tag, in either order', () => {
    fc.assert(
      fc.property(generationArbitrary, lwwArbitrary, gsetArbitrary, maxArbitrary, counterArbitrary, (generation, lww, gset, max, counter) => {
        const values: AnyLattice[] = [lww, gset, max, counter];
        for (const x of values) {
          for (const y of values) {
            if (x.type === y.type) continue;
            const winner = x.type > y.type ? x : y;
            const m = mergeEntries({ generation, value: x }, { generation, value: y });
            expect(m.value).toBe(winner);
          }
        }
        expect(LatticeType.Counter).toBeGreaterThan(LatticeType.Max);
      }),
      { numRuns: runs },
    );
  });
});

describe('encodeEntry / decodeEntry', () => {
  it('round-trips every entry', () => {
    fc.assert(
      fc.property(
        fc.record({
          generation: fc.oneof(generationArbitrary, fc.record({ wallMs: fc.nat({ max: Number.MAX_SAFE_INTEGER }), logical: fc.nat({ max: 2 ** 32 - 1 }) })),
          value: valueArbitrary,
        }),
        (entry) => {
          const bytes = encodeEntry(entry);
          const decoded = decodeEntry(bytes);
          equal(decoded, entry);
          expect(decoded.generation).toEqual(entry.generation);
          // Deterministic: the same state gives the same bytes.
          expect(Buffer.from(encodeEntry(decoded)).equals(Buffer.from(bytes))).toBe(true);
        },
      ),
      { numRuns: runs },
    );
  });

  it('refuses random bytes with a LATTICE_ error only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => expectLatticeError(() => decodeEntry(bytes))),
      { numRuns: 200 },
    );
  });

  it('refuses truncated and corrupted encodings with a LATTICE_ error only', () => {
    fc.assert(
      fc.property(entryArbitrary, fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 }), (entry, cut, at, byte) => {
        const bytes = encodeEntry(entry);
        const truncated = bytes.subarray(0, cut % bytes.length);
        expect(() => decodeEntry(truncated)).toThrow(LfaasError);
        expectLatticeError(() => decodeEntry(truncated));
        const corrupted = Uint8Array.from(bytes);
        corrupted[at % corrupted.length] = byte;
        expectLatticeError(() => decodeEntry(corrupted));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses well-formed msgpack of the wrong shape with LATTICE_DECODE', () => {
    const good = encodeEntry({ generation: { wallMs: 1, logical: 2 }, value: new Max(3) });
    expect(good[0]).toBe(0x93); // fixarray of 3
    const shapes: Uint8Array[] = [
      Uint8Array.of(0x92, 0x01, 0x02), // [1, 2]
      Uint8Array.of(0x93, 0xff, 0x00, 0xc0), // [-1, 0, null]
      Uint8Array.of(0x93, 0x00, 0x00, 0x01), // payload is a number
      Uint8Array.of(0x93, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x00, 0xc0), // wallMs 1.5
      Uint8Array.of(0xc0), // null
    ];
    for (const bytes of shapes) expect(() => decodeEntry(bytes)).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
  });
});

describe('entryToTuple / entryFromTuple', () => {
  it('round-trips every entry', () => {
    fc.assert(
      fc.property(entryArbitrary, fc.string({ maxLength: 8 }), (entry, key) => {
        const tuple = entryToTuple(key, entry);
        expect(tuple.key).toBe(key);
        expect(tuple.deleted === true).toBe(entry.value === undefined);
        if (compareTimestamps(entry.generation, FIRST_GENERATION) === 0) expect(tuple.generation).toBeUndefined();
        const back = entryFromTuple(tuple);
        equal(back, entry);
        expect(back.generation).toEqual(entry.generation);
      }),
      { numRuns: runs },
    );
  });

  it('refuses a tuple whose latticeType contradicts its payload, with LATTICE_DECODE', () => {
    const tuple = entryToTuple('k', { generation: { wallMs: 5, logical: 0 }, value: Counter.ZERO.increment('a', 1) });
    expect(tuple.latticeType).toBe(LatticeType.Counter);
    expect(() => entryFromTuple({ ...tuple, latticeType: LatticeType.Max })).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
    expect(() => entryFromTuple({ ...tuple, latticeType: 99 })).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
    // An undeclared type (0) takes the payload's.
    expect(entryFromTuple({ ...tuple, latticeType: 0 }).value!.type).toBe(LatticeType.Counter);
    fc.assert(
      fc.property(valueArbitrary, fc.integer({ min: 1, max: 12 }), (value, declared) => {
        if (value === undefined) return;
        const t = { ...entryToTuple('k', { generation: FIRST_GENERATION, value }), latticeType: declared };
        if (declared === value.type) expect(entryFromTuple(t).value!.equals(value as never)).toBe(true);
        else expect(() => entryFromTuple(t)).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
      }),
      { numRuns: runs },
    );
  });

  it('a deleted tuple is a tombstone; a missing payload is refused with a LATTICE_ error', () => {
    const tombstone = entryFromTuple({ key: 'k', deleted: true, generation: { wallMs: 3, logical: 1 } });
    expect(tombstone).toEqual({ generation: { wallMs: 3, logical: 1 }, value: undefined });
    expect(() => entryFromTuple({ key: 'k' })).toThrow(LfaasError);
    expectLatticeError(() => entryFromTuple({ key: 'k' }));
  });
});
