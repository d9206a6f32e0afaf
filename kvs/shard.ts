/**
 * A storage shard: one slice of a storage node's keys, shared-nothing, with its own address, its
 * memory tier (every entry, as a Map) and its disk tier (every merged entry is persisted through
 * `persist` effects; a restarted shard is built from what the disk holds). A sans-I/O machine:
 * the same code runs as a process over ZeroMQ and lmdb, and in the simulator.
 *
 * Requests (`kvsRequest`, batched, per-tuple errors):
 * - GET answers the merged value; a miss during a migration is forwarded to the key's previous
 *   replicas, so a key stays readable while it moves.
 * - PUT merges (a different lattice type in the key's generation is KVS_LATTICE_MISMATCH and
 *   writes nothing); DELETE starts a new, empty generation at a hybrid-clock time (entry.ts).
 * - A shard that is not one of the key's replicas answers KVS_WRONG_NODE with its ring.
 * - `ack`: LOCAL replies after the in-memory merge; DURABLE after the disk commit is synced;
 *   REPLICATED after a majority of the key's replicas (this one included) hold it durably.
 *
 * Replication: changed keys are gossiped to the co-replicas every `gossipPeriodMs`,
 * batched. Every `antiEntropyPeriodMs`, and at once after a ring change, the shard compares range
 * digests with each co-replica and the two push each other the keys of the ranges that differ;
 * this repairs lost gossip, catches up a restarted or new shard and re-replicates after a failure
 * (a key's new replica starts empty, so its ranges differ). Keys the shard no longer owns are
 * handed off to their replicas and dropped once every replica acknowledged them durably.
 *
 * Subscriptions: a subscriber (an executor cache) registers keys with a lease; every new merged
 * value of such a key is pushed to it, batched; on a ring change the shard forwards the
 * subscriptions to the key's new replicas, so they survive migrations.
 */
import { ErrorCode, HybridClock, LfaasError, ensureLfaasError } from '../lattices/index.js';
import { envelopeWith, errorToWire, pb } from '../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes, PersistWrite } from '../protocol/index.js';
import { FIRST_GENERATION, encodeEntry, entriesEqual, entryDigest, entryFromTuple, entryToTuple, mergeEntries } from './entry.js';
import type { Entry } from './entry.js';
import { Membership } from './ring.js';
import { RangeDigests, allRanges, rangeOf } from './range-digests.js';
import type { HashRing } from './ring.js';
import { ShardStats } from './shard-stats.js';
import { SubscriptionTable } from './subscription-table.js';
import { shardSettings } from './shard-settings.js';
import type { ShardOptions, ShardSettings } from './shard-settings.js';

/** The keys a request, gossip or subscription names (0 for other messages). */
function keyCountOf(envelope: Envelope): number {
  switch (envelope.body) {
    case 'kvsRequest':
      return envelope.kvsRequest?.tuples?.length ?? 0;
    case 'gossip':
      return envelope.gossip?.tuples?.length ?? 0;
    case 'subscribe':
      return envelope.subscribe?.keys?.length ?? 0;
    case 'unsubscribe':
      return envelope.unsubscribe?.keys?.length ?? 0;
    default:
      return 0;
  }
}

const Kind = pb.RequestKind;
const Ack = pb.AckMode;

/** A result tuple: a key tuple whose key is always set. */
type Result = PbTypes.IKeyTuple & { key: string };

/** What the shard keeps per key. */
interface Record {
  entry: Entry;
  /** The value's encoding (undefined for a tombstone), served by GET as is. */
  payload: Uint8Array | undefined;
  /** The anti-entropy digest of (key, entry). */
  digest: number;
  /** Bytes this record accounts for (key + disk encoding). */
  bytes: number;
}

/** A request this shard sent to another shard and awaits. */
interface Outbound {
  readonly deadlineMs: number;
  readonly onResponse: (envelope: Envelope) => Effect[];
  readonly onTimeout: () => Effect[];
}

/** A client request whose reply waits for the disk and/or replicas. */
interface Waiting {
  readonly request: Envelope;
  readonly results: Result[];
  /** Per result index: acknowledgements still needed (disk and replicas). */
  readonly needed: number[];
  readonly startedUs: number;
  readonly kind: 'get' | 'put' | 'delete';
  done: boolean;
  /** Its deadline is being watched. */
  timeoutSet?: boolean;
}

const GOSSIP = 'gossip';
const ANTI_ENTROPY = 'anti-entropy';
const PUSH = 'push';
const SWEEP = 'sweep';
const STATS = 'stats';

export class Shard implements Machine {
  readonly id: string;
  readonly address: string;
  private readonly records = new Map<string, Record>();
  private readonly membership: Membership;
  private ring: HashRing;
  private previousRing: HashRing | undefined;
  private ringChangedAtMs = -Infinity;
  private readonly replicaCache = new Map<string, readonly string[]>();
  private readonly clock: HybridClock;
  private nowMs = 0;
  private readonly changed = new Set<string>();
  private readonly outbound = new Map<number, Outbound>();
  private nextRequestId = 1;
  private sweepScheduled = false;
  /** Persist tokens not yet durable, and what waits on each. */
  private nextToken = 1;
  private readonly unpersisted = new Map<number, ((error?: Error) => Effect[])[]>();
  private waitingCount = 0;
  private readonly subscriptions: SubscriptionTable;
  private readonly pushPending = new Map<string, Set<string>>();
  private pushScheduled = false;
  private readonly handoffPending = new Set<string>();
  private occupancyBytes = 0;
  readonly stats: ShardStats;
  readonly counters = { gets: 0, puts: 0, deletes: 0, wrongNode: 0, busy: 0, gossipSent: 0, gossipReceived: 0, digestsSent: 0, handedOff: 0, pushed: 0, rejected: 0, tombstonesCollected: 0, futureGenerations: 0 };

