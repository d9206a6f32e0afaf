/**
 * A routing node: cluster membership and the hash rings. Any number may run;
 * each is complete on its own and they gossip the membership lattice to each other, so a client
 * may ask any of them.
 *
 * - `nodeJoin`: the node (at its incarnation) enters the ring; the joiner gets the ring at once
 *   and every storage node and ring subscriber gets the change.
 * - `heartbeat`: refreshes the node's liveness; a node that misses heartbeats for
 *   `failureTimeoutMs` (default 2 s) is marked departed and the change is pushed; a heartbeat from
 *   a node the ring does not list as alive is answered with the ring, so it rejoins.
 * - `nodeDepart`: a graceful departure (the node handed its keys off first).
 * - `keyAddressRequest`: the shard addresses of each key's replicas.
 * - `ringRequest`: the ring now, and every change for `leaseMs` (clients, caches).
 * - `ringUpdate` (from another routing node, or an operator setting replication factors): merged.
 * - `statsReport`: the latest report per shard is kept for the monitor.
 * - `serviceAnnounce` (schedulers, monitors and ingresses, a heartbeat each; message-rights.ts
 *   checks the announcer's key is a member of the announced role; an ingress announces its HTTP
 *   URL, the others their transport address): the service is listed until its TTL
 *   (bounded by `serviceTtlMaxMs`) passes without another announcement, or it says it departs.
 *   Each announcer tells every routing node it knows; routing nodes do not gossip services.
 * - `servicesRequest`: the live services (`ServiceList`): how clients, executors and monitors
 *   find the schedulers from the routing nodes' addresses alone (docs/multi-host.md).
 */
import { ErrorCode, HybridClock, LfaasError } from '../lattices/index.js';
import { envelopeWith, errorToWire, isServiceUrl, isTransportAddress, pb } from '../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes } from '../protocol/index.js';
import { Membership, nodeFromWire } from './ring.js';
import type { ReplicationFactors } from './ring.js';


/** Keys in one key-address request, at most (the KVS client asks for at most LOOKUP_KEYS_MAX / 4 at once). */
export const LOOKUP_KEYS_MAX = 4096;
export interface RoutingOptions {
  /** This routing node's address. */
  readonly address: string;
  /** The other routing nodes. */
  readonly peers?: readonly string[];
  readonly defaults?: ReplicationFactors;
  readonly failureTimeoutMs?: number;
  /** How often liveness is checked and the membership gossiped to the other routing nodes. */
  readonly checkPeriodMs?: number;
  readonly subscribersMax?: number;
  readonly leaseMaxMs?: number;
  /** Services (schedulers, monitors, ingresses) listed at most; announcements beyond are refused. */
  readonly servicesMax?: number;
  /** The longest an announced service is listed without another announcement. */
  readonly serviceTtlMaxMs?: number;
}

/** A service's TTL when its announcement gives none. */
const SERVICE_TTL_DEFAULT_MS = 3000;

const CHECK = 'check';

export class RoutingNode implements Machine {
  readonly id: string;
  readonly membership: Membership;
  private readonly lastHeardMs = new Map<string, number>();
  private readonly subscribers = new Map<string, number>();
  private readonly reports = new Map<string, PbTypes.IStatsReport>();
  /** Announced services by address: their role and when they expire. */
  private readonly services = new Map<string, { readonly role: number; readonly expiresAtMs: number }>();
  private readonly clock: HybridClock;
  private nowMs = 0;
  private readonly failureTimeoutMs: number;
  private readonly checkPeriodMs: number;
  private readonly subscribersMax: number;
  private readonly leaseMaxMs: number;
  readonly counters = { joins: 0, departs: 0, failures: 0, pushes: 0, lookups: 0, rejected: 0 };

  constructor(private readonly options: RoutingOptions) {
    this.id = options.address;
    this.membership = new Membership(options.defaults ?? { global: 2, local: 1 });
    this.failureTimeoutMs = options.failureTimeoutMs ?? 2000;
    this.checkPeriodMs = options.checkPeriodMs ?? 200;
    this.subscribersMax = options.subscribersMax ?? 10_000;
    this.leaseMaxMs = options.leaseMaxMs ?? 60_000;
    this.clock = new HybridClock(options.address, () => this.nowMs);
  }

  /** The latest statistics report of every shard. */
  statsReports(): PbTypes.IStatsReport[] {
    return [...this.reports.values()];
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    this.nowMs = Math.max(this.nowMs, nowMs);
    switch (input.kind) {
      case 'start':
        return [{ kind: 'timer', timer: CHECK, delayMs: this.checkPeriodMs }];
      case 'timer':
        return input.timer === CHECK ? [...this.check(), { kind: 'timer', timer: CHECK, delayMs: this.checkPeriodMs }] : [];
      case 'taskDone':
      case 'persisted':
        return [];
      case 'message':
        return this.onMessage(input.envelope);
    }
  }

