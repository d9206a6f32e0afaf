import { generateKeyPair, keyText } from './keys.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { MemoryNetwork } from './memory-network.js';
import type { MemoryNetworkOptions } from './memory-network.js';
import { seededRandom } from './random.js';
import { transportConformance } from './transport-conformance.js';
import { VirtualClock } from './virtual-clock.js';
import { systemClock } from './transport.js';
import type { Transport } from './transport.js';
import { ZmqTransport } from './zmq-transport.js';

transportConformance('ZeroMQ on 127.0.0.1', {
  create: () => ZmqTransport.bind({ host: '127.0.0.1', port: 0 }),
  // Port 9 (discard): nobody listens on loopback; PUSH buffers the frames, nothing arrives.
  silentAddress: `tcp://127.0.0.1:9#${keyText(generateKeyPair().publicKey)}`,
});

let counter = 0;
const sharedNetwork = new MemoryNetwork({ clock: systemClock, random: seededRandom(7) });
transportConformance('in-memory network', {
  create: async () => sharedNetwork.endpoint(`node-${counter++}`),
  silentAddress: 'mem://nobody',
});

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (frame: Uint8Array): string => new TextDecoder().decode(frame);

describe('MemoryNetwork on a virtual clock', () => {
  const open: Transport[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  /** A network, named endpoints and what each received, in order. */
  function world(options: Omit<MemoryNetworkOptions, 'clock' | 'random'>, seed = 1, names = ['a', 'b', 'c']) {
    const clock = new VirtualClock();
    const network = new MemoryNetwork({ clock, random: seededRandom(seed), ...options });
    const inbox = new Map<string, string[]>();
    const endpoints = new Map<string, Transport>();
    for (const name of names) {
      const endpoint = network.endpoint(name);
      open.push(endpoint);
      const got: string[] = [];
      endpoint.onFrame((frame) => got.push(text(frame)));
      inbox.set(name, got);
      endpoints.set(name, endpoint);
    }
    const send = (from: string, to: string, message: string): Promise<void> => endpoints.get(from)!.send(`mem://${to}`, bytes(message));
    return { clock, network, inbox: (name: string) => inbox.get(name)!, endpoints, send };
  }

  it('is a pure function of the seed under drops, duplicates, delays and reordering', async () => {
    const run = async (seed: number) => {
      const w = world({ delayMs: { min: 1, max: 20 }, dropRate: 0.2, duplicateRate: 0.2, reorder: true }, seed);
      for (let i = 0; i < 300; i++) await w.send('a', 'b', `m${i}`);
      w.clock.advance(100);
      return { got: [...w.inbox('b')], counters: { ...w.network.counters } };
    };
    const first = await run(42);
    expect(await run(42)).toEqual(first);
    expect((await run(43)).got).not.toEqual(first.got);
    // Every frame sent (and every duplicate) was either delivered or dropped.
    expect(first.counters.delivered + first.counters.dropped).toBe(first.counters.sent + first.counters.duplicated);
    expect(first.counters.dropped).toBeGreaterThan(30);
    expect(first.counters.duplicated).toBeGreaterThan(30);
    expect(first.got.length).toBe(first.counters.delivered);
    // Reordering happened: the delivered sequence is not sorted by send index.
    const indexes = first.got.map((m) => Number(m.slice(1)));
    expect(indexes).not.toEqual([...indexes].sort((x, y) => x - y));
  });

  it('keeps FIFO per sender->receiver pair with random delays when reorder is off', async () => {
    const w = world({ delayMs: { min: 0, max: 50 } });
    for (let i = 0; i < 500; i++) {
      await w.send('a', 'c', `a${i}`);
      await w.send('b', 'c', `b${i}`);
      if (i % 7 === 0) w.clock.advance(3);
    }
    w.clock.advance(100);
    const got = w.inbox('c');
    expect(got.length).toBe(1000);
    for (const sender of ['a', 'b']) {
      expect(got.filter((m) => m.startsWith(sender))).toEqual(Array.from({ length: 500 }, (_, i) => `${sender}${i}`));
    }
    // The two senders interleave (they are independent), so ordering is really per pair.
    expect(got.slice(0, 500).some((m) => m.startsWith('b'))).toBe(true);
  });

  it('delivers no earlier than delayMs.min and no later than delayMs.max', async () => {
    const w = world({ delayMs: { min: 10, max: 20 } });
    await w.send('a', 'b', 'x');
    w.clock.advance(9.99);
    expect(w.inbox('b')).toEqual([]);
    w.clock.advance(10.01);
    expect(w.inbox('b')).toEqual(['x']);
  });

  it('drops and duplicates at the configured rates', async () => {
    const w = world({ dropRate: 0.5, duplicateRate: 0.25 }, 9);
    for (let i = 0; i < 2000; i++) await w.send('a', 'b', `m${i}`);
    w.clock.advance(1);
    const { dropped, duplicated, delivered } = w.network.counters;
    expect(dropped).toBeGreaterThan(850);
    expect(dropped).toBeLessThan(1150);
    expect(duplicated).toBeGreaterThan(150); // 0.25 of the ~1000 survivors
    expect(duplicated).toBeLessThan(350);
    expect(delivered).toBe(2000 - dropped + duplicated);
    expect(new Set(w.inbox('b')).size).toBe(2000 - dropped);
  });

  it('partitions cut both directions, including frames in flight, and heal restores', async () => {
    const w = world({ delayMs: { min: 5, max: 5 } });
    await w.send('a', 'b', 'in flight');
    w.network.partition(['a'], ['b', 'c']);
    w.clock.advance(10);
    expect(w.inbox('b')).toEqual([]);
    await w.send('b', 'a', 'b->a');
    await w.send('a', 'c', 'a->c');
    await w.send('b', 'c', 'b->c'); // same side: unaffected
    w.clock.advance(10);
    expect(w.inbox('a')).toEqual([]);
    expect(w.inbox('c')).toEqual(['b->c']);
    w.network.heal();
    await w.send('a', 'b', 'healed');
    w.clock.advance(10);
    expect(w.inbox('b')).toEqual(['healed']);
    expect(w.network.counters.dropped).toBe(3);
  });

  it('loses frames to a crashed endpoint, in flight too, until it recovers', async () => {
    const w = world({ delayMs: { min: 5, max: 5 } });
    await w.send('a', 'b', 'in flight');
    w.network.crash('b');
    await w.send('a', 'b', 'while down');
    w.clock.advance(10);
    expect(w.inbox('b')).toEqual([]);
    w.network.recover('b');
    await w.send('a', 'b', 'back');
    w.clock.advance(10);
    expect(w.inbox('b')).toEqual(['back']);
  });

  it('drops frames to unknown mem:// names silently but rejects other schemes', async () => {
    const w = world({});
    await w.send('a', 'ghost', 'lost');
    w.clock.advance(1);
    expect(w.network.counters.dropped).toBe(1);
    await expect(w.endpoints.get('a')!.send('tcp://127.0.0.1:1', bytes('x'))).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
    await expect(w.endpoints.get('a')!.send('mem://', bytes('x'))).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
  });

  it('pushes back with TRANSPORT_BUSY when too many frames are in flight to one endpoint', async () => {
    const w = world({ queueFramesMax: 10, delayMs: { min: 1, max: 1 } });
    const results = await Promise.allSettled(Array.from({ length: 15 }, (_, i) => w.send('a', 'b', `m${i}`)));
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(Array(5).fill(ErrorCode.TRANSPORT_BUSY));
    w.clock.advance(1);
    expect(w.inbox('b').length).toBe(10);
    await w.send('a', 'b', 'room again');
    w.clock.advance(1);
    expect(w.inbox('b').at(-1)).toBe('room again');
  });

  it('binds one live endpoint per name; a closed name can be bound again', async () => {
    const w = world({}, 1, ['a']);
    expect(() => w.network.endpoint('a')).toThrow(expect.objectContaining({ code: ErrorCode.TRANSPORT_BAD_ADDRESS }));
    await w.endpoints.get('a')!.close();
    const again = w.network.endpoint('a');
    open.push(again);
    expect(again.address).toBe('mem://a');
  });

  it('gives each delivery its own copy of the frame', async () => {
    const w = world({ duplicateRate: 1 }, 1, ['a', 'b']);
    const frames: Uint8Array[] = [];
    w.endpoints.get('b')!.onFrame((frame) => frames.push(frame));
    const frame = bytes('abc');
    await w.endpoints.get('a')!.send('mem://b', frame);
    frame[0] = 0;
    w.clock.advance(1);
    expect(frames.map(text)).toEqual(['abc', 'abc']);
    expect(frames[0]).not.toBe(frames[1]);
  });
});
