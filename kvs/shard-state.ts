/**
 * What a shard's concerns share (shard.ts is the machine; shard-replication.ts and
 * shard-subscriptions.ts its other concerns): the entries (the memory tier) with their bytes and
 * anti-entropy digests, the ring and the key's replicas, the hybrid clock, the disk batches not yet
 * committed, and the requests sent to other shards. No I/O: everything it does is state, and the
 * effects it makes are returned or pushed onto a caller's list.
 */
import { ErrorCode, HybridClock, LfaasError } from '../lattices/index.js';
import { envelopeWith } from '../protocol/index.js';
import type { Effect, Envelope, PbTypes, PersistWrite } from '../protocol/index.js';
import { encodeEntry, entriesEqual, entryDigest, entryToTuple, mergeEntries } from './entry.js';
import type { Entry } from './entry.js';
import { RangeDigests } from './range-digests.js';
import { ShardTier } from './shard-tier.js';
import type { StoredRecord, Walked } from './shard-tier.js';
import { HashRing, Membership } from './ring.js';
import type { ShardOptions, ShardSettings } from './shard-settings.js';

/** A request this shard sent to another shard and awaits. */
interface Outbound {
  readonly deadlineMs: number;
  readonly onResponse: (envelope: Envelope) => Effect[];
  readonly onTimeout: () => Effect[];
}

/** Counters of every concern, in one object (the node's metrics read it). */
export function newShardCounters() {
  return { gets: 0, puts: 0, deletes: 0, wrongNode: 0, busy: 0, gossipSent: 0, gossipReceived: 0, digestsSent: 0, handedOff: 0, pushed: 0, rejected: 0, tombstonesCollected: 0, futureGenerations: 0 };
}
export type ShardCounters = ReturnType<typeof newShardCounters>;

export class ShardState {
  readonly address: string;
  readonly nodeId: string;
  /** The entries: memory within its budget over the disk (shard-tier.ts). */
  readonly tier: ShardTier;
  readonly membership: Membership;
  ring: HashRing;
  /** The ring before the last change (a miss in the migration window asks its replicas). */
  previousRing: HashRing | undefined;
  private ringChangedAtMs = -Infinity;
  private readonly replicaCache = new Map<string, readonly string[]>();
  readonly clock: HybridClock;
  /** The machine's time (monotonic: the machine never moves it back). */
  nowMs = 0;
  /** Keys changed by client writes since the last gossip round. */
  readonly changed = new Set<string>();
  /** Anti-entropy's digests per co-replica and range (range-digests.ts); rebuilt after a ring change. */
  private peerDigests: RangeDigests | undefined;
  private readonly outbound = new Map<number, Outbound>();
  private nextRequestId = 1;
  /** Persist tokens not yet durable, and what waits on each. */
  private nextToken = 1;
  readonly unpersisted = new Map<number, ((error?: Error) => Effect[])[]>();
  /** Called for every key whose merged value changed (the subscriptions push it). */
  onChange: (key: string) => void = () => {};

  constructor(
    options: ShardOptions,
    readonly settings: ShardSettings,
    readonly counters: ShardCounters,
  ) {
    this.address = options.address;
    this.nodeId = options.nodeId;
    this.clock = new HybridClock(options.address, () => this.nowMs);
    this.membership = new Membership(options.defaults ?? { global: 1, local: 1 });
    if (options.initialRing !== undefined) this.membership.merge(options.initialRing);
    this.ring = this.membership.ring();
    this.tier = new ShardTier(options.disk === undefined ? Infinity : settings.memoryBudgetBytes, options.disk);
    for (const [key, entry] of options.initial ?? []) this.store(key, entry, undefined, true);
  }

  // ---- entries -----------------------------------------------------------------------------

  checkKey(key: string): void {
    if (key.length === 0) throw new LfaasError(ErrorCode.KVS_BAD_KEY, 'empty key');
    // UTF-8 takes at most 3 bytes per UTF-16 unit: only long keys need their bytes counted.
    if (key.length > this.settings.keyBytesMax || (key.length * 3 > this.settings.keyBytesMax && Buffer.byteLength(key) > this.settings.keyBytesMax)) {
      throw new LfaasError(ErrorCode.KVS_BAD_KEY, `key of ${Buffer.byteLength(key)} bytes; at most ${this.settings.keyBytesMax}`);
    }
  }

  /** The key's record (from memory, else from disk), undefined if the shard holds none. */
  get(key: string): StoredRecord | undefined {
    return this.tier.get(key);
  }

