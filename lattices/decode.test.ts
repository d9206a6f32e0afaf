import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { Counter } from './counter.js';
import { ErrorCode, isLfaasError } from './errors.js';
import { MapLattice } from './map-lattice.js';
import { decodeLattice, MAX_NESTING_DEPTH } from './registry.js';
import { anyLatticeArbitrary, propertyRuns } from './testing.js';

const runs = propertyRuns(500);

/**
 * Decoding either fails with a LATTICE_* error or yields a valid value: one whose canonical
 * encoding decodes to an equal value. (The input itself need not be canonical: a user value inside
 * an Lww may arrive in a longer msgpack form than ours, e.g. a small int as uint16.)
 */
function decodesFaithfullyOrRefuses(bytes: Uint8Array): void {
  let value;
  try {
    value = decodeLattice(bytes);
  } catch (error) {
    expect(isLfaasError(error)).toBe(true);
    expect(String((error as { code: string }).code)).toMatch(/^LATTICE_/);
    return;
  }
  const canonical = value.encode();
  const again = decodeLattice(canonical);
  expect(again.equals(value)).toBe(true);
  expect(Buffer.from(again.encode()).equals(Buffer.from(canonical))).toBe(true);
}

describe('decodeLattice on bad input', () => {
  it('random bytes: a typed error or a faithful value, never a crash', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), decodesFaithfullyOrRefuses), { numRuns: runs * 4 });
  });

  it('truncated and bit-flipped encodings: a typed error or a faithful value', () => {
    fc.assert(
      fc.property(anyLatticeArbitrary, fc.nat(), fc.nat(), (lattice, cut, flip) => {
        const bytes = lattice.encode();
        decodesFaithfullyOrRefuses(bytes.subarray(0, cut % bytes.length));
        const flipped = Uint8Array.from(bytes);
        flipped[flip % flipped.length]! ^= 1 << flip % 8;
        decodesFaithfullyOrRefuses(flipped);
      }),
      { numRuns: runs },
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
