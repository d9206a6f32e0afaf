/**
 * One conformance suite for every `Transport` implementation (ZeroMQ, in-memory): call
 * `transportConformance(name, factory)` inside a test file. Test support only.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { Rpc } from './rpc.js';
import { systemClock } from './transport.js';
import type { Transport } from './transport.js';

export interface TransportFactory {
  /** A fresh endpoint reachable by the others made by this factory. */
  create(): Promise<Transport>;
  /** An address in this transport's scheme where nobody listens. */
  readonly silentAddress: string;
}

/** Collects frames arriving at a transport; `next(n)` waits (bounded) for n of them. */
function collector(transport: Transport): { frames: Uint8Array[]; waitFor(count: number, timeoutMs?: number): Promise<Uint8Array[]> } {
  const frames: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  transport.onFrame((frame) => {
    frames.push(frame);
    wake?.();
  });
  return {
    frames,
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (frames.length < count) {
        if (Date.now() > deadline) throw new Error(`got ${frames.length} of ${count} frames in ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 20);
        });
      }
      return frames;
    },
  };
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

export function transportConformance(name: string, factory: TransportFactory): void {
  describe(`Transport conformance: ${name}`, () => {
    const open: Transport[] = [];
    const create = async (): Promise<Transport> => {
      const transport = await factory.create();
      open.push(transport);
      return transport;
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((t) => t.close()));
    });

    it('delivers frames intact: empty, small, random and 1 MiB', async () => {
      const [a, b] = [await create(), await create()];
      const inbox = collector(b);
      const big = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) % 251);
      const random = Uint8Array.from({ length: 777 }, (_, i) => (i * 7919) % 256);
      const sent = [new Uint8Array(), bytes('hello'), random, big];
      for (const frame of sent) await a.send(b.address, frame);
      const got = await inbox.waitFor(sent.length);
      expect(got.map((f) => Buffer.from(f).toString('hex'))).toEqual(sent.map((f) => Buffer.from(f).toString('hex')));
    });

    it('keeps per-sender order, with many senders to one receiver', async () => {
      const receiver = await create();
      const senders = await Promise.all([create(), create(), create()]);
      const inbox = collector(receiver);
      await Promise.all(senders.map(async (sender, s) => {
        for (let i = 0; i < 200; i++) void sender.send(receiver.address, bytes(`${s}:${i}`));
      }));
      const got = (await inbox.waitFor(600)).map((f) => new TextDecoder().decode(f));
      for (let s = 0; s < senders.length; s++) {
        const mine = got.filter((text) => text.startsWith(`${s}:`)).map((text) => Number(text.split(':')[1]));
        expect(mine).toEqual(Array.from({ length: 200 }, (_, i) => i));
      }
    });

    it('one sender to many receivers', async () => {
      const sender = await create();
      const receivers = await Promise.all([create(), create(), create()]);
      const inboxes = receivers.map(collector);
      for (const [i, receiver] of receivers.entries()) await sender.send(receiver.address, bytes(`to ${i}`));
      for (const [i, inbox] of inboxes.entries()) expect(new TextDecoder().decode((await inbox.waitFor(1))[0])).toBe(`to ${i}`);
    });

    it('2000 concurrent sends all arrive exactly once', async () => {
      const [a, b] = [await create(), await create()];
      const inbox = collector(b);
      await Promise.all(Array.from({ length: 2000 }, (_, i) => a.send(b.address, bytes(String(i)))));
      const got = (await inbox.waitFor(2000)).map((f) => Number(new TextDecoder().decode(f)));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(inbox.frames.length).toBe(2000);
      expect(new Set(got).size).toBe(2000);
    });

    it('refuses bad addresses and sends after close, and close is idempotent', async () => {
      const a = await create();
      await expect(a.send('no-scheme', bytes('x'))).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
      await a.close();
      await a.close();
      await expect(a.send(factory.silentAddress, bytes('x'))).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_CLOSED });
    });

    it('carries request/response, including typed errors', async () => {
      const [client, server] = [await create(), await create()];
      const clientRpc = new Rpc(client, systemClock);
      const serverRpc = new Rpc(server, systemClock);
      serverRpc.onRequest((request) => {
        const payload = request.echo?.payload ?? new Uint8Array();
        if (payload.length === 0) serverRpc.respondError(request, new LfaasError(ErrorCode.KVS_BUSY, 'try later'));
        else serverRpc.respond(request, { echo: { payload } });
      });
      const reply = await clientRpc.request(server.address, { echo: { payload: bytes('ping') } }, { timeoutMs: 5000 });
      expect(new TextDecoder().decode(reply.echo?.payload)).toBe('ping');
      await expect(clientRpc.request(server.address, { echo: { payload: new Uint8Array() } }, { timeoutMs: 5000 })).rejects.toMatchObject({
        code: ErrorCode.KVS_BUSY,
        message: 'try later',
      });
      await clientRpc.close();
      await serverRpc.close();
    });

    it('times out against a silent peer, and a retry gets through a dropped first request', async () => {
      const [client, server] = [await create(), await create()];
      const clientRpc = new Rpc(client, systemClock);
      await expect(clientRpc.request(factory.silentAddress, { echo: { payload: bytes('?') } }, { timeoutMs: 100, retries: 1 })).rejects.toMatchObject({
        code: ErrorCode.TRANSPORT_TIMEOUT,
      });
      const serverRpc = new Rpc(server, systemClock);
      let seen = 0;
      serverRpc.onRequest((request) => {
        seen++;
        if (seen === 1) return; // drop the first attempt
        serverRpc.respond(request, { echo: { payload: request.echo?.payload ?? new Uint8Array() } });
      });
      const reply = await clientRpc.request(server.address, { echo: { payload: bytes('again') } }, { timeoutMs: 200, retries: 2 });
      expect(new TextDecoder().decode(reply.echo?.payload)).toBe('again');
      expect(seen).toBe(2);
      expect(clientRpc.counters.retries).toBeGreaterThanOrEqual(2);
      await clientRpc.close();
      await serverRpc.close();
    });
  });
}

