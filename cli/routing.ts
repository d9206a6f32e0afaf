/**
 * `lfaas routing`: one routing node as its own process (membership, rings, key addresses).
 */
import { RoutingNode } from '../kvs/index.js';
import { ZmqTransport, runMachine, systemClock } from '../protocol/index.js';
import { announceReady, guardProcess, logError, stopOnSignals } from './process.js';
import { roleSecurity } from './security.js';
import type { SecurityOptions } from './security.js';

export interface RoutingProcessOptions extends SecurityOptions {
  readonly host: string;
  readonly port: number;
  readonly peers: readonly string[];
  readonly global: number;
  readonly local: number;
  readonly failureTimeoutMs: number;
}

export async function runRouting(options: RoutingProcessOptions): Promise<void> {
  guardProcess('routing');
  const security = roleSecurity('routing', options);
  const transport = await ZmqTransport.bind({ host: options.host, port: options.port, keyPair: security.keyPair });
  const routing = new RoutingNode({
    address: transport.address,
    peers: options.peers,
    defaults: { global: options.global, local: options.local },
    failureTimeoutMs: options.failureTimeoutMs,
  });
  const shell = runMachine(routing, transport, systemClock, { onError: logError(`routing ${transport.address}`), ...security.shell });
  announceReady({ role: 'routing', address: transport.address, pid: process.pid });
  stopOnSignals(() => shell.stop(), 'routing');
}
