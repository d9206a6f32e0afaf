/**
 * `lfaas kvs`: one storage node as its own process: the node's control machine on the main thread
 * and N shared-nothing shards, each with its own ZeroMQ port and its own lmdb environment under
 * `<data>/<id>/shard-<i>`. With `threads`, each shard runs in its own worker thread
 * (shard-worker.ts); without, all run on the main thread (measured faster on 2 cores shared with
 * the clients: every thread brings its own ZeroMQ I/O thread). On start every shard reloads its
 * keys from disk, and the ring the node last knew (kept in `<data>/<id>/node`), then the node
 * joins the routing nodes; the shards catch up by anti-entropy. Prometheus metrics on
 * `metricsPort`, from the statistics the shards post.
 *
 * Stopping (SIGTERM, SIGINT, parent death) is fast and safe: what was acknowledged durable is on
 * disk. A graceful departure (`lfaas kvs depart`, a `nodeDepart` message) first hands every key
 * off to its new replicas, then exits.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { decode as unpackRing, encode as packRing } from 'msgpackr';
import { LmdbStore, StorageNode, startMetricsServer } from '../kvs/index.js';
import type { MetricSample, Readiness, ShardMemory, ShardStatsSnapshot } from '../kvs/index.js';
import { bindTransport, reportFatal, runMachine, systemClock, usePolling } from '../protocol/index.js';
import { advertised } from './advertise.js';
import { alsoOnProfileSignal } from './cpu-profile.js';
import { roleSecurity } from './security.js';
import type { SecurityOptions } from './security.js';
import type { MachineShell } from '../protocol/index.js';
import { wireCountersOf, wireSamples, zapSamples } from './wire-metrics.js';
import type { WireCounters } from './wire-metrics.js';
import type { PbTypes } from '../protocol/index.js';
import { announceReady, guardProcess, logError, stopOnSignals } from './process.js';
import { roleLog, setLogNode } from './log.js';
import { startTracing } from './tracing.js';
import { openShard } from './shard-runtime.js';
import type { ShardSetup } from './shard-runtime.js';
import type { ShardWorkerReport } from './shard-worker.js';

export interface StorageNodeProcessOptions extends SecurityOptions {
  readonly id: string;
  readonly host: string;
  /** The host other machines reach this role at (default: `host`; docs/multi-host.md). */
  readonly advertise?: string;
  /** The control port; shard i binds port + 1 + i (0: ephemeral ports for all) unless `shardPorts` says. */
  readonly port: number;
  /** Shard i binds shardPorts[i] (a restart on the addresses of the last run). */
  readonly shardPorts?: readonly number[];
  readonly shards: number;
  readonly routing: readonly string[];
  readonly data: string;
  /** -1: no metrics server; 0: an ephemeral port. */
  readonly metricsPort: number;
  readonly gossipPeriodMs: number;
  /** Each shard's memory budget for entries (bytes): beyond it, entries live on disk only. */
  readonly shardMemoryBytes: number;
  readonly departTimeoutMs: number;
  /** One worker thread per shard. */
  readonly threads: boolean;
}

const RING_META = 'ring';

/** A shard's memory tier as Prometheus series (nothing before a worker's first report). */
function memorySamples(memory: ShardMemory | undefined, labels: Readonly<Record<string, string>>): MetricSample[] {
  if (memory === undefined) return [];
  const gauge = (name: string, help: string, value: number): MetricSample => ({ name, help, type: 'gauge', value, labels });
  const counter = (name: string, help: string, value: number): MetricSample => ({ name, help, type: 'counter', value, labels });
  return [
    gauge('lfaas_kvs_memory_bytes', 'Bytes the entries in the shard\'s memory tier take (estimated).', memory.bytes),
    gauge('lfaas_kvs_memory_budget_bytes', 'The shard\'s memory budget for entries.', memory.budgetBytes),
    gauge('lfaas_kvs_memory_keys', 'Keys in the shard\'s memory tier.', memory.keys),
    gauge('lfaas_kvs_memory_uncommitted_bytes', 'Bytes of entries not yet committed to disk (they stay in memory).', memory.dirtyBytes),
    counter('lfaas_kvs_disk_reads_total', 'Entries read from disk on a miss of the memory tier.', memory.diskReads),
    counter('lfaas_kvs_evictions_total', 'Entries that left the memory tier (they stay on disk).', memory.evictions),
    counter('lfaas_kvs_disk_corrupt_total', 'Entries on disk that could not be decoded (served as absent; anti-entropy repairs them).', memory.diskCorrupt),
  ];
}
/** Ready once the ring lists this node alive (joined) and it is not departing. */
function storageReadiness(node: StorageNode | undefined, id: string): Readiness {
  if (node === undefined) return { ready: false, reason: 'starting' };
  if (node.isDeparting) return { ready: false, reason: 'departing: handing its keys off' };
  const listed = (node.ring().nodes ?? []).find((entry) => entry.id === id);
  return listed !== undefined && listed.departed !== true ? { ready: true, reason: 'in the ring' } : { ready: false, reason: 'not in the ring yet (joining)' };
}

