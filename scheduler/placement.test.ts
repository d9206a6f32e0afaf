/**
 * The default placement policy, rule by rule: executors above the utilisation threshold are
 * skipped; warm runtimes first; then the most cached keys of the call; then the parent's
 * executor; the least loaded one when every executor is above the threshold; none (no capacity)
 * when even that one is overloaded or there are no executors; and a seeded random choice that
 * spreads calls between equal candidates.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../protocol/index.js';
import { DefaultPlacement } from './placement.js';
import type { ExecutorView, PlacementRequest } from './placement.js';

interface ViewOptions {
  readonly utilisation?: number;
  readonly sentSinceStatus?: number;
  readonly warm?: readonly string[];
  readonly keys?: readonly string[];
}

const view = (address: string, options: ViewOptions = {}): ExecutorView => ({
  address,
  lastHeardMs: 0,
  utilisation: options.utilisation ?? 0,
  capacity: 4,
  sentSinceStatus: options.sentSinceStatus ?? 0,
  warm: new Set(options.warm ?? []),
  keys: new Set(options.keys ?? []),
  outstanding: new Map(),
  nextSeq: 1,
});

const FN = 'square@1';
const request = (extra: Partial<PlacementRequest> = {}): PlacementRequest => ({ functionId: FN, keys: [], ...extra });

/** Where `times` placements of the request went, by address. */
function tally(policy: DefaultPlacement, placement: PlacementRequest, executors: readonly ExecutorView[], times: number, seed = 1): Map<string, number> {
  const random = seededRandom(seed);
  const counts = new Map<string, number>();
  for (let i = 0; i < times; i++) {
    const chosen = policy.place(placement, executors, random);
    const address = chosen?.address ?? 'none';
    counts.set(address, (counts.get(address) ?? 0) + 1);
  }
  return counts;
}

