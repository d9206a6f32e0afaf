/**
 * The disk tier of a shard: every merged entry is written here, and a restarted shard reloads
 * everything from it. Two implementations pass one conformance suite (`store.conformance.test.ts`):
 * {@link LmdbStore} (one lmdb environment per shard, what ships) and {@link MemoryStore} (the
 * simulator's disk, which survives a simulated crash but loses an uncommitted batch).
 */
import { mkdirSync } from 'node:fs';
import { open } from 'lmdb';
import type { RootDatabase } from 'lmdb';
import { ErrorCode, LfaasError } from '../lattices/index.js';

import type { MachineStore, PersistWrite } from '../protocol/index.js';
import type { DiskReader } from './shard-tier.js';

/** One write: new bytes for a key, or `undefined` to remove it. */
export type StoreWrite = PersistWrite;

export interface ShardStore extends MachineStore, DiskReader {
  /** Every stored key and its bytes (tests, the simulator's restarts). */
  load(): Map<string, Uint8Array>;
  /**
   * Applies `writes` in order, atomically (with the other batches of the same tick); calls `done`
   * once they are committed (a process crash keeps them) and, with `sync`, synced to disk with
   * every earlier commit (a machine crash keeps them too), or with a typed error.
   */
  commit(writes: readonly StoreWrite[], sync: boolean, done: (error?: Error) => void): void;
  /** A small side record (the last ring the node knew), kept apart from the keys. */
  readMeta(name: string): Uint8Array | undefined;
  writeMeta(name: string, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** The simulator's disk order (any total order: its scans need only be consistent with it). */
function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * An in-memory store. `commit` takes effect after `commitDelayMs` on the given timer function
 * (the simulator passes its virtual clock), so a crash before then loses the batch, as a real
 * crash before fsync would.
 */
export class MemoryStore implements ShardStore {
  private readonly data = new Map<string, Uint8Array>();
  private readonly meta = new Map<string, Uint8Array>();
  private closed = false;

  constructor(
    private readonly setTimer: (delayMs: number, callback: () => void) => void = (delayMs, callback) => void setTimeout(callback, delayMs),
    private readonly commitDelayMs = 0,
  ) {}

  load(): Map<string, Uint8Array> {
    return new Map(this.data);
  }

  read(key: string): Uint8Array | undefined {
    return this.closed ? undefined : this.data.get(key);
  }

  /** Sorted keys, kept until the next commit changes them (the simulator walks often). */
  private sorted: string[] | undefined;

  scan(after: string | undefined, limit: number): (readonly [string, Uint8Array])[] {
    if (this.sorted === undefined) this.sorted = [...this.data.keys()].sort(compareKeys);
    let start = 0;
    if (after !== undefined) {
      // The first key after `after` (binary search).
      let high = this.sorted.length;
      while (start < high) {
        const middle = (start + high) >>> 1;
        if (compareKeys(this.sorted[middle]!, after) <= 0) start = middle + 1;
        else high = middle;
      }
    }
    return this.sorted.slice(start, start + limit).map((key) => [key, this.data.get(key)!] as const);
  }

  commit(writes: readonly StoreWrite[], _sync: boolean, done: (error?: Error) => void): void {
    const batch = [...writes];
    this.setTimer(this.commitDelayMs, () => {
      if (this.closed) {
        done(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the store is closed'));
        return;
      }
      for (const write of batch) {
        if (write.bytes === undefined) this.data.delete(write.key);
        else this.data.set(write.key, write.bytes);
      }
      this.sorted = undefined;
      done();
    });
  }

  readMeta(name: string): Uint8Array | undefined {
    return this.meta.get(name);
  }

  async writeMeta(name: string, bytes: Uint8Array): Promise<void> {
    this.meta.set(name, bytes);
  }

  /** A crash: pending commits are lost; the committed data stays (the "disk"). Reopen with `reopen`. */
  async close(): Promise<void> {
    this.closed = true;
  }

  /** The same disk, usable again (a restart). */
  reopen(): MemoryStore {
    const store = new MemoryStore(this.setTimer, this.commitDelayMs);
    for (const [key, bytes] of this.data) store.data.set(key, bytes);
    for (const [name, bytes] of this.meta) store.meta.set(name, bytes);
    return store;
  }

  get size(): number {
    return this.data.size;
  }
}

/**
 * A shard's lmdb environment in `path` (created if missing). Writes issued in one tick are
 * committed in one transaction by lmdb; `commit` resolves when lmdb reports the transaction
 * flushed to disk (with `overlappingSync` the flush of one transaction overlaps the next).
 */
/** How long a write-behind batch (nobody waits for it) may wait for company, and how big it may grow. */
const WRITE_BEHIND_MS = 5;
const WRITE_BEHIND_WRITES_MAX = 4096;

/** The longest key lmdb stores (its default page size). */
export const LMDB_KEY_BYTES_MAX = 1978;

export class LmdbStore implements ShardStore {
  private readonly root: RootDatabase<Uint8Array, string>;
  /** Named databases: the root database would also list the names of the named ones. */
  private readonly db;
  private readonly metaDb;

  constructor(readonly path: string) {
    mkdirSync(path, { recursive: true });
    try {
      // Commits are not synced one by one: `commit(..., sync: true)` syncs the environment,
      // grouping every waiter of a sync in flight into the next one.
      this.root = open<Uint8Array, string>({ path, encoding: 'binary', compression: false, noSync: true, maxDbs: 4 });
    } catch (error) {
      throw new LfaasError(ErrorCode.INTERNAL, `cannot open the lmdb store in ${path}`, { cause: error });
    }
    this.db = this.root.openDB<Uint8Array, string>({ name: 'keys', encoding: 'binary' });
    this.metaDb = this.root.openDB<Uint8Array, string>({ name: 'meta', encoding: 'binary' });
  }

  load(): Map<string, Uint8Array> {
    const entries = new Map<string, Uint8Array>();
    for (const { key, value } of this.db.getRange()) entries.set(key, Uint8Array.from(value));
    return entries;
  }

  // Reads copy the bytes: lmdb may hand out a buffer it reuses, and a value's payload is kept as
  // a view of these bytes.
  read(key: string): Uint8Array | undefined {
    const bytes = this.db.get(key);
    return bytes === undefined ? undefined : new Uint8Array(bytes);
  }

  scan(after: string | undefined, limit: number): (readonly [string, Uint8Array])[] {
    const out: (readonly [string, Uint8Array])[] = [];
    for (const { key, value } of this.db.getRange(after === undefined ? { limit } : { start: after, limit: limit + 1 })) {
      if (key === after) continue;
      if (out.length >= limit) break;
      out.push([key, Uint8Array.from(value)]);
    }
    return out;
  }

  commit(writes: readonly StoreWrite[], sync: boolean, done: (error?: Error) => void): void {
    // lmdb refuses keys above 1978 bytes; refuse the batch before writing any of it.
    const tooLong = writes.find((write) => Buffer.byteLength(write.key) > LMDB_KEY_BYTES_MAX);
    if (tooLong !== undefined) {
      queueMicrotask(() => done(new LfaasError(ErrorCode.KVS_BAD_KEY, `key of ${Buffer.byteLength(tooLong.key)} bytes; lmdb stores at most ${LMDB_KEY_BYTES_MAX}`)));
      return;
    }
    // Every batch handed over in this turn of the event loop goes into one transaction (one
    // commit): a transaction per request would cost more than the request itself.
    if (this.pending === undefined) this.pending = { writes: [], committed: [], synced: [] };
    for (const write of writes) this.pending.writes.push(write);
    (sync ? this.pending.synced : this.pending.committed).push(done);
    // A batch someone waits on goes at the end of this turn; write-behind batches wait up to
    // `writeBehindMs` to share a transaction with later ones (bounded by `writeBehindWritesMax`).
    const urgent = sync || this.pending.writes.length >= WRITE_BEHIND_WRITES_MAX;
    if (urgent && this.pendingTimer !== 'immediate') {
      if (this.pendingTimer !== undefined) clearTimeout(this.pendingTimer);
      this.pendingTimer = 'immediate';
      setImmediate(() => this.commitPending());
    } else if (this.pendingTimer === undefined) {
      this.pendingTimer = setTimeout(() => this.commitPending(), WRITE_BEHIND_MS);
    }
  }

  private pendingTimer: NodeJS.Timeout | 'immediate' | undefined;

  private pending: { writes: StoreWrite[]; committed: ((error?: Error) => void)[]; synced: ((error?: Error) => void)[] } | undefined;
  /** Waiters for the next sync, gathered while one is running (group commit). */
  private syncWaiters: ((error?: Error) => void)[] = [];
  private syncing = false;

  private commitPending(): void {
    const batch = this.pending;
    this.pending = undefined;
    if (this.pendingTimer !== undefined && this.pendingTimer !== 'immediate') clearTimeout(this.pendingTimer);
    this.pendingTimer = undefined;
    if (batch === undefined) return;
    // lmdb puts every write issued in one turn into one transaction (off the main thread): the
    // writes are committed whole or not at all, in the order given. Keys were checked above, so
    // no write of the batch can be refused half-way.
    let last: Promise<boolean> = Promise.resolve(true);
    for (const write of batch.writes) last = write.bytes === undefined ? this.db.remove(write.key) : this.db.put(write.key, write.bytes);
    last.then(
      () => {
        for (const done of batch.committed) done();
        if (batch.synced.length > 0) this.sync(batch.synced);
      },
      (error: unknown) => {
        const typed = new LfaasError(ErrorCode.INTERNAL, `lmdb commit failed in ${this.path}`, { cause: error });
        for (const done of [...batch.committed, ...batch.synced]) done(typed);
      },
    );
  }

  /** Syncs the environment for `waiters`; while a sync runs, later waiters share the next one. */
  private sync(waiters: ((error?: Error) => void)[]): void {
    this.syncWaiters.push(...waiters);
    if (this.syncing) return;
    const now = this.syncWaiters;
    this.syncWaiters = [];
    this.syncing = true;
    // lmdb-js has `sync(callback)` (mdb_env_sync, forced) on every store, but not in its typings.
    (this.root as unknown as { sync(callback: (error?: unknown) => void): void }).sync((error?: unknown) => {
      this.syncing = false;
      const typed = error ? new LfaasError(ErrorCode.INTERNAL, `lmdb sync failed in ${this.path}`, { cause: error }) : undefined;
      for (const done of now) done(typed);
      if (this.syncWaiters.length > 0) this.sync([]);
    });
  }

  readMeta(name: string): Uint8Array | undefined {
    const bytes = this.metaDb.get(name);
    return bytes === undefined ? undefined : Uint8Array.from(bytes);
  }

  async writeMeta(name: string, bytes: Uint8Array): Promise<void> {
    await this.metaDb.put(name, bytes);
    await new Promise<void>((resolve, reject) => this.sync([(error) => (error ? reject(error) : resolve())]));
  }

  /** Commits and syncs what is pending, then closes the environment. */
  async close(): Promise<void> {
    if (this.pending !== undefined) this.commitPending();
    await this.root.committed;
    await new Promise<void>((resolve) => this.sync([() => resolve()]));
    await this.root.close();
  }
}
