import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { MemoryNetwork } from './memory-network.js';
import { seededRandom } from './random.js';
import { transportConformance } from './transport-conformance.js';
import { systemClock } from './transport.js';
import { ZmqTransport } from './zmq-transport.js';

transportConformance('ZeroMQ on 127.0.0.1', {
  create: () => ZmqTransport.bind({ host: '127.0.0.1', port: 0 }),
  // A port from the ephemeral range nobody binds in these tests; PUSH queues, nothing arrives.
  silentAddress: 'tcp://127.0.0.1:9',
});

let counter = 0;
const network = new MemoryNetwork({ clock: systemClock, random: seededRandom(7) });
transportConformance('in-memory network', {
  create: async () => network.endpoint(`node-${counter++}`),
  silentAddress: 'mem://nobody',
});

describe('ZeroMQ transport specifics', () => {
  it('pushes back with TRANSPORT_BUSY when a destination queue is full', async () => {
    const transport = await ZmqTransport.bind({ queueFramesMax: 5 });
    try {
      // Nobody listens on port 9: the socket buffers up to its high-water mark, then the queue fills.
      const results = await Promise.allSettled(Array.from({ length: 200_000 }, () => transport.send("tcp://127.0.0.1:9", new Uint8Array(8))));
      const busy = results.filter((r) => r.status === 'rejected' && (r.reason as { code?: string }).code === ErrorCode.TRANSPORT_BUSY);
      expect(busy.length).toBeGreaterThan(0);
    } finally {
      await transport.close();
    }
  });

  it('a peer restarted on the same port gets messages again', async () => {
    const sender = await ZmqTransport.bind();
    let receiver = await ZmqTransport.bind();
    const address = receiver.address;
    const port = Number(address.split(':').pop());
    const got: string[] = [];
    receiver.onFrame((f) => got.push(new TextDecoder().decode(f)));
    await sender.send(address, new TextEncoder().encode('before'));
    for (let i = 0; i < 100 && got.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
    await receiver.close();
    receiver = await ZmqTransport.bind({ port });
    receiver.onFrame((f) => got.push(new TextDecoder().decode(f)));
    for (let i = 0; i < 250 && !got.includes('after'); i++) {
      await sender.send(address, new TextEncoder().encode('after'));
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(got[0]).toBe('before');
    expect(got).toContain('after');
    await sender.close();
    await receiver.close();
  });
});
