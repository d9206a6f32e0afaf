import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareTimestamps, HybridClock } from './clock.js';
import type { Timestamp } from './clock.js';
import { Lww } from './lww.js';
import { propertyRuns } from './testing.js';

const runs = propertyRuns(200);

describe('HybridClock', () => {
  it('is strictly monotonic per node, whatever the physical clock does', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1_000_000 }), { minLength: 1, maxLength: 100 }), (physical) => {
        let i = 0;
        const clock = new HybridClock('n', () => physical[Math.min(i++, physical.length - 1)]!);
        let previous: Timestamp | undefined;
        for (let k = 0; k < physical.length; k++) {
          const now = clock.tick();
          if (previous !== undefined) expect(compareTimestamps(now, previous)).toBeGreaterThan(0);
          previous = now;
        }
      }),
      { numRuns: runs },
    );
  });

  it('orders every receive after its send across nodes with skewed clocks', () => {
    const skews = fc.array(fc.integer({ min: -5000, max: 5000 }), { minLength: 3, maxLength: 3 });
    const events = fc.array(fc.tuple(fc.nat({ max: 2 }), fc.nat({ max: 2 }), fc.nat({ max: 50 })), { maxLength: 100 });
    fc.assert(
      fc.property(skews, events, (skew, steps) => {
        let trueTime = 1_000_000;
        const clocks = skew.map((s, n) => new HybridClock(`n${n}`, () => trueTime + s, 10_000));
        for (const [from, to, advance] of steps) {
          trueTime += advance;
          const sent = clocks[from]!.tick();
          const received = clocks[to]!.observe(sent);
          expect(compareTimestamps(received, sent)).toBeGreaterThan(0);
          // The local clock moves past what it saw: the next local write wins over the sender's.
          expect(compareTimestamps(clocks[to]!.tick(), sent)).toBeGreaterThan(0);
        }
      }),
      { numRuns: runs },
    );
  });

  it('clamps a remote clock far in the future so it cannot shadow later writes forever', () => {
    let now = 1_000_000;
    const local = new HybridClock('local', () => now, 1000);
    local.observe({ wallMs: now + 10_000_000, logical: 0 }); // a node 2.7 hours fast
    expect(local.peek().wallMs).toBeLessThanOrEqual(now + 1000);
    // A fast writer's value stamped with its own far-future clock is beaten once real time passes the clamp.
    const fastWrite = Lww.at({ wallMs: local.peek().wallMs, logical: local.peek().logical }, 'fast', 'old');
    now += 2000;
    const later = Lww.write(local, 'new');
    expect(fastWrite.merge(later).reveal()).toBe('new');
  });

  it('clamps every observed timestamp to physical + maxDriftMs, and stays monotonic doing it', () => {
    const steps = fc.array(fc.tuple(fc.integer({ min: -100, max: 100 }), fc.integer({ min: 0, max: 1_000_000 }), fc.nat({ max: 5 })), { maxLength: 60 });
    fc.assert(
      fc.property(steps, (plan) => {
        let physical = 500_000;
        const clock = new HybridClock('n', () => physical, 1000);
        let previous = clock.tick();
        for (const [advance, remoteWall, remoteLogical] of plan) {
          physical = Math.max(0, physical + advance);
          const received = clock.observe({ wallMs: remoteWall, logical: remoteLogical });
          expect(compareTimestamps(received, previous)).toBeGreaterThan(0);
          // Never beyond the clamp, unless this clock was already there.
          expect(received.wallMs).toBeLessThanOrEqual(Math.max(physical + 1000, previous.wallMs));
          if (remoteWall <= physical + 1000) expect(compareTimestamps(received, { wallMs: remoteWall, logical: remoteLogical })).toBeGreaterThan(0);
          previous = received;
        }
      }),
      { numRuns: runs },
    );
  });

  it('treats broken physical readings as no progress and refuses malformed remote timestamps', () => {
    const readings = [10, Number.NaN, -5, Number.POSITIVE_INFINITY, 11];
    let i = 0;
    const clock = new HybridClock('n', () => readings[i++] ?? 11);
    const stamps = readings.map(() => clock.tick());
    expect(stamps.map((t) => [t.wallMs, t.logical])).toEqual([[10, 0], [10, 1], [10, 2], [10, 3], [11, 0]]);
    expect(() => clock.observe({ wallMs: -1, logical: 0 })).toThrow(expect.objectContaining({ code: 'LATTICE_DECODE' }));
    expect(() => clock.observe({ wallMs: 5, logical: 0.5 })).toThrow(expect.objectContaining({ code: 'LATTICE_DECODE' }));
    expect(clock.peek()).toEqual({ wallMs: 11, logical: 0 });
  });

  it('breaks LWW ties deterministically, never by arrival order', () => {
    const a = Lww.at({ wallMs: 5, logical: 0 }, 'w', 'apple');
    const b = Lww.at({ wallMs: 5, logical: 0 }, 'w', 'pear');
    expect(a.merge(b).reveal()).toBe(b.merge(a).reveal());
    const c = Lww.at({ wallMs: 5, logical: 0 }, 'v', 'zzz');
    expect(a.merge(c).reveal()).toBe('apple'); // writer 'w' > 'v'
  });
});
