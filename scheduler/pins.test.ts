/**
 * Pins: a prepare that was lost is sent again until the executor reports the function warm, a
 * boot that joins later takes on functions short of holders, and a warm boot is never re-sent a
 * pin (its keep-alive decides). The monitor's per-function counts replace the default: a raised
 * count is topped up on more boots at once, a lowered one stops the pinning beyond it, and the
 * counts lapse back to the default.
 */
import { describe, expect, it } from 'vitest';
import { Pins } from './pins.js';

const f = { name: 'f', version: 1 };
const target = (incarnation: string, ...warm: string[]): { incarnation: string; warm: Set<string> } => ({ incarnation, warm: new Set(warm) });

describe('Pins', () => {
  it('re-sends a pin not reported warm every retryMs, at most `attempts` times', () => {
    const pins = new Pins({ count: 2, retryMs: 1000, attempts: 3 });
    pins.add(f);
    pins.sent(f, 'a#1', 0);
    expect(pins.due(target('a#1'), 500, 2)).toEqual([]);
    const resent: number[] = [];
    for (let now = 1000; now <= 10_000; now += 1000) {
      const due = pins.due(target('a#1'), now, 2);
      if (due.length > 0) {
        expect(due.map((fn) => `${fn.name}@${fn.version}`)).toEqual(['f@1']);
        pins.sent(f, 'a#1', now);
        resent.push(now);
      }
    }
    // The scan at 500 ms holds the next one off until 1500 ms; three sends in all.
    expect(resent).toEqual([2000, 3000]);
  });

  it('never re-sends to a boot that reported it warm, even once the function is no longer warm there', () => {
    const pins = new Pins({ count: 1, retryMs: 1000 });
    pins.add(f);
    pins.sent(f, 'a#1', 0);
    expect(pins.due(target('a#1', 'f@1'), 1000, 1)).toEqual([]);
    expect(pins.due(target('a#1'), 5000, 1)).toEqual([]);
    expect(pins.due(target('b#1'), 5000, 2)).toEqual([]);
  });

  it('a boot that joins later takes on a function short of holders; a restarted boot starts over', () => {
    const pins = new Pins({ count: 2, retryMs: 1000 });
    pins.add(f);
    // Registered while one executor was known.
    pins.sent(f, 'a#1', 0);
    expect(pins.due(target('a#1', 'f@1'), 0, 1)).toEqual([]);
    expect(pins.due(target('b#1'), 100, 2)).toEqual([f].map((fn) => expect.objectContaining(fn)));
    pins.sent(f, 'b#1', 100);
    expect(pins.due(target('c#1'), 100, 3)).toEqual([]);
    // b restarts: its old boot is forgotten, the new one is short of nothing it held.
    pins.forget('b#1');
    expect(pins.due(target('b#2'), 200, 2)).toEqual([expect.objectContaining(f)]);
  });

  it('a newer version replaces the pin; a deleted function is not pinned', () => {
    const pins = new Pins({ count: 1, retryMs: 1000 });
    expect(pins.add(f)).toBe(true);
    expect(pins.add({ name: 'f', version: 2 })).toBe(true);
    expect(pins.add(f)).toBe(false);
    expect(pins.due(target('a#1'), 0, 1)).toEqual([expect.objectContaining({ name: 'f', version: 2 })]);
    pins.remove('f');
    expect(pins.size).toBe(0);
    expect(pins.due(target('b#1'), 0, 1)).toEqual([]);
  });

  it('keeps at most `max` pins, dropping the oldest', () => {
    const pins = new Pins({ count: 1, max: 3 });
    for (let i = 0; i < 5; i++) pins.add({ name: `g${i}`, version: 1 });
    expect(pins.size).toBe(3);
    expect(pins.due(target('a#1'), 0, 1).map((fn) => fn.name)).toEqual(['g2', 'g3', 'g4']);
  });

  describe('per-function counts (the monitor\'s)', () => {
    const four = (...warm: string[][]): { incarnation: string; warm: Set<string> }[] => ['a#1', 'b#1', 'c#1', 'd#1'].map((incarnation, i) => target(incarnation, ...(warm[i] ?? [])));

    it('a raised count is topped up at once: boots already warm first, then the others in the order given', () => {
      const pins = new Pins({ count: 2, retryMs: 1000 });
      pins.add(f);
      pins.add({ name: 'g', version: 1 });
      pins.sent(f, 'a#1', 0);
      pins.sent(f, 'b#1', 0);
      // c is warm for f already (a call warmed it): it counts without a prepare.
      const raised = pins.setCounts(new Map([['f', 4], ['g', 2]]), 60_000, 100);
      expect(raised).toEqual(['f']);
      expect(pins.countOf('f', 100)).toBe(4);
      expect(pins.countOf('g', 100)).toBe(2);
      const sends = pins.topUp(raised, four([], [], ['f@1'], []), 100);
      expect(sends.map((send) => `${send.fn.name}->${send.incarnation}`)).toEqual(['f->d#1']);
      // Sent again the same: nothing rose, nothing to top up.
      for (const send of sends) pins.sent(send.fn, send.incarnation, 100);
      expect(pins.setCounts(new Map([['f', 4]]), 60_000, 200)).toEqual([]);
      expect(pins.topUp(['f'], four(), 200)).toEqual([]);
    });

    it('a later boot takes on a function short of its raised count, not of the default', () => {
      const pins = new Pins({ count: 2, retryMs: 1000 });
      pins.add(f);
      pins.sent(f, 'a#1', 0);
      pins.sent(f, 'b#1', 0);
      expect(pins.due(target('c#1'), 0, 3)).toEqual([]);
      pins.setCounts(new Map([['f', 3]]), 60_000, 10);
      expect(pins.due(target('d#1'), 10, 4)).toEqual([expect.objectContaining(f)]);
      pins.sent(f, 'd#1', 10);
      expect(pins.due(target('e#1'), 10, 5)).toEqual([]);
    });

    it('a lowered count stops the re-sends once enough boots confirmed, and a count of 0 pins nowhere', () => {
      const pins = new Pins({ count: 2, retryMs: 1000 });
      pins.add(f);
      pins.setCounts(new Map([['f', 3]]), 60_000, 0);
      for (const boot of ['a#1', 'b#1', 'c#1']) pins.sent(f, boot, 0);
      expect(pins.due(target('a#1', 'f@1'), 1000, 3)).toEqual([]);
      expect(pins.due(target('b#1', 'f@1'), 1000, 3)).toEqual([]);
      // c never confirmed: re-sent while fewer than 3 confirmed...
      expect(pins.due(target('c#1'), 1000, 3)).toEqual([expect.objectContaining(f)]);
      pins.sent(f, 'c#1', 1000);
      // ...not once the count is back to 2 (two confirmed already).
      pins.setCounts(new Map(), 60_000, 1500);
      expect(pins.due(target('c#1'), 2500, 3)).toEqual([]);
      // Count 0: no new boot takes it on, and top-ups send nothing.
      pins.setCounts(new Map([['f', 0]]), 60_000, 3000);
      expect(pins.due(target('z#1'), 3000, 4)).toEqual([]);
      expect(pins.topUp(['f'], four(), 3000)).toEqual([]);
    });

    it('the counts lapse at their validity: the default again', () => {
      const pins = new Pins({ count: 2 });
      pins.setCounts(new Map([['f', 5]]), 10_000, 0);
      expect(pins.countOf('f', 9999)).toBe(5);
      expect(pins.countOf('f', 10_000)).toBe(2);
      // A count that lapsed and comes again is a rise.
      expect(pins.setCounts(new Map([['f', 5]]), 30_000, 20_000)).toEqual(['f']);
    });

    it('a count beyond the boots known asks for every boot, no more', () => {
      const pins = new Pins({ count: 2 });
      pins.add(f);
      pins.setCounts(new Map([['f', 100]]), 60_000, 0);
      expect(pins.topUp(['f'], four(), 0).map((send) => send.incarnation)).toEqual(['a#1', 'b#1', 'c#1', 'd#1']);
    });
  });
});
