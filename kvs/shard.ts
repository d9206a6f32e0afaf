/**
 * A storage shard: one slice of a storage node's keys, shared-nothing, with its own address, its
 * memory tier (every entry) and its disk tier (every merged entry is persisted through `persist`
 * effects; a restarted shard is built from what the disk holds). One sans-I/O machine: the same
 * code runs as a process over ZeroMQ and lmdb, and in the simulator. Its concerns, a file each:
 * - this file: the machine (timers, message dispatch) and client requests with their
 *   acknowledgements;
 * - shard-state.ts: the entries, the ring, the clock, disk batches and requests to other shards;
 * - shard-replication.ts: gossip, anti-entropy, hand-off, tombstone collection;
 * - shard-subscriptions.ts: subscriptions, pushes, and their forwarding on ring changes.
 *
 * Requests (`kvsRequest`, batched, per-tuple errors):
 * - GET answers the merged value; a miss during a migration is forwarded to the key's previous
 *   replicas, so a key stays readable while it moves.
 * - PUT merges (a different lattice type in the key's generation is KVS_LATTICE_MISMATCH and
 *   writes nothing); DELETE starts a new, empty generation at a hybrid-clock time (entry.ts).
 * - A shard that is not one of the key's replicas answers KVS_WRONG_NODE with its ring.
 * - `ack`: LOCAL replies after the in-memory merge; DURABLE after the disk commit is synced;
 *   REPLICATED after a majority of the key's replicas (this one included) hold it durably.
 */
import { ErrorCode, LfaasError, ensureLfaasError } from '../lattices/index.js';
import { envelopeWith, errorToWire, pb } from '../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes, PersistWrite } from '../protocol/index.js';
import { FIRST_GENERATION, entryFromTuple, entryToTuple } from './entry.js';
import type { Entry } from './entry.js';
import { ShardReplication } from './shard-replication.js';
import { ShardState, newShardCounters } from './shard-state.js';
import { ShardStats } from './shard-stats.js';
import { ShardSubscriptions } from './shard-subscriptions.js';
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

/** What a shard's memory tier holds (metrics). */
export interface ShardMemory {
  /** Bytes the entries in memory take (estimated: shard-tier.ts). */
  readonly bytes: number;
  readonly keys: number;
  /** Infinity without a disk. */
  readonly budgetBytes: number;
  /** Bytes of entries not yet committed to disk. */
  readonly dirtyBytes: number;
  readonly diskReads: number;
  readonly evictions: number;
  /** Entries on disk that could not be decoded (served as absent; anti-entropy repairs them). */
  readonly diskCorrupt: number;
}

