import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { encodeEnvelope } from './frame.js';
import { MemoryNetwork } from './memory-network.js';
import type { MemoryNetworkOptions } from './memory-network.js';
import type { PbTypes } from './messages.js';
import { seededRandom } from './random.js';
import { Rpc } from './rpc.js';
import type { RpcOptions } from './rpc.js';
import { VirtualClock } from './virtual-clock.js';
import type { Transport } from './transport.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (payload: Uint8Array | null | undefined): string => new TextDecoder().decode(payload ?? new Uint8Array());
/** Lets promise callbacks run (the virtual clock only runs timers). */
const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

/** Outcome of a promise, readable synchronously once settled. */
function watch<T>(promise: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: LfaasError } {
  const outcome: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: LfaasError } = { state: 'pending' };
  promise.then(
    (value) => Object.assign(outcome, { state: 'resolved', value }),
    (error: LfaasError) => Object.assign(outcome, { state: 'rejected', error }),
  );
  return outcome;
}

describe('Rpc over the in-memory network on a virtual clock', () => {
  const open: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((x) => x.close()));
  });

  function setup(network: Omit<MemoryNetworkOptions, 'clock' | 'random'> = {}, rpcOptions: RpcOptions = {}, seed = 1) {
    const clock = new VirtualClock();
    const net = new MemoryNetwork({ clock, random: seededRandom(seed), ...network });
    const clientTransport = net.endpoint('client');
    const serverTransport = net.endpoint('server');
    const client = new Rpc(clientTransport, clock, rpcOptions);
    const server = new Rpc(serverTransport, clock);
    open.push(client, server, clientTransport, serverTransport);
    const seen: PbTypes.Envelope[] = [];
    server.onRequest((request) => {
      seen.push(request);
      server.respond(request, { echo: { payload: request.echo?.payload ?? null } });
    });
    return { clock, net, client, server, seen, serverTransport, clientTransport };
  }

  it('round-trips with fresh non-zero increasing ids and the reply address filled in', async () => {
    const { clock, client, seen } = setup();
    const replies = [watch(client.request('mem://server', { echo: { payload: bytes('one') }, traceId: 'trace-1' })), watch(client.request('mem://server', { echo: { payload: bytes('two') } }))];
    clock.advance(0);
    await flush();
    expect(replies.map((r) => text(r.value?.echo?.payload))).toEqual(['one', 'two']);
    expect(seen.map((r) => Number(r.requestId))).toEqual([1, 2]);
    expect(seen.every((r) => r.replyTo === 'mem://client')).toBe(true);
    expect(seen[0]?.traceId).toBe('trace-1');
    expect(replies[0]?.value?.sender).toBe('mem://server');
    expect(Number(replies[1]?.value?.responseTo)).toBe(2);
    expect(client.pendingCount).toBe(0);
  });

  it('rejects with the typed error an ErrorReply carries; a reply with an unknown wire code is refused at decoding', async () => {
    const { clock, client, server } = setup();
    server.onRequest((request) => {
      if (text(request.echo?.payload) === 'unknown') server.respond(request, { errorReply: { error: { code: 9999 as PbTypes.ErrorCode, message: 'from the future' } } });
      else server.respondError(request, new LfaasError(ErrorCode.KVS_WRONG_NODE, 'ask kvs-2'));
    });
    const typed = watch(client.request('mem://server', { echo: { payload: bytes('x') } }));
    const unknown = watch(client.request('mem://server', { echo: { payload: bytes('unknown') } }));
    clock.advance(0);
    await flush();
    expect(typed.error).toBeInstanceOf(LfaasError);
    expect(typed.error).toMatchObject({ code: ErrorCode.KVS_WRONG_NODE, message: 'ask kvs-2' });
    // Envelope validation refuses enum values it does not know: the frame is dropped, the request times out.
    expect(unknown.state).toBe('pending');
    expect(client.counters.framesRejected).toBe(1);
    clock.advance(5000);
    await flush();
    expect(unknown.error).toMatchObject({ code: ErrorCode.TRANSPORT_TIMEOUT });
  });

  it('times out after every retry, resending the same request id, at exactly attempts x timeout', async () => {
    const { clock, client, server, seen } = setup();
    server.onRequest((request) => seen.push(request)); // silent server
    seen.length = 0;
    const reply = watch(client.request('mem://server', { echo: { payload: bytes('?') } }, { timeoutMs: 100, retries: 2 }));
    clock.advance(299.9);
    await flush();
    expect(reply.state).toBe('pending');
    clock.advance(0.1);
    await flush();
    expect(reply.error).toMatchObject({ code: ErrorCode.TRANSPORT_TIMEOUT });
    expect(seen.map((r) => Number(r.requestId))).toEqual([1, 1, 1]);
    expect(client.counters).toMatchObject({ requests: 1, retries: 2, timeouts: 1 });
    expect(clock.pendingTimers).toBe(0);
  });

  it('waits retryDelayMs between attempts, and a late answer to an earlier attempt still counts', async () => {
    const { clock, client, server, seen } = setup();
    const answers: PbTypes.Envelope[] = [];
    server.onRequest((request) => {
      seen.push(request);
      answers.push(request);
    });
    seen.length = 0;
    const reply = watch(client.request('mem://server', { echo: { payload: bytes('slow') } }, { timeoutMs: 100, retries: 1, retryDelayMs: 50 }));
    clock.advance(149);
    expect(seen.length).toBe(1); // first attempt timed out at 100, retry due at 150
    server.respond(answers[0]!, { echo: { payload: bytes('late but fine') } });
    clock.advance(0);
    await flush();
    expect(text(reply.value?.echo?.payload)).toBe('late but fine');
    clock.advance(1000);
    expect(seen.length).toBe(1); // the retry was cancelled
  });

  it('times out with retryDelayMs at attempts x timeout + retries x delay', async () => {
    const { clock, client, server } = setup();
    server.onRequest(() => {});
    const reply = watch(client.request('mem://server', { echo: {} }, { timeoutMs: 100, retries: 2, retryDelayMs: 50 }));
    clock.advance(399);
    await flush();
    expect(reply.state).toBe('pending');
    clock.advance(1);
    await flush();
    expect(reply.error).toMatchObject({ code: ErrorCode.TRANSPORT_TIMEOUT });
  });

  it('refuses requests beyond pendingMax with TRANSPORT_BUSY, and accepts again once one settles', async () => {
    const { clock, client } = setup({}, { pendingMax: 2 });
    const first = watch(client.request('mem://server', { echo: { payload: bytes('1') } }));
    watch(client.request('mem://server', { echo: { payload: bytes('2') } }));
    await expect(client.request('mem://server', { echo: {} })).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BUSY });
    clock.advance(0);
    await flush();
    expect(first.state).toBe('resolved');
    const again = watch(client.request('mem://server', { echo: { payload: bytes('3') } }));
    clock.advance(0);
    await flush();
    expect(text(again.value?.echo?.payload)).toBe('3');
  });

  it('close rejects everything pending with TRANSPORT_CLOSED, cancels timers and refuses new requests', async () => {
    const { clock, client, server } = setup();
    server.onRequest(() => {});
    const pending = [watch(client.request('mem://server', { echo: {} })), watch(client.request('mem://server', { echo: {} }))];
    clock.advance(0);
    await client.close();
    await client.close();
    await flush();
    expect(pending.map((p) => p.error?.code)).toEqual([ErrorCode.TRANSPORT_CLOSED, ErrorCode.TRANSPORT_CLOSED]);
    expect(clock.pendingTimers).toBe(0);
    await expect(client.request('mem://server', { echo: {} })).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_CLOSED });
  });

  it('counts and drops frames that do not decode, without calling the handler', async () => {
    const { clock, client, seen, clientTransport } = setup();
    await clientTransport.send('mem://server', Uint8Array.of(0xff, 0xff, 0xff));
    await clientTransport.send('mem://server', Uint8Array.of(0x0a, 0x05, 0x01));
    clock.advance(0);
    const server = open[1] as Rpc;
    expect(server.counters.framesRejected).toBe(2);
    expect(seen).toEqual([]);
    expect(client.counters.framesRejected).toBe(0);
  });

  it('resolves once under duplication; duplicate and stray responses are counted as late', async () => {
    const { clock, client, clientTransport } = setup({ duplicateRate: 1 });
    const reply = watch(client.request('mem://server', { echo: { payload: bytes('dup') } }));
    clock.advance(0);
    await flush();
    expect(text(reply.value?.echo?.payload)).toBe('dup');
    // Two requests reach the server (duplicated), each answered twice: 4 responses, 1 used.
    expect(client.counters.lateResponses).toBe(3);
    await clientTransport.send('mem://client', encodeEnvelope({ responseTo: 12345, echo: {} }));
    clock.advance(0);
    expect(client.counters.lateResponses).toBe(5); // the stray response, duplicated too
  });

  it('does not answer one-way messages (no reply address)', async () => {
    const { clock, net, server, clientTransport } = setup();
    const before = net.counters.sent;
    server.onRequest((request) => server.respond(request, { echo: {} }));
    await clientTransport.send('mem://server', encodeEnvelope({ requestId: 5, echo: {} }));
    clock.advance(0);
    expect(net.counters.sent).toBe(before + 1);
  });

  it('rejects at once when the transport refuses the send, leaving nothing pending', async () => {
    const { client } = setup();
    await expect(client.request('tcp://nowhere', { echo: {} })).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BAD_ADDRESS });
    expect(client.pendingCount).toBe(0);
  });

  it('rejects when the first send is refused for backpressure, but a refused retry keeps waiting', async () => {
    const busy = setup({ queueFramesMax: 0 });
    await expect(busy.client.request('mem://server', { echo: {} })).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_BUSY });
    await Promise.all(open.splice(0).map((x) => x.close()));

    const clock = new VirtualClock();
    const net = new MemoryNetwork({ clock, random: seededRandom(1) });
    const inner = net.endpoint('client');
    let sends = 0;
    const refusingRetries: Transport = {
      address: inner.address,
      send: (to, frame) => (++sends === 1 ? inner.send(to, frame) : Promise.reject(new LfaasError(ErrorCode.TRANSPORT_BUSY, 'full'))),
      onFrame: (receiver) => inner.onFrame(receiver),
      close: () => inner.close(),
    };
    const serverTransport = net.endpoint('server');
    const client = new Rpc(refusingRetries, clock);
    const server = new Rpc(serverTransport, clock);
    open.push(client, server, inner, serverTransport);
    const held: PbTypes.Envelope[] = [];
    server.onRequest((request) => held.push(request));
    const reply = watch(client.request('mem://server', { echo: { payload: bytes('patient') } }, { timeoutMs: 100, retries: 1 }));
    clock.advance(150); // first attempt timed out at 100, its retry was refused
    await flush();
    expect(sends).toBe(2);
    expect(reply.state).toBe('pending');
    server.respond(held[0]!, { echo: { payload: bytes('patient') } });
    clock.advance(0);
    await flush();
    expect(text(reply.value?.echo?.payload)).toBe('patient');
  });

  it('rides out a lossy network with retries, deterministically per seed', async () => {
    const run = async (seed: number) => {
      const { clock, client, net } = setup({ dropRate: 0.3, duplicateRate: 0.1, delayMs: { min: 1, max: 30 }, reorder: true }, {}, seed);
      const replies = Array.from({ length: 100 }, (_, i) => watch(client.request('mem://server', { echo: { payload: bytes(String(i)) } }, { timeoutMs: 100, retries: 12 })));
      for (let t = 0; t < 1400; t += 10) {
        clock.advance(10);
        await flush();
      }
      const outcome = replies.map((r) => (r.state === 'resolved' ? text(r.value?.echo?.payload) : (r.error?.code ?? r.state)));
      await Promise.all(open.splice(0).map((x) => x.close()));
      return { outcome, counters: { ...client.counters }, net: { ...net.counters } };
    };
    const first = await run(5);
    expect(first.outcome).toEqual(Array.from({ length: 100 }, (_, i) => String(i))); // a round trip is lost with p = 1 - 0.7^2 = 0.51; 0.51^13 per request: all get through
    expect(first.counters.retries).toBeGreaterThan(20);
    expect(await run(5)).toEqual(first);
  });
});

describe('Rpc on a transport that is not the in-memory network', () => {
  it('installs itself as the frame receiver', () => {
    let receiver: ((frame: Uint8Array) => void) | undefined;
    const transport: Transport = {
      address: 'test://x',
      send: async () => {},
      onFrame: (r) => (receiver = r),
      close: async () => {},
    };
    const rpc = new Rpc(transport, new VirtualClock());
    receiver?.(Uint8Array.of(0xff));
    expect(rpc.counters.framesRejected).toBe(1);
  });
});
