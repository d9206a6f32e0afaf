/**
 * Opens one storage shard: its lmdb environment (its disk tier: entries are read from it as they
 * are needed, within the shard's memory budget), its ZeroMQ socket, and the shard machine running
 * over both. Used on a node's main thread and inside a shard worker.
 */
import { LmdbStore, Shard } from '../kvs/index.js';
import { bindTransport, runMachine, systemClock, usePolling } from '../protocol/index.js';
import { advertised } from './advertise.js';
import { roleSecurity } from './security.js';
import type { SecurityOptions } from './security.js';
import type { PbTypes } from '../protocol/index.js';
import { logError } from './process.js';
import { wireCountersOf } from './wire-metrics.js';
import type { WireCounters } from './wire-metrics.js';

export interface ShardSetup {
  readonly nodeId: string;
  readonly index: number;
  readonly host: string;
  /** The host other machines reach this role at (default: `host`; docs/multi-host.md). */
  readonly advertise?: string;
  /** 0: an ephemeral port. */
  readonly port: number;
  readonly path: string;
  readonly routing: readonly string[];
  readonly gossipPeriodMs: number;
  /** The shard's memory budget for entries (bytes). */
  readonly memoryBudgetBytes: number;
  readonly initialRing: PbTypes.IRingUpdate | undefined;
  /** The node's keys (plain data: a worker thread loads them itself). */
  readonly security: SecurityOptions;
}

export interface RunningShard {
  readonly address: string;
  readonly shard: Shard;
  /** What the shard's socket counted so far. */
  wire(): WireCounters;
  stop(): Promise<void>;
}

export async function openShard(setup: ShardSetup): Promise<RunningShard> {
  // Its thread polls after traffic, as the node's main thread does (protocol/busy-poll.ts).
  usePolling();
  const store = new LmdbStore(setup.path);
  const security = roleSecurity('storage', setup.security);
  const transport = await bindTransport({ host: setup.host, ...advertised(setup), port: setup.port, keyPair: security.keyPair });
  const shard = new Shard({
    nodeId: setup.nodeId,
    shardIndex: setup.index,
    address: transport.address,
    disk: store,
    memoryBudgetBytes: setup.memoryBudgetBytes,
    ...(setup.initialRing === undefined ? {} : { initialRing: setup.initialRing }),
    reportTo: setup.routing,
    gossipPeriodMs: setup.gossipPeriodMs,
    nowUs: () => performance.now() * 1000,
  });
  const shell = runMachine(shard, transport, systemClock, {
    store,
    onError: logError(`kvs ${setup.nodeId} shard ${setup.index}`),
    ...security.shell,
  });
  return {
    address: transport.address,
    shard,
    wire: () => wireCountersOf(shell, transport),
    stop: async () => {
      await shell.stop();
      await store.close();
    },
  };
}
