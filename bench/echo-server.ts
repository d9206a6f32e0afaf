/**
 * The echo servers of the `wire` benchmark, run as a separate OS process so the client and the
 * server compete for the two cores as two real nodes would.
 *   node dist/bench/echo-server.js raw   -> a minimal zeromq Router echo (the peer baseline)
 *   node dist/bench/echo-server.js curve|plain        -> ZmqTransport + Rpc answering `echo` envelopes
 *   node dist/bench/echo-server.js net-tls|net-plain  -> NetTransport + Rpc, the same
 * Prints `ready <address>` on stdout; exits on SIGTERM or when stdin closes.
 */
import { Router } from 'zeromq';
import { NetTransport, Rpc, ZmqTransport, systemClock } from '../protocol/index.js';

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

/** Our transports: ZeroMQ `curve` (CURVE, every message sealed) or `plain`; node:net `net-tls` (TLS-PSK, the default) or `net-plain`. */
async function ours(mode: EchoMode): Promise<() => Promise<void>> {
  const options = { host: '127.0.0.1', port: 0, ...(mode === 'plain' || mode === 'net-plain' ? { keyPair: 'insecure' as const } : {}) };
  const transport = mode === 'net-tls' || mode === 'net-plain' ? await NetTransport.bind(options) : await ZmqTransport.bind(options);
  const rpc = new Rpc(transport, systemClock);
  rpc.onRequest((request) => rpc.respond(request, { echo: { payload: request.echo?.payload ?? new Uint8Array() } }));
  console.log(`ready ${transport.address}`);
  return async () => {
    await rpc.close();
    await transport.close();
  };
}

const MODES = ['raw', 'curve', 'plain', 'net-tls', 'net-plain'] as const;
type EchoMode = (typeof MODES)[number];
if (!(MODES as readonly string[]).includes(mode ?? '')) {
  console.error(`usage: echo-server ${MODES.join('|')}`);
  process.exit(2);
}
const stop = await (mode === 'raw' ? raw() : ours(mode as EchoMode));
const shutdown = (): void => {
  void stop().finally(() => process.exit(0));
};
process.on('SIGTERM', shutdown);
process.stdin.on('end', shutdown);
process.stdin.resume();
