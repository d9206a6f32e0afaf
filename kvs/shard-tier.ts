/**
 * A shard's two tiers: memory within a budget, and the disk (lmdb) under it.
 *
 * Every entry is on disk once its batch commits; memory keeps the entries in use. An entry leaves
 * memory (CLOCK: each has a "used" bit, set on every access; eviction walks from the oldest,
 * giving each used entry a second chance) once memory is over the budget, and comes back on its
 * next access, read from disk. What is not yet committed never leaves memory (a read of the disk
 * would return the older value), nor does a deletion's absence (`dropping`): they leave once
 * their batch is committed. So memory holds at most the budget of clean entries plus the
 * uncommitted ones, and the shard refuses writes (KVS_BUSY, retryable) while the batches handed
 * to the disk and not yet committed exceed half the budget: whatever the data size, memory stays
 * within the budget, give or take the values of the message being handled.
 *
 * Disk reads are synchronous: lmdb reads from its memory map, in the calling thread, in
 * microseconds; an effect and a round trip through the event loop per miss would cost more than
 * the read. The read port is deterministic in the simulator (its disk is a map), so the machine
 * stays a sans-I/O machine in every sense that matters: same inputs, same effects.
 *
 * Nothing needs every value in memory: the key count and data bytes are kept as entries come and
 * go (a store first looks up what it replaces, from disk if need be), anti-entropy digests are
 * XORs updated the same way, and what must see every key (digest rebuilds, hand-off, tombstone
 * collection) walks memory then the disk in key order, a chunk at a time.
 */
import { ErrorCode, LfaasError, decodeLattice } from '../lattices/index.js';
import type { AnyLattice, Timestamp } from '../lattices/index.js';
import type { PbTypes, PersistWrite } from '../protocol/index.js';
import { decodeStoredEntry, entryDigest } from './entry.js';
import type { Entry } from './entry.js';

/**
 * What the shard keeps per key in memory: the value's encoding (served by GET as is) and its
 * decoded value, unless memory ran short: then a committed entry keeps only the encoding (the
 * eviction hand drops the decoded value before the entry), so memory holds about twice the
 * entries, and a write decodes the value again to merge into it.
 */
export class StoredRecord {
  constructor(
    readonly generation: Timestamp,
    /** The lattice type (0 for a tombstone). */
    readonly type: number,
    /** The value's encoding (undefined for a tombstone). */
    readonly payload: Uint8Array | undefined,
    /** The decoded value, while kept (see above). */
    public decoded: AnyLattice | undefined,
    /** The anti-entropy digest of (key, entry). */
    readonly digest: number,
    /** Bytes of data this record stands for (key + disk encoding). */
    readonly bytes: number,
    /** 0: committed to disk (may leave memory); -1: not yet in a batch; else its batch's token. */
    public token: number,
  ) {}

  /** Accessed since the eviction hand last passed it. */
  used = true;
  /** Its place on the eviction clock (shard-tier.ts). */
  slot = -1;

  /** The entry (decoding the value when it is not kept). */
  get entry(): Entry {
    if (this.payload === undefined) return { generation: this.generation, value: undefined };
    return { generation: this.generation, value: this.decoded ?? decodeLattice(this.payload, { verifyCanonical: false }) };
  }

  /** The wire tuple (no decoding). */
  tuple(key: string): PbTypes.IKeyTuple & { key: string } {
    const tuple: PbTypes.IKeyTuple & { key: string } = { key };
    if (this.generation.wallMs !== 0 || this.generation.logical !== 0) tuple.generation = { wallMs: this.generation.wallMs, logical: this.generation.logical };
    if (this.payload === undefined) tuple.deleted = true;
    else {
      tuple.latticeType = this.type;
      tuple.payload = this.payload;
    }
    return tuple;
  }
}

/** The shard's synchronous read port on its disk (lmdb's memory map; a map in the simulator). */
export interface DiskReader {
  /** The committed bytes of `key`, or undefined. */
  read(key: string): Uint8Array | undefined;
  /** Up to `limit` committed (key, bytes) pairs after `after` (exclusive; from the start if undefined), in key order. */
  scan(after: string | undefined, limit: number): readonly (readonly [string, Uint8Array])[];
}

