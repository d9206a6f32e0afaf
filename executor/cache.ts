/**
 * An executor's cache of lattice values, next to the functions (issue 4). Bounded
 * in bytes (lru-cache); read-through from the KVS (concurrent misses of one key share one read);
 * merge-on-write (the merged value is cached at once and merged into the KVS; a write to a key
 * not held yet is completed from the KVS at its first read, so it never reads as the whole
 * value); subscribed to the
 * KVS for every cached key, so a cached value is fresh within a gossip period of any write
 * elsewhere (pushed values are merged in, deletes evict). A key read absent is remembered as
 * absent (and subscribed, so its first value is pushed here): reading it again is a hit, not a
 * KVS request. `keys()` is what it tells the schedulers it holds.
 *
 * The KVS is injected ({@link CacheBackend}): the executor process passes the SDK's `KvsClient`.
 */
import { LRUCache } from 'lru-cache';
import { ErrorCode, LatticeType, LfaasError } from '../lattices/index.js';
import { encodeValue } from '../protocol/index.js';
import type { AnyLattice } from '../lattices/index.js';

/** Encodings of lattice values, by identity (a value never changes): see {@link encodingOf}. */
const encodings = new WeakMap<AnyLattice, Uint8Array>();

/**
 * `value.encode()`, made once per value object: the cache sizes every value it holds by its
 * encoding, and a function's read sends the same value to its runtime encoded, every time it is
 * read (a 100-entry map takes ~0.17 ms to encode). The bytes are shared: never written to.
 */
export function encodingOf(value: AnyLattice): Uint8Array {
  let encoded = encodings.get(value);
  if (encoded === undefined) {
    encoded = value.encode();
    encodings.set(value, encoded);
  }
  return encoded;
}

/** The plain value a lattice stands for: what `ctx.get` gives (the first of concurrent causal versions). */
export function plainOf(value: AnyLattice): unknown {
  const revealed = value.reveal();
  return Array.isArray(revealed) && (value.type === LatticeType.SingleKeyCausal || value.type === LatticeType.MultiKeyCausal) ? revealed[0] : revealed;
}

/** The largest plain value a read sends a runtime (the sandbox frame carries 64 MiB). */
export const PLAIN_READ_BYTES_MAX = 32 * 1024 * 1024;

/** Plain encodings of lattice values, by identity: see {@link plainEncodingOf}. */
const plainEncodings = new WeakMap<AnyLattice, Uint8Array>();

/**
 * The msgpack encoding of {@link plainOf}, made once per value object: what a function's plain
 * read (`ctx.get`, `ctx.getMany`) receives. A runtime decodes it ~4x faster than it decodes the
 * lattice and reveals it (0.11 against 0.46 ms for a 500-entry set). Shared: never written to.
 */
export function plainEncodingOf(value: AnyLattice): Uint8Array {
  let encoded = plainEncodings.get(value);
  if (encoded === undefined) {
    encoded = encodeValue(plainOf(value), { maxBytes: PLAIN_READ_BYTES_MAX });
    plainEncodings.set(value, encoded);
  }
  return encoded;
}

/** What the cache needs of the KVS (the SDK's `KvsClient` has it). */
export interface CacheBackend {
  get(key: string): Promise<AnyLattice | undefined>;
  put(key: string, value: AnyLattice, options?: { ack?: 'local' | 'durable' | 'replicated' }): Promise<void>;
  delete(key: string, options?: { ack?: 'local' | 'durable' | 'replicated' }): Promise<void>;
  subscribe(keys: readonly string[], onUpdate: (key: string, value: AnyLattice | undefined) => void, leaseMs?: number): { close(): void };
}

export interface ExecutorCacheOptions {
  /** Bytes of encoded values held, at most. */
  readonly bytesMax?: number;
  /** Subscription lease (renewed by the backend). */
  readonly leaseMs?: number;
  /**
   * A test hook: apply each pushed update this much later (default 0), so the cached values lag
   * the KVS as a far replica's would. The consistency tests use it to make stale reads possible
   * on a local cluster, where pushes otherwise land within a millisecond.
   */
  readonly pushDelayMs?: number;
}

/** Keys remembered as absent, at most. */
const ABSENT_MAX = 4096;

