import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { setFatalHandler } from './crash-guard.js';
import { generateKeyPair, keyText } from './keys.js';
import { DESTINATION_SOCKETS_MAX, ZmqTransport } from './zmq-transport.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (frame: Uint8Array): string => new TextDecoder().decode(frame);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** `#key` for made-up addresses: a secure transport connects only to keyed ones. */
const KEY = `#${keyText(generateKeyPair().publicKey)}`;
/** Nobody listens on port 9 (discard) on loopback: the DEALER buffers, nothing is delivered. */
const SILENT = `tcp://127.0.0.1:9${KEY}`;
const portOf = (address: string): number => Number(/:(\d+)(?:#|$)/.exec(address)![1]);

/** Polls `condition` every 10 ms for at most `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited >= timeoutMs) throw new Error(`condition not met in ${timeoutMs} ms`);
    await sleep(10);
  }
}

describe('ZmqTransport', () => {
  const open: ZmqTransport[] = [];
  const bind = async (options: Parameters<typeof ZmqTransport.bind>[0] = {}) => {
    const transport = await ZmqTransport.bind(options);
    open.push(transport);
    return transport;
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });

  it('binds port 0 to a real tcp://127.0.0.1:port address', async () => {
    const transport = await bind();
    expect(transport.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+#[A-Za-z0-9_-]{43}$/);
    expect(portOf(transport.address)).toBeGreaterThan(0);
    const insecure = await bind({ keyPair: 'insecure' });
    expect(insecure.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
  });

  it('refuses to bind a port that is taken', async () => {
    const first = await bind();
    const port = portOf(first.address);
    await expect(ZmqTransport.bind({ port })).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
  });

  it('rejects addresses that are not tcp://host:port', async () => {
    const transport = await bind();
    for (const address of ['', 'mem://a', 'tcp://127.0.0.1', 'tcp://127.0.0.1:0', 'tcp://127.0.0.1:70000', 'tcp://:80', 'udp://127.0.0.1:80', 'tcp://127.0.0.1:80', `tcp://127.0.0.1:80${KEY.slice(0, -1)}`, `tcp://127.0.0.1:80${KEY}x`, `tcp://127.0.0.1:80#${'A'.repeat(42)}B`]) {
      await expect(transport.send(address, bytes('x')), address).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
    }
  });

  it('never throws from send, even for addresses on which ZeroMQ\'s connect() throws (a typed rejection instead)', async () => {
    const transport = await bind();
    // Each of these made zeromq's connect() throw EINVAL synchronously, out of send().
    for (const address of ['tcp://*:5555', 'tcp://-:1', 'tcp://\u00e9:1', 'tcp://_x:1', 'tcp://-a:1', 'tcp://x:', 'tcp://a:b:1', 'tcp://127.0.0.1:1;2']) {
      let sent: Promise<void> | undefined;
      expect(() => (sent = transport.send(address, bytes('x'))), address).not.toThrow();
      await expect(sent, address).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
    }
    expect(transport.counters.sendsRefused).toBe(8);
  });

  it('refuses, typed, a well-formed key no secret can be agreed with (a low-order point), instead of throwing', async () => {
    const transport = await ZmqTransport.bind({ host: '127.0.0.1', port: 0 });
    try {
      let sent: Promise<void> | undefined;
      expect(() => (sent = transport.send(`tcp://127.0.0.1:9#${'A'.repeat(43)}`, bytes('x')))).not.toThrow();
      await expect(sent).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
      expect(transport.socketCount).toBe(0);
    } finally {
      await transport.close();
    }
  });

  it('resolves host names itself, asynchronously: unresolvable names stall nothing, and a name that resolves is reached', async () => {
    // ZeroMQ resolves names synchronously in its one I/O thread: 300 unresolvable reply addresses
    // once stalled every socket of the process for seconds at a time.
    const [sender, receiver] = [await bind(), await bind()];
    const got: string[] = [];
    receiver.onFrame((frame) => got.push(text(frame)));
    for (let i = 0; i < 300; i++) void sender.send(`tcp://fuzz-${i}.example.invalid:1${KEY}`, bytes('lost')).catch(() => {});
    // A stalled I/O thread held every frame for seconds (5 s a name here): this one must arrive meanwhile.
    await sender.send(receiver.address, bytes('by address'));
    await until(() => got.length === 1, 2000);
    await sender.send(receiver.address.replace('127.0.0.1', 'localhost'), bytes('by name'));
    await until(() => got.length === 2, 5000);
    expect(got).toEqual(['by address', 'by name']);
  });

  it('keeps at most socketsMax destination sockets, however many addresses it is asked to send to, and stays able to send', async () => {
    // 1,100 distinct unreachable reply addresses once exhausted the context's 1,023 sockets: every
    // later `new Push()` threw EMFILE and the node never answered a new peer again.
    const [sender, receiver] = [await bind(), await bind()];
    const got: string[] = [];
    receiver.onFrame((frame) => got.push(text(frame)));
    for (let i = 0; i < 1100; i++) await sender.send(`tcp://127.0.0.1:${20_000 + i}${KEY}`, bytes('lost'));
    expect(sender.socketCount).toBeLessThanOrEqual(DESTINATION_SOCKETS_MAX);
    expect(sender.counters.socketsEvicted).toBeGreaterThanOrEqual(1100 - DESTINATION_SOCKETS_MAX);
    await sender.send(receiver.address, bytes('fresh peer'));
    await until(() => got.length === 1);
    expect(got).toEqual(['fresh peer']);
    // A hard bound: also when every socket still has frames waiting (ZeroMQ holds them for peers that never answer).
    const small = await bind({ socketsMax: 4, sendHighWaterMark: 1 });
    for (let i = 0; i < 40; i++) void small.send(`tcp://127.0.0.1:${21_500 + i}${KEY}`, new Uint8Array(64)).catch(() => {});
    expect(small.socketCount).toBeLessThanOrEqual(4);
  });

  it('gives each connection a fair share of the receiver\'s time: a flood of expensive frames does not hold up another peer', async () => {
    const [flooder, polite, server] = [await bind(), await bind(), await bind()];
    const order: string[] = [];
    server.onFrame((frame) => {
      const label = text(frame);
      order.push(label);
      if (label === 'flood') {
        const until = performance.now() + 2;
        while (performance.now() < until) {
          // 2 ms of work per flood frame: 400 ms for the whole flood.
        }
      }
    });
    await Promise.all(Array.from({ length: 200 }, () => flooder.send(server.address, bytes('flood'))));
    await until(() => order.length >= 5);
    await polite.send(server.address, bytes('polite'));
    await until(() => order.includes('polite'));
    const floodBefore = order.indexOf('polite');
    // Without fairness the polite frame waits behind the whole multipart flood (200 frames).
    expect(floodBefore).toBeLessThan(100);
    await until(() => order.length === 201);
  });

  it('coalesces frames queued during a send into multipart batches, counting frames and batches', async () => {
    const [a, b] = [await bind(), await bind()];
    const got: string[] = [];
    b.onFrame((frame) => got.push(text(frame)));
    await Promise.all(Array.from({ length: 3000 }, (_, i) => a.send(b.address, bytes(String(i)))));
    await until(() => got.length >= 3000);
    expect(got).toEqual(Array.from({ length: 3000 }, (_, i) => String(i)));
    expect(a.counters.framesSent).toBe(3000);
    expect(b.counters.framesReceived).toBe(3000);
    // Everything after the first frame queued behind an in-flight send: far fewer batches than frames.
    expect(a.counters.batchesSent).toBeGreaterThanOrEqual(2);
    expect(a.counters.batchesSent).toBeLessThan(100);
    expect(a.counters.sendErrors).toBe(0);
  });

  /** Sends `frameBytes`-byte frames to SILENT in rounds until one is refused; returns all outcomes. */
  async function fill(transport: ZmqTransport, frameBytes: number) {
    const outcomes: { settled: 'pending' | 'sent' | string }[] = [];
    for (let round = 0; round < 100; round++) {
      for (let i = 0; i < 10; i++) {
        const outcome: { settled: string } = { settled: 'pending' };
        outcomes.push(outcome);
        transport.send(SILENT, new Uint8Array(frameBytes)).then(
          () => (outcome.settled = 'sent'),
          (error: { code: string }) => (outcome.settled = error.code),
        );
      }
      await sleep(2);
      // Full: ZeroMQ stopped taking frames (some wait) and this round was refused.
      if (outcomes.some((o) => o.settled === 'pending') && outcomes.at(-1)?.settled === ErrorCode.TRANSPORT_BUSY) break;
    }
    return outcomes;
  }

  it('pushes back with TRANSPORT_BUSY when a destination queue is full of frames', async () => {
    const transport = await bind({ queueFramesMax: 5, sendHighWaterMark: 10 });
    // Nobody listens: ZeroMQ buffers up to its high-water mark, then its send waits and our queue fills.
    const outcomes = await fill(transport, 8);
    const count = (settled: string) => outcomes.filter((o) => o.settled === settled).length;
    expect(count(ErrorCode.TRANSPORT_BUSY)).toBeGreaterThan(0);
    // The queue's worth waits for room, plus the batch stuck in ZeroMQ's send.
    expect(count('pending')).toBeGreaterThanOrEqual(5);
    expect(count('pending')).toBeLessThanOrEqual(5 + 10);
    expect(count('sent')).toBeLessThanOrEqual(100); // bounded by the high-water mark, not the attempts
    // Another destination has its own queue.
    const other = await bind();
    await transport.send(other.address, bytes('fine'));
  });

  it('pushes back with TRANSPORT_BUSY when a destination queue is full of bytes', async () => {
    const transport = await bind({ queueBytesMax: 100, sendHighWaterMark: 10 });
    const outcomes = await fill(transport, 40);
    expect(outcomes.filter((o) => o.settled === ErrorCode.TRANSPORT_BUSY).length).toBeGreaterThan(0);
    // 2 x 40 bytes fit in 100 bytes of queue; the batch stuck in ZeroMQ's send is not counted.
    expect(outcomes.filter((o) => o.settled === 'pending').length).toBeGreaterThanOrEqual(2);
    expect(outcomes.filter((o) => o.settled === 'pending').length).toBeLessThanOrEqual(2 + 10);
  });

  it('settles queued sends when closed, and refuses new ones with TRANSPORT_CLOSED', async () => {
    const transport = await bind({ queueFramesMax: 100, sendHighWaterMark: 1 });
    const pending = Array.from({ length: 50 }, () => transport.send(SILENT, new Uint8Array(8)));
    await transport.close();
    await Promise.race([Promise.allSettled(pending), sleep(2000).then(() => { throw new Error('queued sends never settled'); })]);
    await expect(transport.send(SILENT, bytes('x'))).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_CLOSED });
  });

  it('closes least recently used destination sockets beyond socketsMax and still delivers', async () => {
    const sender = await bind({ socketsMax: 2 });
    const receivers = await Promise.all([bind(), bind(), bind(), bind()]);
    const got = receivers.map(() => [] as string[]);
    receivers.forEach((receiver, i) => receiver.onFrame((frame) => got[i]!.push(text(frame))));
    for (let round = 0; round < 3; round++) {
      for (const [i, receiver] of receivers.entries()) {
        await sender.send(receiver.address, bytes(`${round}`));
        await until(() => got[i]!.length === round + 1);
      }
    }
    expect(got).toEqual(receivers.map(() => ['0', '1', '2']));
    expect((sender as unknown as { destinations: Map<string, unknown> }).destinations.size).toBeLessThanOrEqual(2);
  });

  it('reports a receiver that throws to the process\'s fatal handler (a bug is never swallowed), and goes on until it acts', async () => {
    const fatal: string[] = [];
    const restore = setFatalHandler((error, where) => fatal.push(`${(error as Error).message} in ${where}`));
    try {
      const [a, b] = [await bind(), await bind()];
      const got: string[] = [];
      b.onFrame((frame) => {
        got.push(text(frame));
        throw new Error('receiver bug');
      });
      await a.send(b.address, bytes('1'));
      await a.send(b.address, bytes('2'));
      await until(() => got.length === 2);
      expect(got).toEqual(['1', '2']);
      expect(fatal).toEqual([`receiver bug in the frame receiver of ${b.address}`, `receiver bug in the frame receiver of ${b.address}`]);
    } finally {
      restore();
    }
  });

  it('reaches a peer restarted on the same port', async () => {
    const sender = await bind();
    let receiver = await bind();
    const address = receiver.address;
    const port = portOf(address);
    const got: string[] = [];
    receiver.onFrame((f) => got.push(text(f)));
    await sender.send(address, bytes('before'));
    await until(() => got.length === 1);
    await receiver.close();
    // The port may take a moment to be free again (or, rarely, another test's ephemeral bind
    // takes it meanwhile): retry the bind, bounded.
    let rebound: ZmqTransport | undefined;
    for (let attempt = 0; attempt < 100 && rebound === undefined; attempt++) {
      rebound = await bind({ port, keyPair: receiver.keyPair! }).catch(async () => {
        await sleep(20);
        return undefined;
      });
    }
    if (rebound === undefined) throw new Error(`port ${port} could not be bound again in 2 s`);
    receiver = rebound;
    receiver.onFrame((f) => got.push(text(f)));
    // Frames sent while the peer was down may be lost; keep sending until one gets through (bounded).
    for (let i = 0; i < 250 && !got.includes('after'); i++) {
      await sender.send(address, bytes('after'));
      await sleep(20);
    }
    expect(got[0]).toBe('before');
    expect(got).toContain('after');
  });
});
