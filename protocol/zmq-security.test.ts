/**
 * The secure ZeroMQ transport over real sockets: CURVE on every connection, each message sealed
 * with its sender's key (frame-seal.ts), the ZAP handler's policy at the handshake, and what a
 * passive listener between two endpoints sees (a TCP relay of our own records every byte).
 */
import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Dealer } from 'zeromq';
import { openSeal, seal } from './frame-seal.js';
import { generateKeyPair, keyText, z85 } from './keys.js';
import { setZapPolicy, zapCounters } from './zap.js';
import { ZmqTransport } from './zmq-transport.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const portOf = (address: string): number => Number(/:(\d+)(?:#|$)/.exec(address)![1]);
const keyOf = (address: string): string => address.split('#')[1] ?? '';

async function until(condition: () => boolean, timeoutMs = 5000): Promise<boolean> {
  for (let waited = 0; !condition(); waited += 10) {
    if (waited >= timeoutMs) return false;
    await sleep(10);
  }
  return true;
}

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

describe('the secure ZeroMQ transport', () => {
  const open: { close(): unknown }[] = [];
  const bind = async (options: Parameters<typeof ZmqTransport.bind>[0] = {}): Promise<ZmqTransport> => {
    const transport = await ZmqTransport.bind(options);
    open.push(transport);
    return transport;
  };
  afterEach(async () => {
    setZapPolicy(() => true);
    for (const item of open.splice(0).reverse()) await item.close();
  });

  it('tells the receiver which key sent each frame, proven by the seal', async () => {
    const [a, b, receiver] = [await bind(), await bind(), await bind()];
    const got: [string, string | undefined][] = [];
    receiver.onFrame((frame, peer) => got.push([new TextDecoder().decode(frame), peer]));
    await a.send(receiver.address, bytes('from a'));
    await b.send(receiver.address, bytes('from b'));
    expect(await until(() => got.length === 2)).toBe(true);
    expect(receiver.verifiesPeers).toBe(true);
    expect(new Map(got)).toEqual(new Map([['from a', keyOf(a.address)], ['from b', keyOf(b.address)]]));
  });

  it('drops a message whose seal claims a key its sender does not hold, or was made for another receiver', async () => {
    const receiver = await bind();
    const other = await bind();
    const victim = generateKeyPair();
    const attacker = generateKeyPair();
    const got: string[] = [];
    receiver.onFrame((frame) => got.push(new TextDecoder().decode(frame)));
    const dealer = new Dealer({ linger: 0, curveServerKey: z85(Buffer.from(keyOf(receiver.address), 'base64url')), curvePublicKey: z85(attacker.publicKey), curveSecretKey: z85(attacker.secretKey) });
    open.push(dealer);
    dealer.connect(`tcp://127.0.0.1:${portOf(receiver.address)}`);
    const frame = bytes('forged');
    // The victim's key with the attacker's MAC; a seal the victim made for another receiver; no seal.
    const claimed = Buffer.from(seal(attacker, Buffer.from(keyOf(receiver.address), 'base64url')));
    claimed.set(victim.publicKey, 1);
    await dealer.send([claimed, frame]);
    await dealer.send([seal(victim, Buffer.from(keyOf(other.address), 'base64url')), frame]);
    await dealer.send([frame]);
    await dealer.send([Buffer.alloc(49), frame]);
    // And one honest message from the attacker's own key, which is delivered.
    await dealer.send([seal(attacker, Buffer.from(keyOf(receiver.address), 'base64url')), bytes('honest')]);
    expect(await until(() => got.length === 1)).toBe(true);
    await sleep(100);
    expect(got).toEqual(['honest']);
    expect(receiver.counters.framesUnsealed).toBe(4);
  });

  it('a batch travels packed in one part; a packed part whose lengths do not add up is dropped and counted', async () => {
    const receiver = await bind();
    const sender = await bind();
    const got: string[] = [];
    receiver.onFrame((frame) => got.push(new TextDecoder().decode(frame)));
    // Sends queued together leave as one message: packed.
    await Promise.all(Array.from({ length: 50 }, (_, i) => sender.send(receiver.address, bytes(`f${i}`))));
    expect(await until(() => got.length === 50)).toBe(true);
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => `f${i}`));
    expect(sender.counters.batchesSent).toBeLessThan(50);
    const me = generateKeyPair();
    const key = Buffer.from(keyOf(receiver.address), 'base64url');
    const dealer = new Dealer({ linger: 0, curveServerKey: z85(key), curvePublicKey: z85(me.publicKey), curveSecretKey: z85(me.secretKey) });
    open.push(dealer);
    dealer.connect(`tcp://127.0.0.1:${portOf(receiver.address)}`);
    const packedSeal = seal(me, key, true);
    const good = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('p1'), Buffer.from([0, 0, 0, 2]), Buffer.from('p2')]);
    const before = receiver.counters.framesUnsealed;
    await dealer.send([packedSeal, Buffer.from([0, 0, 0, 9, 1, 2])]);
    await dealer.send([packedSeal, Buffer.from([0, 0])]);
    await dealer.send([packedSeal, good, good]);
    await dealer.send([packedSeal, good]);
    expect(await until(() => got.length === 52)).toBe(true);
    expect(got.slice(50)).toEqual(['p1', 'p2']);
    expect(receiver.counters.framesUnsealed - before).toBe(4);
  });

  it('a seal opens only for its receiver, and names its sender', () => {
    const [sender, receiver, stranger] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
    const made = seal(sender, receiver.publicKey);
    expect(openSeal(receiver, made)).toBe(keyText(sender.publicKey));
    expect(openSeal(stranger, made)).toBeUndefined();
    expect(openSeal(receiver, made.subarray(0, 40))).toBeUndefined();
    const otherVersion = Buffer.from(made);
    otherVersion[0] = 1;
    expect(openSeal(receiver, otherVersion)).toBeUndefined();
    const flipped = Buffer.from(made);
    flipped[48] = flipped[48]! ^ 1;
    expect(openSeal(receiver, flipped)).toBeUndefined();
    const lowOrder = Buffer.from(made);
    lowOrder.fill(0, 1, 33);
    expect(openSeal(receiver, lowOrder)).toBeUndefined();
    // The seal of another sender, with this sender's key put in: refused.
    const swapped = Buffer.from(seal(stranger, receiver.publicKey));
    swapped.set(sender.publicKey, 1);
    expect(openSeal(receiver, swapped)).toBeUndefined();
  });

  it('a plain (insecure) endpoint cannot deliver to a secure one; two insecure ones talk in plain', async () => {
    const secure = await bind();
    const plain = await bind({ keyPair: 'insecure' });
    const plainReceiver = await bind({ keyPair: 'insecure' });
    const got: string[] = [];
    secure.onFrame((frame) => got.push(new TextDecoder().decode(frame)));
    const plainGot: string[] = [];
    plainReceiver.onFrame((frame) => plainGot.push(new TextDecoder().decode(frame)));
    await plain.send(secure.address, bytes('plain to secure'));
    await plain.send(plainReceiver.address, bytes('plain to plain'));
    expect(await until(() => plainGot.length === 1)).toBe(true);
    await sleep(200);
    expect(got).toEqual([]);
    // A secure endpoint does not send to an address that names no key.
    await expect(secure.send(plainReceiver.address, bytes('x'))).rejects.toMatchObject({ code: 'TRANSPORT_BAD_ADDRESS' });
  });

  it('the ZAP policy refuses a key at the handshake: nothing it sends arrives, and the refusal is counted', async () => {
    const receiver = await bind();
    const banned = generateKeyPair();
    const bannedText = keyText(banned.publicKey);
    setZapPolicy((key) => keyText(key) !== bannedText);
    const refusedBefore = zapCounters.refused;
    const sender = await bind({ keyPair: banned });
    const allowed = await bind();
    const got: string[] = [];
    receiver.onFrame((frame) => got.push(new TextDecoder().decode(frame)));
    await sender.send(receiver.address, bytes('banned'));
    await allowed.send(receiver.address, bytes('allowed'));
    expect(await until(() => got.length === 1)).toBe(true);
    expect(await until(() => zapCounters.refused > refusedBefore)).toBe(true);
    await sleep(200);
    expect(got).toEqual(['allowed']);
  });

  it('a passive listener between two endpoints sees no plaintext; between insecure ones it does (the relay works)', async () => {
    const secret = 'kvs-value:the-launch-code-is-0000;key=accounts/alice';
    for (const mode of ['secure', 'insecure'] as const) {
      const keyPair = mode === 'secure' ? generateKeyPair() : ('insecure' as const);
      const receiver = await bind({ keyPair });
      const sender = await bind(mode === 'secure' ? {} : { keyPair: 'insecure' });
      const tap = await relay(portOf(receiver.address));
      open.push(tap);
      const got: string[] = [];
      receiver.onFrame((frame) => got.push(new TextDecoder().decode(frame)));
      const viaTap = receiver.address.replace(`:${portOf(receiver.address)}`, `:${tap.port}`);
      for (let i = 0; i < 20; i++) await sender.send(viaTap, bytes(`${secret}#${i}`));
      expect(await until(() => got.length === 20), `${mode}: delivered through the relay`).toBe(true);
      const seen = tap.seen();
      expect(seen.length).toBeGreaterThan(20 * secret.length);
      expect(seen.includes(Buffer.from('the-launch-code')), `${mode}: plaintext on the wire`).toBe(mode === 'insecure');
      expect(seen.includes(Buffer.from('accounts/alice'))).toBe(mode === 'insecure');
    }
  });
});
