import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { Counter } from './counter.js';
import { ErrorCode, isLfaasError } from './errors.js';
import { MapLattice } from './map-lattice.js';
import { decodeLattice, MAX_NESTING_DEPTH } from './registry.js';
import { anyLatticeArbitrary, propertyRuns } from './testing.js';

const runs = propertyRuns(200);

/**
 * Decoding either fails with a LATTICE_* error or yields a value whose encoding is exactly the
 * input: only canonical encodings are accepted, so a value can never come back different.
 */
function decodesExactlyOrRefuses(bytes: Uint8Array): void {
  let value;
  try {
    value = decodeLattice(bytes);
  } catch (error) {
    expect(isLfaasError(error)).toBe(true);
    expect(String((error as { code: string }).code)).toMatch(/^LATTICE_/);
    return;
  }
  expect(Buffer.from(value.encode()).equals(Buffer.from(bytes))).toBe(true);
  expect(decodeLattice(value.encode()).equals(value)).toBe(true);
}

describe('decodeLattice on bad input', () => {
  it('random bytes: a typed error or a faithful value, never a crash', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), decodesExactlyOrRefuses), { numRuns: runs * 5 });
  });

  it('truncated and bit-flipped encodings: a typed error or a faithful value', () => {
    fc.assert(
      fc.property(anyLatticeArbitrary, fc.nat(), fc.nat(), (lattice, cut, flip) => {
        const bytes = lattice.encode();
        decodesExactlyOrRefuses(bytes.subarray(0, cut % bytes.length));
        const flipped = Uint8Array.from(bytes);
        flipped[flip % flipped.length]! ^= 1 << flip % 8;
        decodesExactlyOrRefuses(flipped);
      }),
      { numRuns: runs },
    );
  });

  it('well-formed msgpack with a real tag and random fields: a typed error or an exact value', () => {
    const leaf = fc.oneof(
      fc.integer({ min: -3, max: 3 }),
      fc.constantFrom(0.5, -0, 2 ** 53, Number.NaN, 'a', 'b', '', true, null, 5n),
      fc.constant(Uint8Array.of(0x92, 0x04, 0x01)),
    );
    const field = fc.letrec((tie) => ({
      node: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(fc.constantFrom('a', 'b'), tie('node'), { maxKeys: 2 })),
    })).node;
    const packr = new Packr({ useRecords: false, int64AsType: 'bigint' });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 13 }), fc.array(field, { maxLength: 5 }), (tag, fields) => {
        let bytes: Uint8Array;
        try {
          bytes = packr.pack([tag, ...fields]);
        } catch {
          return; // not packable at all: nothing to decode
        }
        decodesExactlyOrRefuses(bytes);
      }),
      { numRuns: runs * 2 },
    );
  });

  it('well-formed msgpack of the wrong shape is refused', () => {
    const packr = new Packr({ useRecords: false });
    const refuse = (value: unknown, code: string = ErrorCode.LATTICE_DECODE): void => {
      expect(() => decodeLattice(packr.pack(value))).toThrow(expect.objectContaining({ code }));
    };
    refuse([99, 1], ErrorCode.LATTICE_UNKNOWN_TYPE);
    refuse('not an array');
    refuse([10, [['a', -1]], []]); // negative counter
    refuse([10, [['a', 1.5]], []]); // fractional counter
    refuse([10, [['b', 1], ['a', 1]], []]); // unsorted writers
    refuse([1, 5, 0, 'w']); // Lww missing its value
    refuse([4, Number.NaN]);
    refuse([2, [2, 1]]); // unsorted set
    refuse([1, 5, 0, 7, 'v']); // Lww writer not a string
    refuse([1, -5, 0, 'w', 'v']); // negative time
    refuse([1, 5, 0.5, 'w', 'v']); // fractional logical counter
    refuse([9, [['a', 2]], 'extra']); // extra field
    refuse([9, [['a', 0]]]); // zero entry (not canonical)
    refuse([6, 1]); // Bool not a boolean
    refuse([7, 'high', 'v']); // Priority not a number
    refuse([8, [['k', 'not bytes']]]); // map value not an encoding
    refuse([8, [['k', Uint8Array.of(0xc1)]]]); // map value malformed msgpack
    refuse([3.5, 1], ErrorCode.LATTICE_UNKNOWN_TYPE);
    refuse([1, 5, 0, 'w', new Date(0)]); // not a plain value
    refuse([1, 5, 0, 'w', { b: 1, a: 2 }]); // keys out of order: not canonical
  });

  it('refuses a non-canonical encoding of a valid value', () => {
    // [1, 5, 0, 'w', 1] with the last 1 written as uint16 instead of a fixint.
    const canonical = new Packr({ useRecords: false }).pack([1, 5, 0, 'w', 1]);
    expect(decodeLattice(canonical).reveal()).toBe(1);
    const longer = Buffer.concat([canonical.subarray(0, canonical.length - 1), Buffer.from([0xcd, 0x00, 0x01])]);
    expect(() => decodeLattice(longer)).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
    // Trailing garbage after a valid value.
    expect(() => decodeLattice(Buffer.concat([canonical, Buffer.from([0])]))).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
  });

  it('refuses values nested beyond the value depth limit', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    const bytes = new Packr({ useRecords: false }).pack([1, 5, 0, 'w', deep]);
    expect(() => decodeLattice(bytes)).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
  });

  it('refuses maps nested beyond the depth limit', () => {
    let map = MapLattice.of({ c: Counter.ZERO.increment('a') });
    for (let depth = 0; depth < MAX_NESTING_DEPTH + 2; depth++) map = MapLattice.of({ m: map });
    expect(() => decodeLattice(map.encode())).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
  });

  it('merging different types inside a map is a typed error', () => {
    const a = MapLattice.of({ k: Counter.ZERO.increment('a') });
    const b = MapLattice.of({ k: MapLattice.EMPTY });
    expect(() => a.merge(b)).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_TYPE_MISMATCH }));
  });
});

describe('decodeLattice verifyCanonical', () => {
  // Max(5) is [4, 5] in msgpack: 92 04 05. The same value with 5 as a uint16 (cd 00 05) is valid
  // msgpack, decodes to an equal value, but is not the canonical encoding.
  const canonical = Uint8Array.of(0x92, 0x04, 0x05);
  const widened = Uint8Array.of(0x92, 0x04, 0xcd, 0x00, 0x05);

  it('refuses a non-canonical encoding by default, with LATTICE_DECODE', () => {
    expect(decodeLattice(canonical).reveal()).toBe(5);
    expect(() => decodeLattice(widened)).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
  });

  it('accepts it when the reader skips the check, still validating the fields', () => {
    const value = decodeLattice(widened, { verifyCanonical: false });
    expect(value.reveal()).toBe(5);
    expect([...value.encode()]).toEqual([...canonical]);
    expect(() => decodeLattice(Uint8Array.of(0x92, 0x04, 0xa1, 0x78), { verifyCanonical: false })).toThrow(expect.objectContaining({ code: expect.stringMatching(/^LATTICE_/) }));
  });
});
