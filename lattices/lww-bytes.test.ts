import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalKey, compareStrings } from './codec.js';
import { Lww } from './lww.js';
import { propertyRuns } from './testing.js';

describe('Lww ties between byte values', () => {
  it('order as their canonical keys do (the fast path agrees with the general one)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 }), (a, b) => {
        const x = Lww.at({ wallMs: 1, logical: 0 }, 'w', a);
        const y = Lww.at({ wallMs: 1, logical: 0 }, 'w', b);
        const expected = Math.sign(compareStrings(canonicalKey(a), canonicalKey(b)));
        expect(x.compare(y)).toBe(expected < 0 ? 'lt' : expected > 0 ? 'gt' : 'eq');
        expect(x.merge(y).reveal()).toEqual(expected >= 0 ? a : b);
        expect(y.merge(x).reveal()).toEqual(expected >= 0 ? a : b);
      }),
      { numRuns: propertyRuns(500) },
    );
  });

  it('merge two copies of a 4 MiB value quickly', () => {
    const bytes = new Uint8Array(4 * 1024 * 1024).map((_, i) => i * 7);
    const x = Lww.at({ wallMs: 1, logical: 0 }, 'w', bytes);
    const y = Lww.at({ wallMs: 1, logical: 0 }, 'w', bytes.slice());
    const started = performance.now();
    const merged = x.merge(y);
    expect(performance.now() - started).toBeLessThan(200);
    expect(merged.reveal().byteLength).toBe(bytes.byteLength);
  });
});
