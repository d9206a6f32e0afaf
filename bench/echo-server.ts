/**
 * The echo servers of the `wire` benchmark, run as a separate OS process so the client and the
 * server compete for the two cores as two real nodes would.
 *   node dist/bench/echo-server.js raw   -> a minimal zeromq Router echo (the peer baseline)
 *   node dist/bench/echo-server.js ours  -> ZmqTransport + Rpc answering `echo` envelopes
 * Prints `ready <address>` on stdout; exits on SIGTERM or when stdin closes.
 */
import { Router } from 'zeromq';
import { Rpc, ZmqTransport, systemClock } from '../protocol/index.js';

const mode = process.argv[2];

async function raw(): Promise<() => Promise<void>> {
  const router = new Router({ linger: 0 });
  await router.bind('tcp://127.0.0.1:*');
  console.log(`ready ${router.lastEndpoint}`);
  void (async () => {
    try {
      for await (const message of router) await router.send(message);
    } catch {
      // closed
    }
  })();
  return async () => router.close();
}

/** Our transport: `curve` (the default: CURVE, every message sealed) or `plain` (--insecure). */
async function ours(security: 'curve' | 'plain'): Promise<() => Promise<void>> {
  const transport = await ZmqTransport.bind({ host: '127.0.0.1', port: 0, ...(security === 'plain' ? { keyPair: 'insecure' as const } : {}) });
  const rpc = new Rpc(transport, systemClock);
  rpc.onRequest((request) => rpc.respond(request, { echo: { payload: request.echo?.payload ?? new Uint8Array() } }));
  console.log(`ready ${transport.address}`);
  return async () => {
    await rpc.close();
    await transport.close();
  };
}

if (mode !== 'raw' && mode !== 'curve' && mode !== 'plain') {
  console.error('usage: echo-server raw|curve|plain');
  process.exit(2);
}
const stop = await (mode === 'raw' ? raw() : ours(mode));
const shutdown = (): void => {
  void stop().finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.stdin.on('end', shutdown);
process.stdin.resume();
