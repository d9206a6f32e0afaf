/**
 * The node:net transport over real loopback sockets: the Transport conformance suite in both
 * modes, then what it promises beyond it: TLS-PSK proves the sender's key and obeys the process's
 * policy, a wrong key or a plain peer delivers nothing, hostile bytes close only their own
 * connection (counted), big frames and batches arrive intact and in order, queues are bounded.
 */
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { ErrorCode } from '../lattices/index.js';
import { setFatalHandler } from './crash-guard.js';
import { generateKeyPair, keyText } from './keys.js';
import { NET_FRAME_BYTES_MAX, NetTransport } from './net-transport.js';
import type { NetTransportOptions } from './net-transport.js';
import { dialPsk, pskFor, pskSecureContext } from './tls-psk.js';
import { transportConformance } from './transport-conformance.js';
import { setZapPolicy, zapCounters } from './zap-policy.js';

const KEY = `#${keyText(generateKeyPair().publicKey)}`;

transportConformance('node:net on 127.0.0.1 (TLS-PSK)', {
  create: () => NetTransport.bind({ host: '127.0.0.1', port: 0 }),
  // Port 9 (discard): nobody listens on loopback; the connection is refused, the frames are lost.
  silentAddress: `tcp://127.0.0.1:9${KEY}`,
});

transportConformance('node:net on 127.0.0.1 (insecure)', {
  create: () => NetTransport.bind({ host: '127.0.0.1', port: 0, keyPair: 'insecure' }),
  silentAddress: 'tcp://127.0.0.1:9',
});

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (frame: Uint8Array): string => new TextDecoder().decode(frame);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const portOf = (address: string): number => Number(/:(\d+)(?:#|$)/.exec(address)![1]);
const keyOf = (address: string): string => address.split('#')[1] ?? '';

/** Polls `condition` every 10 ms for at most `timeoutMs`; false if it never held. */
async function until(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited >= timeoutMs) return false;
    await sleep(10);
  }
  return true;
}

/** A raw TCP connection to `port`; resolves once connected. */
async function rawConnection(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return socket;
}

/** Resolves once `socket` is closed (bounded: false after `timeoutMs`). */
function closed(socket: Socket, timeoutMs = 5000): Promise<boolean> {
  if (socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.resume();
  });
}

/** A frame's bytes on the wire: 4-byte big-endian length, then the bytes. */
function framed(payload: Uint8Array): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.byteLength);
  return Buffer.concat([header, payload]);
}

const GREETING_PLAIN = Buffer.from('LFN1\x00', 'latin1');
const GREETING_TLS = Buffer.from('LFN1\x01', 'latin1');

