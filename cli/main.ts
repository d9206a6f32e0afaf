/**
 * The `lfaas` command.
 */
import { Command, InvalidArgumentError } from 'commander';
import { runReplica } from './replica.js';
import { up } from './up.js';

const integer = (min: number, max: number) => (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
  return parsed;
};

const program = new Command();
program.name('lfaas').description('Lattice FaaS: a stateful FaaS on a lattice key-value store').version('0.1.0');

program
  .command('up')
  .description('start a local cluster on 127.0.0.1 (today: gossiping lattice replicas; the KVS tier arrives with issue 3)')
  .option('--demo', 'run the shared-counter demo, then stop', false)
  .option('--replicas <n>', 'replica processes', integer(1, 16), 3)
  .option('--gossip-period-ms <ms>', 'gossip period', integer(1, 60_000), 50)
  .action(async (options: { demo: boolean; replicas: number; gossipPeriodMs: number }) => {
    await up({ demo: options.demo, replicas: options.replicas, gossipPeriodMs: options.gossipPeriodMs });
  });

program
  .command('replica')
  .description('run one gossiping lattice replica (started by `lfaas up`)')
  .requiredOption('--id <id>', 'replica id')
  .option('--port <port>', 'port to bind on 127.0.0.1 (0 = any)', integer(0, 65535), 0)
  .option('--peers <addresses>', 'comma-separated tcp:// addresses of the other replicas', '')
  .option('--gossip-period-ms <ms>', 'gossip period', integer(1, 60_000), 50)
  .action(async (options: { id: string; port: number; peers: string; gossipPeriodMs: number }) => {
    const peers = options.peers.split(',').filter((peer) => peer.length > 0);
    await runReplica({ id: options.id, port: options.port, peers, gossipPeriodMs: options.gossipPeriodMs });
  });

await program.parseAsync(process.argv);