export class ExecutorCache {
  private readonly values: LRUCache<string, AnyLattice>;
  private readonly subscriptions = new Map<string, { close(): void }>();
  private readonly reads = new Map<string, Promise<AnyLattice | undefined>>();
  /**
   * Keys held only because this executor wrote them (a merge of a key it had not read): what is
   * held is its own writes, not the key's value. The first read completes it from the KVS. A
   * subset of the keys held (dropped with them), so bounded like them.
   */
  private readonly partial = new Set<string>();
  /**
   * Keys known to hold no value: read absent, and subscribed like the keys held, so a write
   * elsewhere is pushed here (the subscription's answer carries a value written between the read
   * and the subscription: no write is missed). A read of one is a hit. Least recently used first,
   * at most {@link ABSENT_MAX}; never a key held.
   */
  private readonly absent = new Map<string, true>();
  readonly counters = { hits: 0, misses: 0, absentHits: 0, pushes: 0, writes: 0, evictions: 0 };

  constructor(
    private readonly backend: CacheBackend,
    private readonly options: ExecutorCacheOptions = {},
  ) {
    this.values = new LRUCache<string, AnyLattice>({
      maxSize: options.bytesMax ?? 64 * 1024 * 1024,
      // The encoded size stands for the value's footprint (a lower bound of its heap size).
      sizeCalculation: (value, key) => Math.max(1, encodingOf(value).byteLength + key.length),
      dispose: (_value, key, reason) => {
        if (reason === 'set') return;
        this.partial.delete(key);
        this.counters.evictions++;
        // (lru-cache still holds the key while it disposes of it; a held key is never absent.)
        this.closeSubscription(key);
      },
    });
  }

  /** The value of `key`: from the cache, else read from the KVS (and cached, and subscribed). */
  async get(key: string): Promise<AnyLattice | undefined> {
    const cached = this.values.get(key);
    if (cached !== undefined && this.partial.has(key)) {
      // Only our own writes are held: a Counter incremented here would read 1, not its total.
      const complete = await this.refresh(key);
      this.partial.delete(key);
      return complete;
    }
    if (cached !== undefined) {
      this.counters.hits++;
      return cached;
    }
    if (this.absent.has(key)) {
      this.counters.absentHits++;
      this.absent.delete(key);
      this.absent.set(key, true);
      return undefined;
    }
    this.counters.misses++;
    let read = this.reads.get(key);
    if (read === undefined) {
      read = this.backend.get(key).finally(() => this.reads.delete(key));
      this.reads.set(key, read);
    }
    const value = await read;
    if (value !== undefined) this.hold(key, value);
    else if (!this.values.has(key)) this.markAbsent(key);
    return value;
  }

  /**
   * Merges `value` into `key`: cached at once (so this executor reads its own writes), then merged
   * into the KVS with `ack`. A cached value of another lattice type is KVS_LATTICE_MISMATCH.
   */
  async merge(key: string, value: AnyLattice, ack: 'local' | 'durable' | 'replicated' = 'local'): Promise<void> {
    const current = this.checkType(key, value);
    this.counters.writes++;
    if (current === undefined) this.partial.add(key);
    this.hold(key, current === undefined ? value : (current.merge(value) as AnyLattice));
    await this.backend.put(key, value, { ack });
  }

  /**
   * Merges `value` into the KVS first and, once the KVS has it, into the cached value; resolves
   * with the value held then. For writes that must not show here before the KVS holds them (the
   * batches of `ctx.increment`: a batch that failed must not raise what this executor reads).
   */
  async mergeAfterWrite(key: string, value: AnyLattice, ack: 'local' | 'durable' | 'replicated' = 'local'): Promise<AnyLattice> {
    this.checkType(key, value);
    this.counters.writes++;
    await this.backend.put(key, value, { ack });
    const current = this.values.get(key);
    if (current === undefined) this.partial.add(key);
    const merged = current === undefined || current.type !== value.type ? value : (current.merge(value) as AnyLattice);
    this.hold(key, merged);
    return merged;
  }

  /** Deletes `key` in the KVS and drops it here. */
  async delete(key: string, ack: 'local' | 'durable' | 'replicated' = 'local'): Promise<void> {
    this.forgetAbsent(key);
    this.values.delete(key);
    await this.backend.delete(key, { ack });
  }