  private onMessage(envelope: Envelope): Effect[] {
    switch (envelope.body) {
      case 'nodeJoin': {
        const node = nodeFromWire(envelope.nodeJoin!.node!);
        this.counters.joins++;
        this.lastHeardMs.set(node.id, this.nowMs);
        const changed = this.membership.upsert({ ...node, departed: false });
        const effects = changed ? this.pushAll() : [];
        // The joiner gets the ring whether or not it changed (a retried join).
        effects.push(this.ringTo(node.address));
        return effects;
      }
      case 'heartbeat': {
        const heartbeat = envelope.heartbeat!;
        const nodeId = heartbeat.nodeId ?? '';
        const node = this.membership.node(nodeId);
        if (node === undefined || node.departed) {
          // Unknown, or declared failed: tell it, so it rejoins with a new incarnation.
          return envelope.sender.length > 0 ? [this.ringTo(envelope.sender)] : [];
        }
        this.lastHeardMs.set(nodeId, this.nowMs);
        return Number(heartbeat.ringEpoch ?? 0) !== this.membership.epoch ? [this.ringTo(node.address)] : [];
      }
      case 'nodeDepart': {
        const node = this.membership.node(envelope.nodeDepart!.nodeId ?? '');
        if (node === undefined || node.departed) return this.reply(envelope, { ringUpdate: this.membership.toWire() });
        this.counters.departs++;
        this.membership.upsert({ ...node, departed: true });
        return [...this.pushAll(), ...this.reply(envelope, { ringUpdate: this.membership.toWire() })];
      }
      case 'ringUpdate': {
        const update = envelope.ringUpdate!;
        for (const wire of update.nodes ?? []) {
          // A node learned from a peer is given a full timeout before this node may fail it.
          if (!this.lastHeardMs.has(wire.id ?? '')) this.lastHeardMs.set(wire.id ?? '', this.nowMs);
        }
        // Replication factors set by an operator carry no time: stamp them here.
        const stamped = {
          ...update,
          replication: (update.replication ?? []).map((factor) => (factor.setAt ? factor : { ...factor, setAt: this.clock.tick() })),
        };
        const effects = this.membership.merge(stamped) ? this.pushAll() : [];
        effects.push(...this.reply(envelope, { ringUpdate: this.membership.toWire() }));
        return effects;
      }
      case 'ringRequest': {
        const request = envelope.ringRequest!;
        const subscriber = request.subscriber ?? '';
        if (!this.subscribers.has(subscriber) && this.subscribers.size >= this.subscribersMax) {
          return this.reply(envelope, { errorReply: { error: errorToWire(new LfaasError(ErrorCode.KVS_BUSY, `${this.subscribers.size} ring subscribers`)) } });
        }
        const leaseMs = Math.min(this.leaseMaxMs, request.leaseMs ?? 0);
        if (leaseMs > 0) this.subscribers.set(subscriber, this.nowMs + leaseMs);
        return this.reply(envelope, { ringUpdate: this.membership.toWire() });
      }
      case 'clusterStatsRequest': {
        // The monitor's view of the storage tier: the ring's nodes, every shard's latest report,
        // and the largest replication factor in use.
        const ring = this.membership.toWire();
        const replicationMax = Math.max(ring.defaultGlobal ?? 1, ...(ring.replication ?? []).map((factor) => factor.global ?? 0));
        return this.reply(envelope, { clusterStats: { nodes: ring.nodes ?? [], shards: this.statsReports(), replicationMax, replicationDefault: ring.defaultGlobal ?? 1 } });
      }
      case 'keyAddressRequest': {
        this.counters.lookups++;
        const asked = envelope.keyAddressRequest?.keys?.length ?? 0;
        if (asked > LOOKUP_KEYS_MAX) {
          // One frame must not buy unbounded work: the client splits its lookups.
          this.counters.rejected++;
          return this.reply(envelope, { errorReply: { error: errorToWire(new LfaasError(ErrorCode.PROTO_TOO_LARGE, `${asked} keys in one lookup; at most ${LOOKUP_KEYS_MAX}: split it`)) } });
        }
        const ring = this.membership.ring();
        if (ring.nodeCount === 0) {
          return this.reply(envelope, { keyAddressResponse: { error: errorToWire(new LfaasError(ErrorCode.KVS_NO_SERVERS, 'no storage node has joined')), ringEpoch: this.membership.epoch } });
        }
        const addresses = (envelope.keyAddressRequest!.keys ?? []).map((key) => ({ key, replicas: ring.replicasOf(key) }));
        return this.reply(envelope, { keyAddressResponse: { addresses, ringEpoch: this.membership.epoch } });
      }
      case 'statsReport': {
        const report = envelope.statsReport!;
        this.reports.set(`${report.nodeId}/${report.shard}`, report);
        return [];
      }
      case 'serviceAnnounce':
        return this.onAnnounce(envelope);
      case 'servicesRequest':
        return this.reply(envelope, { serviceList: this.serviceList() });
      case 'echo':
        return this.reply(envelope, { echo: { payload: envelope.echo?.payload ?? null } });
      default:
        this.counters.rejected++;
        return this.reply(envelope, { errorReply: { error: errorToWire(new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, `a routing node does not handle ${envelope.body ?? 'nothing'}`)) } });
    }
  }

  /** Lists (or, departing, unlists) an announced service; answers only a request (an ack). */
  private onAnnounce(envelope: Envelope): Effect[] {
    const announce = envelope.serviceAnnounce!;
    const address = announce.address ?? '';
    const role = Number(announce.role ?? 0);
    // Each role's kind of address: an ingress is called over HTTP (its URL), the others are nodes
    // (a transport address). Decoding let either through (validate.ts `endpoint`).
    const isUrl = role === pb.ServiceRole.SERVICE_INGRESS;
    if (isUrl ? !isServiceUrl(address) : !isTransportAddress(address)) {
      this.counters.rejected++;
      return this.reply(envelope, { errorReply: { error: errorToWire(new LfaasError(ErrorCode.PROTO_MALFORMED, `${JSON.stringify(address.slice(0, 80))} is not ${isUrl ? 'an http(s) URL (an ingress announces where callers reach it)' : 'a transport address'}`)) } });
    }
    if (announce.departing === true) {
      if (this.services.get(address)?.role === role) this.services.delete(address);
      return [];
    }
    if (!this.services.has(address) && this.services.size >= (this.options.servicesMax ?? 1024)) {
      this.counters.rejected++;
      return this.reply(envelope, { errorReply: { error: errorToWire(new LfaasError(ErrorCode.KVS_BUSY, `${this.services.size} services announced`)) } });
    }
    const ttlMs = Math.min(this.options.serviceTtlMaxMs ?? 60_000, announce.ttlMs === undefined || announce.ttlMs === null || announce.ttlMs === 0 ? SERVICE_TTL_DEFAULT_MS : announce.ttlMs);
    this.services.set(address, { role, expiresAtMs: this.nowMs + ttlMs });
    return this.reply(envelope, { serviceList: this.serviceList() });
  }

  /** The live services, by role, each list sorted (every routing node answers alike). */
  serviceList(): PbTypes.IServiceList {
    const of = (role: number): string[] => [...this.services].filter(([, service]) => service.role === role && service.expiresAtMs > this.nowMs).map(([address]) => address).sort();
    return { schedulers: of(pb.ServiceRole.SERVICE_SCHEDULER), monitors: of(pb.ServiceRole.SERVICE_MONITOR), ingresses: of(pb.ServiceRole.SERVICE_INGRESS) };
  }

  /** Fails nodes that went silent, expires ring subscriptions, gossips the membership to peers. */
  private check(): Effect[] {
    let changed = false;
    for (const node of this.membership.aliveNodes()) {
      const heard = this.lastHeardMs.get(node.id);
      if (heard === undefined) {
        this.lastHeardMs.set(node.id, this.nowMs);
        continue;
      }
      if (this.nowMs - heard > this.failureTimeoutMs) {
        this.counters.failures++;
        changed = this.membership.upsert({ ...node, departed: true }) || changed;
      }
    }
    for (const [subscriber, expiresAtMs] of this.subscribers) if (expiresAtMs <= this.nowMs) this.subscribers.delete(subscriber);
    for (const [address, service] of this.services) if (service.expiresAtMs <= this.nowMs) this.services.delete(address);
    // Liveness is kept only for nodes the membership holds (it refuses and evicts some: ring.ts);
    // a ring update naming 100 000 nodes must not leave 100 000 entries here for good.
    if (this.lastHeardMs.size > this.membership.allNodes().length) {
      for (const id of this.lastHeardMs.keys()) if (this.membership.node(id) === undefined) this.lastHeardMs.delete(id);
    }
    const effects = changed ? this.pushAll() : [];
    const ring = this.membership.toWire();
    for (const peer of this.options.peers ?? []) effects.push({ kind: 'send', to: peer, envelope: envelopeWith({ ringUpdate: ring }, { sender: this.options.address }) });
    return effects;
  }

  /** The ring to every alive storage node, every subscriber and every peer routing node. */
  private pushAll(): Effect[] {
    const targets = new Set<string>();
    for (const node of this.membership.aliveNodes()) targets.add(node.address);
    for (const subscriber of this.subscribers.keys()) targets.add(subscriber);
    for (const peer of this.options.peers ?? []) targets.add(peer);
    this.counters.pushes++;
    const ring = this.membership.toWire();
    return [...targets].map((to) => ({ kind: 'send' as const, to, envelope: envelopeWith({ ringUpdate: ring }, { sender: this.options.address }) }));
  }

  private ringTo(address: string): Effect {
    return { kind: 'send', to: address, envelope: envelopeWith({ ringUpdate: this.membership.toWire() }, { sender: this.options.address }) };
  }

  private reply(request: Envelope, body: PbTypes.IEnvelope): Effect[] {
    if (Number(request.requestId) === 0 || request.replyTo.length === 0) return [];
    return [{ kind: 'send', to: request.replyTo, envelope: envelopeWith(body, { responseTo: request.requestId, sender: this.options.address }) }];
  }
}
