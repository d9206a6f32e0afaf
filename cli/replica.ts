/**
 * `lfaas replica`: one gossiping lattice replica as its own process, over ZeroMQ. Prints
 * `ready <address>` once bound; stops on SIGTERM/SIGINT, or when its parent goes away.
 */
import { GossipReplica } from '../kvs/index.js';
import { runMachine, systemClock, ZmqTransport } from '../protocol/index.js';

export interface ReplicaOptions {
  readonly id: string;
  readonly port: number;
  readonly peers: readonly string[];
  readonly gossipPeriodMs: number;
}

export async function runReplica(options: ReplicaOptions): Promise<void> {
  const transport = await ZmqTransport.bind({ host: '127.0.0.1', port: options.port });
  const replica = new GossipReplica({ id: options.id, address: transport.address, peers: options.peers, gossipPeriodMs: options.gossipPeriodMs });
  const shell = runMachine(replica, transport, systemClock, {
    onError: (error) => process.stderr.write(`replica ${options.id}: ${error.message}\n`),
  });
  console.log(`ready ${transport.address}`);
  const stop = (): void => {
    void shell.stop().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // When started by `lfaas up`, a closed stdin means the parent died: do not outlive it.
  if (process.env['LFAAS_CHILD'] === '1') {
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
}