  /** Merges `incoming` into the key; returns the disk write when the entry changed. */
  apply(key: string, incoming: Entry, gossip: boolean, incomingPayload?: Uint8Array | null): PersistWrite | undefined {
    // A generation further ahead than the clock's drift bound, from whoever sends it (a replica's
    // PUT, gossip, a hand-off, a read-repair), is refused: a tombstone stamped years ahead would
    // shadow every later write and delete of the key for good.
    if (incoming.generation.wallMs > this.nowMs + this.clock.maxDriftMs) {
      this.counters.futureGenerations++;
      throw new LfaasError(ErrorCode.PROTO_MALFORMED, `a generation ${incoming.generation.wallMs - this.nowMs} ms ahead of this node's clock (at most ${this.clock.maxDriftMs})`);
    }
    const current = this.tier.get(key)?.entry;
    const merged = current === undefined ? incoming : mergeEntries(current, incoming);
    if (current !== undefined && (merged === current || entriesEqual(merged, current))) return undefined;
    if (this.tier.full) {
      // Uncommitted writes fill half the memory budget: the disk is behind. Refused (retryable;
      // gossip is repaired by anti-entropy) rather than held beyond the budget.
      this.counters.busy++;
      throw new LfaasError(ErrorCode.KVS_BUSY, `${this.tier.dirtyBytes} bytes of writes wait for the disk (memory budget ${this.tier.budgetBytes})`);
    }
    // When the incoming value won (LWW), its bytes (canonical: decoding checked) are the
    // merged value's encoding: copied out of the frame, not encoded again.
    const payload = merged.value !== undefined && merged.value === incoming.value && incomingPayload ? incomingPayload.slice() : undefined;
    const disk = this.store(key, merged, payload);
    if (gossip) this.changed.add(key);
    this.onChange(key);
    return { key, bytes: disk };
  }

  /** Stores an entry (`committed`: it is on disk already); returns its disk encoding. */
  store(key: string, entry: Entry, encoded?: Uint8Array, committed = false): Uint8Array {
    const payload = encoded ?? entry.value?.encode();
    const disk = encodeEntry(entry, payload);
    const { previous, record } = this.tier.put(key, entry, payload, disk, committed);
    if (this.peerDigests !== undefined) {
      if (previous !== undefined) this.peerDigests.account(key, previous.digest, this.replicasOf(key), this.address, -1);
      this.peerDigests.account(key, record.digest, this.replicasOf(key), this.address, 1);
    }
    if (entry.value === undefined) this.tombstoneDueMs = Math.min(this.tombstoneDueMs, entry.generation.wallMs + this.settings.tombstoneGraceMs);
    // A key this shard does not replicate (a replica's write on an older ring) is handed off.
    if (!this.handoffDue && this.ring.nodeCount > 0 && !this.replicasOf(key).includes(this.address)) this.handoffDue = true;
    return disk;
  }

  drop(key: string): PersistWrite {
    const record = this.tier.remove(key);
    if (record !== undefined && this.peerDigests !== undefined) this.peerDigests.account(key, record.digest, this.replicasOf(key), this.address, -1);
    this.changed.delete(key);
    return { key, bytes: undefined };
  }

  tupleOf(key: string): PbTypes.IKeyTuple {
    const record = this.tier.get(key);
    return record === undefined ? { key, deleted: true } : record.tuple(key);
  }

  /** Every key once (memory, then disk): see ShardTier.walk. */
  walk(): Generator<Walked> {
    return this.tier.walk();
  }

  /** The digest of a walked key. */
  static digestOf(walked: Walked): number {
    return walked.record !== undefined ? walked.record.digest : entryDigest(walked.key, walked.bytes);
  }

  /**
   * Whether a walk for hand-off may find keys: set by a ring change and by storing a key this
   * shard does not replicate; cleared by a hand-off walk that found none.
   */
  handoffDue = true;

  /** When the earliest tombstone known is due for collection (-Infinity: not known yet). */
  tombstoneDueMs = -Infinity;

  /** The writes of failed disk batches, in a batch again. */
  retryFailed(effects: Effect[]): void {
    this.persist(this.tier.retries((record) => encodeEntry(record.entry, record.payload)), effects);
  }

  // ---- disk --------------------------------------------------------------------------------

  /**
   * Emits one persist effect for `writes` (with `sync`, also when there are none: the sync makes
   * every earlier commit durable); returns its token, undefined when nothing was emitted.
   */
  persist(writes: PersistWrite[], effects: Effect[], sync = false): number | undefined {
    if (writes.length === 0 && !sync) return undefined;
    const token = this.nextToken++;
    this.unpersisted.set(token, []);
    this.tier.batched(token, writes);
    effects.push({ kind: 'persist', token, writes, sync });
    return token;
  }

  onPersisted(token: number, error: Error | undefined): Effect[] {
    const waiters = this.unpersisted.get(token) ?? [];
    this.unpersisted.delete(token);
    this.tier.committed(token, error);
    // A failed batch: the memory tier still holds the values and gossip carries them, but
    // nothing waiting on this batch may claim durability: its tuples fail with the error.
    if (error !== undefined) this.counters.rejected++;
    return waiters.flatMap((waiter) => waiter(error));
  }

  // ---- ring --------------------------------------------------------------------------------

