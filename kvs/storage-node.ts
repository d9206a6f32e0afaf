/**
 * The control side of a storage node: it joins the routing nodes, sends them heartbeats, merges
 * the ring updates they push and hands each change to its shards (which do the data work: see
 * shard.ts). When the ring says the node failed while it is alive (a partition, a pause), it
 * rejoins with a new incarnation. A graceful departure marks the node departed: its shards then
 * own nothing, hand every key off to the new replicas, and the node tells the routing nodes.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { envelopeWith, errorToWire } from '../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes } from '../protocol/index.js';
import { DEFAULT_VIRTUAL_NODES, Membership, nodeToWire } from './ring.js';
import type { RingNode } from './ring.js';

export interface StorageNodeOptions {
  readonly nodeId: string;
  /** The control address (membership traffic). */
  readonly address: string;
  readonly shardAddresses: readonly string[];
  /** The routing nodes' addresses. */
  readonly routing: readonly string[];
  readonly virtualNodes?: number;
  readonly metricsPort?: number;
  readonly heartbeatPeriodMs?: number;
  /** The ring known before a restart. */
  readonly initialRing?: PbTypes.IRingUpdate;
  /** Called when the ring changed (the shell persists it). */
  readonly onRing?: (ring: PbTypes.IRingUpdate) => void;
}

const HEARTBEAT = 'heartbeat';

export class StorageNode implements Machine {
  readonly id: string;
  private readonly membership = new Membership({ global: 1, local: 1 });
  private incarnation = 0;
  private departing = false;
  private nowMs = 0;
  private readonly epochFrom = new Map<string, number>();
  private readonly heartbeatPeriodMs: number;
  readonly counters = { joins: 0, ringUpdates: 0, heartbeats: 0 };

  constructor(private readonly options: StorageNodeOptions) {
    this.id = options.address;
    this.heartbeatPeriodMs = options.heartbeatPeriodMs ?? 500;
    if (options.initialRing !== undefined) this.membership.merge(options.initialRing);
  }

  /** This node as the ring should list it. */
  self(): RingNode {
    return {
      id: this.options.nodeId,
      address: this.options.address,
      shardAddresses: this.options.shardAddresses,
      virtualNodes: this.options.virtualNodes ?? DEFAULT_VIRTUAL_NODES,
      incarnation: this.incarnation,
      departed: this.departing,
      metricsPort: this.options.metricsPort ?? 0,
    };
  }

  get isDeparting(): boolean {
    return this.departing;
  }

  ring(): PbTypes.IRingUpdate {
    return this.membership.toWire();
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    this.nowMs = Math.max(this.nowMs, nowMs);
    switch (input.kind) {
      case 'start': {
        // A new incarnation per start, later than any before it (the ring may hold the old one).
        const known = this.membership.node(this.options.nodeId)?.incarnation ?? 0;
        this.incarnation = Math.max(known + 1, Math.floor(this.nowMs));
        return [...this.join(), { kind: 'timer', timer: HEARTBEAT, delayMs: this.heartbeatPeriodMs }];
      }
      case 'timer':
        if (input.timer !== HEARTBEAT) return [];
        return [...this.heartbeat(), { kind: 'timer', timer: HEARTBEAT, delayMs: this.heartbeatPeriodMs }];
      case 'taskDone':
      case 'persisted':
        return [];
      case 'message':
        return this.onMessage(input.envelope);
    }
  }