  /**
   * Merges a value learnt elsewhere (another executor's cache) into the cached one, without
   * writing it to the KVS: it is already there, or on its way.
   */
  absorb(key: string, value: AnyLattice): AnyLattice {
    const current = this.values.get(key);
    const merged = current === undefined || current.type !== value.type ? value : (current.merge(value) as AnyLattice);
    this.hold(key, merged);
    return merged;
  }

  /** Reads `key` from the KVS now (bypassing the cache) and merges what it finds into the cache. */
  async refresh(key: string): Promise<AnyLattice | undefined> {
    this.counters.misses++;
    const value = await this.backend.get(key);
    return value === undefined ? this.values.get(key) : this.absorb(key, value);
  }

  /** Whether a read of `key` now is answered here (held, or known absent) without asking the KVS (tracing's cache.hit). */
  holds(key: string): boolean {
    return (this.values.has(key) && !this.partial.has(key)) || this.absent.has(key);
  }

  /** The cached value of `key`, without reading through (undefined when not held). */
  peek(key: string): AnyLattice | undefined {
    return this.values.peek(key);
  }

  /** Keys subscribed to: exactly the keys held and the keys known absent. */
  get subscriptionCount(): number {
    return this.subscriptions.size;
  }

  /** The keys held, most recently used first, at most `max` (what the schedulers are told). */
  keys(max = Infinity): string[] {
    const keys: string[] = [];
    for (const key of this.values.keys()) {
      if (keys.length >= max) break;
      keys.push(key);
    }
    return keys;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.values.calculatedSize;
  }

  close(): void {
    for (const subscription of this.subscriptions.values()) subscription.close();
    this.subscriptions.clear();
    this.absent.clear();
    this.values.clear();
  }

  /** Keys known absent (and subscribed). */
  get absentCount(): number {
    return this.absent.size;
  }

  private markAbsent(key: string): void {
    this.absent.set(key, true);
    this.subscribe(key);
    if (this.absent.size > ABSENT_MAX) {
      const oldest = this.absent.keys().next().value!;
      this.absent.delete(oldest);
      this.unsubscribe(oldest);
    }
  }

  /** `key` is held (or deleted here) now: it is no longer known absent; its subscription stays if held. */
  private forgetAbsent(key: string): void {
    this.absent.delete(key);
  }

  /** Ends `key`'s subscription unless it is held or known absent. */
  private unsubscribe(key: string): void {
    if (this.values.has(key) || this.absent.has(key)) return;
    this.closeSubscription(key);
  }

  private closeSubscription(key: string): void {
    this.subscriptions.get(key)?.close();
    this.subscriptions.delete(key);
  }

  /** The cached value of `key`; KVS_LATTICE_MISMATCH when it is of another type than `value`. */
  private checkType(key: string, value: AnyLattice): AnyLattice | undefined {
    const current = this.values.get(key);
    if (current !== undefined && current.type !== value.type) {
      throw new LfaasError(ErrorCode.KVS_LATTICE_MISMATCH, `key ${JSON.stringify(key)} holds lattice type ${current.type}, the write has type ${value.type}`);
    }
    return current;
  }

  private hold(key: string, value: AnyLattice): void {
    this.forgetAbsent(key);
    this.values.set(key, value);
    if (this.values.has(key)) this.subscribe(key);
    else this.unsubscribe(key);
  }

  private subscribe(key: string): void {
    if (this.subscriptions.has(key)) return;
    const delayMs = this.options.pushDelayMs ?? 0;
    const onUpdate = delayMs > 0 ? (updated: string, pushed: AnyLattice | undefined) => void setTimeout(() => this.onPush(updated, pushed), delayMs).unref() : (updated: string, pushed: AnyLattice | undefined) => this.onPush(updated, pushed);
    this.subscriptions.set(key, this.backend.subscribe([key], onUpdate, this.options.leaseMs ?? 10_000));
  }

  private onPush(key: string, pushed: AnyLattice | undefined): void {
    this.counters.pushes++;
    const current = this.values.get(key);
    if (pushed === undefined) {
      // Deleted in the KVS: the cached value is gone too.
      this.values.delete(key);
      return;
    }
    if (current === undefined) {
      // A key known absent got a value: held from now on (its subscription stays).
      if (this.absent.has(key)) this.hold(key, pushed);
      return;
    }
    // A value of another type (a delete and a new generation elsewhere) replaces the cached one.
    this.values.set(key, current.type === pushed.type ? (current.merge(pushed) as AnyLattice) : pushed);
  }
}