  private readonly settings: ShardSettings;
  private readonly nowUs: () => number;

  constructor(private readonly options: ShardOptions) {
    this.settings = shardSettings(options);
    this.address = options.address;
    this.id = options.address;
    this.subscriptions = new SubscriptionTable(options.subscriptionsMax ?? 100_000);
    this.nowUs = options.nowUs ?? (() => this.nowMs * 1000);
    this.clock = new HybridClock(options.address, () => this.nowMs);
    this.membership = new Membership(options.defaults ?? { global: 1, local: 1 });
    if (options.initialRing !== undefined) this.membership.merge(options.initialRing);
    this.ring = this.membership.ring();
    this.stats = new ShardStats({ nodeId: options.nodeId, shard: options.shardIndex });
    for (const [key, entry] of options.initial ?? []) this.store(key, entry);
  }

  /** The entry of a key (tests, the CLI). */
  entry(key: string): Entry | undefined {
    return this.records.get(key)?.entry;
  }

  keys(): string[] {
    return [...this.records.keys()];
  }

  get keyCount(): number {
    return this.records.size;
  }

  get bytes(): number {
    return this.occupancyBytes;
  }

  /** The membership this shard knows (tests, the node). */
  ringView(): PbTypes.IRingUpdate {
    return this.membership.toWire();
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    this.nowMs = Math.max(this.nowMs, nowMs);
    const effects = this.dispatch(input);
    // Whatever added an outbound request, its deadline is watched.
    if (this.outbound.size > 0 && !this.sweepScheduled) {
      this.sweepScheduled = true;
      return [...effects, { kind: 'timer', timer: SWEEP, delayMs: 25 }];
    }
    return effects;
  }

  private dispatch(input: MachineInput): readonly Effect[] {
    try {
      switch (input.kind) {
        case 'start':
          return [
            { kind: 'timer', timer: GOSSIP, delayMs: this.settings.gossipPeriodMs },
            { kind: 'timer', timer: ANTI_ENTROPY, delayMs: Math.min(this.settings.antiEntropyPeriodMs, 50) },
            { kind: 'timer', timer: STATS, delayMs: this.settings.statsPeriodMs },
          ];
        case 'timer':
          return this.onTimer(input.timer);
        case 'taskDone':
          return [];
        case 'persisted':
          return this.onPersisted(input.token, input.error);
        case 'message':
          return this.onMessage(input.envelope);
      }
    } catch (error) {
      // A bug, not bad input (bad input is answered per tuple): count it, keep serving.
      this.counters.rejected++;
      if (input.kind === 'message') return this.replyError(input.envelope, ensureLfaasError(error, ErrorCode.INTERNAL));
      return [];
    }
  }

  private onTimer(timer: string): Effect[] {
    switch (timer) {
      case GOSSIP:
        return [...this.gossipRound(), { kind: 'timer', timer: GOSSIP, delayMs: this.settings.gossipPeriodMs }];
      case ANTI_ENTROPY:
        return [...this.antiEntropyRound(), { kind: 'timer', timer: ANTI_ENTROPY, delayMs: this.settings.antiEntropyPeriodMs }];
      case PUSH:
        this.pushScheduled = false;
        return this.pushRound();
      case SWEEP:
        return this.sweep();
      case STATS:
        return [...this.statsRound(), { kind: 'timer', timer: STATS, delayMs: this.settings.statsPeriodMs }];
      default:
        return [];
    }
  }