  private onMessage(envelope: Envelope): Effect[] {
    switch (envelope.body) {
      case 'ringUpdate':
        return this.onRing(envelope.ringUpdate!, envelope.sender);
      case 'nodeDepart':
        // Sent by this node's own shell (or an operator) to make it leave.
        if ((envelope.nodeDepart!.nodeId ?? '') !== this.options.nodeId) return [];
        return this.depart();
      case 'echo':
        // A liveness probe of the control socket (operators, the wire fuzzer), as every role answers.
        return this.reply(envelope, { echo: { payload: envelope.echo?.payload ?? null } });
      default:
        return this.reply(envelope, { errorReply: { error: errorToWire(new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, `a storage node's control socket does not handle ${envelope.body ?? 'nothing'}`)) } });
    }
  }

  /** The answer to a request (nothing for a one-way message). */
  private reply(request: Envelope, body: PbTypes.IEnvelope): Effect[] {
    if (Number(request.requestId) === 0 || request.replyTo.length === 0) return [];
    return [{ kind: 'send', to: request.replyTo, envelope: envelopeWith(body, { responseTo: request.requestId, sender: this.options.address }) }];
  }

  private join(): Effect[] {
    this.counters.joins++;
    const node = nodeToWire(this.self());
    const sends = this.options.routing.map((to) => this.send(to, { nodeJoin: { node } }));
    // A restarted node lists itself in the ring it knew at once, so its shards serve their keys
    // before the routing node answers. A fresh node waits for the routing node's ring: a ring of
    // itself alone would make its shards claim every key.
    if (!this.membership.allNodes().some((other) => other.id !== this.options.nodeId)) return sends;
    this.membership.upsert(this.self());
    return [...this.toShards(), ...sends];
  }

  private heartbeat(): Effect[] {
    this.counters.heartbeats++;
    // The ring again to the shards (merging an unchanged ring is a no-op): a lost hand-over of a
    // ring change must not leave a shard on an old ring.
    const effects = this.toShards();
    if (this.departing) return [...effects, ...this.options.routing.map((to) => this.send(to, { nodeDepart: { nodeId: this.options.nodeId, graceful: true } }))];
    return [...effects, ...this.options.routing.map((to) =>
      this.send(to, { heartbeat: { nodeId: this.options.nodeId, ringEpoch: this.epochFrom.get(to) ?? 0, sentAtMs: Math.floor(this.nowMs) } }),
    )];
  }

  private onRing(update: PbTypes.IRingUpdate, sender: string): Effect[] {
    this.counters.ringUpdates++;
    // Only the configured routing nodes count: they are whom heartbeats and joins go to. Anyone
    // may send a ring update; its sender must not grow this map, nor draw a join to itself.
    const fromRouting = this.options.routing.includes(sender);
    if (fromRouting) this.epochFrom.set(sender, Number(update.epoch ?? 0));
    const changed = this.membership.merge(update);
    const effects: Effect[] = [];
    const listed = this.membership.node(this.options.nodeId);
    if (!this.departing && (listed === undefined || listed.incarnation > this.incarnation || (listed.incarnation === this.incarnation && listed.departed))) {
      // Declared failed (or unknown after a routing restart): come back with a new incarnation.
      this.incarnation = Math.max(this.incarnation, listed?.incarnation ?? 0) + 1;
      effects.push(...this.join());
    } else if (listed !== undefined && (listed.incarnation < this.incarnation || !listed.departed) && !this.isListedAlive(update)) {
      // This routing node does not list us yet (it restarted, or joined late), or lists only an
      // older incarnation (our join was lost: a fresh node does not list itself until the ring
      // does, so nothing else would ever send it again): join it.
      if (fromRouting) effects.push(this.send(sender, { nodeJoin: { node: nodeToWire(this.self()) } }));
    }
    if (changed) {
      effects.push(...this.toShards());
      this.options.onRing?.(this.membership.toWire());
    }
    return effects;
  }

  private isListedAlive(update: PbTypes.IRingUpdate): boolean {
    return (update.nodes ?? []).some((node) => node.id === this.options.nodeId && Number(node.incarnation ?? 0) === this.incarnation && node.departed !== true);
  }

  private depart(): Effect[] {
    if (this.departing) return [];
    this.departing = true;
    this.membership.upsert(this.self());
    this.options.onRing?.(this.membership.toWire());
    return [...this.toShards(), ...this.options.routing.map((to) => this.send(to, { nodeDepart: { nodeId: this.options.nodeId, graceful: true } }))];
  }

  private toShards(): Effect[] {
    const ring = this.membership.toWire();
    return this.options.shardAddresses.map((to) => this.send(to, { ringUpdate: ring }));
  }

  private send(to: string, body: PbTypes.IEnvelope): Effect {
    return { kind: 'send', to, envelope: envelopeWith(body, { sender: this.options.address }) };
  }
}
