/**
 * The pinning policy: a function's pin count follows its call rate (ceil(rate / perExecutorRate),
 * between the base and the executors known), rises once the rate held, falls only after it
 * stayed low (with a band against flapping), waits out a grace period after each change, and
 * (optionally) goes to 0 for a function not called for long.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_PIN_POLICY, Pinner } from './pinning.js';
import type { FunctionRateView, PinChange, PinPolicy } from './pinning.js';

const policy: PinPolicy = { ...DEFAULT_PIN_POLICY, base: 2, perExecutorRate: 50, upSustainMs: 2000, downSustainMs: 10_000, graceMs: 3000 };

/** Looks every second from `fromMs` to `toMs` at the same rates; the changes with their times. */
function over(pinner: Pinner, functions: readonly FunctionRateView[], executors: number, fromMs: number, toMs: number): (PinChange & { atMs: number })[] {
  const out: (PinChange & { atMs: number })[] = [];
  for (let t = fromMs; t <= toMs; t += 1000) for (const change of pinner.decide(functions, executors, t)) out.push({ ...change, atMs: t });
  return out;
}

const hot = (rate: number): FunctionRateView[] => [{ name: 'hot', rate, p50Ms: 4, p99Ms: 30 }];

describe('the pinning policy', () => {
  it('a hot function is pinned in proportion to its rate once the rate held for upSustainMs', () => {
    const pinner = new Pinner(policy);
    const changes = over(pinner, hot(230), 8, 0, 5000);
    expect(changes.map(({ atMs, count, from }) => ({ atMs, count, from }))).toEqual([{ atMs: 2000, count: 5, from: 2 }]);
    expect(changes[0]!.reason).toMatch(/5 executors \(was 2\): 230\.0 calls\/s, p50 4\.0 ms, p99 30\.0 ms for 2000 ms/);
    expect(pinner.counts()).toEqual([{ name: 'hot', count: 5 }]);
  });

  it('at most the executors known, never below the base; a function under the base rate changes nothing', () => {
    const capped = new Pinner(policy);
    expect(over(capped, hot(10_000), 3, 0, 5000).map((change) => change.count)).toEqual([3]);
    const fewer = new Pinner(policy);
    // One executor known: the base stays the floor (the schedulers bound it by the executors they know).
    expect(over(fewer, hot(10_000), 1, 0, 5000)).toEqual([]);
    const mild = new Pinner(policy);
    expect(over(mild, [...hot(99), { name: 'cold', rate: 0.5 }], 8, 0, 20_000)).toEqual([]);
    expect(mild.counts()).toEqual([]);
  });

  it('hysteresis: one dip does not reset a rise; after a change the grace period, then the next rise', () => {
    // Over 3 s: 3 of the 4 looks and the latest held (a dip that reset the window would wait to 5 s).
    const pinner = new Pinner({ ...policy, upSustainMs: 3000 });
    expect([...pinner.decide(hot(160), 8, 0), ...pinner.decide(hot(10), 8, 1000), ...pinner.decide(hot(160), 8, 2000), ...pinner.decide(hot(160), 8, 3000)].map((change) => change.count)).toEqual([4]);
    // Hotter at once: nothing in the grace period (3 s, to 6 s), then held for 3 s more.
    const later = over(pinner, hot(400), 8, 4000, 12_000);
    expect(later.map(({ atMs, count }) => ({ atMs, count }))).toEqual([{ atMs: 9000, count: 8 }]);
    // Calm in the latest look: not held, whatever the window saw.
    const calmNow = new Pinner(policy);
    expect([...calmNow.decide(hot(160), 8, 0), ...calmNow.decide(hot(160), 8, 1000), ...calmNow.decide(hot(10), 8, 2000)]).toEqual([]);
  });

  it('a count falls only once the rate stayed low for downSustainMs, to the most the window needed; a rate near a boundary does not flap', () => {
    const pinner = new Pinner(policy);
    over(pinner, hot(300), 8, 0, 2000);
    expect(pinner.countOf('hot')).toBe(6);
    // 140 calls/s: 3 executors at 50 each, but a fall needs them to serve it at 3/4 of that
    // (37.5 each: 4 executors). Looked at from 5 s (the grace period after the rise at 2 s), low for 10 s: 4 at 15 s.
    const falls = over(pinner, hot(140), 8, 3000, 20_000);
    expect(falls.map(({ atMs, count }) => ({ atMs, count }))).toEqual([{ atMs: 15_000, count: 4 }]);
    expect(falls[0]!.reason).toMatch(/low for 10000 ms/);
    // It stays there: 140 calls/s is within the band of 4 (no fall to 3, no rise).
    expect(over(pinner, hot(140), 8, 21_000, 60_000)).toEqual([]);
    // A rate that varies while low: the count falls to what its busiest look needed (100 calls/s: 3), not the latest (40: 2).
    const varying = new Pinner(policy);
    over(varying, hot(300), 8, 0, 2000);
    const fell: PinChange[] = [];
    for (let t = 3000; t <= 20_000; t += 1000) fell.push(...varying.decide(hot(t % 2000 === 1000 ? 40 : 100), 8, t));
    expect(fell.map((change) => change.count)).toEqual([3]);
  });

  it('a cold function goes back to the base, and is no longer sent (the schedulers\' default)', () => {
    const pinner = new Pinner(policy);
    over(pinner, hot(200), 8, 0, 2000);
    expect(pinner.counts()).toEqual([{ name: 'hot', count: 4 }]);
    // Its executors stop reporting it: rate 0.
    const cooled = over(pinner, [], 8, 3000, 20_000);
    expect(cooled.map(({ atMs, count }) => ({ atMs, count }))).toEqual([{ atMs: 15_000, count: 2 }]);
    expect(pinner.counts()).toEqual([]);
    expect(pinner.countOf('hot')).toBe(2);
  });

  it('with idleMs: a function not called for that long gets count 0, and the base again at its next call', () => {
    const pinner = new Pinner({ ...policy, idleMs: 30_000 });
    expect(over(pinner, hot(1), 8, 0, 5000)).toEqual([]);
    const idle = over(pinner, [], 8, 6000, 40_000);
    expect(idle.map(({ atMs, count }) => ({ atMs, count }))).toEqual([{ atMs: 35_000, count: 0 }]);
    expect(pinner.counts()).toEqual([{ name: 'hot', count: 0 }]);
    const back = pinner.decide(hot(0.5), 8, 41_000);
    expect(back.map((change) => change.count)).toEqual([2]);
    expect(back[0]!.reason).toMatch(/called again/);
    expect(pinner.counts()).toEqual([]);
  });

  it('bounded: at most functionsMax functions tracked, the hottest; ones at the base make room', () => {
    const pinner = new Pinner({ ...policy, functionsMax: 3 });
    const many = Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, rate: 60 * (i + 1) }));
    const changes = over(pinner, many, 64, 0, 3000);
    expect(changes.map((change) => change.name).sort()).toEqual(['f17', 'f18', 'f19']);
    // Hostile views: empty names, non-finite rates are skipped.
    expect(() => pinner.decide([{ name: '', rate: 1e9 }, { name: 'x', rate: Number.NaN }], 64, 4000)).not.toThrow();
    expect(pinner.counts().map((count) => count.name).sort()).toEqual(['f17', 'f18', 'f19']);
  });
});
