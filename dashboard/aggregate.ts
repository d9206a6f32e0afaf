/**
 * The dashboard's snapshot, made from what the cluster answered in one collection round: the
 * routing node's ClusterStats (ring nodes, every shard's StatsReport), each scheduler's
 * (executors' ExecutorStatus, with their hottest functions' FunctionLoad), the registry's
 * functions and DAGs, and the monitor's event log. Pure: collector.ts asks, this sums up.
 *
 * - Ring: the nodes not departed, each with its shards' keys and bytes summed.
 * - Executors: each executor once, however many schedulers know it (the newest status wins).
 * - Functions: a function's load summed over executors: calls/s and errors/s added, p50
 *   weighted by each executor's rate, p99 the largest (as the monitor does).
 * - Names and numbers only: no value stored in the KVS reaches a snapshot.
 */
import type { PbTypes } from '../protocol/index.js';

export interface RingNodeRow {
  readonly id: string;
  readonly address: string;
  readonly tier: string;
  readonly shards: number;
  readonly keys: number;
  readonly bytes: number;
  readonly rps: number;
}

export interface ShardRow {
  readonly node: string;
  readonly shard: number;
  readonly keys: number;
  readonly bytes: number;
  readonly rps: number;
  readonly p99Ms: number | undefined;
}

export interface ExecutorRow {
  readonly id: string;
  readonly address: string;
  readonly utilisation: number;
  readonly demand: number;
  readonly capacity: number;
  /** `name@version` with a warm runtime. */
  readonly warm: readonly string[];
  readonly stems: number;
  readonly running: number;
  readonly schedulers: number;
}

export interface FunctionRow {
  readonly name: string;
  /** The latest version (0: not in the registry, seen on an executor only). */
  readonly version: number;
  readonly memoryMb: number;
  readonly callsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly errorsPerSecond: number;
  /** Executors that ran it recently. */
  readonly executors: number;
  /** Executors where it is warm. */
  readonly warmOn: number;
}

export interface DagRow {
  readonly name: string;
  readonly functions: readonly string[];
  readonly edges: readonly (readonly [string, string])[];
}

/** A function as the registry lists it (client FunctionInfo's fields used here). */
export interface RegisteredFunction {
  readonly name: string;
  readonly latest: number;
  readonly memoryMb: number;
}

/** What one collection round got; a part that failed is undefined. */
export interface RoundAnswers {
  readonly atMs: number;
  readonly routing: PbTypes.IClusterStats | undefined;
  readonly schedulers: readonly (PbTypes.IClusterStats | undefined)[];
  readonly functions: readonly RegisteredFunction[] | undefined;
  readonly dags: readonly DagRow[] | undefined;
}

export interface ClusterView {
  readonly ring: RingNodeRow[];
  readonly shards: ShardRow[];
  readonly executors: ExecutorRow[];
  readonly functions: FunctionRow[];
  readonly replication: { readonly default: number; readonly max: number };
}

/** A bound this large is the overflow bucket's (kvs reports infinity as 1e12 µs). */
const OVERFLOW_BOUND_US = 1e11;
const TIERS: Record<number, string> = { 0: 'unspecified', 1: 'memory', 2: 'disk' };

/**
 * The approximate p99 of a shard's latency histogram (ms; bounds in µs, the last one of the
 * overflow bucket is huge: read as the bound below it), undefined when it has none.
 */
export function histogramP99(latency: PbTypes.ILatencyHistogram | null | undefined): number | undefined {
  const bounds = latency?.boundsUs ?? [];
  const counts = (latency?.counts ?? []).map(Number);
  const total = counts.reduce((sum, count) => sum + count, 0);
  if (total === 0 || bounds.length === 0) return undefined;
  let index = 0;
  for (let seen = 0; index < counts.length - 1; index++) {
    seen += counts[index]!;
    if (seen >= total * 0.99) break;
  }
  index = Math.min(index, bounds.length - 1);
  const bound = bounds[index]! >= OVERFLOW_BOUND_US && index > 0 ? bounds[index - 1]! : bounds[index]!;
  return bound / 1000;
}

