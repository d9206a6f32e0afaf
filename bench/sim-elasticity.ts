/**
 * The simulated halves of the `autoscale` and `hotkey` benchmarks: the same scenarios as the real
 * processes, run in the deterministic simulator with its capacity model (each shard serves a
 * bounded number of messages per virtual second; test/simulator/capacity.ts), at sizes one machine
 * cannot run as processes. Time is virtual: every figure here is in virtual seconds and follows
 * from the model's capacity, not from this machine's speed; what the figures show is the shape
 * (how the cluster grows and shrinks, how skew caps throughput with and without hot-key
 * replication). Each call is deterministic (a seed; the same seed gives the same numbers).
 *
 * - `simulateAutoscale({ quick })`: an open-loop load ramps 10x and back on 8 storage nodes whose
 *   shards serve 50 messages/s; the monitor (utilisation policy, monitor/policy.ts) grows the
 *   cluster past 64 nodes and shrinks it again. Per virtual second: answered operations, p99,
 *   storage nodes, the monitor's events; per phase: throughput, p50, p99, the most nodes.
 * - `simulateHotkey({ zipf, replication, nodes, quick })`: read-heavy (99% GETs) closed-loop
 *   Zipf load over 1,000 keys on `nodes` storage nodes (32 by default) whose shards serve 100
 *   messages/s, with the monitor's hot-key replication on (a hot key is replicated on every node)
 *   or off; throughput, p50 and p99 over the last third of the run (90 s, 45 s with `quick`),
 *   once the monitor had time to act. Anti-entropy runs every 10 s there: with a key on every
 *   node every shard exchanges digests with every other, and in the model a digest costs a
 *   service like a GET (test/simulator/capacity.ts).
 * They call the scenarios of test/simulation (elastic-run.ts, elasticity-scenario.ts).
 */
import { ElasticRun } from '../test/simulation/elastic-run.js';
import type { RunSample } from '../test/simulation/elastic-run.js';
import { auditWrites, rampScenario } from '../test/simulation/elasticity-scenario.js';
import type { RampOptions } from '../test/simulation/elasticity-scenario.js';
import { pb } from '../protocol/index.js';
import type { Row } from './harness/report.js';

/** One virtual second of the simulated autoscale run. */
export interface AutoscalePoint {
  readonly second: number;
  /** Operations answered in that second. */
  readonly perSecond: number;
  /** Operations that failed (timed out or refused) in that second. */
  readonly failedPerSecond: number;
  /** p99 latency of the answered ones, in virtual ms (0 when none was answered). */
  readonly p99Ms: number;
  /** Storage nodes the ring listed at the end of the second. */
  readonly nodes: number;
  /** The monitor's events stored in that second. */
  readonly events: readonly string[];
}

export interface AutoscaleResult {
  readonly timeline: readonly AutoscalePoint[];
  /** Per phase: phase, operations, perSecond, p50Ms, p99Ms, nodesMost. */
  readonly rows: readonly Row[];
  readonly startNodes: number;
  readonly peakNodes: number;
  readonly endNodes: number;
  /** Acknowledged (DURABLE or REPLICATED) elements missing from a replica after the run: 0 expected. */
  readonly lostWrites: number;
  readonly notes: readonly string[];
}

const PHASES = ['base', 'ramp up', 'peak (10x)', 'ramp down', 'base again'] as const;