/** A result tuple: a key tuple whose key is always set. */
type Result = PbTypes.IKeyTuple & { key: string };

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
  private readonly state: ShardState;
  private readonly subscriptions: ShardSubscriptions;
  private readonly replication: ShardReplication;
  private sweepScheduled = false;
  private pushScheduled = false;
  private waitingCount = 0;
  readonly stats: ShardStats;
  readonly counters = newShardCounters();

  private readonly settings: ShardSettings;
  private readonly nowUs: () => number;

  constructor(private readonly options: ShardOptions) {
    this.settings = shardSettings(options);
    this.address = options.address;
    this.id = options.address;
    this.state = new ShardState(options, this.settings, this.counters);
    this.subscriptions = new ShardSubscriptions(this.state, options.subscriptionsMax ?? 100_000);
    this.replication = new ShardReplication(this.state, this.subscriptions);
    this.nowUs = options.nowUs ?? (() => this.state.nowMs * 1000);
    this.stats = new ShardStats({ nodeId: options.nodeId, shard: options.shardIndex });
  }

  /** The entry of a key (tests, the CLI). */
  entry(key: string): Entry | undefined {
    return this.state.get(key)?.entry;
  }

  /** Every key (memory and disk). */
  keys(): string[] {
    return [...this.state.walk()].map((walked) => walked.key);
  }

  get keyCount(): number {
    return this.state.tier.keyCount;
  }

  /** Data bytes held (memory and disk). */
  get bytes(): number {
    return this.state.tier.dataBytes;
  }

  /** What the memory tier holds: its bytes (estimated, see shard-tier.ts), keys and budget; disk reads and evictions so far. */
  memory(): ShardMemory {
    const tier = this.state.tier;
    return { bytes: tier.memoryBytes, keys: tier.memoryKeys, budgetBytes: tier.budgetBytes, dirtyBytes: tier.dirtyBytes, ...tier.counters };
  }

  /** The membership this shard knows (tests, the node). */
  ringView(): PbTypes.IRingUpdate {
    return this.state.membership.toWire();
  }

  /** For tests: the memory tier's counts equal a recount, and its eviction clock is whole. */
  tierConsistent(): boolean {
    return this.state.tier.consistent();
  }

  /** For tests: the kept anti-entropy digests equal a full recomputation. */
  digestsConsistent(): boolean {
    return this.state.digestTable().equals(this.state.recomputeDigests());
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    this.state.nowMs = Math.max(this.state.nowMs, nowMs);
    const startedUs = this.nowUs();
    const effects = this.dispatch(input);
    this.stats.recordBusy(this.nowUs() - startedUs);
    // Whatever added an outbound request, its deadline is watched.
    if (this.state.outboundCount > 0 && !this.sweepScheduled) {
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
          return this.state.onPersisted(input.token, input.error);
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
      case GOSSIP: {
        const effects = this.replication.gossipRound();
        this.state.retryFailed(effects);
        return [...effects, { kind: 'timer', timer: GOSSIP, delayMs: this.settings.gossipPeriodMs }];
      }
      case ANTI_ENTROPY:
        return [...this.replication.antiEntropyRound(), { kind: 'timer', timer: ANTI_ENTROPY, delayMs: this.settings.antiEntropyPeriodMs }];
      case PUSH:
        this.pushScheduled = false;
        return this.subscriptions.push();
      case SWEEP:
        this.sweepScheduled = false;
        return this.state.sweep();
      case STATS:
        return [...this.statsRound(), { kind: 'timer', timer: STATS, delayMs: this.settings.statsPeriodMs }];
      default:
        return [];
    }
  }

  private onMessage(envelope: Envelope): Effect[] {
    const responseTo = Number(envelope.responseTo);
    if (responseTo !== 0) return this.state.answer(responseTo, envelope) ?? [];
    const keys = keyCountOf(envelope);
    if (keys > this.settings.requestKeysMax) {
      this.counters.rejected++;
      return this.replyError(envelope, new LfaasError(ErrorCode.PROTO_TOO_LARGE, `${keys} keys in one ${envelope.body}; at most ${this.settings.requestKeysMax}: split the batch`));
    }
    switch (envelope.body) {
      case 'kvsRequest':
        return this.onRequest(envelope, envelope.kvsRequest as PbTypes.KvsRequest);
      case 'gossip':
        return this.replication.onGossip(envelope.gossip as PbTypes.Gossip);
      case 'digestExchange':
        return this.replication.onDigestExchange(envelope.digestExchange as PbTypes.DigestExchange);
      case 'ringUpdate':
        // Subscriptions follow their keys to the new replicas; then compare digests with them soon.
        return this.state.updateRing(envelope.ringUpdate!) ? [...this.subscriptions.forwardAll(), { kind: 'timer', timer: ANTI_ENTROPY, delayMs: 10 }] : [];
      case 'subscribe': {
        let answer: PbTypes.IEnvelope;
        try {
          answer = this.subscriptions.subscribe(envelope.subscribe as PbTypes.Subscribe);
        } catch (error) {
          return this.replyError(envelope, ensureLfaasError(error));
        }
        return this.reply(envelope, answer);
      }
      case 'unsubscribe':
        this.subscriptions.unsubscribe(envelope.unsubscribe as PbTypes.Unsubscribe);
        return [];
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
    if (this.state.unpersisted.size >= this.settings.persistBacklogMax) {
      // The disk is behind: refuse writes rather than hold ever more of them in memory.
      this.counters.busy++;
      return this.replyError(envelope, new LfaasError(ErrorCode.KVS_BUSY, `${this.state.unpersisted.size} disk batches not yet committed`));
    }
    const isDelete = request.kind === Kind.DELETE;
    const writes: PersistWrite[] = [];
    let wrongNode = false;
    const results = request.tuples.map((tuple): Result => {
      const key = tuple.key ?? '';
      try {
        this.state.checkKey(key);
        if (!request.fromReplica && !this.state.owns(key)) {
          wrongNode = true;
          this.counters.wrongNode++;
          throw new LfaasError(ErrorCode.KVS_WRONG_NODE, `${this.address} does not hold ${JSON.stringify(key)}`);
        }
        const current = this.state.get(key)?.entry;
        let incoming: Entry;
        if (isDelete) {
          this.counters.deletes++;
          if (current !== undefined) this.state.clock.observe(current.generation);
          incoming = { generation: this.state.clock.tick(), value: undefined };
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
        const write = this.state.apply(key, incoming, !request.fromReplica, tuple.payload);
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
    const token = this.state.persist(writes, effects, !local);
    const kind = isDelete ? 'delete' : 'put';
    if (local) {
      this.record(kind, results, startedUs);
      effects.push(...this.reply(envelope, { kvsResponse: { tuples: results, ring: wrongNode ? this.state.membership.toWire() : null } }));
      return effects;
    }
    const waiting: Waiting = { request: envelope, results, needed: results.map((r) => (r.error ? 0 : 1)), startedUs, kind, done: false };
    this.waitingCount++;
    const all = waiting.results.map((_, index) => index);
    // REPLICATED: a majority of the key's replicas, this shard's own durable copy counted as one.
    if (ack === Ack.ACK_REPLICATED) effects.push(...this.replicate(waiting));
    this.state.unpersisted.get(token!)!.push((error) => this.acknowledge(waiting, all, error));
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
        this.state.checkKey(key);
        const record = this.state.get(key);
        if (record !== undefined && record.payload !== undefined) {
          if (replyBytes >= this.settings.replyBytesMax) throw new LfaasError(ErrorCode.KVS_BUSY, `the answer already holds ${replyBytes} bytes of values; ask again for ${JSON.stringify(key)}`);
          replyBytes += record.payload.byteLength + key.length;
          return record.tuple(key);
        }
        if (!request.fromReplica && !this.state.owns(key)) {
          wrongNode = true;
          this.counters.wrongNode++;
          throw new LfaasError(ErrorCode.KVS_WRONG_NODE, `${this.address} does not hold ${JSON.stringify(key)}`);
        }
        if (record === undefined && !request.fromReplica && this.state.inMigration()) misses.push(index);
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
    return this.reply(envelope, { kvsResponse: { tuples: results, ring: wrongNode ? this.state.membership.toWire() : null } });
  }

  /** Asks the previous replicas of missed keys (a migration in progress); undefined if there are none. */
  private forwardMisses(envelope: Envelope, results: Result[], misses: number[], startedUs: number): Effect[] | undefined {
    const byReplica = new Map<string, number[]>();
    for (const index of misses) {
      // The key's previous replicas, and its other current ones: one of them has it if anyone does.
      const key = results[index]!.key;
      for (const replica of new Set([...this.state.previousReplicasOf(key), ...this.state.replicasOf(key)])) {
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
        ...this.state.sendRequest(
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
                const write = this.state.apply(key, entryFromTuple(tuple), false);
                if (write !== undefined) writes.push(write);
                const record = this.state.get(key);
                if (record?.payload !== undefined) results[index] = record.tuple(key);
              } catch {
                // A bad answer from a peer: the miss stands.
              }
            });
            this.state.persist(writes, effects);
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
      const replicas = this.state.replicasOf(result.key);
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
      const tuples = indexes.map((index) => this.state.tupleOf(waiting.results[index]!.key));
      effects.push(
        ...this.state.sendRequest(
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
    this.state.deadline(() => {
      if (waiting.done) return [];
      waiting.needed.forEach((needed, index) => {
        if (needed > 0) {
          const key = waiting.results[index]!.key;
          waiting.results[index] = { key, error: errorToWire(new LfaasError(ErrorCode.TRANSPORT_TIMEOUT, `${JSON.stringify(key)}: not acknowledged by enough replicas in ${this.settings.replicationTimeoutMs} ms`)) };
          waiting.needed[index] = 0;
        }
      });
      return this.finish(waiting);
    });
  }

  // ---- plumbing ----------------------------------------------------------------------------

  private reply(request: Envelope, body: PbTypes.IEnvelope): Effect[] {
    const effects: Effect[] = [];
    if (this.subscriptions.hasPending && !this.pushScheduled) {
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
      this.state.nowMs,
    );
  }

  private statsRound(): Effect[] {
    this.stats.setOccupancy(this.state.tier.dataBytes, this.state.tier.keyCount);
    const report = this.stats.report(this.state.nowMs);
    return (this.options.reportTo ?? []).map((to) => ({ kind: 'send' as const, to, envelope: envelopeWith({ statsReport: report }, { sender: this.address }) }));
  }
}
