/**
 * A simulated KVS cluster that can grow and shrink: routing nodes, and storage nodes (a control
 * machine and its shards, each shard with a MemoryStore "disk" that survives crashes, reporting
 * its statistics to the routing nodes) added and removed while the simulation runs, and the node
 * provider that adds and removes them for the monitor, as cli/local-provider.ts does with
 * processes:
 * - `add`: a new storage node and its shards join as new machines; it is added once a routing
 *   node's ring lists it alive (what `waitForRing` waits for), or taken out again after
 *   `addTimeoutMs`;
 * - `remove`: a graceful departure: the provider asks the node (`nodeDepart`, from a member of the
 *   routing role, as the real provider asks with the routing key) until it departs, asking again
 *   after a restart (a crashed departing node comes back alive, as a supervised process is
 *   restarted and asked again); once every shard of the node knows it departed and holds no key
 *   (all handed off), its machines are removed for good. A departure not done in
 *   `departTimeoutMs` fails (the node stays).
 * Every step runs from a virtual-clock timer: no promise, so a run is a function of its seed.
 */
import { envelopeWith, encodeEnvelope } from '../../protocol/index.js';
import type { PbTypes, Transport } from '../../protocol/index.js';
import { Membership, MemoryStore, RoutingNode, Shard, StorageNode, decodeEntry } from '../../kvs/index.js';
import type { Entry, HashRing, ShardOptions } from '../../kvs/index.js';
import type { ScaledRole } from '../../monitor/index.js';
import type { Simulation } from '../simulator/simulation.js';
import { nodeName, routingName, shardName } from './kvs-cluster.js';

export interface ElasticShape {
  readonly routing: number;
  /** Storage nodes at the start. */
  readonly nodes: number;
  readonly shardsPerNode: number;
  /** The cluster's default replication factors. */
  readonly global: number;
  readonly local: number;
  /** Shard periods and bounds (gossip, anti-entropy, replication timeout, ...). */
  readonly shard?: Partial<Pick<ShardOptions, 'gossipPeriodMs' | 'antiEntropyPeriodMs' | 'replicationTimeoutMs' | 'statsPeriodMs' | 'migrationWindowMs'>>;
  /** The routing nodes' failure timeout (2 s by default, as in production). */
  readonly failureTimeoutMs?: number;
}

/** A storage node of the cluster: its control machine's id and its shards' ids. */
export interface ClusterNode {
  readonly id: string;
  readonly shards: readonly string[];
}

export class ElasticCluster {
  /** The routing nodes' addresses. */
  readonly routing: readonly string[];
  /** The storage nodes not removed, by id, in the order they were added. */
  readonly nodes = new Map<string, ClusterNode>();
  private readonly disks = new Map<string, MemoryStore>();
  private made = 0;

  constructor(
    private readonly sim: Simulation,
    readonly shape: ElasticShape,
  ) {
    this.routing = Array.from({ length: shape.routing }, (_, r) => sim.address(routingName(r)));
    for (let r = 0; r < shape.routing; r++) {
      const peers = this.routing.filter((_, i) => i !== r);
      sim.add(routingName(r), () => new RoutingNode({ address: this.routing[r]!, peers, defaults: { global: shape.global, local: shape.local }, ...(shape.failureTimeoutMs === undefined ? {} : { failureTimeoutMs: shape.failureTimeoutMs }) }), 'routing');
    }
    for (let n = 0; n < shape.nodes; n++) this.addNode();
  }

  /** Starts one more storage node (control machine and shards); its id. */
  addNode(): string {
    const sim = this.sim;
    const n = this.made++;
    const id = nodeName(n);
    const shards = Array.from({ length: this.shape.shardsPerNode }, (_, s) => shardName(n, s));
    const addresses = shards.map((shard) => sim.address(shard));
    // The ring the node last saved: its restarts serve with it at once (the node's own disk).
    let ring: PbTypes.IRingUpdate | undefined;
    sim.add(id, () => new StorageNode({ nodeId: id, address: sim.address(id), shardAddresses: addresses, routing: this.routing, ...(ring ? { initialRing: ring } : {}), onRing: (r) => (ring = r) }), 'storage');
    const setTimer = (delayMs: number, callback: () => void): void => void sim.clock.setTimer(delayMs, callback);
    shards.forEach((name, s) => {
      this.disks.set(name, new MemoryStore(setTimer, 1));
      sim.add(name, () => {
        const store = this.disks.get(name)!.reopen();
        this.disks.set(name, store);
        const initial = new Map<string, Entry>();
        for (const [key, bytes] of store.load()) initial.set(key, decodeEntry(bytes));
        const shard = new Shard({
          nodeId: id,
          shardIndex: s,
          address: addresses[s]!,
          initial,
          ...(ring ? { initialRing: ring } : {}),
          reportTo: this.routing,
          antiEntropyPeriodMs: 1000,
          ...this.shape.shard,
        });
        return { machine: shard, store };
      }, 'storage');
    });
    this.nodes.set(id, { id, shards });
    return id;
  }

  /** Takes a node's machines and disks out for good. */
  removeNode(id: string): void {
    const node = this.nodes.get(id);
    if (node === undefined) return;
    for (const machine of this.machinesOf(id)) this.sim.remove(machine);
    for (const shard of node.shards) this.disks.delete(shard);
    this.nodes.delete(id);
  }

  /** A node's machines: its control machine, then its shards. */
  machinesOf(id: string): string[] {
    const node = this.nodes.get(id);
    return node === undefined ? [] : [id, ...node.shards];
  }

