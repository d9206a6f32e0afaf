/**
 * The elasticity scenarios of elasticity.test.ts (here so that the benchmarks' simulated halves
 * can import them without registering the tests), each a deterministic function of its seed:
 * - `rampScenario`: an open-loop load ramps 10x and back on a few storage nodes (3 in the test, 8
 *   in the benchmark); the monitor grows the cluster on utilisation (past 24 nodes in the test,
 *   past 64 in the benchmark) and shrinks it again once the load is back.
 * - `hotKeyScenario`: Zipf 1.5 reads; the hottest keys get a higher replication factor at the
 *   routing nodes, and the default again once the workload moved to other keys and they cooled.
 * - `faultScenario`: a smaller cluster under a load that makes the monitor add and then remove
 *   nodes, with the existing fault injection throughout (loss, duplication, reordering,
 *   partitions, crashes); an availability reader reads every key acknowledged REPLICATED.
 * `checkInvariants` then holds every run to: every element acknowledged DURABLE or REPLICATED is
 * in every replica of its key under the final ring, replicas converge, nothing was invented; and
 * (fault scenario) no key stayed unreadable longer than the failure timeout.
 *
 * Nothing here imports vitest: a failed check throws an Error naming what broke.
 */
import type { StoragePolicy } from '../../monitor/index.js';
import { pb } from '../../protocol/index.js';
import { AvailabilityReader } from './availability-reader.js';
import { ElasticRun } from './elastic-run.js';
import type { ElasticRunOptions } from './elastic-run.js';
import { elementsOf } from './kvs-cluster.js';
import type { LoadClient } from './load-client.js';

function check(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new Error(message());
}

// ---- the ramp ------------------------------------------------------------------------------

export interface RampOptions {
  readonly seed: number;
  /** Storage nodes at the start (the policy's minimum). */
  readonly nodes: number;
  /** Messages a shard serves per virtual second. */
  readonly perSecond: number;
  /** The base load as a share of the starting cluster's capacity. */
  readonly baseUtilisation: number;
  /** The peak as a multiple of the base load. */
  readonly factor: number;
  /** Phase lengths (ms): base, ramp up, peak, ramp down, base again. */
  readonly phasesMs: readonly [number, number, number, number, number];
  readonly maxNodes: number;
  /** The storage policy's timing (defaults: elastic-run.ts's storagePolicy). */
  readonly policy?: Partial<Pick<StoragePolicy, 'upSustainMs' | 'downSustainMs' | 'graceMs'>>;
  /** Shard anti-entropy period (ms; 2000 by default). */
  readonly antiEntropyPeriodMs?: number;
  readonly networkFaults?: boolean;
  /** Crash/partition rounds every so many ms (undefined: none). */
  readonly faultEveryMs?: number;
}

/** The load multiplier at `nowMs`: 1, a linear ramp to `factor`, `factor`, a ramp back, 1. */
export function rampMultiplier(options: Pick<RampOptions, 'factor' | 'phasesMs'>, nowMs: number): number {
  const [base, up, peak, down] = options.phasesMs;
  const t = nowMs;
  if (t < base) return 1;
  if (t < base + up) return 1 + ((options.factor - 1) * (t - base)) / up;
  if (t < base + up + peak) return options.factor;
  if (t < base + up + peak + down) return options.factor - ((options.factor - 1) * (t - base - up - peak)) / down;
  return 1;
}

export function rampRunOptions(options: RampOptions): ElasticRunOptions {
  return {
    seed: options.seed,
    shape: { routing: 2, nodes: options.nodes, shardsPerNode: 1, global: 2, local: 1, shard: { gossipPeriodMs: 200, antiEntropyPeriodMs: options.antiEntropyPeriodMs ?? 2000 } },
    shardCapacity: { perSecond: options.perSecond, queueMax: Math.max(20, Math.round(options.perSecond / 4)) },
    networkFaults: options.networkFaults === true,
    storage: { max: options.maxNodes, ...options.policy },
  };
}

