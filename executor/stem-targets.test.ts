/**
 * Stem targets in virtual time: the floor with no cold starts; one cold start keeps one stem
 * above the floor for decayMs · ln 2; a burst raises the target by Little's law (rate times the
 * stem start time, with headroom) and it decays back to the floor; an owner's threshold needs
 * repeated cold starts; the cap and the key bound hold; and (a property) the target is never below
 * the floor, never above the cap, and never grows while time passes without cold starts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StemTargets } from './stem-targets.js';

describe('StemTargets', () => {
  it('is the floor without cold starts; one cold start adds one stem for decayMs · ln 2', () => {
    const targets = new StemTargets<number>({ decayMs: 10_000 });
    expect(targets.target(128, 0, 150, 2)).toBe(2);
    expect(targets.target(256, 0, 150)).toBe(0);
    targets.record(256, 1000);
    expect(targets.target(256, 1000, 150)).toBe(1);
    expect(targets.ratePerSecond(256, 1000)).toBeCloseTo(0.1);
    // Active while the decayed count is at least 0.5: 10 s · ln 2 = 6.93 s.
    expect(targets.target(256, 1000 + 6900, 150)).toBe(1);
    expect(targets.target(256, 1000 + 7000, 150)).toBe(0);
    // Other keys are untouched.
    expect(targets.target(128, 1000, 150, 2)).toBe(2);
  });

  it('a burst raises the target by rate times start time (with headroom), then it decays to the floor', () => {
    const targets = new StemTargets<number>({ decayMs: 1000, headroom: 2 });
    // 20 cold starts in 100 ms: about 20 recent, 20 per second; a stem starts in 150 ms:
    // 2 · 20/s · 0.15 s = 6 stems above the floor.
    for (let i = 0; i < 20; i++) targets.record(128, i * 5);
    const count = targets.recentColdStarts(128, 100);
    expect(count).toBeGreaterThan(18);
    expect(count).toBeLessThan(20);
    expect(targets.target(128, 100, 150, 2)).toBe(2 + Math.ceil(2 * (count / 1000) * 150));
    expect(targets.target(128, 100, 150, 2)).toBe(8);
    // A slower start needs more stems.
    expect(targets.target(128, 100, 300, 2)).toBe(14);
    // Decays: halves in 1 s · ln 2...
    const later = targets.target(128, 800, 150, 2);
    expect(later).toBeLessThan(8);
    expect(later).toBeGreaterThan(2);
    // ...and back to the floor once fewer than 0.5 are recent (ln(2 · 19.x) s ≈ 3.7 s).
    expect(targets.target(128, 4000, 150, 2)).toBe(2);
    expect(targets.keys(20_000)).toEqual([]);
  });

  it('an owner threshold of 1.5 needs repeated cold starts', () => {
    const owners = new StemTargets<string>({ decayMs: 5000, activeAbove: 1.5 });
    owners.record('alice', 0);
    expect(owners.target('alice', 0, 150)).toBe(0);
    owners.record('alice', 1000);
    // 1 · e^-0.2 + 1 = 1.82.
    expect(owners.target('alice', 1000, 150)).toBe(1);
    // Below 1.5 after 5 s · ln(1.82/1.5) ≈ 0.97 s.
    expect(owners.target('alice', 1900, 150)).toBe(1);
    expect(owners.target('alice', 2100, 150)).toBe(0);
  });

  it('caps a target (the floor always holds) and bounds its keys, dropping the weakest', () => {
    const targets = new StemTargets<number>({ decayMs: 1000, max: 3, keysMax: 2 });
    for (let i = 0; i < 100; i++) targets.record(1, 0);
    expect(targets.target(1, 0, 150)).toBe(3);
    expect(targets.target(1, 0, 150, 5)).toBe(5);
    targets.record(2, 0);
    targets.record(3, 10);
    // Key 2 had the fewest recent cold starts.
    expect(targets.keys(10).sort()).toEqual([1, 3]);
    expect(targets.size).toBe(2);
    expect(() => new StemTargets({ decayMs: 0 })).toThrow(RangeError);
  });

  it('property: floor <= target <= max(floor, cap); without cold starts it never grows', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2000 })), { maxLength: 60 }),
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 0, max: 4 }),
        (events, startMs, floor) => {
          const targets = new StemTargets<number>({ decayMs: 2000, max: 6 });
          let now = 0;
          for (const [key, gap] of events) {
            now += gap;
            targets.record(key, now);
            const target = targets.target(key, now, startMs, floor);
            expect(target).toBeGreaterThanOrEqual(floor);
            expect(target).toBeLessThanOrEqual(Math.max(floor, 6));
            // A cold start just now: one stem above the floor at least (the floor is below the cap here).
            expect(target).toBeGreaterThan(floor);
          }
          for (let key = 0; key <= 3; key++) {
            let previous = targets.target(key, now, startMs, floor);
            for (let t = now; t < now + 20_000; t += 500) {
              const target = targets.target(key, t, startMs, floor);
              expect(target).toBeLessThanOrEqual(previous);
              previous = target;
            }
            expect(previous).toBe(floor);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