  owns(key: string): boolean {
    // No ring yet (a fresh node before the routing node answered): "wrong node" sends the client
    // back to its routing node, and it retries once the ring is here.
    if (this.ring.nodeCount === 0) return false;
    return this.replicasOf(key).includes(this.address);
  }

  replicasOf(key: string): readonly string[] {
    let replicas = this.replicaCache.get(key);
    if (replicas === undefined) {
      if (this.replicaCache.size >= 100_000) this.replicaCache.clear();
      replicas = this.ring.nodeCount === 0 ? [this.address] : this.ring.replicasOf(key);
      this.replicaCache.set(key, replicas);
    }
    return replicas;
  }

  /**
   * A key's replicas in the previous ring, each at its node's current address: a node that
   * restarted on other ports since (same id, its data reloaded from disk) is asked where it is
   * now. Its old address is held by nobody, and a read forwarded there waited the whole outbound
   * timeout (as long as a client's request timeout): after `lfaas up` restarted on new ports, the
   * first commands timed out for the length of the migration window.
   */
  previousReplicasOf(key: string): string[] {
    const previous = this.previousRing;
    if (previous === undefined) return [];
    return previous.replicasOf(key).map((address) => {
      const node = previous.nodeOfShard(address);
      const now = node === undefined ? undefined : this.membership.node(node.id);
      if (node === undefined || now === undefined || now.departed) return address;
      return now.shardAddresses[node.shardAddresses.indexOf(address)] ?? address;
    });
  }

  inMigration(): boolean {
    return this.previousRing !== undefined && this.nowMs - this.ringChangedAtMs < this.settings.migrationWindowMs;
  }

  /** Merges a ring update; whether the ring changed. */
  updateRing(update: PbTypes.IRingUpdate): boolean {
    const before = this.ring;
    if (!this.membership.merge(update)) return false;
    this.ring = this.membership.ring();
    this.replicaCache.clear();
    this.handoffDue = true;
    // Replica sets changed: the per-peer digests are rebuilt when next needed.
    this.peerDigests = undefined;
    // A miss in the migration window asks the previous replicas and the other current ones. A
    // fresh shard has no previous ring: its keys are where they were before its node joined (the
    // ring without it), so a miss asks their old replica too, not only the current ones (one of
    // those may be down while the hand-off is on its way).
    this.previousRing = before.nodeCount > 0 ? before : this.ringWithoutOwnNode();
    this.ringChangedAtMs = this.nowMs;
    return true;
  }

  /** The current ring without this shard's node (the current ring when it is the only node). */
  private ringWithoutOwnNode(): HashRing {
    const others = this.membership.aliveNodes().filter((node) => node.id !== this.nodeId);
    return others.length === 0 ? this.ring : new HashRing(others, this.membership);
  }

  // ---- digests -----------------------------------------------------------------------------

  digestTable(): RangeDigests {
    if (this.peerDigests === undefined) this.peerDigests = this.recomputeDigests();
    return this.peerDigests;
  }

  recomputeDigests(): RangeDigests {
    const table = new RangeDigests();
    for (const walked of this.tier.walk()) table.account(walked.key, ShardState.digestOf(walked), this.replicasOf(walked.key), this.address, 1);
    return table;
  }

  // ---- requests to other shards ------------------------------------------------------------

  /** Sends a request to another shard; its answer, an error answer or its deadline calls back once. */
  sendRequest(to: string, body: PbTypes.IEnvelope, onResponse: (envelope: Envelope) => Effect[], onTimeout: () => Effect[]): Effect[] {
    const requestId = this.nextRequestId++;
    this.outbound.set(requestId, {
      deadlineMs: this.nowMs + this.settings.replicationTimeoutMs,
      onResponse: (envelope) => (envelope.body === 'errorReply' ? onTimeout() : onResponse(envelope)),
      onTimeout,
    });
    return [{ kind: 'send', to, envelope: envelopeWith(body, { requestId, replyTo: this.address, sender: this.address }) }];
  }

  /** Calls `onTimeout` after `replicationTimeoutMs` (with the sweep of outbound requests). */
  deadline(onTimeout: () => Effect[]): void {
    this.outbound.set(this.nextRequestId++, { deadlineMs: this.nowMs + this.settings.replicationTimeoutMs, onResponse: () => [], onTimeout });
  }

  /** The answer to an outbound request, or undefined when `responseTo` is none of ours. */
  answer(responseTo: number, envelope: Envelope): Effect[] | undefined {
    const waiter = this.outbound.get(responseTo);
    if (waiter === undefined) return undefined;
    this.outbound.delete(responseTo);
    return waiter.onResponse(envelope);
  }

  get outboundCount(): number {
    return this.outbound.size;
  }

  /** Times out the outbound requests past their deadline. */
  sweep(): Effect[] {
    const effects: Effect[] = [];
    for (const [requestId, outbound] of this.outbound) {
      if (outbound.deadlineMs > this.nowMs) continue;
      this.outbound.delete(requestId);
      effects.push(...outbound.onTimeout());
    }
    return effects;
  }
}