export function rampScenario(options: RampOptions): { run: ElasticRun; client: LoadClient } {
  const run = new ElasticRun(rampRunOptions(options));
  const baseRate = options.nodes * options.perSecond * options.baseUtilisation;
  const client = run.addClient('load', {
    keys: 200,
    prefix: 'k',
    zipf: 0,
    readFraction: 0.9,
    rate: (nowMs) => baseRate * rampMultiplier(options, nowMs),
    timeoutMs: 1000,
    // Every key written first: a GET of a key nobody wrote is forwarded to other replicas while
    // the ring settles (a migration window), which would double the load of a read.
    preload: true,
  });
  const totalMs = options.phasesMs.reduce((sum, ms) => sum + ms, 0);
  let nextFaultMs = options.faultEveryMs;
  run.advance(totalMs, (nowMs) => {
    if (nextFaultMs === undefined || nowMs < nextFaultMs) return;
    run.faultRound();
    nextFaultMs = nowMs + options.faultEveryMs!;
  });
  run.quiesce();
  settle(run);
  return { run, client };
}

/**
 * After `quiesce`: waits (bounded) for the provider's operations to end, then `ms` for the
 * replicas to converge, and again while the ring does not list every running node (with loss
 * still on, a few heartbeats lost in a row make a routing node fail a node, which rejoins once its
 * next heartbeat is answered; keys move meanwhile), at most 4 times.
 */
function settle(run: ElasticRun, ms = 6000): void {
  for (let i = 0; i < 60 && run.provider.inProgress > 0; i++) run.sim.runFor(1000, 5_000_000);
  for (let i = 0; i < 4; i++) {
    run.sim.runFor(ms, 5_000_000);
    if (run.cluster.aliveCount() === run.cluster.nodes.size) return;
  }
}

// ---- the invariants ------------------------------------------------------------------------

/** What the final replicas hold against what the clients sent and were told (see `auditWrites`). */
export interface WriteAudit {
  /** Elements acknowledged DURABLE or REPLICATED, over all keys. */
  readonly acknowledged: number;
  /** Acknowledged elements missing from some replica of their key (counted once per element). */
  readonly lost: number;
  /** Keys whose replicas hold different elements. */
  readonly disagreeing: number;
  /** Elements held that no client sent. */
  readonly invented: number;
  /** The first problem found, in words. */
  readonly firstProblem: string | undefined;
}

/**
 * Compares every key's replicas (per the final ring of a routing node) with what the clients sent:
 * every element acknowledged DURABLE or REPLICATED must be in every replica, the replicas must
 * hold the same elements, and every element must have been sent.
 */
export function auditWrites(run: ElasticRun, clients: readonly LoadClient[]): WriteAudit {
  const ring = run.cluster.ring();
  if (ring === undefined) return { acknowledged: 0, lost: 0, disagreeing: 0, invented: 0, firstProblem: 'no routing node runs' };
  const shards = run.cluster.shards();
  let acknowledged = 0;
  let lost = 0;
  let disagreeing = 0;
  let invented = 0;
  let firstProblem: string | undefined;
  const problem = (text: string): void => void (firstProblem ??= text);
  const keys = new Set(clients.flatMap((client) => [...client.sent.keys()]));
  for (const key of keys) {
    const sent = new Set(clients.flatMap((client) => [...(client.sent.get(key) ?? [])]));
    const safe = new Set(clients.flatMap((client) => [...(client.safe.get(key) ?? [])]));
    acknowledged += safe.size;
    const replicas = ring.replicasOf(key);
    const values = replicas.map((address) => elementsOf(shards.get(address)?.entry(key)?.value));
    const first = values[0] ?? new Set<string>();
    const differing = values.findIndex((value) => value.size !== first.size || [...value].some((element) => !first.has(element)));
    if (differing > 0) {
      disagreeing++;
      problem(`${key}: replicas ${replicas[0]} and ${replicas[differing]} disagree (${first.size} and ${values[differing]!.size} elements)`);
    }
    for (const element of safe) {
      const without = values.findIndex((value) => !value.has(element));
      if (without < 0) continue;
      lost++;
      problem(`${key}: acknowledged element ${element} lost on ${replicas[without]}`);
    }
    for (const value of values) {
      for (const element of value) {
        if (sent.has(element)) continue;
        invented++;
        problem(`${key}: ${element} was never sent`);
      }
    }
  }
  return { acknowledged, lost, disagreeing, invented, firstProblem };
}

