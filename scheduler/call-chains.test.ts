import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CallChains } from './call-chains.js';

describe('call chains', () => {
  it('a DAG edge makes its target a successor at once', () => {
    const chains = new CallChains();
    chains.learnEdge('f@1', 'g@1');
    expect(chains.next('f@1')).toEqual(['g@1']);
    expect(chains.next('g@1')).toEqual([]);
  });

  it('learns f -> g from one caller calling g within the window after f, once seen often enough', () => {
    const chains = new CallChains({ minCount: 3, windowMs: 1000 });
    let now = 0;
    for (let i = 0; i < 2; i++) {
      chains.observe('client-1', 'f@1', (now += 100));
      chains.observe('client-1', 'g@1', (now += 50));
    }
    expect(chains.next('f@1'), 'seen twice: not yet').toEqual([]);
    chains.observe('client-1', 'f@1', (now += 100));
    chains.observe('client-1', 'g@1', (now += 50));
    expect(chains.next('f@1')).toEqual(['g@1']);
    // The other direction is a chain too (g then f within the window), but the first call of each round broke it: g -> f was seen 2 times.
    expect(chains.next('g@1')).toEqual([]);
  });

  it('ignores calls beyond the window, and calls of other callers in between', () => {
    const chains = new CallChains({ minCount: 1, windowMs: 1000 });
    chains.observe('a', 'f@1', 0);
    chains.observe('a', 'g@1', 5000);
    expect(chains.next('f@1')).toEqual([]);
    chains.observe('a', 'f@1', 6000);
    chains.observe('b', 'h@1', 6001);
    chains.observe('a', 'g@1', 6002);
    expect(chains.next('f@1')).toEqual(['g@1']);
    expect(chains.next('h@1')).toEqual([]);
  });

  it('needs g after a share of the calls of f: a rare follower is not warmed', () => {
    const chains = new CallChains({ minCount: 3, minShare: 0.5, windowMs: 1000 });
    let now = 0;
    for (let i = 0; i < 20; i++) {
      chains.observe('c', 'f@1', (now += 2000));
      if (i % 5 === 0) chains.observe('c', 'g@1', (now += 10));
    }
    expect(chains.next('f@1')).toEqual([]);
  });

  it('forgets a chain that stops: counts halve with the calls of f', () => {
    const chains = new CallChains({ minCount: 3, halfLifeCalls: 8, windowMs: 1000 });
    let now = 0;
    for (let i = 0; i < 10; i++) {
      chains.observe('c', 'f@1', (now += 2000));
      chains.observe('c', 'g@1', (now += 10));
    }
    expect(chains.next('f@1')).toEqual(['g@1']);
    for (let i = 0; i < 40; i++) chains.observe('c', 'f@1', (now += 2000));
    expect(chains.next('f@1')).toEqual([]);
  });

  it('prepareAfter: a successor where placement puts it, at most once per prepareEveryMs, never where it is warm or for a malformed id', () => {
    const chains = new CallChains({ prepareEveryMs: 2000 });
    chains.learnEdge('f@1', 'g@1');
    chains.learnEdge('f@1', 'warm@1');
    chains.learnEdge('f@1', 'no-version');
    const where = (id: string): string | undefined => (id === 'warm@1' ? undefined : 'tcp://exec-a');
    expect(chains.prepareAfter('c', 'f@1', 0, where)).toEqual([{ address: 'tcp://exec-a', name: 'g', version: 1 }]);
    expect(chains.prepareAfter('c', 'f@1', 1999, where)).toEqual([]);
    expect(chains.prepareAfter('c', 'f@1', 2000, where)).toEqual([{ address: 'tcp://exec-a', name: 'g', version: 1 }]);
    // Not prepared (nowhere to put it) does not start the throttle.
    const nowhere = new CallChains();
    nowhere.learnEdge('f@1', 'g@1');
    expect(nowhere.prepareAfter('c', 'f@1', 0, () => undefined)).toEqual([]);
    expect(nowhere.prepareAfter('c', 'f@1', 1, () => 'tcp://exec-b')).toEqual([{ address: 'tcp://exec-b', name: 'g', version: 1 }]);
  });

  it('stays within its bounds whatever it is fed', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 3000 })), { maxLength: 500 }), (calls) => {
        const chains = new CallChains({ callersMax: 8, functionsMax: 16, successorsMax: 3, minCount: 1, minShare: 0 });
        let now = 0;
        for (const [caller, fn, gap] of calls) chains.observe(`c${caller}`, `f${fn}@1`, (now += gap));
        for (let fn = 0; fn <= 200; fn++) expect(chains.next(`f${fn}@1`).length).toBeLessThanOrEqual(3);
        const internals = chains as unknown as { last: Map<string, unknown>; followers: Map<string, unknown> };
        expect(internals.last.size).toBeLessThanOrEqual(8);
        expect(internals.followers.size).toBeLessThanOrEqual(16);
      }),
      { numRuns: 100 },
    );
  });
});
