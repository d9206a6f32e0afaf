/**
 * A simulated KVS cluster for fault tests: routing nodes, storage nodes (control + shards, each
 * shard with a MemoryStore "disk" that survives crashes) and a workload client, all sans-I/O
 * machines in one Simulation.
 */
import { GSet, decodeLattice } from '../../lattices/index.js';
import type { AnyLattice } from '../../lattices/index.js';
import { envelopeWith, pb } from '../../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes, Random } from '../../protocol/index.js';
import { MemoryStore, Membership, RoutingNode, Shard, StorageNode, decodeEntry } from '../../kvs/index.js';
import type { Entry } from '../../kvs/index.js';
import type { Simulation } from '../simulator/simulation.js';

export interface ClusterShape {
  readonly routing: number;
  readonly nodes: number;
  readonly shardsPerNode: number;
  readonly global: number;
  readonly local: number;
}

export const nodeName = (n: number): string => `n${n}`;
export const shardName = (n: number, s: number): string => `n${n}-s${s}`;
export const routingName = (r: number): string => `r${r}`;

/**
 * Builds the cluster in `sim`; returns the stores (disks) by shard name. With `memoryBudgetBytes`
 * each shard reads its disk through the tier (shard-tier.ts) and loads nothing at a restart;
 * without, a restart loads every entry into memory.
 */
export function buildCluster(sim: Simulation, shape: ClusterShape, options: { gossipPeriodMs?: number; antiEntropyPeriodMs?: number; memoryBudgetBytes?: number } = {}): Map<string, MemoryStore> {
  const routing = Array.from({ length: shape.routing }, (_, r) => sim.address(routingName(r)));
  for (let r = 0; r < shape.routing; r++) {
    sim.add(routingName(r), () => new RoutingNode({ address: routing[r]!, peers: routing.filter((_, i) => i !== r), defaults: { global: shape.global, local: shape.local } }), 'routing');
  }
  const disks = new Map<string, MemoryStore>();
  const setTimer = (delayMs: number, callback: () => void): void => void sim.clock.setTimer(delayMs, callback);
  for (let n = 0; n < shape.nodes; n++) {
    const shards = Array.from({ length: shape.shardsPerNode }, (_, s) => sim.address(shardName(n, s)));
    let ring: PbTypes.IRingUpdate | undefined;
    sim.add(nodeName(n), () => new StorageNode({ nodeId: nodeName(n), address: sim.address(nodeName(n)), shardAddresses: shards, routing, ...(ring ? { initialRing: ring } : {}), onRing: (r) => (ring = r) }), 'storage');
    for (let s = 0; s < shape.shardsPerNode; s++) {
      const name = shardName(n, s);
      disks.set(name, new MemoryStore(setTimer, 1));
      sim.add(name, () => {
        const store = disks.get(name)!.reopen();
        disks.set(name, store);
        const initial = new Map<string, Entry>();
        if (options.memoryBudgetBytes === undefined) for (const [key, bytes] of store.load()) initial.set(key, decodeEntry(bytes));
        const shard = new Shard({
          nodeId: nodeName(n),
          shardIndex: s,
          address: shards[s]!,
          ...(options.memoryBudgetBytes === undefined ? { initial } : { disk: store, memoryBudgetBytes: options.memoryBudgetBytes }),
          ...(ring ? { initialRing: ring } : {}),
          gossipPeriodMs: options.gossipPeriodMs ?? 50,
          antiEntropyPeriodMs: options.antiEntropyPeriodMs ?? 500,
          replicationTimeoutMs: 300,
        });
        return { machine: shard, store };
      }, 'storage');
    }
  }
  return disks;
}

/** What the workload client learned: every acknowledged write, by key. */
export interface Acknowledged {
  /** key -> element ids whose PUT was acknowledged with ack DURABLE or REPLICATED. */
  readonly safe: Map<string, Set<string>>;
  /** key -> every element id ever sent (acknowledged or not). */
  readonly sent: Map<string, Set<string>>;
  requests: number;
  successes: number;
  failures: number;
}

/**
 * A client machine: every `periodMs` it PUTs a fresh element into a random key's `GSet` through a
 * random replica (per its ring, from a routing node), with a random ack mode; it records which
 * were acknowledged. Its ring comes from `ringRequest` to the routing nodes.
 */
export class WorkloadClient implements Machine {
  readonly id: string;
  private readonly membership = new Membership({ global: 1, local: 1 });
  private readonly pending = new Map<number, { key: string; element: string; safe: boolean }>();
  private nextId = 1;
  private operations = 0;
  stopped = false;
  /** Keys that saw DELETEs. */
  readonly deleteKeys = new Set<string>();
  readonly acknowledged: Acknowledged = { safe: new Map(), sent: new Map(), requests: 0, successes: 0, failures: 0 };

