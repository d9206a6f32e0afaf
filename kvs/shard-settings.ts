/**
 * A storage shard's options, and the settings they resolve to (every bound and period with its
 * default).
 */
import type { PbTypes } from '../protocol/index.js';
import type { Entry } from './entry.js';
import type { ReplicationFactors } from './ring.js';
import type { DiskReader } from './shard-tier.js';

export interface ShardOptions {
  /** The storage node this shard belongs to. */
  readonly nodeId: string;
  /** Its index in the node's local ring. */
  readonly shardIndex: number;
  /** Its own address (reply_to of what it sends; its name in the ring). */
  readonly address: string;
  /** Entries found on disk at start (a restart), all kept in memory (without `disk`: tests, the simulator). */
  readonly initial?: ReadonlyMap<string, Entry>;
  /**
   * The shard's disk, read synchronously (shard-tier.ts): with it, entries beyond the memory
   * budget live on disk only, and a restarted shard reads what it needs when it needs it.
   */
  readonly disk?: DiskReader;
  /** Memory for entries (bytes; with `disk` only). */
  readonly memoryBudgetBytes?: number;
  /** The ring the node last knew (a restart), so the shard serves before the routing node answers. */
  readonly initialRing?: PbTypes.IRingUpdate;
  readonly defaults?: ReplicationFactors;
  /** Where statistics reports go (the routing nodes). */
  readonly reportTo?: readonly string[];
  readonly gossipPeriodMs?: number;
  readonly antiEntropyPeriodMs?: number;
  readonly statsPeriodMs?: number;
  /** How long a tombstone is kept before it is garbage-collected (replicas must see it by then). */
  readonly tombstoneGraceMs?: number;
  /** A REPLICATED or forwarded request fails with TRANSPORT_TIMEOUT after this. */
  readonly replicationTimeoutMs?: number;
  /** After a ring change, GET misses are forwarded to the previous replicas for this long. */
  readonly migrationWindowMs?: number;
  /** Requests waiting for a disk sync or replicas, at most; beyond, KVS_BUSY. */
  readonly pendingRequestsMax?: number;
  /** Disk batches not yet committed, at most; beyond, writes get KVS_BUSY. */
  readonly persistBacklogMax?: number;
  /** Keys per gossip / hand-off / push message, at most. */
  readonly batchKeysMax?: number;
  /**
   * Keys in one incoming request, gossip or subscription, at most; a larger one is refused whole
   * with PROTO_TOO_LARGE (the sender splits it). Bounds the work one frame can ask for: a
   * 60 000-key GET once held a shard for 150 ms.
   */
  readonly requestKeysMax?: number;
  /**
   * Value bytes in one GET answer, at most: once reached, the remaining keys are answered KVS_BUSY
   * (retryable: the client asks again), so an answer stays well below the 16 MiB frame limit.
   */
  readonly replyBytesMax?: number;
  /** Keys handed off per anti-entropy round, at most. */
  readonly handoffKeysMax?: number;
  readonly keyBytesMax?: number;
  readonly subscriptionsMax?: number;
  readonly leaseMaxMs?: number;
  /** Microseconds, for the latency histogram only (the shell passes a monotonic clock). */
  readonly nowUs?: () => number;
}

/** The default of `requestKeysMax`: a client's batches (256 keys) and hand-offs (4096) fit. */
export const REQUEST_KEYS_MAX = 4096;

/** A shard's default memory budget: 256 MiB. */
export const DEFAULT_SHARD_MEMORY_BYTES = 256 * 1024 * 1024;

/** The options' bounds and periods, each resolved to its value. */
export type ShardSettings = Readonly<Required<Pick<ShardOptions, 'gossipPeriodMs' | 'antiEntropyPeriodMs' | 'statsPeriodMs' | 'tombstoneGraceMs' | 'replicationTimeoutMs' | 'migrationWindowMs' | 'pendingRequestsMax' | 'batchKeysMax' | 'requestKeysMax' | 'replyBytesMax' | 'persistBacklogMax' | 'handoffKeysMax' | 'keyBytesMax' | 'leaseMaxMs' | 'memoryBudgetBytes'>>>;

export function shardSettings(options: ShardOptions): ShardSettings {
  return {
    gossipPeriodMs: options.gossipPeriodMs ?? 50,
    antiEntropyPeriodMs: options.antiEntropyPeriodMs ?? 1000,
    statsPeriodMs: options.statsPeriodMs ?? 1000,
    tombstoneGraceMs: options.tombstoneGraceMs ?? 60 * 60_000,
    replicationTimeoutMs: options.replicationTimeoutMs ?? 1000,
    migrationWindowMs: options.migrationWindowMs ?? 30_000,
    pendingRequestsMax: options.pendingRequestsMax ?? 10_000,
    batchKeysMax: options.batchKeysMax ?? 256,
    requestKeysMax: options.requestKeysMax ?? REQUEST_KEYS_MAX,
    replyBytesMax: options.replyBytesMax ?? 8 * 1024 * 1024,
    persistBacklogMax: options.persistBacklogMax ?? 10_000,
    handoffKeysMax: options.handoffKeysMax ?? 4096,
    keyBytesMax: options.keyBytesMax ?? 1024,
    leaseMaxMs: options.leaseMaxMs ?? 60_000,
    memoryBudgetBytes: options.memoryBudgetBytes ?? DEFAULT_SHARD_MEMORY_BYTES,
  };
}