  private onMessage(envelope: Envelope): Effect[] {
    const responseTo = Number(envelope.responseTo);
    if (responseTo !== 0) {
      const waiter = this.outbound.get(responseTo);
      if (waiter === undefined) return [];
      this.outbound.delete(responseTo);
      return waiter.onResponse(envelope);
    }
    const keys = keyCountOf(envelope);
    if (keys > this.settings.requestKeysMax) {
      this.counters.rejected++;
      return this.replyError(envelope, new LfaasError(ErrorCode.PROTO_TOO_LARGE, `${keys} keys in one ${envelope.body}; at most ${this.settings.requestKeysMax}: split the batch`));
    }
    switch (envelope.body) {
      case 'kvsRequest':
        return this.onRequest(envelope, envelope.kvsRequest as PbTypes.KvsRequest);
      case 'gossip':
        return this.onGossip(envelope.gossip as PbTypes.Gossip);
      case 'digestExchange':
        return this.onDigestExchange(envelope.digestExchange as PbTypes.DigestExchange);
      case 'ringUpdate':
        return this.onRingUpdate(envelope.ringUpdate!);
      case 'subscribe':
        return this.onSubscribe(envelope, envelope.subscribe as PbTypes.Subscribe);
      case 'unsubscribe': {
        const unsubscribe = envelope.unsubscribe as PbTypes.Unsubscribe;
        for (const key of unsubscribe.keys) this.subscriptions.remove(key, unsubscribe.subscriber);
        return [];
      }
      case 'echo':
        return this.reply(envelope, { echo: { payload: envelope.echo?.payload ?? null } });
      default:
        this.counters.rejected++;
        return this.replyError(envelope, new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, `a storage shard does not handle ${envelope.body ?? 'nothing'}`));
    }
  }

  // ---- requests ----------------------------------------------------------------------------

  private onRequest(envelope: Envelope, request: PbTypes.KvsRequest): Effect[] {
    const startedUs = this.nowUs();
    const ack = request.fromReplica ? Ack.ACK_DURABLE : request.ack;
    if (request.kind !== Kind.GET && ack !== Ack.ACK_LOCAL && ack !== Ack.ACK_MODE_UNSPECIFIED && this.waitingCount >= this.settings.pendingRequestsMax) {
      this.counters.busy++;
      return this.replyError(envelope, new LfaasError(ErrorCode.KVS_BUSY, `${this.waitingCount} requests wait for the disk or replicas`));
    }
    if (request.kind === Kind.GET) return this.onGet(envelope, request, startedUs);
    if (this.unpersisted.size >= this.settings.persistBacklogMax) {
      // The disk is behind: refuse writes rather than hold ever more of them in memory.
      this.counters.busy++;
      return this.replyError(envelope, new LfaasError(ErrorCode.KVS_BUSY, `${this.unpersisted.size} disk batches not yet committed`));
    }
    const isDelete = request.kind === Kind.DELETE;
    const writes: PersistWrite[] = [];
    let wrongNode = false;
    const results = request.tuples.map((tuple): Result => {
      const key = tuple.key ?? '';
      try {
        this.checkKey(key);
        if (!request.fromReplica && !this.owns(key)) {
          wrongNode = true;
          this.counters.wrongNode++;
          throw new LfaasError(ErrorCode.KVS_WRONG_NODE, `${this.address} does not hold ${JSON.stringify(key)}`);
        }
        const current = this.records.get(key)?.entry;
        let incoming: Entry;
        if (isDelete) {
          this.counters.deletes++;
          if (current !== undefined) this.clock.observe(current.generation);
          incoming = { generation: this.clock.tick(), value: undefined };
        } else {
          this.counters.puts++;
          if (!request.fromReplica && tuple.deleted === true) throw new LfaasError(ErrorCode.PROTO_MALFORMED, 'a PUT carries a value; a deletion is a DELETE');
          incoming = entryFromTuple(tuple);
          if (!request.fromReplica) {
            // A client writes into the key's current generation; only replicas carry generations
            // (else a client could skip the type check, or delete, by naming a later one).
            incoming = { generation: current?.generation ?? FIRST_GENERATION, value: incoming.value };
            if (current?.value !== undefined && incoming.value !== undefined && current.value.type !== incoming.value.type) {
              throw new LfaasError(ErrorCode.KVS_LATTICE_MISMATCH, `key ${JSON.stringify(key)} holds lattice type ${current.value.type}, the PUT has type ${incoming.value.type}`);
            }
          }
        }
        const write = this.apply(key, incoming, !request.fromReplica, tuple.payload);
        if (write !== undefined) writes.push(write);
        return { key };
      } catch (error) {
        return { key, error: errorToWire(ensureLfaasError(error)) };
      }
    });
    const effects: Effect[] = [];
    const local = ack === Ack.ACK_LOCAL || ack === Ack.ACK_MODE_UNSPECIFIED;
    // Write-behind for LOCAL acks (committed, not synced); a durable ack syncs, and the sync
    // covers every earlier commit too (a duplicate PUT that changed nothing may have been
    // committed but not yet synced: the empty synced batch makes it durable).
    const token = this.persist(writes, effects, !local);
    const kind = isDelete ? 'delete' : 'put';
    if (local) {
      this.record(kind, results, startedUs);
      effects.push(...this.reply(envelope, { kvsResponse: { tuples: results, ring: wrongNode ? this.membership.toWire() : null } }));
      return effects;
    }
    const waiting: Waiting = { request: envelope, results, needed: results.map((r) => (r.error ? 0 : 1)), startedUs, kind, done: false };
    this.waitingCount++;
    const all = waiting.results.map((_, index) => index);
    // REPLICATED: a majority of the key's replicas, this shard's own durable copy counted as one.
    if (ack === Ack.ACK_REPLICATED) effects.push(...this.replicate(waiting));
    this.unpersisted.get(token!)!.push((error) => this.acknowledge(waiting, all, error));
    effects.push(...this.maybeFinish(waiting));
    return effects;
  }

  private onGet(envelope: Envelope, request: PbTypes.KvsRequest, startedUs: number): Effect[] {
    let wrongNode = false;
    const misses: number[] = [];
    let replyBytes = 0;
    const results = request.tuples.map((tuple, index): Result => {
      const key = tuple.key ?? '';
      this.counters.gets++;
      try {
        this.checkKey(key);
        const record = this.records.get(key);
        if (record !== undefined && record.payload !== undefined) {
          if (replyBytes >= this.settings.replyBytesMax) throw new LfaasError(ErrorCode.KVS_BUSY, `the answer already holds ${replyBytes} bytes of values; ask again for ${JSON.stringify(key)}`);
          replyBytes += record.payload.byteLength + key.length;
          return entryToTuple(key, record.entry, record.payload);
        }
        if (!request.fromReplica && !this.owns(key)) {
          wrongNode = true;
          this.counters.wrongNode++;
          throw new LfaasError(ErrorCode.KVS_WRONG_NODE, `${this.address} does not hold ${JSON.stringify(key)}`);
        }
        if (record === undefined && !request.fromReplica && this.inMigration()) misses.push(index);
        throw new LfaasError(ErrorCode.KVS_KEY_NOT_FOUND, `no key ${JSON.stringify(key)}`);
      } catch (error) {
        return { key, error: errorToWire(ensureLfaasError(error)) };
      }
    });
    if (misses.length > 0) {
      const forwarded = this.forwardMisses(envelope, results, misses, startedUs);
      if (forwarded !== undefined) return forwarded;
    }
    this.record('get', results, startedUs);
    return this.reply(envelope, { kvsResponse: { tuples: results, ring: wrongNode ? this.membership.toWire() : null } });
  }

  /** Asks the previous replicas of missed keys (a migration in progress); undefined if there are none. */
  private forwardMisses(envelope: Envelope, results: Result[], misses: number[], startedUs: number): Effect[] | undefined {
    const byReplica = new Map<string, number[]>();
    for (const index of misses) {
      // The key's previous replicas, and its other current ones: one of them has it if anyone does.
      const key = results[index]!.key;
      for (const replica of new Set([...this.previousRing!.replicasOf(key), ...this.replicasOf(key)])) {
        if (replica === this.address) continue;
        let list = byReplica.get(replica);
        if (list === undefined) byReplica.set(replica, (list = []));
        list.push(index);
      }
    }
    if (byReplica.size === 0) return undefined;
    const waiting: Waiting = { request: envelope, results, needed: results.map(() => 0), startedUs, kind: 'get', done: false };
    for (const indexes of byReplica.values()) for (const index of indexes) waiting.needed[index] = (waiting.needed[index] ?? 0) + 1;
    this.waitingCount++;
    const effects: Effect[] = [];
    for (const [replica, indexes] of byReplica) {
      const tuples = indexes.map((index) => ({ key: results[index]!.key }));
      effects.push(
        ...this.sendRequest(
          replica,
          { kvsRequest: { kind: Kind.GET, tuples, fromReplica: true } },
          (response) => {
            const found = response.kvsResponse?.tuples ?? [];
            const effects: Effect[] = [];
            const writes: PersistWrite[] = [];
            found.forEach((tuple, position) => {
              const index = indexes[position];
              const key = results[index ?? -1]?.key;
              if (index === undefined || key === undefined || tuple.key !== key || (tuple.error?.code ?? 0) !== 0) return;
              try {
                // Keep what the previous owner had: merge it here (the hand-off will bring it too).
                const write = this.apply(key, entryFromTuple(tuple), false);
                if (write !== undefined) writes.push(write);
                const record = this.records.get(key);
                if (record?.payload !== undefined) results[index] = entryToTuple(key, record.entry, record.payload);
              } catch {
                // A bad answer from a peer: the miss stands.
              }
            });
            this.persist(writes, effects);
            effects.push(...this.acknowledge(waiting, indexes, undefined));
            return effects;
          },
          () => this.acknowledge(waiting, indexes, undefined),
        ),
      );
    }
    return effects;
  }

  /** Sends the changed tuples of a REPLICATED request to the co-replicas; each durable ack counts. */
  private replicate(waiting: Waiting): Effect[] {
    const byReplica = new Map<string, number[]>();
    waiting.results.forEach((result, index) => {
      if (result.error) return;
      const replicas = this.replicasOf(result.key);
      const others = replicas.filter((replica) => replica !== this.address);
      // A majority of all replicas, this shard's own durable copy included.
      const majority = Math.floor(Math.max(replicas.length, 1) / 2) + 1;
      waiting.needed[index] = majority;
      for (const replica of others) {
        let list = byReplica.get(replica);
        if (list === undefined) byReplica.set(replica, (list = []));
        list.push(index);
      }
    });
    const effects: Effect[] = [];
    for (const [replica, indexes] of byReplica) {
      const tuples = indexes.map((index) => this.tupleOf(waiting.results[index]!.key));
      effects.push(
        ...this.sendRequest(
          replica,
          { kvsRequest: { kind: Kind.PUT, tuples, ack: Ack.ACK_DURABLE, fromReplica: true } },
          (response) => {
            const answered = response.kvsResponse?.tuples ?? [];
            const acked = indexes.filter((_, position) => answered[position] !== undefined && (answered[position]!.error?.code ?? 0) === 0);
            return this.acknowledge(waiting, acked, undefined);
          },
          () => [],
        ),
      );
    }
    return effects;
  }

  /** Counts one acknowledgement for each of `indexes`; replies once nothing is needed any more. */
  private acknowledge(waiting: Waiting, indexes: readonly number[], error: Error | undefined): Effect[] {
    if (waiting.done) return [];
    for (const index of indexes) {
      if (error !== undefined) {
        waiting.results[index] = { key: waiting.results[index]!.key, error: errorToWire(ensureLfaasError(error, ErrorCode.INTERNAL)) };
        waiting.needed[index] = 0;
      } else waiting.needed[index] = Math.max(0, waiting.needed[index]! - 1);
    }
    return this.maybeFinish(waiting);
  }

  private maybeFinish(waiting: Waiting): Effect[] {
    if (waiting.done || waiting.needed.some((n) => n > 0)) {
      if (!waiting.done) this.scheduleTimeout(waiting);
      return [];
    }
    return this.finish(waiting);
  }

  private finish(waiting: Waiting): Effect[] {
    waiting.done = true;
    this.waitingCount--;
    this.record(waiting.kind, waiting.results, waiting.startedUs);
    return this.reply(waiting.request, { kvsResponse: { tuples: waiting.results } });
  }

  /** A waiting request still short of acknowledgements after `replicationTimeoutMs` fails those tuples. */
  private scheduleTimeout(waiting: Waiting): void {
    if (waiting.timeoutSet === true) return;
    waiting.timeoutSet = true;
    this.outbound.set(this.nextRequestId++, {
      deadlineMs: this.nowMs + this.settings.replicationTimeoutMs,
      onResponse: () => [],
      onTimeout: () => {
        if (waiting.done) return [];
        waiting.needed.forEach((needed, index) => {
          if (needed > 0) {
            const key = waiting.results[index]!.key;
            waiting.results[index] = { key, error: errorToWire(new LfaasError(ErrorCode.TRANSPORT_TIMEOUT, `${JSON.stringify(key)}: not acknowledged by enough replicas in ${this.settings.replicationTimeoutMs} ms`)) };
            waiting.needed[index] = 0;
          }
        });
        return this.finish(waiting);
      },
    });
  }

  // ---- state -------------------------------------------------------------------------------

  private checkKey(key: string): void {
    if (key.length === 0) throw new LfaasError(ErrorCode.KVS_BAD_KEY, 'empty key');
    // UTF-8 takes at most 3 bytes per UTF-16 unit: only long keys need their bytes counted.
    if (key.length > this.settings.keyBytesMax || (key.length * 3 > this.settings.keyBytesMax && Buffer.byteLength(key) > this.settings.keyBytesMax)) {
      throw new LfaasError(ErrorCode.KVS_BAD_KEY, `key of ${Buffer.byteLength(key)} bytes; at most ${this.settings.keyBytesMax}`);
    }
  }

  /** Merges `incoming` into the key; returns the disk write when the entry changed. */
  private apply(key: string, incoming: Entry, gossip: boolean, incomingPayload?: Uint8Array | null): PersistWrite | undefined {
    // A generation further ahead than the clock's drift bound, from whoever sends it (a replica's
    // PUT, gossip, a hand-off, a read-repair), is refused: a tombstone stamped years ahead would
    // shadow every later write and delete of the key for good.
    if (incoming.generation.wallMs > this.nowMs + this.clock.maxDriftMs) {
      this.counters.futureGenerations++;
      throw new LfaasError(ErrorCode.PROTO_MALFORMED, `a generation ${incoming.generation.wallMs - this.nowMs} ms ahead of this node's clock (at most ${this.clock.maxDriftMs})`);
    }
    const current = this.records.get(key)?.entry;
    const merged = current === undefined ? incoming : mergeEntries(current, incoming);
    if (current !== undefined && (merged === current || entriesEqual(merged, current))) return undefined;
    // When the incoming value won (LWW), its bytes (canonical: decoding checked) are the
    // merged value's encoding: copied out of the frame, not encoded again.
    const payload = merged.value !== undefined && merged.value === incoming.value && incomingPayload ? incomingPayload.slice() : undefined;
    const disk = this.store(key, merged, payload);
    if (gossip) this.changed.add(key);
    const subscribers = this.subscriptions.subscribersOf(key);
    if (subscribers !== undefined) {
      for (const subscriber of subscribers.keys()) {
        let keys = this.pushPending.get(subscriber);
        if (keys === undefined) this.pushPending.set(subscriber, (keys = new Set()));
        keys.add(key);
      }
    }
    return { key, bytes: disk };
  }

  /** Stores an entry in the memory tier; returns its disk encoding. */
  private store(key: string, entry: Entry, encoded?: Uint8Array): Uint8Array {
    const payload = encoded ?? entry.value?.encode();
    const disk = encodeEntry(entry, payload);
    const previous = this.records.get(key);
    if (previous !== undefined) this.occupancyBytes -= previous.bytes;
    const record: Record = { entry, payload, digest: entryDigest(key, disk), bytes: key.length + disk.length };
    this.records.set(key, record);
    this.occupancyBytes += record.bytes;
    if (this.peerDigests !== undefined) {
      if (previous !== undefined) this.peerDigests.account(key, previous.digest, this.replicasOf(key), this.address, -1);
      this.peerDigests.account(key, record.digest, this.replicasOf(key), this.address, 1);
    }
    return disk;
  }

  private drop(key: string): PersistWrite {
    const record = this.records.get(key);
    if (record !== undefined) {
      this.occupancyBytes -= record.bytes;
      this.records.delete(key);
      if (this.peerDigests !== undefined) this.peerDigests.account(key, record.digest, this.replicasOf(key), this.address, -1);
    }
    this.changed.delete(key);
    return { key, bytes: undefined };
  }

  private tupleOf(key: string): PbTypes.IKeyTuple {
    const record = this.records.get(key);
    return record === undefined ? { key, deleted: true } : entryToTuple(key, record.entry, record.payload);
  }

  /**
   * Emits one persist effect for `writes` (with `sync`, also when there are none: the sync makes
   * every earlier commit durable); returns its token, undefined when nothing was emitted.
   */
  private persist(writes: PersistWrite[], effects: Effect[], sync = false): number | undefined {
    if (writes.length === 0 && !sync) return undefined;
    const token = this.nextToken++;
    this.unpersisted.set(token, []);
    effects.push({ kind: 'persist', token, writes, sync });
    return token;
  }

  private onPersisted(token: number, error: Error | undefined): Effect[] {
    const waiters = this.unpersisted.get(token) ?? [];
    this.unpersisted.delete(token);
    // A failed batch: the memory tier still holds the values and gossip carries them, but
    // nothing waiting on this batch may claim durability: its tuples fail with the error.
    if (error !== undefined) this.counters.rejected++;
    return waiters.flatMap((waiter) => waiter(error));
  }

  // ---- ring --------------------------------------------------------------------------------

  private owns(key: string): boolean {
    // No ring yet (a fresh node before the routing node answered): "wrong node" sends the client
    // back to its routing node, and it retries once the ring is here.
    if (this.ring.nodeCount === 0) return false;
    return this.replicasOf(key).includes(this.address);
  }

  private replicasOf(key: string): readonly string[] {
    let replicas = this.replicaCache.get(key);
    if (replicas === undefined) {
      if (this.replicaCache.size >= 100_000) this.replicaCache.clear();
      replicas = this.ring.nodeCount === 0 ? [this.address] : this.ring.replicasOf(key);
      this.replicaCache.set(key, replicas);
    }
    return replicas;
  }

  private inMigration(): boolean {
    return this.previousRing !== undefined && this.nowMs - this.ringChangedAtMs < this.settings.migrationWindowMs;
  }

  private onRingUpdate(update: PbTypes.IRingUpdate): Effect[] {
    const before = this.ring;
    if (!this.membership.merge(update)) return [];
    this.ring = this.membership.ring();
    this.replicaCache.clear();
    // Replica sets changed: the per-peer digests are rebuilt when next needed.
    this.peerDigests = undefined;
    // A miss in the migration window asks the previous replicas and the other current ones (a
    // fresh shard has no previous ring: the current one's other replicas hold its keys).
    this.previousRing = before.nodeCount > 0 ? before : this.ring;
    this.ringChangedAtMs = this.nowMs;
    // Subscriptions follow their keys to the new replicas; then compare digests with them soon.
    return [...this.forwardSubscriptions(), { kind: 'timer', timer: ANTI_ENTROPY, delayMs: 10 }];
  }

  // ---- gossip and anti-entropy -------------------------------------------------------------

  private gossipRound(): Effect[] {
    if (this.changed.size === 0) return [];
    const byReplica = new Map<string, string[]>();
    for (const key of this.changed) {
      if (!this.records.has(key)) continue;
      for (const replica of this.replicasOf(key)) {
        if (replica === this.address) continue;
        let keys = byReplica.get(replica);
        if (keys === undefined) byReplica.set(replica, (keys = []));
        keys.push(key);
      }
    }
    this.changed.clear();
    const effects: Effect[] = [];
    for (const [replica, keys] of byReplica) effects.push(...this.gossipTo(replica, keys));
    return effects;
  }

  private gossipTo(replica: string, keys: readonly string[]): Effect[] {
    const effects: Effect[] = [];
    for (let start = 0; start < keys.length; start += this.settings.batchKeysMax) {
      const tuples = keys.slice(start, start + this.settings.batchKeysMax).map((key) => this.tupleOf(key));
      this.counters.gossipSent++;
      effects.push({ kind: 'send', to: replica, envelope: envelopeWith({ gossip: { fromNode: this.address, tuples } }, { sender: this.address }) });
    }
    return effects;
  }

  private onGossip(gossip: PbTypes.Gossip): Effect[] {
    this.counters.gossipReceived++;
    const writes: PersistWrite[] = [];
    for (const tuple of gossip.tuples) {
      try {
        const key = tuple.key ?? '';
        this.checkKey(key);
        const write = this.apply(key, entryFromTuple(tuple), false, tuple.payload);
        if (write !== undefined) writes.push(write);
      } catch {
        this.counters.rejected++;
      }
    }
    const effects: Effect[] = [];
    this.persist(writes, effects);
    return effects;
  }

  private antiEntropyRound(): Effect[] {
    const effects: Effect[] = [];
    this.collectTombstones(effects);
    this.subscriptions.expire(this.nowMs);
    if (this.ring.nodeCount === 0) return effects;
    effects.push(...this.handoff());
    for (const peer of this.peers()) {
      this.counters.digestsSent++;
      effects.push({
        kind: 'send',
        to: peer,
        envelope: envelopeWith({ digestExchange: { fromNode: this.address, ranges: this.digestTable().toWire(peer, allRanges()) } }, { sender: this.address }),
      });
    }
    return effects;
  }

  /** Anti-entropy's digests per co-replica and range (range-digests.ts); rebuilt after a ring change. */
  private peerDigests: RangeDigests | undefined;

  private digestTable(): RangeDigests {
    if (this.peerDigests === undefined) this.peerDigests = this.recomputeDigests();
    return this.peerDigests;
  }

  private recomputeDigests(): RangeDigests {
    const table = new RangeDigests();
    for (const [key, record] of this.records) table.account(key, record.digest, this.replicasOf(key), this.address, 1);
    return table;
  }

  /** For tests: the kept digests equal a full recomputation. */
  digestsConsistent(): boolean {
    return this.digestTable().equals(this.recomputeDigests());
  }

  /** The shards that share at least one key with this one. */
  private peers(): Set<string> {
    const peers = new Set(this.digestTable().sharingPeers());
    // A shard that holds nothing yet still announces itself to the shards it shares ranges with:
    // every shard of every other node may share keys with it, so it asks them all (bounded by the
    // ring's size) when it is empty; their answers bring its keys.
    if (this.records.size === 0) {
      for (const node of this.membership.aliveNodes()) for (const address of node.shardAddresses) if (address !== this.address) peers.add(address);
    }
    return peers;
  }

  private onDigestExchange(exchange: PbTypes.DigestExchange): Effect[] {
    const peer = exchange.fromNode;
    const differing = this.digestTable().differing(peer, exchange.ranges);
    if (differing.length === 0) return [];
    const wanted = new Set(differing);
    const keys: string[] = [];
    for (const key of this.records.keys()) {
      if (!wanted.has(rangeOf(key))) continue;
      const replicas = this.replicasOf(key);
      if (replicas.includes(peer) && replicas.includes(this.address)) keys.push(key);
    }
    const effects = this.gossipTo(peer, keys.slice(0, this.settings.handoffKeysMax));
    if (!exchange.isReply) {
      this.counters.digestsSent++;
      effects.push({
        kind: 'send',
        to: peer,
        envelope: envelopeWith({ digestExchange: { fromNode: this.address, ranges: this.digestTable().toWire(peer, differing), isReply: true } }, { sender: this.address }),
      });
    }
    return effects;
  }

  /** Pushes keys this shard no longer replicates to their replicas; drops each once all acknowledged it durably. */
  private handoff(): Effect[] {
    const byReplica = new Map<string, string[]>();
    const acksNeeded = new Map<string, number>();
    let count = 0;
    for (const key of this.records.keys()) {
      if (count >= this.settings.handoffKeysMax) break;
      if (this.handoffPending.has(key)) continue;
      const replicas = this.replicasOf(key);
      if (replicas.includes(this.address) || replicas.length === 0) continue;
      count++;
      this.handoffPending.add(key);
      acksNeeded.set(key, replicas.length);
      for (const replica of replicas) {
        let keys = byReplica.get(replica);
        if (keys === undefined) byReplica.set(replica, (keys = []));
        keys.push(key);
      }
    }
    const effects: Effect[] = [];
    const sentDigest = new Map<string, number>();
    for (const key of acksNeeded.keys()) sentDigest.set(key, this.records.get(key)!.digest);
    const release = (keys: readonly string[]): void => {
      for (const key of keys) this.handoffPending.delete(key);
    };
    for (const [replica, keys] of byReplica) {
      for (let start = 0; start < keys.length; start += this.settings.batchKeysMax) {
        const batch = keys.slice(start, start + this.settings.batchKeysMax);
        effects.push(...this.forwardSubscriptionsOf(batch, replica));
        effects.push(
          ...this.sendRequest(
            replica,
            { kvsRequest: { kind: Kind.PUT, tuples: batch.map((key) => this.tupleOf(key)), ack: Ack.ACK_DURABLE, fromReplica: true } },
            (response) => {
              const answered = response.kvsResponse?.tuples ?? [];
              const writes: PersistWrite[] = [];
              batch.forEach((key, position) => {
                if (answered[position] === undefined || (answered[position]!.error?.code ?? 0) !== 0) {
                  this.handoffPending.delete(key);
                  return;
                }
                const left = (acksNeeded.get(key) ?? 1) - 1;
                acksNeeded.set(key, left);
                if (left > 0) return;
                this.handoffPending.delete(key);
                // Dropped only if it did not change since it was sent (else the next round sends it again).
                if (this.records.get(key)?.digest === sentDigest.get(key) && !this.replicasOf(key).includes(this.address)) {
                  writes.push(this.drop(key));
                  this.counters.handedOff++;
                }
              });
              const effects: Effect[] = [];
              this.persist(writes, effects);
              return effects;
            },
            () => {
              release(batch);
              return [];
            },
          ),
        );
      }
    }
    return effects;
  }

  private collectTombstones(effects: Effect[]): void {
    const writes: PersistWrite[] = [];
    for (const [key, record] of this.records) {
      if (record.entry.value === undefined && record.entry.generation.wallMs + this.settings.tombstoneGraceMs < this.nowMs) {
        writes.push(this.drop(key));
        this.counters.tombstonesCollected++;
      }
    }
    this.persist(writes, effects);
  }

  // ---- subscriptions -----------------------------------------------------------------------

  private onSubscribe(envelope: Envelope, subscribe: PbTypes.Subscribe): Effect[] {
    const leaseMs = Math.min(this.settings.leaseMaxMs, subscribe.leaseMs > 0 ? subscribe.leaseMs : 10_000);
    if (!this.subscriptions.add(subscribe.keys, subscribe.subscriber, this.nowMs + leaseMs)) {
      this.counters.busy++;
      return this.replyError(envelope, new LfaasError(ErrorCode.KVS_BUSY, `${this.subscriptions.count} subscriptions; no room for ${subscribe.keys.length} more`));
    }
    // The answer carries the current values, so a cache starts fresh.
    const tuples = subscribe.keys.filter((key) => this.records.get(key)?.payload !== undefined).map((key) => this.tupleOf(key));
    return this.reply(envelope, { kvsResponse: { tuples } });
  }

  private forwardSubscriptions(): Effect[] {
    const effects: Effect[] = [];
    const byReplica = new Map<string, string[]>();
    for (const key of this.subscriptions.keys()) {
      for (const replica of this.ring.nodeCount === 0 ? [] : this.replicasOf(key)) {
        if (replica === this.address) continue;
        let keys = byReplica.get(replica);
        if (keys === undefined) byReplica.set(replica, (keys = []));
        keys.push(key);
      }
    }
    for (const [replica, keys] of byReplica) effects.push(...this.forwardSubscriptionsOf(keys, replica));
    return effects;
  }

  /** Subscribe messages on behalf of the subscribers of `keys`, with their remaining leases. */
  private forwardSubscriptionsOf(keys: readonly string[], replica: string): Effect[] {
    return this.subscriptions.forwardable(keys, this.nowMs).map(({ subscriber, keys: forwarded, leaseMs }) => ({
      kind: 'send' as const,
      to: replica,
      envelope: envelopeWith({ subscribe: { subscriber, keys: forwarded, leaseMs } }, { sender: this.address }),
    }));
  }

  private pushRound(): Effect[] {
    const effects: Effect[] = [];
    for (const [subscriber, keys] of this.pushPending) {
      const list = [...keys];
      for (let start = 0; start < list.length; start += this.settings.batchKeysMax) {
        this.counters.pushed++;
        const tuples = list.slice(start, start + this.settings.batchKeysMax).map((key) => this.tupleOf(key));
        effects.push({ kind: 'send', to: subscriber, envelope: envelopeWith({ keyUpdate: { tuples } }, { sender: this.address }) });
      }
    }
    this.pushPending.clear();
    return effects;
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private sendRequest(to: string, body: PbTypes.IEnvelope, onResponse: (envelope: Envelope) => Effect[], onTimeout: () => Effect[]): Effect[] {
    const requestId = this.nextRequestId++;
    this.outbound.set(requestId, {
      deadlineMs: this.nowMs + this.settings.replicationTimeoutMs,
      onResponse: (envelope) => (envelope.body === 'errorReply' ? onTimeout() : onResponse(envelope)),
      onTimeout,
    });
    return [{ kind: 'send', to, envelope: envelopeWith(body, { requestId, replyTo: this.address, sender: this.address }) }];
  }

  private sweep(): Effect[] {
    this.sweepScheduled = false;
    const effects: Effect[] = [];
    for (const [requestId, outbound] of this.outbound) {
      if (outbound.deadlineMs > this.nowMs) continue;
      this.outbound.delete(requestId);
      effects.push(...outbound.onTimeout());
    }
    return effects;
  }

  private reply(request: Envelope, body: PbTypes.IEnvelope): Effect[] {
    const effects: Effect[] = [];
    if (this.pushPending.size > 0 && !this.pushScheduled) {
      this.pushScheduled = true;
      effects.push({ kind: 'timer', timer: PUSH, delayMs: 0 });
    }
    if (Number(request.requestId) === 0 || request.replyTo.length === 0) return effects;
    effects.push({ kind: 'send', to: request.replyTo, envelope: envelopeWith(body, { responseTo: request.requestId, sender: this.address }) });
    return effects;
  }

  private replyError(request: Envelope, error: LfaasError): Effect[] {
    return this.reply(request, { errorReply: { error: errorToWire(error) } });
  }

  private record(kind: 'get' | 'put' | 'delete', tuples: readonly { key: string }[], startedUs: number): void {
    this.stats.recordRequest(
      kind,
      tuples.map((tuple) => tuple.key),
      Math.max(0, this.nowUs() - startedUs),
      this.nowMs,
    );
  }

  private statsRound(): Effect[] {
    this.stats.setOccupancy(this.occupancyBytes, this.records.size);
    const report = this.stats.report(this.nowMs);
    return (this.options.reportTo ?? []).map((to) => ({ kind: 'send' as const, to, envelope: envelopeWith({ statsReport: report }, { sender: this.address }) }));
  }
}
