/**
 * `lfaas scheduler`: one scheduler as its own process. Its machine's KVS tasks go through a KVS
 * client (the registry lives in the KVS, shared by every scheduler); executors find it through
 * their `--schedulers` list and report to it from then on.
 */
import { KvsClient } from '../client/index.js';
import { ZmqTransport, runMachine, seededRandom, systemClock } from '../protocol/index.js';
import { KvsTasks, SchedulerNode } from '../scheduler/index.js';
import { announceReady, logError, stopOnSignals } from './process.js';

export interface SchedulerProcessOptions {
  readonly host: string;
  readonly port: number;
  readonly routing: readonly string[];
  readonly executorTimeoutMs: number;
}

export async function runScheduler(options: SchedulerProcessOptions): Promise<void> {
  const transport = await ZmqTransport.bind({ host: options.host, port: options.port });
  const kvs = await KvsClient.connect({ routing: options.routing, host: options.host });
  // Placement's randomness; seeded per process so two schedulers do not choose in lockstep.
  const scheduler = new SchedulerNode({ address: transport.address, random: seededRandom((Date.now() ^ (process.pid << 8)) >>> 0), executorTimeoutMs: options.executorTimeoutMs });
  const shell = runMachine(scheduler, transport, systemClock, { tasks: new KvsTasks(kvs), onError: logError(`scheduler ${transport.address}`) });
  announceReady({ role: 'scheduler', address: transport.address, pid: process.pid });
  stopOnSignals(async () => {
    await shell.stop();
    await kvs.close();
  }, 'scheduler');
}