describe('DefaultPlacement', () => {
  const policy = new DefaultPlacement();

  it('skips executors above 0.7 utilisation, whatever else they have', () => {
    const busy = view('busy', { utilisation: 0.71, warm: [FN], keys: ['k'] });
    const idle = view('idle', { utilisation: 0.2 });
    expect(tally(policy, request({ keys: ['k'], prefer: 'busy' }), [busy, idle], 50)).toEqual(new Map([['idle', 50]]));
    // At the threshold it still counts as having room.
    const atLimit = view('at-limit', { utilisation: 0.7, warm: [FN] });
    expect(tally(policy, request(), [atLimit, idle], 50)).toEqual(new Map([['at-limit', 50]]));
    // The threshold is an option.
    const strict = new DefaultPlacement({ utilisationMax: 0.1 });
    expect(tally(strict, request(), [view('a', { utilisation: 0.2, warm: [FN] }), view('b', { utilisation: 0.05 })], 50)).toEqual(new Map([['b', 50]]));
  });

  it('prefers an executor with a warm runtime for the function (of this version)', () => {
    const warm = view('warm', { warm: [FN], utilisation: 0.6 });
    const cold = [view('cold-1'), view('cold-2', { warm: ['square@2', 'other@1'] })];
    expect(tally(policy, request(), [...cold, warm], 100)).toEqual(new Map([['warm', 100]]));
    // Several warm: only those.
    const counts = tally(policy, request(), [cold[0]!, warm, view('warm-2', { warm: [FN] })], 100);
    expect([...counts.keys()].sort()).toEqual(['warm', 'warm-2']);
  });

  it('then prefers the executors caching most of the call\'s referenced keys', () => {
    const executors = [view('none'), view('one', { keys: ['a'] }), view('two', { keys: ['a', 'b', 'unrelated'] }), view('also-two', { keys: ['b', 'c'] })];
    const counts = tally(policy, request({ keys: ['a', 'b', 'c'] }), executors, 100);
    expect([...counts.keys()].sort()).toEqual(['also-two', 'two']);
    // Warmth comes first: a warm executor with fewer keys wins over a cold one with more.
    const withWarm = [...executors, view('warm-one-key', { warm: [FN], keys: ['a'] })];
    expect(tally(policy, request({ keys: ['a', 'b', 'c'] }), withWarm, 50)).toEqual(new Map([['warm-one-key', 50]]));
    // No key cached anywhere: every candidate stays in.
    expect(tally(policy, request({ keys: ['zzz'] }), executors, 200).size).toBe(4);
  });

  it('then prefers the parent\'s executor, when it is still a candidate', () => {
    const executors = [view('a'), view('b'), view('parent'), view('d')];
    expect(tally(policy, request({ prefer: 'parent' }), executors, 50)).toEqual(new Map([['parent', 50]]));
    // A parent executor that is cold while another is warm loses...
    expect(tally(policy, request({ prefer: 'parent' }), [...executors, view('warm', { warm: [FN] })], 50)).toEqual(new Map([['warm', 50]]));
    // ...and so does one holding fewer of the keys, or one that is too busy.
    const keyed = [view('parent'), view('holder', { keys: ['k'] })];
    expect(tally(policy, request({ prefer: 'parent', keys: ['k'] }), keyed, 50)).toEqual(new Map([['holder', 50]]));
    const busyParent = [view('parent', { utilisation: 0.9 }), view('other')];
    expect(tally(policy, request({ prefer: 'parent' }), busyParent, 50)).toEqual(new Map([['other', 50]]));
    // A parent address that is no executor changes nothing.
    expect(tally(policy, request({ prefer: 'tcp://gone:1' }), executors, 200).size).toBe(4);
  });

  it('falls back to the least loaded executor when every one is above the threshold', () => {
    const executors = [view('a', { utilisation: 0.95, warm: [FN] }), view('least', { utilisation: 0.8 }), view('c', { utilisation: 3 })];
    expect(tally(policy, request({ prefer: 'a' }), executors, 50)).toEqual(new Map([['least', 50]]));
  });

  it('places nothing when even the least loaded executor is at overloadMax (2 calls per slot) or past it, or there are none', () => {
    const overloaded = [view('a', { utilisation: 2 }), view('b', { utilisation: 20 })];
    expect(policy.place(request(), overloaded, seededRandom(1))).toBeUndefined();
    expect(policy.place(request(), [], seededRandom(1))).toBeUndefined();
    // Just under it: still placed (queued there), on the least loaded.
    expect(policy.place(request(), [view('a', { utilisation: 1.9 }), view('b', { utilisation: 20 })], seededRandom(1))?.address).toBe('a');
    // What the scheduler placed since the executor's last report counts for admission, at most one
    // slot's worth: 1.5 reported + 2 of 4 slots sent is saturated; 1 reported + 40 sent is not.
    expect(policy.place(request(), [view('a', { utilisation: 1.5, sentSinceStatus: 2 })], seededRandom(1))).toBeUndefined();
    expect(policy.place(request(), [view('a', { utilisation: 1.5, sentSinceStatus: 1 })], seededRandom(1))?.address).toBe('a');
    expect(policy.place(request(), [view('a', { utilisation: 0.9, sentSinceStatus: 40 })], seededRandom(1))?.address).toBe('a');
    const tight = new DefaultPlacement({ overloadMax: 1 });
    expect(tight.place(request(), [view('a', { utilisation: 1 })], seededRandom(1))).toBeUndefined();
    expect(tight.place(request(), [view('a', { utilisation: 0.99 })], seededRandom(1))?.address).toBe('a');
  });

  it('spreads calls between equal candidates, and leans to the less loaded of two picked at random', () => {
    const equal = [view('a'), view('b'), view('c')];
    const counts = tally(policy, request(), equal, 600, 7);
    expect([...counts.keys()].sort()).toEqual(['a', 'b', 'c']);
    for (const count of counts.values()) expect(count).toBeGreaterThan(100);
    // The same seed places the same way: the choice is the seeded generator's, nothing else.
    expect(tally(policy, request(), equal, 600, 7)).toEqual(counts);
    // Of two unequal candidates, the less loaded wins whenever it is one of the two picks (about 3 in 4).
    const unequal = tally(policy, request(), [view('heavy', { utilisation: 0.6 }), view('light', { utilisation: 0.1 })], 600, 11);
    expect(unequal.get('light')!).toBeGreaterThan(2 * unequal.get('heavy')!);
  });
});