const WORKER = new URL('./shard-worker.js', import.meta.url);

/** The node's view of a shard, wherever it runs. */
interface ShardHandle {
  readonly address: string;
  readonly keyCount: number;
  /** The memory tier (from a worker: as of its last report). */
  memory(): ShardMemory | undefined;
  readonly stats: { snapshot(): ShardStatsSnapshot; requestsPerSecond(nowMs: number): number };
  /** What the shard's socket counted (from a worker: as of its last report). */
  wire(): WireCounters | undefined;
  stop(timeoutMs: number): Promise<void>;
}

/** A shard on the main thread. */
async function startLocalShard(setup: ShardSetup): Promise<ShardHandle> {
  const running = await openShard(setup);
  return {
    address: running.address,
    get keyCount() {
      return running.shard.keyCount;
    },
    memory: () => running.shard.memory(),
    stats: running.shard.stats,
    wire: () => running.wire(),
    stop: () => running.stop(),
  };
}

/** A shard in a worker thread. */
class WorkerShard implements ShardHandle {
  address = '';
  keyCount = 0;
  bytes = 0;
  private snapshotValue: ShardStatsSnapshot | undefined;
  private wireValue: WireCounters | undefined;
  private memoryValue: ShardMemory | undefined;
  private rate = 0;
  private readonly stopped: Promise<void>;

  constructor(readonly worker: Worker) {
    this.stopped = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (report: ShardWorkerReport) => {
      if (report.kind !== 'stats') return;
      this.keyCount = report.keyCount;
      this.bytes = report.bytes;
      this.snapshotValue = report.snapshot;
      this.rate = report.requestsPerSecond;
      this.wireValue = report.wire;
      this.memoryValue = report.memory;
    });
  }

  wire(): WireCounters | undefined {
    return this.wireValue;
  }

  memory(): ShardMemory | undefined {
    return this.memoryValue;
  }

  /** The metrics server reads the last statistics the worker posted. */
  readonly stats = {
    snapshot: (): ShardStatsSnapshot =>
      this.snapshotValue ?? { requests: { get: 0, put: 0, delete: 0 }, latencyBoundsUs: [], latencyCounts: [], latencySumUs: 0, occupancyBytes: 0, keyCount: 0 },
    requestsPerSecond: (): number => this.rate,
  };

  /** Asks the worker to close its socket and store; its thread then ends by itself. */
  async stop(timeoutMs: number): Promise<void> {
    this.worker.postMessage({ kind: 'stop' });
    await Promise.race([this.stopped, new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
  }
}

async function startWorkerShard(data: ShardSetup): Promise<ShardHandle> {
  const worker = new Worker(WORKER, { workerData: data });
  alsoOnProfileSignal(() => worker.postMessage({ kind: 'profile' }));
  const handle = new WorkerShard(worker);
  const ready = await new Promise<{ address: string; keys: number }>((resolve, reject) => {
    worker.on('message', (report: ShardWorkerReport) => {
      if (report.kind === 'ready') resolve(report);
      if (report.kind === 'failed') reject(new Error(`shard ${data.index}: ${report.message}`));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`shard ${data.index} exited with ${code} before it was ready`)));
  });
  // A shard worker that dies of an error (a bug in it) leaves the node without that shard: the
  // whole process goes, for its supervisor to restart it (crash-guard.ts).
  worker.on('error', (error) => reportFatal(error, `shard worker ${data.index}`));
  handle.address = ready.address;
  handle.keyCount = ready.keys;
  return handle;
}