  constructor(
    private readonly address: string,
    private readonly routing: readonly string[],
    private readonly random: Random,
    private readonly keys: number,
    private readonly periodMs = 7,
    /** Characters added to every element (more data per write). */
    private readonly padding = 0,
  ) {
    this.id = address;
  }

  handle(input: MachineInput): readonly Effect[] {
    switch (input.kind) {
      case 'start':
        return [this.askRing(), { kind: 'timer', timer: 'op', delayMs: this.periodMs }, { kind: 'timer', timer: 'ring', delayMs: 200 }];
      case 'timer':
        if (input.timer === 'ring') return [this.askRing(), { kind: 'timer', timer: 'ring', delayMs: 200 }];
        if (this.stopped) return [];
        return [...this.operation(), { kind: 'timer', timer: 'op', delayMs: this.periodMs }];
      case 'taskDone':
      case 'persisted':
        return [];
      case 'message':
        return this.onMessage(input.envelope);
    }
  }

  private askRing(): Effect {
    const to = this.routing[this.random.int(this.routing.length)]!;
    return { kind: 'send', to, envelope: envelopeWith({ ringRequest: { subscriber: this.address, leaseMs: 5000 } }, { requestId: this.nextId++, replyTo: this.address, sender: this.address }) };
  }

  private operation(): Effect[] {
    const ring = this.membership.ring();
    if (ring.nodeCount === 0) return [];
    // One operation in four goes to the "d" keys, where DELETEs mix with PUTs (convergence only).
    const onDeleteKeys = this.random.int(4) === 0;
    const key = onDeleteKeys ? `d${this.random.int(4)}` : `k${this.random.int(this.keys)}`;
    const replicas = ring.replicasOf(key);
    const to = replicas[this.random.int(replicas.length)]!;
    const element = `${this.address}:${this.operations++}${'.'.repeat(this.padding)}`;
    const roll = this.random.int(3);
    const ack = roll === 0 ? pb.AckMode.ACK_LOCAL : roll === 1 ? pb.AckMode.ACK_DURABLE : pb.AckMode.ACK_REPLICATED;
    const requestId = this.nextId++;
    if (onDeleteKeys && this.random.int(3) === 0) {
      this.deleteKeys.add(key);
      return [{ kind: 'send', to, envelope: envelopeWith({ kvsRequest: { kind: pb.RequestKind.DELETE, ack, tuples: [{ key }] } }, { requestId, replyTo: this.address, sender: this.address }) }];
    }
    this.pending.set(requestId, { key, element, safe: ack !== pb.AckMode.ACK_LOCAL && !onDeleteKeys });
    let sent = this.acknowledged.sent.get(key);
    if (sent === undefined) this.acknowledged.sent.set(key, (sent = new Set()));
    sent.add(element);
    this.acknowledged.requests++;
    const value = GSet.of(element);
    return [
      {
        kind: 'send',
        to,
        envelope: envelopeWith({ kvsRequest: { kind: pb.RequestKind.PUT, ack, tuples: [{ key, latticeType: value.type, payload: value.encode() }] } }, { requestId, replyTo: this.address, sender: this.address }),
      },
    ];
  }

  private onMessage(envelope: Envelope): Effect[] {
    if (envelope.body === 'ringUpdate') {
      this.membership.merge(envelope.ringUpdate!);
      return [];
    }
    const pending = this.pending.get(Number(envelope.responseTo));
    if (pending === undefined) return [];
    this.pending.delete(Number(envelope.responseTo));
    const tuple = envelope.kvsResponse?.tuples?.[0];
    const ok = envelope.body === 'kvsResponse' && tuple !== undefined && (tuple.error?.code ?? 0) === 0;
    if (!ok) {
      this.acknowledged.failures++;
      return [];
    }
    this.acknowledged.successes++;
    if (pending.safe) {
      let safe = this.acknowledged.safe.get(pending.key);
      if (safe === undefined) this.acknowledged.safe.set(pending.key, (safe = new Set()));
      safe.add(pending.element);
    }
    return [];
  }
}

/** The elements of a GSet value (empty for anything else). */
export function elementsOf(value: AnyLattice | undefined): Set<string> {
  if (value === undefined || !(value instanceof GSet)) return new Set();
  return new Set((value as GSet<string>).reveal());
}

export { decodeLattice };
