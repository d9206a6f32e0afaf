/**
 * One elasticity run in the deterministic simulator, the harness the elasticity tests and the
 * simulated halves of the `autoscale` and `hotkey` benchmarks share: a KVS cluster that can grow
 * and shrink (elastic-cluster.ts) whose shards serve a bounded number of messages per virtual
 * second (the simulator's capacity model), a monitor (the real MonitorNode, its tasks done by
 * monitor-host.ts, its decisions carried out by the simulated provider), load clients
 * (load-client.ts), and optionally the existing fault injection: message loss, duplication and
 * reordering, storage nodes crashing and restarting from their disks, partitions.
 *
 * How load reaches the monitor: a shard counts every request it serves (its latency histogram
 * counts them all), and the monitor turns the counts of two reports into the requests per second
 * a node served since its previous look; with the policy's `capacityRps` (what one node can serve:
 * here the capacity model's messages per second times its shards) that is the node's utilisation.
 * A saturated node serves at most its capacity, so its utilisation reads near 1 however large the
 * backlog, and each scale-up step grows the tier by at most 1 / scaleUpUtilisation.
 *
 * `advance` runs virtual time in one-second steps and records a sample per second: storage nodes
 * the ring lists, requests answered and failed, p50/p99 latency (the clients' view), and the
 * monitor's events stored in that second.
 */
import { DEFAULT_POLICY, MonitorNode, policyWith } from '../../monitor/index.js';
import type { AutoscalePolicy, StoragePolicy } from '../../monitor/index.js';
import type { HotKeyPolicy } from '../../monitor/index.js';
import { Simulation } from '../simulator/simulation.js';
import { ElasticCluster, SimulatedProvider } from './elastic-cluster.js';
import type { ElasticShape } from './elastic-cluster.js';
import { LoadClient } from './load-client.js';
import type { LoadOptions } from './load-client.js';
import { MonitorRecords, SimulatedMonitorHost } from './monitor-host.js';
import { routingName } from './kvs-cluster.js';

export interface ElasticRunOptions {
  readonly seed: number;
  readonly shape: ElasticShape;
  /** Messages one shard serves per virtual second, and its queue bound. */
  readonly shardCapacity: { readonly perSecond: number; readonly queueMax: number };
  /** Network faults: 5% loss, 5% duplication, reordering (crashes and partitions: `faultRound`). */
  readonly networkFaults?: boolean;
  /** The storage policy's fields beyond the run's defaults (see `storagePolicy`). */
  readonly storage?: Partial<StoragePolicy>;
  readonly hotKeys?: Partial<HotKeyPolicy>;
  /** Whether a monitor runs (false: a fixed cluster). */
  readonly monitor?: boolean;
  readonly monitorPeriodMs?: number;
}

/** One virtual second of a run. */
export interface RunSample {
  readonly second: number;
  /** Storage nodes the ring lists at the end of the second. */
  readonly nodes: number;
  readonly ok: number;
  readonly failed: number;
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
  /** The monitor's events stored in this second (`decided add: <reason>`, `done add n3 n4: <reason>`). */
  readonly events: readonly string[];
}

export const isShard = (id: string): boolean => /^n\d+-s\d+$/.test(id);

/**
 * The storage policy of a run: utilisation-driven (capacity known), quicker than production's
 * (2 s to add, 4 s to remove, a 4 s grace: virtual time is what the run pays for), memory and the
 * latency objective out of the way (the load is what the run is about).
 */
export function storagePolicy(options: ElasticRunOptions): StoragePolicy {
  const capacityRps = options.shardCapacity.perSecond * options.shape.shardsPerNode;
  return {
    ...DEFAULT_POLICY.storage,
    min: options.shape.nodes,
    max: 64,
    upSustainMs: 2000,
    downSustainMs: 4000,
    graceMs: 4000,
    memoryHighBytes: 1024 ** 3,
    latencyObjectiveMs: 1e9,
    busyRps: 1e9,
    capacityRps,
    scaleUpUtilisation: 0.6,
    idleRps: 0.3 * capacityRps,
    ...options.storage,
  };
}

export class ElasticRun {
  readonly sim: Simulation;
  readonly cluster: ElasticCluster;
  readonly provider: SimulatedProvider;
  readonly records = new MonitorRecords();
  readonly host: SimulatedMonitorHost | undefined;
  readonly policy: AutoscalePolicy;
  readonly clients: LoadClient[] = [];
  readonly samples: RunSample[] = [];
  private eventsSeen = 0;

