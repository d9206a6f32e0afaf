import { describe, expect, it } from 'vitest';
import { FairInbox } from './fair-inbox.js';

/**
 * An inbox over a fake clock: handling a frame advances time by the frame's first byte (ms).
 * With `turnBudgetMs: 0`, nothing is handled inline and each turn handles one frame: the order is
 * the fairness alone.
 */
function harness(options: ConstructorParameters<typeof FairInbox>[1] = {}) {
  const clock = { nowMs: 0 };
  const deferred: (() => void)[] = [];
  const handled: { peer: string; costMs: number }[] = [];
  const inbox = new FairInbox(
    (frame, peer) => {
      clock.nowMs += frame[0] ?? 0;
      handled.push({ peer, costMs: frame[0] ?? 0 });
    },
    { now: () => clock.nowMs, defer: (callback) => deferred.push(callback), ...options },
  );
  /** Runs deferred turns until none is left (bounded). */
  const settle = (): void => {
    for (let turns = 0; deferred.length > 0 && turns < 100_000; turns++) deferred.shift()!();
  };
  const peers = (): string[] => handled.map((entry) => entry.peer);
  return { inbox, handled, peers, settle, clock, deferred, frame: (costMs: number) => new Uint8Array([costMs]) };
}

describe('FairInbox', () => {
  it('handles a frame at once, inline, when nothing waits', () => {
    const { inbox, peers, frame } = harness();
    expect(inbox.offer('a', frame(0))).toBe(true);
    expect(peers()).toEqual(['a']);
    expect(inbox.waiting).toBe(0);
  });

  it('handles inline until the turn budget is spent, then defers the rest to later turns', () => {
    const { inbox, peers, settle, deferred, frame } = harness({ turnBudgetMs: 5 });
    for (let i = 0; i < 10; i++) inbox.offer('a', frame(2));
    expect(peers()).toHaveLength(3); // 2 + 2 + 2 ms: the budget of 5 is spent after the third
    expect(deferred).toHaveLength(1);
    settle();
    expect(peers()).toHaveLength(10);
    expect(inbox.counters.deferred).toBeGreaterThanOrEqual(2);
  });

  it('shares handling time, not frame counts: a peer with expensive frames gets its share of time and no more', () => {
    const { inbox, handled, settle, frame } = harness({ quantumMs: 1, turnBudgetMs: 0 });
    for (let i = 0; i < 20; i++) inbox.offer('slow', frame(10));
    for (let i = 0; i < 400; i++) inbox.offer('fast', frame(1));
    settle();
    expect(handled).toHaveLength(420);
    // While both wait (up to the last slow frame), each gets about the same handling time.
    const lastSlow = handled.map((entry) => entry.peer).lastIndexOf('slow');
    const window = handled.slice(0, lastSlow + 1);
    const time = (peer: string) => window.filter((entry) => entry.peer === peer).reduce((sum, entry) => sum + entry.costMs, 0);
    expect(time('fast') / time('slow')).toBeGreaterThan(0.7);
    expect(time('fast') / time('slow')).toBeLessThan(1.4);
  });

  it('serves a newcomer right after at most one frame of a flood that was there first', () => {
    const { inbox, peers, settle, frame } = harness({ quantumMs: 1, turnBudgetMs: 0 });
    for (let i = 0; i < 1000; i++) inbox.offer('flood', frame(3));
    inbox.offer('newcomer', frame(1));
    settle();
    expect(peers().indexOf('newcomer')).toBeLessThanOrEqual(1);
    expect(peers()).toHaveLength(1001);
  });

  it('refuses frames beyond a peer\'s share of the queue, and only that peer\'s', () => {
    const { inbox, settle, frame } = harness({ peerFramesMax: 10, turnBudgetMs: 0 });
    const outcomes = Array.from({ length: 30 }, () => inbox.offer('flood', frame(1)));
    expect(outcomes.filter((accepted) => !accepted)).toHaveLength(20);
    expect(inbox.offer('other', frame(1))).toBe(true);
    expect(inbox.counters.refused).toBe(20);
    settle();
    expect(inbox.waiting).toBe(0);
  });

  it('bounds bytes per peer too, always taking one frame when the peer has none waiting', () => {
    const { inbox, frame } = harness({ peerBytesMax: 4, turnBudgetMs: 0 });
    expect(inbox.offer('p', new Uint8Array(100))).toBe(true);
    expect(inbox.offer('p', frame(0))).toBe(false);
    expect(inbox.offer('q', frame(0))).toBe(true);
  });

  it('says when it is full and wakes waiters once it has drained to half', async () => {
    const { inbox, settle, frame } = harness({ totalFramesMax: 10, peerFramesMax: 100, turnBudgetMs: 0 });
    for (let i = 0; i < 12; i++) inbox.offer(`p${i % 3}`, frame(1));
    expect(inbox.full).toBe(true);
    let woke = false;
    const room = inbox.whenRoom().then(() => (woke = true));
    settle();
    await room;
    expect(woke).toBe(true);
    expect(inbox.full).toBe(false);
  });

  it('forgives debt with idle time, so a peer that was expensive long ago is not punished now', () => {
    const { inbox, peers, settle, clock, frame } = harness({ quantumMs: 1, turnBudgetMs: 0 });
    inbox.offer('a', frame(200));
    settle();
    clock.nowMs += 10_000;
    for (let i = 0; i < 5; i++) inbox.offer('b', frame(5));
    inbox.offer('a', frame(1));
    settle();
    expect(peers().slice(1).indexOf('a')).toBeLessThanOrEqual(1);
  });

  it('keeps the debt of a peer that comes straight back', () => {
    const { inbox, peers, settle, frame } = harness({ quantumMs: 1, turnBudgetMs: 0 });
    inbox.offer('a', frame(200));
    settle();
    for (let i = 0; i < 5; i++) inbox.offer('b', frame(5));
    inbox.offer('a', frame(1));
    settle();
    // a used 200 ms moments ago: b's 25 ms of work go first.
    expect(peers().slice(1)).toEqual(['b', 'b', 'b', 'b', 'b', 'a']);
  });
});