/** The autoscale scenario at 64+ nodes (see the file header); `quick` shortens the phases. */
export function simulateAutoscale(options: { readonly quick?: boolean; readonly seed?: number } = {}): AutoscaleResult {
  const quick = options.quick === true;
  const ramp: RampOptions = {
    seed: options.seed ?? 1,
    nodes: 8,
    perSecond: 50,
    baseUtilisation: 0.5,
    factor: 10,
    phasesMs: quick ? [8000, 15_000, 25_000, 10_000, 30_000] : [10_000, 20_000, 40_000, 15_000, 180_000],
    maxNodes: 96,
    policy: { graceMs: 2000, downSustainMs: 2000 },
    antiEntropyPeriodMs: 3000,
  };
  const { run, client } = rampScenario(ramp);
  const timeline = run.samples.map((sample: RunSample): AutoscalePoint => ({ second: sample.second, perSecond: sample.ok, failedPerSecond: sample.failed, p99Ms: sample.p99Ms ?? 0, nodes: sample.nodes, events: sample.events }));
  const rows: Row[] = [];
  let from = 0;
  ramp.phasesMs.forEach((ms, i) => {
    const to = from + ms;
    const latencies: number[] = [];
    let ok = 0;
    let nodesMost = 0;
    for (let second = Math.floor(from / 1000); second < Math.floor(to / 1000); second++) {
      const stats = client.seconds[second];
      if (stats !== undefined) {
        ok += stats.ok;
        for (const latency of stats.latenciesMs) latencies.push(latency);
      }
      nodesMost = Math.max(nodesMost, run.samples[second]?.nodes ?? 0);
    }
    latencies.sort((a, b) => a - b);
    const quantile = (q: number): number => (latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]!);
    rows.push({ phase: `${PHASES[i]}: ${ms / 1000} s at ${i === 2 ? ramp.factor : i === 0 || i === 4 ? 1 : `1 to ${ramp.factor}`}x`, operations: ok, perSecond: Math.round((ok * 1000) / ms), p50Ms: quantile(0.5), p99Ms: quantile(0.99), nodesMost });
    from = to;
  });
  const peakNodes = Math.max(...timeline.map((point) => point.nodes));
  const audit = auditWrites(run, [client]);
  const done = (action: string): { atMs: number }[] => run.records.history.filter(({ event }) => event.kind === 'done' && event.action === action);
  const adds = done('add');
  const removes = done('remove');
  const rampStartMs = ramp.phasesMs[0];
  const peakReachedS = timeline.find((point) => point.nodes === peakNodes)?.second ?? 0;
  const baseRate = ramp.nodes * ramp.perSecond * ramp.baseUtilisation;
  const notes = [
    `simulation (virtual time; figures follow from the capacity model, not this machine): ${ramp.nodes} storage nodes of 1 shard serving ${ramp.perSecond} messages/s each (replication 2), an open-loop load of ${baseRate} operations/s (90% GETs, 10% GSet PUTs with random acks) ramping to ${baseRate * ramp.factor}/s and back; the monitor adds storage nodes when their average utilisation (requests served / ${ramp.perSecond}) stays >= 0.6 for 2 s, as many as bring it back to 0.6, and removes one when requests stay under 30% of a node's capacity for 2 s (2 s grace after each action)`,
    `simulation: ${ramp.nodes} to ${peakNodes} storage nodes (reached ${(peakReachedS - rampStartMs / 1000).toFixed(0)} s after the ramp began, in ${adds.length} add actions; the first ${adds[0] === undefined ? 'never' : `${((adds[0].atMs - rampStartMs) / 1000).toFixed(1)} s after it`}) and back to ${timeline.at(-1)?.nodes ?? 0} (${removes.length} removals, one at a time); ${audit.acknowledged} acknowledged elements checked on every replica after the run, ${audit.lost} lost, ${audit.disagreeing} keys disagreeing`,
    `simulation: ${client.counters.failed} of ${client.counters.sent} operations failed (timed out at 1 s, or dropped at a full shard queue) while the cluster grew behind the ramp`,
  ];
  return { timeline, rows, startNodes: ramp.nodes, peakNodes, endNodes: timeline.at(-1)?.nodes ?? 0, lostWrites: audit.lost, notes };
}

export interface HotkeyResult {
  /** GETs and PUTs answered per virtual second over the measured last third. */
  readonly perSecond: number;
  readonly failedPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The replication factor (nodes) of the hottest key at the end. */
  readonly hottestKeyReplicas: number;
  /** Keys the monitor replicated on more nodes over the run. */
  readonly keysReplicated: number;
}

/**
 * Zipf `zipf` (0: uniform) over 1,000 keys, 99% GETs (1% DURABLE PUTs), closed loop (4 operations
 * in flight per node), on `nodes` storage nodes (32 by default, replication 2) whose shards serve
 * 100 messages per virtual second, with hot-key replication on (a key read at >= 20x the mean
 * rate and >= 10/s, a tenth of a node's capacity, is replicated on every node) or off. Measured over the last third of the run
 * (90 s, 45 s with `quick`).
 */
export function simulateHotkey(options: { readonly zipf: number; readonly replication: boolean; readonly nodes?: number; readonly quick?: boolean; readonly seed?: number }): HotkeyResult {
  const nodes = options.nodes ?? 32;
  const perSecond = 100;
  const durationMs = options.quick === true ? 45_000 : 90_000;
  const run = new ElasticRun({
    seed: options.seed ?? 1,
    shape: { routing: 2, nodes, shardsPerNode: 1, global: 2, local: 1, shard: { gossipPeriodMs: 200, antiEntropyPeriodMs: 10_000 } },
    shardCapacity: { perSecond, queueMax: 200 },
    storage: { min: nodes, max: nodes },
    hotKeys: options.replication ? { hotFactor: 20, hotRateMin: 0.1 * perSecond, replicas: nodes, coolSustainMs: 60_000, keysMax: 256 } : { keysMax: 0 },
  });
  const client = run.addClient('load', { keys: 1000, prefix: 'k', zipf: options.zipf, readFraction: 0.99, acks: [pb.AckMode.ACK_DURABLE], window: 4 * nodes, timeoutMs: 2000, preload: true });
  run.advance(durationMs);
  // The last third: the monitor raised the hot keys before (each raise is a ring change, and the
  // new replicas fill by anti-entropy: a dip of a second or two each).
  const measured = run.samples.slice(Math.floor((run.samples.length * 2) / 3));
  const seconds = measured.map((sample) => client.seconds[sample.second]).filter((stats) => stats !== undefined);
  const latencies = seconds.flatMap((stats) => stats.latenciesMs).sort((a, b) => a - b);
  const quantile = (q: number): number => (latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]!);
  const ok = seconds.reduce((sum, stats) => sum + stats.ok, 0);
  const failed = seconds.reduce((sum, stats) => sum + stats.failed, 0);
  const keysReplicated = new Set(run.records.history.filter(({ event }) => event.kind === 'done' && event.action === 'replicate' && event.reason.startsWith(`${nodes} replicas`)).map(({ event }) => event.node)).size;
  return {
    perSecond: ok / Math.max(1, measured.length),
    failedPerSecond: failed / Math.max(1, measured.length),
    p50Ms: quantile(0.5),
    p99Ms: quantile(0.99),
    hottestKeyReplicas: run.cluster.membership()?.factorsOf(client.keyOfRank(0)).global ?? 0,
    keysReplicated,
  };
}
