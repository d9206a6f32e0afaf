/**
 * Pins: a prepare that was lost is sent again until the executor reports the function warm, a
 * boot that joins later takes on functions short of holders, and a warm boot is never re-sent a
 * pin (its keep-alive decides).
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
});
