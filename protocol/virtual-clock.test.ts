import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { MemoryNetwork } from './memory-network.js';
import { seededRandom } from './random.js';
import { VirtualClock } from './virtual-clock.js';

describe('VirtualClock', () => {
  it('runs timers in due order, ties in the order they were set, and cancels', () => {
    const clock = new VirtualClock();
    const order: string[] = [];
    clock.setTimer(10, () => order.push('b'));
    clock.setTimer(5, () => order.push('a'));
    clock.setTimer(10, () => order.push('c'));
    const cancel = clock.setTimer(7, () => order.push('never'));
    cancel();
    clock.runUntil(100, 1000);
    expect(order).toEqual(['a', 'b', 'c']);
    expect(clock.now()).toBe(100);
  });

  it('stops at the step bound', () => {
    const clock = new VirtualClock();
    const again = (): void => void clock.setTimer(0, again);
    again();
    expect(clock.runUntil(10, 500)).toBe(500);
  });
});

describe('MemoryNetwork faults', () => {
  const frames = (network: MemoryNetwork, clock: VirtualClock, count: number): string[] => {
    const a = network.endpoint('a');
    const b = network.endpoint('b');
    const got: string[] = [];
    b.onFrame((f) => got.push(new TextDecoder().decode(f)));
    for (let i = 0; i < count; i++) void a.send('mem://b', new TextEncoder().encode(String(i)));
    clock.runUntil(10_000, 100_000);
    return got;
  };

  it('is deterministic per seed: loss, duplication and reordering replay exactly', () => {
    const run = (seed: number): string[] => {
      const clock = new VirtualClock();
      const network = new MemoryNetwork({ clock, random: seededRandom(seed), delayMs: { min: 1, max: 50 }, dropRate: 0.2, duplicateRate: 0.2, reorder: true });
      return frames(network, clock, 200);
    };
    const first = run(5);
    expect(run(5)).toEqual(first);
    expect(run(6)).not.toEqual(first);
    expect(first.length).toBeGreaterThan(100);
    expect(new Set(first).size).toBeLessThan(first.length); // some duplicates
    expect(new Set(first).size).toBeLessThan(200); // some losses
    expect(first).not.toEqual([...first].sort((x, y) => Number(x) - Number(y))); // some reordering
  });

  it('keeps FIFO per pair without reordering, even with random delays', () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, random: seededRandom(1), delayMs: { min: 1, max: 50 } });
    expect(frames(network, clock, 300)).toEqual(Array.from({ length: 300 }, (_, i) => String(i)));
  });

  it('partitions, heals, crashes and recovers', () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, random: seededRandom(1) });
    const a = network.endpoint('a');
    const b = network.endpoint('b');
    const got: string[] = [];
    b.onFrame((f) => got.push(new TextDecoder().decode(f)));
    const send = (text: string): void => {
      void a.send('mem://b', new TextEncoder().encode(text));
      clock.runUntil(clock.now() + 10, 100);
    };
    network.partition(['a'], ['b']);
    send('cut');
    network.heal();
    send('healed');
    network.crash('b');
    send('crashed');
    network.recover('b');
    send('recovered');
    expect(got).toEqual(['healed', 'recovered']);
    expect(network.counters.dropped).toBe(2);
  });

  it('refuses a second endpoint of one name and a full queue', async () => {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, random: seededRandom(1), queueFramesMax: 2 });
    const a = network.endpoint('a');
    network.endpoint('b');
    expect(() => network.endpoint('b')).toThrow(expect.objectContaining({ code: ErrorCode.TRANSPORT_BAD_ADDRESS }));
    await a.send('mem://b', new Uint8Array(1));
    await a.send('mem://b', new Uint8Array(1));
    await expect(a.send('mem://b', new Uint8Array(1))).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BUSY });
  });
});