/** A TCP relay on loopback that forwards to `port` and keeps every byte it passes, both ways. */
async function relay(port: number): Promise<{ port: number; seen: () => Buffer; close: () => Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets: Socket[] = [];
  const server: Server = createServer((inbound) => {
    const outbound = connect(port, '127.0.0.1');
    sockets.push(inbound, outbound);
    inbound.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      outbound.write(chunk);
    });
    outbound.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      inbound.write(chunk);
    });
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    seen: () => Buffer.concat(chunks),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('NetTransport', () => {
  const open: { close(): unknown }[] = [];
  const bind = async (options: NetTransportOptions = {}): Promise<NetTransport> => {
    const transport = await NetTransport.bind(options);
    open.push(transport);
    return transport;
  };
  afterEach(async () => {
    setZapPolicy(() => true);
    for (const item of open.splice(0).reverse()) await item.close();
  });

  it('binds port 0 to tcp://127.0.0.1:port, with #key when secure', async () => {
    const secure = await bind();
    expect(secure.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+#[A-Za-z0-9_-]{43}$/);
    expect(keyOf(secure.address)).toBe(keyText(secure.keyPair!.publicKey));
    expect(secure.verifiesPeers).toBe(true);
    const insecure = await bind({ keyPair: 'insecure' });
    expect(insecure.address).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(insecure.verifiesPeers).toBe(false);
    await expect(NetTransport.bind({ port: portOf(secure.address) })).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
  });

  it('tells the receiver which key sent each frame, proven by the handshake', async () => {
    const [a, b, receiver] = [await bind(), await bind(), await bind()];
    const got: [string, string | undefined][] = [];
    receiver.onFrame((frame, peer) => got.push([text(frame), peer]));
    await a.send(receiver.address, bytes('from a'));
    await b.send(receiver.address, bytes('from b'));
    expect(await until(() => got.length === 2)).toBe(true);
    expect(new Map(got)).toEqual(new Map([['from a', keyOf(a.address)], ['from b', keyOf(b.address)]]));
    expect(receiver.connectionCounters.inboundAccepted).toBe(2);
  });

  it('the policy refuses a key at the handshake: nothing it sends arrives, and the refusal is counted', async () => {
    const receiver = await bind();
    const banned = generateKeyPair();
    const bannedText = keyText(banned.publicKey);
    setZapPolicy((key) => keyText(key) !== bannedText);
    const refusedBefore = zapCounters.refused;
    const sender = await bind({ keyPair: banned });
    const allowed = await bind();
    const got: string[] = [];
    receiver.onFrame((frame) => got.push(text(frame)));
    await sender.send(receiver.address, bytes('banned'));
    await allowed.send(receiver.address, bytes('allowed'));
    expect(await until(() => got.length === 1)).toBe(true);
    expect(await until(() => zapCounters.refused > refusedBefore && receiver.connectionCounters.handshakesFailed === 1)).toBe(true);
    expect(await until(() => sender.counters.sendErrors === 1)).toBe(true);
    await sleep(100);
    expect(got).toEqual(['allowed']);
  });

  it('a client naming a key no secret can be shared with (a low-order point) fails its handshake, counted', async () => {
    const receiver = await bind();
    const raw = await rawConnection(portOf(receiver.address));
    raw.write(GREETING_TLS);
    const me = generateKeyPair();
    // Our own key pair for the PSK, but the all-zero key as the identity (dialPsk names keyPair's key: build the pair by hand).
    const claimed = { publicKey: new Uint8Array(32), secretKey: me.secretKey };
    const tls = dialPsk(raw, claimed, pskFor(me, Buffer.from(keyOf(receiver.address), 'base64url')), pskSecureContext());
    tls.on('error', () => {});
    expect(await closed(raw)).toBe(true);
    expect(receiver.connectionCounters.handshakesFailed).toBe(1);
    expect(receiver.connectionCounters.inboundAccepted).toBe(0);
  });

  it('a sender that dials with another server key delivers nothing (the PSKs differ)', async () => {
    const receiver = await bind();
    const sender = await bind();
    const got: string[] = [];
    receiver.onFrame((frame) => got.push(text(frame)));
    const wrongKey = receiver.address.replace(/#.*$/, KEY);
    await sender.send(wrongKey, bytes('to an impostor key'));
    expect(await until(() => receiver.connectionCounters.handshakesFailed === 1)).toBe(true);
    expect(await until(() => sender.counters.sendErrors === 1)).toBe(true);
    await sender.send(receiver.address, bytes('right key'));
    expect(await until(() => got.length === 1)).toBe(true);
    await sleep(100);
    expect(got).toEqual(['right key']);
  });

  it('plain and secure endpoints do not talk: refused at the greeting, counted; two plain ones do', async () => {
    const secure = await bind();
    const plain = await bind({ keyPair: 'insecure' });
    const plainReceiver = await bind({ keyPair: 'insecure' });
    const got: string[] = [];
    secure.onFrame((frame) => got.push(text(frame)));
    const plainGot: string[] = [];
    plainReceiver.onFrame((frame) => plainGot.push(text(frame)));
    await plain.send(secure.address, bytes('plain to secure'));
    await plain.send(plainReceiver.address, bytes('plain to plain'));
    expect(await until(() => plainGot.length === 1)).toBe(true);
    expect(await until(() => secure.connectionCounters.badGreetings === 1)).toBe(true);
    // A secure endpoint sends only to keyed addresses; given one, a plain receiver refuses its greeting.
    await expect(secure.send(plainReceiver.address, bytes('x'))).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
    await secure.send(`${plainReceiver.address}${KEY}`, bytes('secure to plain'));
    expect(await until(() => plainReceiver.connectionCounters.badGreetings === 1)).toBe(true);
    await sleep(100);
    expect(got).toEqual([]);
    expect(plainGot).toEqual(['plain to plain']);
  });

  it('garbage, a ZeroMQ peer and an oversized length each close only their own connection, counted, while another peer keeps delivering', async () => {
    for (const mode of ['secure', 'insecure'] as const) {
      const receiver = await bind(mode === 'secure' ? {} : { keyPair: 'insecure' });
      const honest = await bind(mode === 'secure' ? {} : { keyPair: 'insecure' });
      const got: string[] = [];
      receiver.onFrame((frame) => got.push(text(frame)));
      await honest.send(receiver.address, bytes('first'));
      expect(await until(() => got.length === 1), mode).toBe(true);
      const port = portOf(receiver.address);

      const garbage = await rawConnection(port);
      garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await closed(garbage), `${mode}: garbage closed`).toBe(true);

      const dealer = new Dealer({ linger: 0 });
      open.push(dealer);
      dealer.connect(`tcp://127.0.0.1:${port}`);
      void dealer.send('zeromq frame').catch(() => {});
      expect(await until(() => receiver.connectionCounters.badGreetings === 2), `${mode}: zeromq peer refused`).toBe(true);
      dealer.close();

      // An oversized length prefix, after a valid greeting (and, secure, a valid handshake).
      const huge = Buffer.alloc(4);
      huge.writeUInt32BE(NET_FRAME_BYTES_MAX + 1);
      const raw = await rawConnection(port);
      if (mode === 'insecure') raw.write(Buffer.concat([GREETING_PLAIN, framed(bytes('before the flood')), huge]));
      else {
        raw.write(GREETING_TLS);
        const me = generateKeyPair();
        const tls = dialPsk(raw, me, pskFor(me, Buffer.from(keyOf(receiver.address), 'base64url')), pskSecureContext());
        tls.on('error', () => {});
        await new Promise<void>((resolve) => tls.once('secureConnect', () => resolve()));
        tls.write(Buffer.concat([framed(bytes('before the flood')), huge, Buffer.alloc(1000)]));
      }
      expect(await closed(raw), `${mode}: oversized closed`).toBe(true);
      expect(receiver.connectionCounters.oversizedFrames).toBe(1);

      await honest.send(receiver.address, bytes('still here'));
      expect(await until(() => got.length === 3), mode).toBe(true);
      expect(got).toEqual(['first', 'before the flood', 'still here']);
      expect(honest.counters.sendErrors).toBe(0);
    }
  });

  it('a 1 MiB frame goes there and back; a 16 MiB one too', async () => {
    const [a, b] = [await bind(), await bind()];
    const back: Uint8Array[] = [];
    a.onFrame((frame) => back.push(frame));
    b.onFrame((frame) => void b.send(a.address, frame));
    const mib = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) % 251);
    await a.send(b.address, mib);
    expect(await until(() => back.length === 1)).toBe(true);
    expect(Buffer.compare(Buffer.from(back[0]!), Buffer.from(mib))).toBe(0);
    const big = new Uint8Array(16 * 1024 * 1024).fill(7);
    await a.send(b.address, big);
    expect(await until(() => back.length === 2, 10_000)).toBe(true);
    expect(back[1]!.byteLength).toBe(big.byteLength);
  });

  it('frames queued in one turn leave in one write and arrive in order; batches are capped by batchFramesMax', async () => {
    for (const keyPair of [undefined, 'insecure' as const]) {
      const a = await bind(keyPair === undefined ? {} : { keyPair });
      const b = await bind(keyPair === undefined ? {} : { keyPair });
      const got: string[] = [];
      b.onFrame((frame) => got.push(text(frame)));
      await a.send(b.address, bytes('warm-up')); // connected from now on
      const batchesBefore = a.counters.batchesSent;
      await Promise.all(Array.from({ length: 3000 }, (_, i) => a.send(b.address, bytes(String(i)))));
      expect(await until(() => got.length === 3001)).toBe(true);
      expect(got.slice(1)).toEqual(Array.from({ length: 3000 }, (_, i) => String(i)));
      // 3000 frames in one turn: ceil(3000 / 1024) writes.
      expect(a.counters.batchesSent - batchesBefore).toBe(3);
      expect(a.counters.framesSent).toBe(3001);
      expect(b.counters.framesReceived).toBe(3001);
    }
  });

  it('pushes back with TRANSPORT_BUSY when a destination queue is full, in frames and in bytes', async () => {
    const receiver = await bind();
    const byFrames = await bind({ queueFramesMax: 5 });
    // Nothing is written before the connection is made: the sixth send of this turn is refused.
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, () => byFrames.send(receiver.address, bytes('x'))));
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'sent' : (o.reason as { code: string }).code))).toEqual([...Array(5).fill('sent'), ...Array(3).fill(ErrorCode.TRANSPORT_BUSY)]);
    const byBytes = await bind({ queueBytesMax: 100 });
    const sized = await Promise.allSettled([40, 40, 40].map((size) => byBytes.send(receiver.address, new Uint8Array(size))));
    expect(sized.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    // A receiver that never reads: the socket's buffers fill, then our queue, then sends are refused.
    const stalledSockets: Socket[] = [];
    const stalled = createServer((socket) => {
      stalledSockets.push(socket);
      socket.pause();
    });
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    open.push({
      close: () => {
        for (const socket of stalledSockets) socket.destroy();
        return new Promise<void>((resolve) => stalled.close(() => resolve()));
      },
    });
    const sender = await bind({ keyPair: 'insecure', queueFramesMax: 4 });
    const address = `tcp://127.0.0.1:${(stalled.address() as { port: number }).port}`;
    let refused = 0;
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 2000 && refused === 0; i++) {
      pending.push(sender.send(address, new Uint8Array(256 * 1024)).catch((error: { code: string }) => {
        if (error.code === ErrorCode.TRANSPORT_BUSY) refused++;
      }));
      await sleep(1);
    }
    expect(refused).toBe(1);
    // Closing settles the frames still queued.
    await sender.close();
    await Promise.race([Promise.all(pending), sleep(2000).then(() => { throw new Error('queued sends never settled'); })]);
  });

  it('loses frames to a dead peer (counted), backs off, and reaches a peer restarted on the same port', async () => {
    const sender = await bind();
    let receiver = await bind();
    const address = receiver.address;
    const port = portOf(address);
    const got: string[] = [];
    receiver.onFrame((f) => got.push(text(f)));
    await sender.send(address, bytes('before'));
    expect(await until(() => got.length === 1)).toBe(true);
    await receiver.close();
    // The port is free at once (close releases it): bind again on it.
    receiver = await bind({ port, keyPair: receiver.keyPair! });
    receiver.onFrame((f) => got.push(text(f)));
    // The old connection closed: frames on it may be lost; keep sending until one gets through (bounded).
    for (let i = 0; i < 250 && !got.includes('after'); i++) {
      await sender.send(address, bytes('after'));
      await sleep(20);
    }
    expect(got[0]).toBe('before');
    expect(got).toContain('after');
    // A dead peer: each attempt fails, its frames are counted lost, and attempts back off.
    const silent = `tcp://127.0.0.1:9${KEY}`;
    for (let i = 0; i < 20; i++) {
      await sender.send(silent, bytes('lost'));
      await sleep(5);
    }
    expect(await until(() => sender.counters.sendErrors >= 20)).toBe(true);
    // Sends queued while an attempt is made or awaited share it: far fewer attempts than sends.
    expect(sender.connectionCounters.outboundLost).toBeLessThan(10);
  });

  it('keeps at most socketsMax destinations, least recently used closed first, and still delivers', async () => {
    const sender = await bind({ socketsMax: 2 });
    const receivers = await Promise.all([bind(), bind(), bind(), bind()]);
    const got = receivers.map(() => [] as string[]);
    receivers.forEach((receiver, i) => receiver.onFrame((frame) => got[i]!.push(text(frame))));
    for (let round = 0; round < 3; round++) {
      for (const [i, receiver] of receivers.entries()) {
        await sender.send(receiver.address, bytes(`${round}`));
        expect(await until(() => got[i]!.length === round + 1)).toBe(true);
      }
    }
    expect(got).toEqual(receivers.map(() => ['0', '1', '2']));
    expect(sender.socketCount).toBe(2);
    expect(sender.counters.socketsEvicted).toBe(10);
    for (let i = 0; i < 300; i++) void sender.send(`tcp://127.0.0.1:${20_000 + i}${KEY}`, bytes('lost'));
    expect(sender.socketCount).toBe(2);
  });

  it('refuses at the sender, typed, a frame above what a connection carries (nothing crosses the wire)', async () => {
    const [sender, receiver] = [await bind(), await bind()];
    const got: Uint8Array[] = [];
    receiver.onFrame((frame) => got.push(frame));
    await expect(sender.send(receiver.address, new Uint8Array(NET_FRAME_BYTES_MAX + 1))).rejects.toMatchObject({ code: ErrorCode.PROTO_TOO_LARGE });
    expect(sender.counters.sendsRefused).toBe(1);
    await sender.send(receiver.address, bytes('after'));
    expect(await until(() => got.length === 1)).toBe(true);
    expect(text(got[0]!)).toBe('after');
  });

  it('refuses addresses that are not tcp://host:port[#key], typed, never throwing', async () => {
    const transport = await bind();
    // The last one is well formed, but its key (all zeros) is a low-order point: no secret can be shared with it.
    for (const address of ['', 'mem://a', 'tcp://127.0.0.1', 'tcp://127.0.0.1:0', 'tcp://*:5555', 'tcp://127.0.0.1:80', `tcp://127.0.0.1:80${KEY}x`, `tcp://127.0.0.1:80#${'A'.repeat(43)}`]) {
      let sent: Promise<void> | undefined;
      expect(() => (sent = transport.send(address, bytes('x'))), address).not.toThrow();
      await expect(sent, address).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
    }
    expect(transport.counters.sendsRefused).toBe(8);
  });

  it('reaches a peer by host name', async () => {
    const [sender, receiver] = [await bind(), await bind()];
    const got: string[] = [];
    receiver.onFrame((frame) => got.push(text(frame)));
    await sender.send(receiver.address.replace('127.0.0.1', 'localhost'), bytes('by name'));
    expect(await until(() => got.length === 1)).toBe(true);
  });

  it('reports a receiver that throws to the process\'s fatal handler, and goes on', async () => {
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
      expect(await until(() => got.length === 2)).toBe(true);
      expect(fatal).toEqual([`receiver bug in the frame receiver of ${b.address}`, `receiver bug in the frame receiver of ${b.address}`]);
    } finally {
      restore();
    }
  });

  it('a passive listener between two endpoints sees no plaintext; between insecure ones it does', async () => {
    const secret = 'kvs-value:the-launch-code-is-0000;key=accounts/alice';
    for (const mode of ['secure', 'insecure'] as const) {
      const receiver = await bind(mode === 'secure' ? {} : { keyPair: 'insecure' });
      const sender = await bind(mode === 'secure' ? {} : { keyPair: 'insecure' });
      const tap = await relay(portOf(receiver.address));
      open.push(tap);
      const got: string[] = [];
      receiver.onFrame((frame) => got.push(text(frame)));
      const viaTap = receiver.address.replace(`:${portOf(receiver.address)}`, `:${tap.port}`);
      for (let i = 0; i < 20; i++) await sender.send(viaTap, bytes(`${secret}#${i}`));
      expect(await until(() => got.length === 20), `${mode}: delivered through the relay`).toBe(true);
      const seen = tap.seen();
      expect(seen.length).toBeGreaterThan(20 * secret.length);
      expect(seen.includes(Buffer.from('the-launch-code')), `${mode}: plaintext on the wire`).toBe(mode === 'insecure');
      expect(seen.includes(Buffer.from('accounts/alice'))).toBe(mode === 'insecure');
    }
  });

  it('stops reading while its inbox is full and resumes: nothing lost, order kept', async () => {
    // A slow receiver and a tiny inbox: frames wait, the inbox fills, connections pause, then resume.
    const receiver = await bind({ inbox: { totalFramesMax: 16, turnBudgetMs: 1 } });
    const sender = await bind();
    const got: string[] = [];
    receiver.onFrame((frame) => {
      got.push(text(frame));
      const spin = performance.now() + 0.2;
      while (performance.now() < spin) {
        // 0.2 ms of work per frame.
      }
    });
    await Promise.all(Array.from({ length: 1000 }, (_, i) => sender.send(receiver.address, bytes(String(i)))));
    expect(await until(() => got.length === 1000, 10_000)).toBe(true);
    expect(got).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)));
    expect(receiver.counters.framesRefused).toBe(0);
    expect(receiver.inboxCounters.deferred).toBeGreaterThan(0);
  });

  it('derives one PSK per pair of keys, the same from either side', () => {
    const [a, b, c] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    expect(pskFor(a, b.publicKey).equals(pskFor(b, a.publicKey))).toBe(true);
    expect(pskFor(a, b.publicKey).equals(pskFor(a, c.publicKey))).toBe(false);
    expect(pskFor(a, b.publicKey).byteLength).toBe(32);
  });

  it('closes a connection that does not finish its greeting or handshake in time, and refuses connections beyond the limit', async () => {
    const receiver = await bind({ handshakeMaxMs: 200, inboundConnectionsMax: 3 });
    const sender = await bind();
    const got: string[] = [];
    receiver.onFrame((frame) => got.push(text(frame)));
    const port = portOf(receiver.address);
    const silent = await rawConnection(port);
    const halfGreeting = await rawConnection(port);
    halfGreeting.write('LFN');
    const greetedOnly = await rawConnection(port);
    greetedOnly.write(GREETING_TLS);
    expect(await until(() => receiver.inboundCount === 3)).toBe(true);
    const oneTooMany = await rawConnection(port);
    expect(await closed(oneTooMany)).toBe(true);
    expect(receiver.connectionCounters.inboundOverLimit).toBe(1);
    expect(await closed(silent)).toBe(true);
    expect(await closed(halfGreeting)).toBe(true);
    expect(await closed(greetedOnly)).toBe(true);
    expect(receiver.connectionCounters.handshakeTimeouts).toBe(3);
    // Room again: an honest peer gets through.
    await sender.send(receiver.address, bytes('after'));
    expect(await until(() => got.length === 1)).toBe(true);
  });

  it('close() closes inbound connections and releases the port at once', async () => {
    const transport = await bind();
    const port = portOf(transport.address);
    const idle = await rawConnection(port);
    await sleep(50);
    expect(transport.inboundCount).toBe(1);
    await transport.close();
    expect(await closed(idle)).toBe(true);
    const again = await bind({ port });
    expect(portOf(again.address)).toBe(port);
  });
});
