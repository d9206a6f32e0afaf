/**
 * One storage shard in its own worker thread (its own event loop, so a node's shards use as many
 * cores as it has). The node's main thread starts it with a {@link ShardSetup} as `workerData`
 * and talks to it only by messages: `ready`, periodic `stats`, and `stop` -> `stopped`. The
 * worker is never terminated from outside while its socket receives (that aborts the process,
 * a ZeroMQ pitfall): it closes its own socket and store, and its thread ends by itself.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ShardMemory, ShardStatsSnapshot } from '../kvs/index.js';
import { systemClock } from '../protocol/index.js';
import { cpuProfileSwitch } from './cpu-profile.js';
import { openShard } from './shard-runtime.js';
import type { ShardSetup } from './shard-runtime.js';
import type { WireCounters } from './wire-metrics.js';

/** What a shard worker tells its node. */
export type ShardWorkerReport =
  | { readonly kind: 'ready'; readonly address: string; readonly keys: number }
  | { readonly kind: 'stats'; readonly keyCount: number; readonly bytes: number; readonly memory: ShardMemory; readonly snapshot: ShardStatsSnapshot; readonly requestsPerSecond: number; readonly wire: WireCounters }
  | { readonly kind: 'stopped' }
  | { readonly kind: 'failed'; readonly message: string };

const STATS_PERIOD_MS = 250;

async function main(): Promise<void> {
  const profile = cpuProfileSwitch(`shard-${(workerData as ShardSetup).index}`);
  const port = parentPort!;
  const post = (report: ShardWorkerReport): void => port.postMessage(report);
  const running = await openShard(workerData as ShardSetup);
  const { shard } = running;
  const stats = setInterval(() => {
    post({ kind: 'stats', keyCount: shard.keyCount, bytes: shard.bytes, memory: shard.memory(), snapshot: shard.stats.snapshot(), requestsPerSecond: shard.stats.requestsPerSecond(systemClock.now()), wire: running.wire() });
  }, STATS_PERIOD_MS);
  port.on('message', (message: { kind: string }) => {
    if (message.kind === 'profile') profile?.();
    if (message.kind !== 'stop') return;
    clearInterval(stats);
    void running.stop().finally(() => {
      post({ kind: 'stopped' });
      port.close();
    });
  });
  post({ kind: 'ready', address: running.address, keys: shard.keyCount });
}

main().catch((error: unknown) => {
  parentPort?.postMessage({ kind: 'failed', message: error instanceof Error ? error.message : String(error) } satisfies ShardWorkerReport);
});