export function clusterView(answers: RoundAnswers): ClusterView {
  const nodes = (answers.routing?.nodes ?? []).filter((node) => node.departed !== true);
  // Shards: the latest report of each (node, shard) of a live node.
  const alive = new Set(nodes.map((node) => node.id ?? ''));
  const latest = new Map<string, PbTypes.IStatsReport>();
  for (const report of answers.routing?.shards ?? []) {
    const node = report.nodeId ?? '';
    if (!alive.has(node)) continue;
    const key = `${node}\u0000${report.shard ?? 0}`;
    const before = latest.get(key);
    if (before === undefined || Number(report.sentAtMs ?? 0) >= Number(before.sentAtMs ?? 0)) latest.set(key, report);
  }
  const shards: ShardRow[] = [...latest.values()]
    .map((report) => ({ node: report.nodeId ?? '', shard: report.shard ?? 0, keys: Number(report.keyCount ?? 0), bytes: Number(report.occupancyBytes ?? 0), rps: report.requestsPerSecond ?? 0, p99Ms: histogramP99(report.latency) }))
    .sort((a, b) => (a.node === b.node ? a.shard - b.shard : a.node < b.node ? -1 : 1));
  const ring: RingNodeRow[] = nodes
    .map((node) => {
      const own = shards.filter((shard) => shard.node === node.id);
      return {
        id: node.id ?? '',
        address: node.address ?? '',
        tier: TIERS[node.tier ?? 0] ?? String(node.tier),
        shards: node.shardAddresses?.length ?? 0,
        keys: own.reduce((sum, shard) => sum + shard.keys, 0),
        bytes: own.reduce((sum, shard) => sum + shard.bytes, 0),
        rps: own.reduce((sum, shard) => sum + shard.rps, 0),
      };
    })
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  // Executors: the newest status of each, and how many schedulers know it.
  const statuses = new Map<string, { status: PbTypes.IExecutorStatus; schedulers: number }>();
  for (const answer of answers.schedulers) {
    for (const status of answer?.executors ?? []) {
      const id = status.executorId || status.address || '';
      if (id === '') continue;
      const before = statuses.get(id);
      if (before === undefined) statuses.set(id, { status, schedulers: 1 });
      else statuses.set(id, { status: Number(status.sentAtMs ?? 0) > Number(before.status.sentAtMs ?? 0) ? status : before.status, schedulers: before.schedulers + 1 });
    }
  }
  const executors: ExecutorRow[] = [...statuses.entries()]
    .map(([id, { status, schedulers }]) => ({
      id,
      address: status.address ?? '',
      utilisation: status.utilisation ?? 0,
      demand: status.demand ?? 0,
      capacity: status.capacity ?? 0,
      warm: [...(status.warmFunctions ?? [])].sort(),
      stems: status.stems ?? 0,
      running: status.running?.length ?? 0,
      schedulers,
    }))
    .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));

  // Functions: loads summed over executors, joined with the registry.
  const loads = new Map<string, { rate: number; errors: number; p50Weighted: number; p99: number; executors: number }>();
  for (const { status } of statuses.values()) {
    for (const load of status.functions ?? []) {
      const name = load.name ?? '';
      if (name === '') continue;
      const rate = Math.max(0, load.rate ?? 0);
      const sum = loads.get(name) ?? { rate: 0, errors: 0, p50Weighted: 0, p99: 0, executors: 0 };
      sum.rate += rate;
      sum.errors += Math.max(0, load.errors ?? 0);
      sum.p50Weighted += rate * (load.p50Ms ?? 0);
      sum.p99 = Math.max(sum.p99, load.p99Ms ?? 0);
      sum.executors++;
      loads.set(name, sum);
    }
  }
  const warmOn = new Map<string, number>();
  for (const executor of executors) for (const name of new Set(executor.warm.map((id) => id.replace(/@\d+$/, '')))) warmOn.set(name, (warmOn.get(name) ?? 0) + 1);
  const registered = new Map((answers.functions ?? []).map((fn) => [fn.name, fn]));
  const names = new Set([...registered.keys(), ...loads.keys()]);
  const functions: FunctionRow[] = [...names].sort().map((name) => {
    const load = loads.get(name);
    const info = registered.get(name);
    return {
      name,
      version: info?.latest ?? 0,
      memoryMb: info?.memoryMb ?? 0,
      callsPerSecond: load?.rate ?? 0,
      p50Ms: load === undefined || load.rate === 0 ? 0 : load.p50Weighted / load.rate,
      p99Ms: load?.p99 ?? 0,
      errorsPerSecond: load?.errors ?? 0,
      executors: load?.executors ?? 0,
      warmOn: warmOn.get(name) ?? 0,
    };
  });
  return { ring, shards, executors, functions, replication: { default: answers.routing?.replicationDefault || 1, max: answers.routing?.replicationMax || 1 } };
}