/** Memory an entry costs beyond its bytes (map slot, record, decoded value): an estimate. */
export const RECORD_OVERHEAD_BYTES = 128;
/** Keys read from disk per step of a walk. */
const SCAN_CHUNK = 1024;

/** The memory a record takes: its key and payload, its decoded value when kept (counted as big again as its payload), and the overhead. */
function costOf(record: StoredRecord): number {
  return record.bytes + (record.decoded === undefined || record.payload === undefined ? 0 : record.payload.byteLength) + RECORD_OVERHEAD_BYTES;
}

/** One key met by a walk: its memory record, or its committed bytes on disk. */
export type Walked = { readonly key: string; readonly record: StoredRecord; readonly bytes?: undefined } | { readonly key: string; readonly record?: undefined; readonly bytes: Uint8Array };

export interface TierCounters {
  diskReads: number;
  evictions: number;
  diskCorrupt: number;
}

export class ShardTier {
  private readonly records = new Map<string, StoredRecord>();
  /** Keys removed from memory whose removal from disk is not committed: token, or -1 before its batch. */
  private readonly dropping = new Map<string, number>();
  /** Per batch token, the keys it writes. */
  private readonly batches = new Map<number, string[]>();
  /** Keys whose batch failed: written again with the next batch. */
  private readonly failed = new Set<string>();
  /** Memory the records take (bytes, estimated: see costOf). */
  memoryBytes = 0;
  /** Memory the uncommitted records take (part of memoryBytes). */
  dirtyBytes = 0;
  /** The part of dirtyBytes already handed to the disk in a batch, not yet committed. */
  private inFlightBytes = 0;
  /** Data bytes of every key, in memory or on disk. */
  dataBytes = 0;
  keyCount = 0;
  readonly counters: TierCounters = { diskReads: 0, evictions: 0, diskCorrupt: 0 };

  constructor(
    /** Memory for entries (bytes); Infinity without a disk. */
    readonly budgetBytes: number,
    private readonly disk: DiskReader | undefined,
  ) {
    if (disk === undefined) return;
    // The key count and data bytes of what the disk holds (one pass over it; values not kept).
    for (const walked of this.walkDisk()) {
      this.keyCount++;
      this.dataBytes += walked.key.length + walked.bytes.byteLength;
    }
  }

  get tiered(): boolean {
    return this.disk !== undefined;
  }

  /** Keys in memory. */
  get memoryKeys(): number {
    return this.records.size;
  }

  /** The key's record: from memory, else read from disk (and kept in memory); undefined if absent. */
  get(key: string): StoredRecord | undefined {
    const record = this.records.get(key);
    if (record !== undefined) {
      record.used = true;
      return record;
    }
    const loaded = this.fromDisk(key);
    if (loaded === undefined) return undefined;
    this.admit(key, loaded);
    this.memoryBytes += costOf(loaded);
    this.evict();
    return loaded;
  }

  /** The key's committed record on disk (not kept in memory), undefined if none or unreadable. */
  private fromDisk(key: string): StoredRecord | undefined {
    if (this.disk === undefined || this.dropping.has(key)) return undefined;
    const bytes = this.disk.read(key);
    if (bytes === undefined) return undefined;
    this.counters.diskReads++;
    return this.recordOf(key, bytes);
  }

  /**
   * What `key` holds now, to be replaced or removed: from memory (it leaves it), else from disk
   * without coming into memory (it is about to go: its accounting and digest are all that count).
   */
  private take(key: string): StoredRecord | undefined {
    const record = this.records.get(key);
    if (record === undefined) return this.fromDisk(key);
    this.release(key, record);
    this.memoryBytes -= costOf(record);
    return record;
  }