export async function runStorageNode(options: StorageNodeProcessOptions): Promise<void> {
  guardProcess('kvs');
  // A storage node answers quick exchanges: it polls after traffic (protocol/busy-poll.ts).
  usePolling();
  setLogNode(options.id);
  const name = `kvs ${options.id}`;
  const nodeStore = new LmdbStore(join(options.data, options.id, 'node'));
  const ringBytes = nodeStore.readMeta(RING_META);
  const initialRing = ringBytes === undefined ? undefined : (unpackRing(ringBytes) as PbTypes.IRingUpdate);
  const start = options.threads ? startWorkerShard : startLocalShard;
  const shards = await Promise.all(
    Array.from({ length: options.shards }, (_, index) =>
      start({
        nodeId: options.id,
        index,
        host: options.host,
        ...advertised(options),
        port: options.shardPorts?.[index] ?? (options.port === 0 ? 0 : options.port + 1 + index),
        path: join(options.data, options.id, `shard-${index}`),
        routing: options.routing,
        gossipPeriodMs: options.gossipPeriodMs,
        memoryBudgetBytes: options.shardMemoryBytes,
        initialRing,
        security: { ...(options.keys === undefined ? {} : { keys: options.keys }), ...(options.keyName === undefined ? {} : { keyName: options.keyName }), ...(options.insecure === true ? { insecure: true } : {}) },
      }),
    ),
  );
  const security = roleSecurity('storage', options);
  const control = await bindTransport({ host: options.host, ...advertised(options), port: options.port, keyPair: security.keyPair });
  await startTracing({ role: 'kvs', node: control.address });
  const metrics =
    options.metricsPort < 0
      ? undefined
      : await startMetricsServer({
          host: options.host,
          port: options.metricsPort,
          collect: () => shards.map((shard, i) => ({ labels: { node: options.id, shard: String(i) }, stats: shard.stats })),
          samples: () => [
            ...(nodeShell === undefined ? [] : wireSamples(wireCountersOf(nodeShell, control), { node: options.id, socket: 'control' })),
            ...zapSamples({ node: options.id }),
            ...shards.flatMap((shard, i) => memorySamples(shard.memory(), { node: options.id, shard: String(i) })),
            ...shards.flatMap((shard, i) => {
              const wire = shard.wire();
              return wire === undefined ? [] : wireSamples(wire, { node: options.id, socket: `shard-${i}` });
            }),
          ],
          ready: () => storageReadiness(node, options.id),
        });
  let nodeShell: MachineShell | undefined;
  let ringToSave: PbTypes.IRingUpdate | undefined;
  const node = new StorageNode({
    nodeId: options.id,
    address: control.address,
    shardAddresses: shards.map((shard) => shard.address),
    routing: options.routing,
    ...(metrics === undefined ? {} : { metricsPort: metrics.port }),
    ...(initialRing === undefined ? {} : { initialRing }),
    onRing: (ring) => {
      ringToSave = ring;
    },
  });
  nodeShell = runMachine(node, control, systemClock, { onError: logError(name), ...security.shell });
  // The ring is saved at most every 200 ms (it changes rarely; losing the last one only delays a restart's first requests).
  const saver = setInterval(() => {
    if (ringToSave === undefined) return;
    const ring = ringToSave;
    ringToSave = undefined;
    void nodeStore.writeMeta(RING_META, packRing(ring)).catch(logError(name));
  }, 200);
  saver.unref();

  const stop = async (): Promise<void> => {
    clearInterval(saver);
    await nodeShell?.stop();
    await Promise.all(shards.map((shard) => shard.stop(3000)));
    await metrics?.close();
    await nodeStore.close();
  };
  // A graceful departure: once every shard has handed its keys off (or the timeout), exit.
  let departedAtMs: number | undefined;
  const watcher = setInterval(() => {
    if (!node.isDeparting) return;
    departedAtMs ??= Date.now();
    const left = shards.reduce((sum, shard) => sum + shard.keyCount, 0);
    if (left === 0 || Date.now() - departedAtMs > options.departTimeoutMs) {
      clearInterval(watcher);
      roleLog().info({ keysLeft: left }, `${name}: departed (${left} keys not handed off)`);
      void stop().finally(() => process.exit(left === 0 ? 0 : 1));
    }
  }, 100);
  watcher.unref();

  announceReady({
    role: 'kvs',
    id: options.id,
    pid: process.pid,
    control: control.address,
    shards: shards.map((shard) => shard.address),
    metricsPort: metrics?.port ?? null,
    keys: shards.reduce((sum, shard) => sum + shard.keyCount, 0),
  });
  stopOnSignals(stop, name);
}