/**
 * The run's safety: every storage node running is in the ring, every shard's anti-entropy digests
 * are consistent, and `auditWrites` finds nothing (no acknowledged write lost, replicas converged,
 * nothing invented). Throws naming the first problem.
 */
export function checkInvariants(run: ElasticRun, clients: readonly LoadClient[]): WriteAudit {
  const ring = run.cluster.ring();
  check(ring !== undefined, () => 'no routing node runs');
  check(ring.nodeCount === run.cluster.nodes.size, () => `the ring lists ${ring.nodeCount} storage nodes alive; ${run.cluster.nodes.size} run (${run.provider.counters.removesFailed} removals failed)`);
  const shards = run.cluster.shards();
  check(shards.size === run.cluster.nodes.size * run.cluster.shape.shardsPerNode, () => `${shards.size} shards run`);
  for (const shard of shards.values()) check(shard.digestsConsistent(), () => `${shard.address}: its anti-entropy digests drifted`);
  const audit = auditWrites(run, clients);
  check(audit.firstProblem === undefined, () => `${audit.firstProblem} (${audit.lost} acknowledged elements lost of ${audit.acknowledged}, ${audit.disagreeing} keys disagreeing, ${audit.invented} invented)`);
  check(audit.acknowledged > 0, () => 'no write was acknowledged');
  return audit;
}

// ---- hot keys ------------------------------------------------------------------------------

export interface HotKeyOutcome {
  readonly run: ElasticRun;
  readonly client: LoadClient;
  /** The keys of the first hot set (ranks 0..hot-1 before the shift) and of the second. */
  readonly firstHot: readonly string[];
  readonly secondHot: readonly string[];
  /** Per key of both sets: its factor (global) at the routing node before the shift, and at the end. */
  readonly beforeShift: ReadonlyMap<string, number>;
  readonly atEnd: ReadonlyMap<string, number>;
  readonly defaultGlobal: number;
}

/**
 * Zipf 1.5 reads (and a few writes) over 400 keys on 6 nodes, closed loop: the hottest keys get
 * their factor raised; at `shiftAtMs` the hot set moves to other keys (rank r names key r + 200),
 * and the first set goes back to the default once it cooled.
 */
export function hotKeyScenario(seed: number, options: { readonly networkFaults?: boolean; readonly shiftAtMs?: number; readonly endMs?: number } = {}): HotKeyOutcome {
  const shiftAtMs = options.shiftAtMs ?? 20_000;
  const endMs = options.endMs ?? 75_000;
  const run = new ElasticRun({
    seed,
    shape: { routing: 2, nodes: 6, shardsPerNode: 1, global: 2, local: 1, shard: { gossipPeriodMs: 200, antiEntropyPeriodMs: 2000 } },
    shardCapacity: { perSecond: 100, queueMax: 100 },
    networkFaults: options.networkFaults === true,
    storage: { min: 6, max: 6 },
    hotKeys: { hotFactor: 20, hotRateMin: 15, replicas: 6, coolSustainMs: 8000, keysMax: 64 },
  });
  const client = run.addClient('load', { keys: 400, prefix: 'k', zipf: 1.5, readFraction: 0.98, acks: [pb.AckMode.ACK_DURABLE], window: 24, timeoutMs: 1000, preload: true });
  const factors = (keys: readonly string[]): Map<string, number> => {
    const membership = run.cluster.membership();
    return new Map(keys.map((key) => [key, membership?.factorsOf(key).global ?? 0]));
  };
  // At 170 to 350 reads/s (under loss, the closed loop waits out lost requests), Zipf 1.5 over 400
  // keys gives rank 0 ~38% (65 to 130/s) and rank 1 ~13% (22 to 47/s): two keys over 15/s.
  const hot = 2;
  const firstHot = Array.from({ length: hot }, (_, r) => client.keyName(r));
  const secondHot = Array.from({ length: hot }, (_, r) => client.keyName(r + 200));
  run.advance(shiftAtMs);
  const beforeShift = factors([...firstHot, ...secondHot]);
  client.shift = 200;
  run.advance(endMs - shiftAtMs);
  const atEnd = factors([...firstHot, ...secondHot]);
  run.quiesce();
  settle(run);
  return { run, client, firstHot, secondHot, beforeShift, atEnd, defaultGlobal: run.cluster.shape.global };
}

