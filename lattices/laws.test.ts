import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AnyLattice } from './lattice.js';
import { decodeLattice } from './registry.js';
import { latticeArbitraries, propertyRuns } from './testing.js';

const runs = propertyRuns(300);
const same = (a: AnyLattice, b: AnyLattice): void => {
  expect(a.equals(b)).toBe(true);
  expect(Buffer.from(a.encode()).equals(Buffer.from(b.encode()))).toBe(true);
};

describe.each(Object.entries(latticeArbitraries))('%s', (_name, arbitrary) => {
  it('merge is associative', () => {
    fc.assert(fc.property(arbitrary, arbitrary, arbitrary, (a, b, c) => same(a.merge(b).merge(c), a.merge(b.merge(c)))), { numRuns: runs });
  });
  it('merge is commutative', () => {
    fc.assert(fc.property(arbitrary, arbitrary, (a, b) => same(a.merge(b), b.merge(a))), { numRuns: runs });
  });
  it('merge is idempotent', () => {
    fc.assert(fc.property(arbitrary, arbitrary, (a, b) => {
      same(a.merge(a), a);
      same(a.merge(b).merge(b), a.merge(b));
    }), { numRuns: runs });
  });
  it('merge is an upper bound, and compare agrees with leq', () => {
    fc.assert(
      fc.property(arbitrary, arbitrary, (a, b) => {
        const m = a.merge(b);
        expect(a.leq(m)).toBe(true);
        expect(b.leq(m)).toBe(true);
        const order = a.compare(b);
        expect(a.leq(b)).toBe(order === 'lt' || order === 'eq');
        expect(b.leq(a)).toBe(order === 'gt' || order === 'eq');
        expect(a.equals(b)).toBe(order === 'eq');
        // a <= b exactly when merging b changes nothing but b.
        expect(a.leq(b)).toBe(m.equals(b));
      }),
      { numRuns: runs },
    );
  });
  it('encode/decode round-trips, byte for byte, and reveal is stable', () => {
    fc.assert(
      fc.property(arbitrary, arbitrary, (a, b) => {
        const m = a.merge(b);
        const decoded = decodeLattice(m.encode());
        same(decoded, m);
        expect(decoded.type).toBe(m.type);
        expect(decoded.reveal()).toEqual(m.reveal());
        expect(m.merge(a).reveal()).toEqual(m.reveal());
      }),
      { numRuns: runs },
    );
  });
});
