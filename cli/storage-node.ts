/**
 * `lfaas kvs`: one storage node as its own process: the node's control machine and N shards, each
 * shard with its own ZeroMQ port and its own lmdb environment under `<data>/<id>/shard-<i>`. On
 * start every shard reloads its keys from disk (and the last ring it knew), then the node joins
 * the routing nodes; the shards catch up by anti-entropy. Prometheus metrics on `metricsPort`.
 *
 * Stopping (SIGTERM, SIGINT, parent death) is fast and safe: what was acknowledged durable is on
 * disk. A graceful departure (`lfaas kvs depart`, a `nodeDepart` message) first hands every key
 * off to its new replicas, then exits.
 */
import { join } from 'node:path';
import { encode as packRing, decode as unpackRing } from 'msgpackr';
import { LmdbStore, Shard, StorageNode, decodeEntry, startMetricsServer } from '../kvs/index.js';
import type { Entry } from '../kvs/index.js';
import { ZmqTransport, runMachine, systemClock } from '../protocol/index.js';
import type { MachineShell, PbTypes } from '../protocol/index.js';
import { announceReady, logError, stopOnSignals } from './process.js';

export interface StorageNodeProcessOptions {
  readonly id: string;
  readonly host: string;
  /** The control port; shard i binds port + 1 + i (0: ephemeral ports for all). */
  readonly port: number;
  readonly shards: number;
  readonly routing: readonly string[];
  readonly data: string;
  /** -1: no metrics server; 0: an ephemeral port. */
  readonly metricsPort: number;
  readonly gossipPeriodMs: number;
  readonly departTimeoutMs: number;
}

const RING_META = 'ring';

export async function runStorageNode(options: StorageNodeProcessOptions): Promise<void> {
  const name = `kvs ${options.id}`;
  const stores = Array.from({ length: options.shards }, (_, i) => new LmdbStore(join(options.data, options.id, `shard-${i}`)));
  const ringBytes = stores[0]!.readMeta(RING_META);
  const initialRing = ringBytes === undefined ? undefined : (unpackRing(ringBytes) as PbTypes.IRingUpdate);
  const transports = await Promise.all(
    Array.from({ length: options.shards + 1 }, (_, i) => ZmqTransport.bind({ host: options.host, port: options.port === 0 ? 0 : options.port + i })),
  );
  const control = transports[0]!;
  const shardTransports = transports.slice(1);
  const metrics = options.metricsPort < 0 ? undefined : await startMetricsServer({ host: options.host, port: options.metricsPort, collect: () => sources() });
  const shards = shardTransports.map((transport, i) => {
    const initial = new Map<string, Entry>();
    for (const [key, bytes] of stores[i]!.load()) {
      try {
        initial.set(key, decodeEntry(bytes));
      } catch (error) {
        process.stderr.write(`${name}: shard ${i}: unreadable entry ${JSON.stringify(key)} skipped: ${String(error)}\n`);
      }
    }
    return new Shard({
      nodeId: options.id,
      shardIndex: i,
      address: transport.address,
      initial,
      ...(initialRing === undefined ? {} : { initialRing }),
      reportTo: options.routing,
      gossipPeriodMs: options.gossipPeriodMs,
      nowUs: () => performance.now() * 1000,
    });
  });
  const sources = () => shards.map((shard, i) => ({ labels: { node: options.id, shard: String(i) }, stats: shard.stats }));
  const shells: MachineShell[] = shards.map((shard, i) => runMachine(shard, shardTransports[i]!, systemClock, { store: stores[i]!, onError: logError(`${name} shard ${i}`) }));
  let ringToSave: PbTypes.IRingUpdate | undefined;
  const node = new StorageNode({
    nodeId: options.id,
    address: control.address,
    shardAddresses: shardTransports.map((transport) => transport.address),
    routing: options.routing,
    ...(metrics === undefined ? {} : { metricsPort: metrics.port }),
    ...(initialRing === undefined ? {} : { initialRing }),
    onRing: (ring) => {
      ringToSave = ring;
    },
  });
  const nodeShell = runMachine(node, control, systemClock, { onError: logError(name) });
  // The ring is saved at most every 200 ms (it changes rarely; losing the last one only delays a restart's first requests).
  const saver = setInterval(() => {
    if (ringToSave === undefined) return;
    const ring = ringToSave;
    ringToSave = undefined;
    void stores[0]!.writeMeta(RING_META, packRing(ring)).catch(logError(name));
  }, 200);
  saver.unref();

  const stop = async (): Promise<void> => {
    clearInterval(saver);
    await nodeShell.stop();
    await Promise.all(shells.map((shell) => shell.stop()));
    await metrics?.close();
    await Promise.all(stores.map((store) => store.close()));
  };
  // A graceful departure: once every shard has handed its keys off (or the timeout), exit.
  let departedAtMs: number | undefined;
  const watcher = setInterval(() => {
    if (!node.isDeparting) return;
    departedAtMs ??= Date.now();
    const left = shards.reduce((sum, shard) => sum + shard.keyCount, 0);
    if (left === 0 || Date.now() - departedAtMs > options.departTimeoutMs) {
      clearInterval(watcher);
      process.stderr.write(`${name}: departed (${left} keys not handed off)\n`);
      void stop().finally(() => process.exit(left === 0 ? 0 : 1));
    }
  }, 100);
  watcher.unref();

  announceReady({
    role: 'kvs',
    id: options.id,
    pid: process.pid,
    control: control.address,
    shards: shardTransports.map((transport) => transport.address),
    metricsPort: metrics?.port ?? null,
    keys: shards.reduce((sum, shard) => sum + shard.keyCount, 0),
  });
  stopOnSignals(stop, name);
}
