import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AnyLattice } from './lattice.js';
import { decodeLattice } from './registry.js';
import { HybridClock } from './clock.js';
import { Counter } from './counter.js';
import { Lww } from './lww.js';
import {
  counterArbitrary,
  gsetArbitrary,
  latticeArbitraries,
  lwwArbitrary,
  mapOfCountersArbitrary,
  multiKeyCausalArbitrary,
  orderedSetArbitrary,
  plainValueArbitrary,
  propertyRuns,
  sameTypePair,
  sameTypeTriple,
  singleKeyCausalArbitrary,
  vectorClockArbitrary,
} from './testing.js';

const runs = propertyRuns(150);
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
  it('merge returns the dominating side itself (no allocation, no copy)', () => {
    fc.assert(
      fc.property(arbitrary, arbitrary, (a, b) => {
        if (b.leq(a)) expect(a.merge(b)).toBe(a);
        if (a.leq(b) && !b.leq(a)) expect(a.merge(b)).toBe(b);
      }),
      { numRuns: runs },
    );
  });
  it('encoding is deterministic: equal values give identical bytes', () => {
    fc.assert(
      fc.property(arbitrary, arbitrary, (a, b) => {
        expect(Buffer.from(a.encode()).equals(Buffer.from(a.encode()))).toBe(true);
        expect(Buffer.from(a.encode()).equals(Buffer.from(b.encode()))).toBe(a.equals(b));
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

describe('laws over the shared any-type generators', () => {
  it('pairs and triples of one type satisfy the laws together', () => {
    fc.assert(
      fc.property(sameTypeTriple(), ([a, b, c]) => {
        same(a.merge(b).merge(c), a.merge(b.merge(c)));
        same(a.merge(b), b.merge(a));
      }),
      { numRuns: runs },
    );
    fc.assert(
      fc.property(sameTypePair(), ([a, b]) => {
        expect(a.type).toBe(b.type);
        same(decodeLattice(a.merge(b).encode()), a.merge(b));
      }),
      { numRuns: runs },
    );
  });
});

describe('mutators only move up', () => {
  const writer = fc.constantFrom('a', 'b', 'e');
  const up = (before: AnyLattice, after: AnyLattice): void => {
    expect(before.leq(after)).toBe(true);
    expect(after.type).toBe(before.type);
  };
  it('add, increment, decrement, set, next and write', () => {
    fc.assert(
      fc.property(
        fc.record({
          gset: gsetArbitrary,
          ordered: orderedSetArbitrary,
          counter: counterArbitrary,
          clock: vectorClockArbitrary,
          map: mapOfCountersArbitrary,
          single: singleKeyCausalArbitrary,
          multi: multiKeyCausalArbitrary,
          lww: lwwArbitrary,
        }),
        writer,
        fc.nat({ max: 4 }),
        plainValueArbitrary,
        ({ gset, ordered, counter, clock, map, single, multi, lww }, w, n, value) => {
          up(gset, gset.add(value));
          up(ordered, ordered.add(value));
          up(counter, counter.increment(w, n));
          up(counter, counter.decrement(w, n));
          expect(counter.increment(w, n).reveal() - counter.reveal()).toBe(n);
          expect(counter.reveal() - counter.decrement(w, n).reveal()).toBe(n);
          up(clock, clock.increment(w));
          expect(clock.compare(clock.increment(w))).toBe('lt');
          up(map, map.set('p', Counter.ZERO.increment(w, n)));
          const nextSingle = single.next(w, value);
          expect(single.compare(nextSingle)).toBe('lt');
          expect(nextSingle.reveal()).toHaveLength(1);
          expect(multi.compare(multi.next(w, value, { k1: clock }))).toBe('lt');
          // A writer that has seen the current value writes above it.
          const hlc = new HybridClock(w, () => 0);
          hlc.observe(lww.timestamp);
          const written = Lww.write(hlc, value);
          expect(lww.compare(written)).toBe('lt');
          expect(lww.merge(written)).toBe(written);
        },
      ),
      { numRuns: runs },
    );
  });
  it('refuses negative or fractional counter steps', () => {
    expect(() => Counter.ZERO.increment('a', -1)).toThrow(expect.objectContaining({ code: 'LATTICE_DECODE' }));
    expect(() => Counter.ZERO.decrement('a', 0.5)).toThrow(expect.objectContaining({ code: 'LATTICE_DECODE' }));
  });
});
