import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareTimestamps, HybridClock } from './hlc.js';
import type { Timestamp } from './hlc.js';
import { Lww } from './lww.js';
import { propertyRuns } from './testing.js';

const runs = propertyRuns(300);

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

  it('breaks LWW ties deterministically, never by arrival order', () => {
    const a = Lww.at({ wallMs: 5, logical: 0 }, 'w', 'apple');
    const b = Lww.at({ wallMs: 5, logical: 0 }, 'w', 'pear');
    expect(a.merge(b).reveal()).toBe(b.merge(a).reveal());
    const c = Lww.at({ wallMs: 5, logical: 0 }, 'v', 'zzz');
    expect(a.merge(c).reveal()).toBe('apple'); // writer 'w' > 'v'
  });
});