  constructor(readonly options: ElasticRunOptions) {
    const faults = options.networkFaults === true;
    this.sim = new Simulation({
      seed: options.seed,
      delayMs: { min: 1, max: 4 },
      dropRate: faults ? 0.05 : 0,
      duplicateRate: faults ? 0.05 : 0,
      reorder: faults,
      authenticate: true,
      capacity: { ...options.shardCapacity, applies: isShard },
    });
    this.cluster = new ElasticCluster(this.sim, options.shape);
    this.provider = new SimulatedProvider(this.sim, this.cluster, { departTimeoutMs: 60_000 });
    this.policy = policyWith({ executor: { min: 0, max: 0 }, storage: storagePolicy(options), hotKeys: { keysMax: 0, ...options.hotKeys } });
    if (options.monitor !== false) {
      const host = new SimulatedMonitorHost(this.sim, { records: this.records, provider: this.provider, routing: this.cluster.routing, random: this.sim.random.fork(), endpointId: 'monitor-host' });
      this.host = host;
      const address = this.sim.address('monitor');
      this.sim.add('monitor', () => ({ machine: new MonitorNode({ address, name: 'monitor-1', routing: this.cluster.routing, schedulers: [], policy: this.policy, periodMs: options.monitorPeriodMs ?? 1000 }), tasks: host }), 'monitor');
    }
  }

  /** The running monitor (undefined: none, or crashed). */
  get monitor(): MonitorNode | undefined {
    return this.sim.machine<MonitorNode>('monitor');
  }

  addClient(id: string, load: LoadOptions): LoadClient {
    const client = new LoadClient(this.sim.address(id), this.cluster.routing, this.sim.random.fork(), load);
    this.sim.add(id, () => client);
    this.clients.push(client);
    return client;
  }

  /** Runs `ms` of virtual time (whole seconds), sampling each second; `each` runs before every second. */
  advance(ms: number, each?: (nowMs: number) => void): void {
    for (let done = 0; done < ms; done += 1000) {
      each?.(this.sim.clock.now());
      this.sim.runFor(1000, 5_000_000);
      this.sample();
    }
  }

  /** The latest sample's storage node count. */
  get nodes(): number {
    return this.samples.at(-1)?.nodes ?? this.cluster.aliveCount();
  }

  private sample(): void {
    const now = this.sim.clock.now();
    const second = Math.round(now / 1000) - 1;
    let ok = 0;
    let failed = 0;
    const latencies: number[] = [];
    for (const client of this.clients) {
      const stats = client.seconds[second];
      if (stats === undefined) continue;
      ok += stats.ok;
      failed += stats.failed;
      for (const latency of stats.latenciesMs) latencies.push(latency);
    }
    latencies.sort((a, b) => a - b);
    const quantile = (q: number): number | undefined => (latencies.length === 0 ? undefined : latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]);
    const history = this.records.history;
    const events = history.slice(this.eventsSeen).map(({ event }) => `${event.kind}${event.action === undefined ? '' : ` ${event.action}`}${event.node === undefined ? '' : ` ${event.node}`}: ${event.reason}`);
    this.eventsSeen = history.length;
    this.samples.push({ second, nodes: this.cluster.aliveCount(), ok, failed, p50Ms: quantile(0.5), p99Ms: quantile(0.99), events });
  }

  /** The storage node now crashed or partitioned by `faultRound`, and until when. */
  private faulty: { id: string; untilMs: number } | undefined;

  /**
   * One round of the existing fault injection (kvs-scenario.ts's faults: a storage node crashes and
   * restarts from its disk, or is partitioned from the other storage nodes and the first routing
   * node), one node at a time: with two replicas per key, two nodes down can hold both copies of
   * a key, which no system serves, and the availability check is about one failure. A fault lasts
   * 0.5 to 3 s (so some outlast the 2 s failure timeout: the ring changes and keys move); then the
   * node restarts or the partition heals, and another may begin.
   */
  faultRound(): void {
    const sim = this.sim;
    const now = sim.clock.now();
    if (this.faulty !== undefined) {
      if (now < this.faulty.untilMs) return;
      for (const machine of this.cluster.machinesOf(this.faulty.id)) sim.restart(machine);
      sim.heal();
      this.faulty = undefined;
      return;
    }
    if (!sim.random.chance(0.5)) return;
    const ids = [...this.cluster.nodes.keys()];
    const target = ids[sim.random.int(ids.length)]!;
    this.faulty = { id: target, untilMs: now + 500 + sim.random.int(2500) };
    if (sim.random.chance(0.5)) for (const machine of this.cluster.machinesOf(target)) sim.crash(machine);
    else sim.partition(this.cluster.machinesOf(target), [...ids.filter((id) => id !== target).flatMap((id) => this.cluster.machinesOf(id)), routingName(0)]);
  }

  /** Heals, restarts every storage machine, and stops the clients and the monitor. */
  quiesce(): void {
    this.faulty = undefined;
    for (const client of this.clients) client.stopped = true;
    this.sim.crash('monitor');
    this.sim.heal();
    for (const machine of this.cluster.storageMachines()) this.sim.restart(machine);
  }
}