// ---- faults --------------------------------------------------------------------------------

export interface FaultOutcome {
  readonly run: ElasticRun;
  readonly writer: LoadClient;
  readonly reader: AvailabilityReader;
  /** The most storage nodes the ring listed, and at the end of the load. */
  readonly peakNodes: number;
  readonly endNodes: number;
}

/**
 * 4 storage nodes (the policy's minimum; at most 7) whose shards serve 80 messages a second, and
 * three load levels: 10% of that capacity for 2 s, 35% for 5 s (with the reader's own load the
 * nodes pass the utilisation threshold, 0.35: the monitor adds nodes), then 5% (it removes them
 * once they serve under 35% of a node's capacity). The writer's operations are half GETs, half
 * PUTs of GSet elements with random acks, over 16 keys; the availability reader reads every key
 * acknowledged REPLICATED all along. With `faults`: 5% loss, 5% duplication, reordering, and a
 * storage node crashed or partitioned for 0.5 to 3 s now and then (one at a time), throughout;
 * node failures also make the ring fall below the minimum, and the monitor adds a node then.
 * After 14 s: heal, restart, let the provider finish, 4 s to converge.
 */
export function faultScenario(seed: number, faults: boolean): FaultOutcome {
  const perSecond = 80;
  const nodes = 4;
  const run = new ElasticRun({
    seed,
    shape: { routing: 2, nodes, shardsPerNode: 1, global: 2, local: 1, shard: { gossipPeriodMs: 1000, antiEntropyPeriodMs: 1000, replicationTimeoutMs: 300 } },
    shardCapacity: { perSecond, queueMax: 20 },
    networkFaults: faults,
    storage: { min: nodes, max: nodes + 3, upSustainMs: 1000, downSustainMs: 1500, graceMs: 1500, scaleUpUtilisation: 0.35, idleRps: 0.35 * perSecond },
  });
  const capacity = nodes * perSecond;
  const level = (nowMs: number): number => (nowMs < 2000 ? 0.1 : nowMs < 7000 ? 0.35 : 0.05);
  const writer = run.addClient('load', { keys: 16, prefix: 'k', zipf: 0, readFraction: 0.5, rate: (nowMs) => capacity * level(nowMs), timeoutMs: 1000, preload: true, tickMs: 50 });
  const reader = new AvailabilityReader(run.sim.address('reader'), run.cluster.routing, run.sim.random.fork(), { keys: () => writer.replicatedAtMs, inFlight: 1, roundMs: 250, roundsMax: 40 });
  run.sim.add('reader', () => reader);
  let peakNodes = 0;
  run.advance(14_000, () => {
    peakNodes = Math.max(peakNodes, run.nodes);
    if (faults) run.faultRound();
  });
  reader.stopped = true;
  reader.finish(run.sim.clock.now());
  const endNodes = run.nodes;
  run.quiesce();
  settle(run, 4000);
  return { run, writer, reader, peakNodes, endNodes };
}