  /**
   * Puts a new record for `key` in memory (uncommitted until its batch commits); returns what it
   * replaced, so the caller can undo its digest.
   */
  put(key: string, entry: Entry, payload: Uint8Array | undefined, disk: Uint8Array, committed = false): { previous: StoredRecord | undefined; record: StoredRecord } {
    const previous = this.take(key);
    if (previous !== undefined) this.forget(previous);
    else this.keyCount++;
    this.dropping.delete(key);
    const record = new StoredRecord(entry.generation, entry.value?.type ?? 0, payload, entry.value, entryDigest(key, disk), key.length + disk.length, committed ? 0 : -1);
    this.admit(key, record);
    this.memoryBytes += costOf(record);
    this.dataBytes += record.bytes;
    if (!committed) this.dirtyBytes += costOf(record);
    this.evict();
    return { previous, record };
  }

  /** Removes `key` (its removal from disk goes in the next batch); returns the record it had. */
  remove(key: string): StoredRecord | undefined {
    const previous = this.take(key);
    if (previous === undefined) return undefined;
    this.forget(previous);
    this.keyCount--;
    if (this.disk !== undefined) this.dropping.set(key, -1);
    return previous;
  }

  /** Takes a replaced or removed record (out of memory already: see `take`) out of the counts. */
  private forget(record: StoredRecord): void {
    this.dataBytes -= record.bytes;
    if (record.token !== 0) this.dirtyBytes -= costOf(record);
    if (record.token > 0) this.inFlightBytes -= costOf(record);
  }

  /**
   * Whether the disk is behind: batches handed to it and not yet committed hold more than half the
   * budget (the writes of the message in hand are not counted: they go in its one batch).
   */
  get full(): boolean {
    return this.disk !== undefined && this.inFlightBytes > this.budgetBytes / 2;
  }

  /** Marks the records and removals of `writes` as in batch `token`. */
  batched(token: number, writes: readonly PersistWrite[]): void {
    const keys: string[] = [];
    for (const write of writes) {
      const record = this.records.get(write.key);
      if (write.bytes !== undefined && record !== undefined && record.token === -1) {
        record.token = token;
        this.inFlightBytes += costOf(record);
      }
      else if (write.bytes === undefined && this.dropping.get(write.key) === -1) this.dropping.set(write.key, token);
      else continue;
      keys.push(write.key);
    }
    if (keys.length > 0) this.batches.set(token, keys);
  }

  /** Batch `token` committed (or failed: its keys are written again with a later batch). */
  committed(token: number, error: Error | undefined): void {
    const keys = this.batches.get(token);
    if (keys === undefined) return;
    this.batches.delete(token);
    for (const key of keys) {
      const record = this.records.get(key);
      if (record !== undefined && record.token === token) {
        this.inFlightBytes -= costOf(record);
        if (error !== undefined) {
          record.token = -1;
          this.failed.add(key);
        } else {
          this.dirtyBytes -= costOf(record);
          record.token = 0;
        }
      } else if (this.dropping.get(key) === token) {
        if (error !== undefined) {
          this.dropping.set(key, -1);
          this.failed.add(key);
        } else this.dropping.delete(key);
      }
    }
    this.evict();
  }

  /** The writes of failed batches, to be committed again (the caller batches them). */
  retries(encode: (record: StoredRecord) => Uint8Array): PersistWrite[] {
    // A failed record kept its decoded value (it was uncommitted): encode() has what it needs.
    const writes: PersistWrite[] = [];
    for (const key of this.failed) {
      const record = this.records.get(key);
      if (record !== undefined && record.token === -1) writes.push({ key, bytes: encode(record) });
      else if (this.dropping.get(key) === -1) writes.push({ key, bytes: undefined });
    }
    this.failed.clear();
    return writes;
  }