  /** Every machine of every storage node. */
  storageMachines(): string[] {
    return [...this.nodes.keys()].flatMap((id) => this.machinesOf(id));
  }

  /** The running shards of the cluster, by address. */
  shards(): Map<string, Shard> {
    const shards = new Map<string, Shard>();
    for (const node of this.nodes.values()) {
      for (const id of node.shards) {
        const shard = this.sim.machine<Shard>(id);
        if (shard !== undefined) shards.set(this.sim.address(id), shard);
      }
    }
    return shards;
  }

  /** The membership as a routing node holds it (the first one up). */
  membership(): Membership | undefined {
    for (let r = 0; r < this.shape.routing; r++) {
      const routing = this.sim.machine<RoutingNode>(routingName(r));
      if (routing === undefined) continue;
      const membership = new Membership({ global: 1, local: 1 });
      membership.merge(routing.membership.toWire());
      return membership;
    }
    return undefined;
  }

  /** The ring as a routing node holds it. */
  ring(): HashRing | undefined {
    return this.membership()?.ring();
  }

  /** Storage nodes a routing node lists alive. */
  aliveCount(): number {
    return this.ring()?.nodeCount ?? 0;
  }

  /** Whether some routing node lists `id` alive. */
  listedAlive(id: string): boolean {
    for (let r = 0; r < this.shape.routing; r++) {
      const node = this.sim.machine<RoutingNode>(routingName(r))?.membership.node(id);
      if (node !== undefined && !node.departed) return true;
    }
    return false;
  }
}

export interface ProviderOptions {
  /** How often an operation in progress looks again (ms). */
  readonly pollMs?: number;
  readonly addTimeoutMs?: number;
  readonly departTimeoutMs?: number;
}

/** A provider operation's outcome: an error, or the node's id. */
export type ProviderDone = (error: Error | undefined, node?: string) => void;

/** The monitor's node provider in the simulator (see the file header). Storage nodes only. */
export class SimulatedProvider {
  readonly counters = { added: 0, removed: 0, addsFailed: 0, removesFailed: 0, departuresAsked: 0 };
  /** Operations in progress. */
  inProgress = 0;
  private readonly transport: Transport;

  constructor(
    private readonly sim: Simulation,
    private readonly cluster: ElasticCluster,
    private readonly options: ProviderOptions = {},
    endpointId = 'provider',
  ) {
    // The real provider asks a node to depart with the routing role's key.
    this.transport = sim.endpoint(endpointId, 'routing');
    this.transport.onFrame(() => {});
  }

  private get pollMs(): number {
    return this.options.pollMs ?? 100;
  }

  add(role: ScaledRole, done: ProviderDone): void {
    if (role !== 'storage') {
      this.sim.clock.setTimer(0, () => done(new Error('this simulation runs no executors')));
      return;
    }
    this.inProgress++;
    const id = this.cluster.addNode();
    const deadline = this.sim.clock.now() + (this.options.addTimeoutMs ?? 10_000);
    const look = (): void => {
      if (this.cluster.listedAlive(id)) {
        this.inProgress--;
        this.counters.added++;
        done(undefined, id);
      } else if (this.sim.clock.now() >= deadline) {
        this.inProgress--;
        this.counters.addsFailed++;
        this.cluster.removeNode(id);
        done(new Error(`${id} was not in the ring after ${this.options.addTimeoutMs ?? 10_000} ms`));
      } else this.sim.clock.setTimer(this.pollMs, look);
    };
    this.sim.clock.setTimer(this.pollMs, look);
  }

  remove(role: ScaledRole, target: string, done: ProviderDone): void {
    if (role !== 'storage' || !this.cluster.nodes.has(target)) {
      this.sim.clock.setTimer(0, () => done(new Error(`no ${role} ${target} is run by this provider`)));
      return;
    }
    this.inProgress++;
    const node = this.cluster.nodes.get(target)!;
    const deadline = this.sim.clock.now() + (this.options.departTimeoutMs ?? 60_000);
    let askedAtMs = Number.NEGATIVE_INFINITY;
    const look = (): void => {
      const control = this.sim.machine<StorageNode>(target);
      if (control !== undefined && !control.isDeparting && this.sim.clock.now() - askedAtMs >= 500) {
        // Not departing (never asked, the request was lost, or it restarted): ask (again).
        askedAtMs = this.sim.clock.now();
        this.counters.departuresAsked++;
        void this.transport.send(this.sim.address(target), encodeEnvelope(envelopeWith({ nodeDepart: { nodeId: target, graceful: true } }, { sender: this.transport.address }))).catch(() => undefined);
      }
      if (control?.isDeparting === true && this.handedOff(node)) {
        this.inProgress--;
        this.counters.removed++;
        this.cluster.removeNode(target);
        done(undefined, target);
      } else if (this.sim.clock.now() >= deadline) {
        this.inProgress--;
        this.counters.removesFailed++;
        done(new Error(`${target} did not hand its keys off in ${this.options.departTimeoutMs ?? 60_000} ms`));
      } else this.sim.clock.setTimer(this.pollMs, look);
    };
    look();
  }

  /** Every shard of the node runs, knows the node departed, and holds no key. */
  private handedOff(node: ClusterNode): boolean {
    return node.shards.every((id) => {
      const shard = this.sim.machine<Shard>(id);
      if (shard === undefined || shard.keyCount > 0) return false;
      return (shard.ringView().nodes ?? []).some((listed) => listed.id === node.id && listed.departed === true);
    });
  }
}
