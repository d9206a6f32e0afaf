/**
 * How a shard's keys reach their other replicas, and leave it:
 * - gossip: keys changed by client writes go to their co-replicas every gossip period, batched;
 * - anti-entropy: every period, and soon after a ring change, the shard compares range digests
 *   with each co-replica and the two push each other the keys of the ranges that differ (this
 *   repairs lost gossip, catches up a restarted or new shard and re-replicates after a failure);
 * - hand-off: keys the shard no longer replicates are pushed to their replicas (with their
 *   subscriptions) and dropped once every replica acknowledged them durably;
 * - tombstones older than their grace are collected.
 */
import { envelopeWith, pb } from '../protocol/index.js';
import type { Effect, PbTypes, PersistWrite } from '../protocol/index.js';
import { decodeStoredEntry, entryFromTuple } from './entry.js';
import { allRanges, rangeOf } from './range-digests.js';
import type { ShardState } from './shard-state.js';
import type { Walked } from './shard-tier.js';

/** A walked key's tombstone time, undefined when it holds a value. */
function tombstoneWallMs(walked: Walked): number | undefined {
  if (walked.record !== undefined) return walked.record.entry.value === undefined ? walked.record.entry.generation.wallMs : undefined;
  // On disk: [wallMs, logical, payload | null]; a value's last byte is rarely msgpack's nil (0xc0),
  // so only those are decoded to be sure.
  const bytes = walked.bytes;
  if (bytes.length === 0 || bytes[bytes.length - 1] !== 0xc0) return undefined;
  try {
    const { entry } = decodeStoredEntry(bytes);
    return entry.value === undefined ? entry.generation.wallMs : undefined;
  } catch {
    // Unreadable: not a tombstone this walk can collect (a read of the key counts it as corrupt).
    return undefined;
  }
}
import type { ShardSubscriptions } from './shard-subscriptions.js';

export class ShardReplication {
  /** Keys sent in a hand-off and not yet acknowledged by every replica. */
  private readonly handoffPending = new Set<string>();

  constructor(
    private readonly state: ShardState,
    private readonly subscriptions: ShardSubscriptions,
  ) {}

  gossipRound(): Effect[] {
    const state = this.state;
    if (state.changed.size === 0) return [];
    const byReplica = new Map<string, string[]>();
    for (const key of state.changed) {
      if (state.get(key) === undefined) continue;
      for (const replica of state.replicasOf(key)) {
        if (replica === state.address) continue;
        let keys = byReplica.get(replica);
        if (keys === undefined) byReplica.set(replica, (keys = []));
        keys.push(key);
      }
    }
    state.changed.clear();
    const effects: Effect[] = [];
    for (const [replica, keys] of byReplica) effects.push(...this.gossipTo(replica, keys));
    return effects;
  }

  private gossipTo(replica: string, keys: readonly string[]): Effect[] {
    const { settings, counters, address } = this.state;
    const effects: Effect[] = [];
    for (let start = 0; start < keys.length; start += settings.batchKeysMax) {
      const tuples = keys.slice(start, start + settings.batchKeysMax).map((key) => this.state.tupleOf(key));
      counters.gossipSent++;
      effects.push({ kind: 'send', to: replica, envelope: envelopeWith({ gossip: { fromNode: address, tuples } }, { sender: address }) });
    }
    return effects;
  }

  onGossip(gossip: PbTypes.Gossip): Effect[] {
    this.state.counters.gossipReceived++;
    const writes: PersistWrite[] = [];
    for (const tuple of gossip.tuples) {
      try {
        const key = tuple.key ?? '';
        this.state.checkKey(key);
        const write = this.state.apply(key, entryFromTuple(tuple), false, tuple.payload);
        if (write !== undefined) writes.push(write);
      } catch {
        this.state.counters.rejected++;
      }
    }
    const effects: Effect[] = [];
    this.state.persist(writes, effects);
    return effects;
  }

  antiEntropyRound(): Effect[] {
    const state = this.state;
    const effects: Effect[] = [];
    this.collectTombstones(effects);
    this.subscriptions.expire();
    if (state.ring.nodeCount === 0) return effects;
    effects.push(...this.handoff());
    for (const peer of this.peers()) {
      state.counters.digestsSent++;
      effects.push({
        kind: 'send',
        to: peer,
        envelope: envelopeWith({ digestExchange: { fromNode: state.address, ranges: state.digestTable().toWire(peer, allRanges()) } }, { sender: state.address }),
      });
    }
    return effects;
  }