  /** For tests: the kept memory and dirty counts equal a recount, and every record has a slot of its own on the clock. */
  consistent(): boolean {
    let memory = 0;
    let dirty = 0;
    const slots = new Set<number>();
    for (const [key, record] of this.records) {
      memory += costOf(record);
      if (record.token !== 0) dirty += costOf(record);
      if (this.slots[record.slot] !== key || slots.has(record.slot)) return false;
      slots.add(record.slot);
    }
    const occupied = this.slots.filter((key) => key !== undefined).length;
    return memory === this.memoryBytes && dirty === this.dirtyBytes && occupied === this.records.size && new Set(this.freeSlots).size === this.freeSlots.length;
  }

  /**
   * The clock: every record in memory has a slot on a ring of keys; the hand walks the ring.
   * (A Map walked from its head, deleting and re-adding, cost a skip over every deleted slot at
   * the head on each eviction: tens of microseconds a miss, measured.)
   */
  private readonly slots: (string | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private hand = 0;

  private admit(key: string, record: StoredRecord): void {
    const slot = this.freeSlots.pop() ?? this.slots.length;
    this.slots[slot] = key;
    record.slot = slot;
    this.records.set(key, record);
  }

  private release(key: string, record: StoredRecord): void {
    this.records.delete(key);
    this.slots[record.slot] = undefined;
    this.freeSlots.push(record.slot);
  }

  /**
   * Until within the budget: the hand drops a committed record's decoded value (its encoding
   * stays: a write decodes it again), gives a used record a second chance (clears its bit), and
   * evicts the others. Uncommitted records stay. While memory suffices, values stay decoded: writes merge
   * into them without decoding (decoding at every write cost small PUTs a quarter of their
   * throughput, measured).
   */
  private evict(): void {
    // Each slot is passed at most three times (its bit, its decoded value, itself).
    for (let steps = this.slots.length * 3; this.memoryBytes > this.budgetBytes && steps > 0; steps--) {
      this.hand = this.hand + 1 >= this.slots.length ? 0 : this.hand + 1;
      const key = this.slots[this.hand];
      if (key === undefined) continue;
      const record = this.records.get(key)!;
      if (record.token !== 0) continue;
      if (record.decoded !== undefined && record.payload !== undefined) {
        // A decoded value only spares a write its decoding: it goes first, used or not.
        this.memoryBytes -= costOf(record);
        record.decoded = undefined;
        this.memoryBytes += costOf(record);
        continue;
      }
      if (record.used) {
        record.used = false;
        continue;
      }
      this.release(key, record);
      this.memoryBytes -= costOf(record);
      this.counters.evictions++;
    }
  }

  private recordOf(key: string, bytes: Uint8Array): StoredRecord | undefined {
    try {
      // Decoded to check it (a corrupt entry is found here, not by a client); only its encoding is
      // kept: a miss means memory is short, and most misses are reads.
      const { entry, payload } = decodeStoredEntry(bytes);
      return new StoredRecord(entry.generation, entry.value?.type ?? 0, payload, undefined, entryDigest(key, bytes), key.length + bytes.byteLength, 0);
    } catch (error) {
      if (!(error instanceof LfaasError) || error.code !== ErrorCode.LATTICE_DECODE) throw error;
      // An unreadable entry on disk: counted (metrics), served as absent; anti-entropy brings the
      // key back from its replicas.
      this.counters.diskCorrupt++;
      return undefined;
    }
  }

  /**
   * Every key once: the memory records, then the disk's committed entries not in memory, in key
   * order a chunk at a time. The caller must not change the tier while it walks.
   */
  *walk(): Generator<Walked> {
    const inMemory = [...this.records];
    for (const [key, record] of inMemory) yield { key, record };
    if (this.disk === undefined) return;
    for (const walked of this.walkDisk()) {
      if (this.records.has(walked.key) || this.dropping.has(walked.key)) continue;
      yield walked;
    }
  }

  private *walkDisk(): Generator<{ key: string; bytes: Uint8Array }> {
    let after: string | undefined;
    for (;;) {
      const chunk = this.disk!.scan(after, SCAN_CHUNK);
      for (const [key, bytes] of chunk) yield { key, bytes };
      if (chunk.length < SCAN_CHUNK) return;
      after = chunk[chunk.length - 1]![0];
    }
  }
}
