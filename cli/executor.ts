/**
 * `lfaas executor`: one executor as its own process. The main thread owns every socket (its
 * machine's, its KVS client's, and the one it asks other executors on) and the cache; user
 * functions run in the runtime pool's worker threads, which hold no sockets (ECOSYSTEM.md).
 */
import { randomBytes } from 'node:crypto';
import { KvsClient } from '../client/index.js';
import { ExecutorCache, ExecutorHost, ExecutorNode, RuntimePool } from '../executor/index.js';
import { Rpc, ZmqTransport, runMachine, systemClock } from '../protocol/index.js';
import { announceReady, logError, stopOnSignals } from './process.js';

export interface ExecutorProcessOptions {
  readonly host: string;
  readonly port: number;
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
  /** Worker threads at most (runtime slots). */
  readonly workers: number;
  /** Unspecialised workers started ahead of calls. */
  readonly prewarm: number;
  /** The memory class of prewarmed workers. */
  readonly memoryMb: number;
  readonly cacheBytes: number;
  readonly statusPeriodMs: number;
}

export async function runExecutor(options: ExecutorProcessOptions): Promise<void> {
  const transport = await ZmqTransport.bind({ host: options.host, port: options.port });
  // A function's ctx waits on these reads: on a loaded machine, a 1 s attempt is too short.
  const kvs = await KvsClient.connect({ routing: options.routing, host: options.host, requestTimeoutMs: 2000 });
  const cache = new ExecutorCache(kvs, { bytesMax: options.cacheBytes });
  const pool = new RuntimePool({ prewarm: options.prewarm, workersMax: options.workers, memoryMb: options.memoryMb });
  await pool.ready();
  const peers = new Rpc(await ZmqTransport.bind({ host: options.host, port: 0 }), systemClock);
  const host = new ExecutorHost({ self: transport.address, pool, cache, kvs, rpc: peers });
  // A nonce per boot: schedulers tell a restart at this address from its heartbeats' executor_id,
  // even one faster than their failure timeout.
  const incarnation = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
  const executor = new ExecutorNode({ address: transport.address, schedulers: options.schedulers, statusPeriodMs: options.statusPeriodMs, incarnation });
  const shell = runMachine(executor, transport, systemClock, { tasks: host, onError: logError(`executor ${transport.address}`) });
  announceReady({ role: 'executor', address: transport.address, pid: process.pid, workers: options.workers });
  stopOnSignals(async () => {
    await shell.stop();
    await pool.close();
    cache.close();
    await peers.close();
    await peers.transport.close();
    await kvs.close();
  }, 'executor');
}