  /** The shards that share at least one key with this one. */
  private peers(): Set<string> {
    const state = this.state;
    const peers = new Set(state.digestTable().sharingPeers());
    // A shard that holds nothing yet still announces itself to the shards it shares ranges with:
    // every shard of every other node may share keys with it, so it asks them all (bounded by the
    // ring's size) when it is empty; their answers bring its keys.
    if (state.tier.keyCount === 0) {
      for (const node of state.membership.aliveNodes()) for (const address of node.shardAddresses) if (address !== state.address) peers.add(address);
    }
    return peers;
  }

  onDigestExchange(exchange: PbTypes.DigestExchange): Effect[] {
    const state = this.state;
    const peer = exchange.fromNode;
    const differing = state.digestTable().differing(peer, exchange.ranges);
    if (differing.length === 0) return [];
    const wanted = new Set(differing);
    const keys: string[] = [];
    for (const { key } of state.walk()) {
      if (!wanted.has(rangeOf(key))) continue;
      const replicas = state.replicasOf(key);
      if (replicas.includes(peer) && replicas.includes(state.address)) keys.push(key);
    }
    const effects = this.gossipTo(peer, keys.slice(0, state.settings.handoffKeysMax));
    if (!exchange.isReply) {
      state.counters.digestsSent++;
      effects.push({
        kind: 'send',
        to: peer,
        envelope: envelopeWith({ digestExchange: { fromNode: state.address, ranges: state.digestTable().toWire(peer, differing), isReply: true } }, { sender: state.address }),
      });
    }
    return effects;
  }

  /** Pushes keys this shard no longer replicates to their replicas; drops each once all acknowledged it durably. */
  private handoff(): Effect[] {
    const state = this.state;
    if (!state.handoffDue) return [];
    const byReplica = new Map<string, string[]>();
    const acksNeeded = new Map<string, number>();
    let count = 0;
    for (const { key } of state.walk()) {
      if (count >= state.settings.handoffKeysMax) break;
      if (this.handoffPending.has(key)) continue;
      const replicas = state.replicasOf(key);
      if (replicas.includes(state.address) || replicas.length === 0) continue;
      count++;
      this.handoffPending.add(key);
      acksNeeded.set(key, replicas.length);
      for (const replica of replicas) {
        let keys = byReplica.get(replica);
        if (keys === undefined) byReplica.set(replica, (keys = []));
        keys.push(key);
      }
    }
    // Nothing left to hand off: no walk until the ring changes or a foreign key is stored.
    if (count === 0 && this.handoffPending.size === 0) state.handoffDue = false;
    const effects: Effect[] = [];
    const sentDigest = new Map<string, number>();
    for (const key of acksNeeded.keys()) sentDigest.set(key, state.get(key)?.digest ?? 0);
    const release = (keys: readonly string[]): void => {
      for (const key of keys) this.handoffPending.delete(key);
    };
    for (const [replica, keys] of byReplica) {
      for (let start = 0; start < keys.length; start += state.settings.batchKeysMax) {
        const batch = keys.slice(start, start + state.settings.batchKeysMax);
        effects.push(...this.subscriptions.forward(batch, replica));
        effects.push(
          ...state.sendRequest(
            replica,
            { kvsRequest: { kind: pb.RequestKind.PUT, tuples: batch.map((key) => state.tupleOf(key)), ack: pb.AckMode.ACK_DURABLE, fromReplica: true } },
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
                if (state.get(key)?.digest === sentDigest.get(key) && !state.replicasOf(key).includes(state.address)) {
                  writes.push(state.drop(key));
                  state.counters.handedOff++;
                }
              });
              const effects: Effect[] = [];
              state.persist(writes, effects);
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

  /**
   * Drops tombstones older than their grace. Walks every key (memory and disk), so only once the
   * earliest tombstone is due (state.tombstoneDueMs: the walk finds the next one, a new tombstone
   * may bring it closer; unknown at start, so the first round walks).
   */
  private collectTombstones(effects: Effect[]): void {
    const state = this.state;
    if (state.nowMs <= state.tombstoneDueMs) return;
    const graceMs = state.settings.tombstoneGraceMs;
    const expired: string[] = [];
    let nextDueMs = Infinity;
    for (const walked of state.walk()) {
      const wallMs = tombstoneWallMs(walked);
      if (wallMs === undefined) continue;
      if (wallMs + graceMs < state.nowMs) expired.push(walked.key);
      else nextDueMs = Math.min(nextDueMs, wallMs + graceMs);
    }
    state.tombstoneDueMs = nextDueMs;
    const writes = expired.map((key) => state.drop(key));
    state.counters.tombstonesCollected += expired.length;
    state.persist(writes, effects);
  }
}
