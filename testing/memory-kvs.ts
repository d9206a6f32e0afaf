/**
 * A KVS of one replica in a map, for {@link createTestContext}: what an executor's cache reads
 * and writes through (`CacheBackend`). A write merges into the key's lattice (a key holding
 * another lattice type refuses it, KVS_LATTICE_MISMATCH, as a shard does); every value is copied
 * through its encoding both ways, so a value that does not encode fails here as on the wire, and
 * nothing the test holds is shared with what the function reads. Subscribers (the cache) get each
 * change, as the KVS pushes them.
 */
import { ErrorCode, LfaasError, decodeLattice } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import type { CacheBackend } from '../executor/index.js';

/** Keys at most (a test that needs more wants a cluster). */
const KEYS_MAX = 100_000;
/** Subscribers of one key at most. */
const SUBSCRIBERS_MAX = 64;

type Subscriber = (key: string, value: AnyLattice | undefined) => void;

export class MemoryKvs implements CacheBackend {
  private readonly values = new Map<string, Uint8Array>();
  private readonly subscribers = new Map<string, Set<Subscriber>>();

  /** A copy of the value of `key`, or undefined. */
  async get(key: string): Promise<AnyLattice | undefined> {
    return this.read(key);
  }

  /** Merges `value` into `key`. */
  async put(key: string, value: AnyLattice): Promise<void> {
    this.write(key, value);
  }

  async delete(key: string): Promise<void> {
    this.values.delete(key);
    this.notify(key);
  }

  /** The keys held, in the order they were first written. */
  keys(): string[] {
    return [...this.values.keys()];
  }

  subscribe(keys: readonly string[], onUpdate: Subscriber): { close(): void } {
    const added: string[] = [];
    for (const key of keys) {
      let set = this.subscribers.get(key);
      if (set === undefined) this.subscribers.set(key, (set = new Set()));
      if (set.size >= SUBSCRIBERS_MAX) continue;
      set.add(onUpdate);
      added.push(key);
    }
    return {
      close: () => {
        for (const key of added) this.subscribers.get(key)?.delete(onUpdate);
      },
    };
  }

  /** @internal Synchronous: the seeding of a context. */
  read(key: string): AnyLattice | undefined {
    const bytes = this.values.get(key);
    return bytes === undefined ? undefined : decodeLattice(bytes);
  }

  /** @internal Synchronous: the seeding of a context. */
  write(key: string, value: AnyLattice): void {
    if (typeof key !== 'string' || key.length === 0) throw new LfaasError(ErrorCode.KVS_BAD_KEY, 'a key is a non-empty string');
    const copy = decodeLattice(value.encode());
    const existing = this.read(key);
    if (existing !== undefined && existing.type !== copy.type) throw new LfaasError(ErrorCode.KVS_LATTICE_MISMATCH, `key ${JSON.stringify(key)} holds lattice type ${existing.type}, not ${copy.type}`);
    if (existing === undefined && this.values.size >= KEYS_MAX) throw new LfaasError(ErrorCode.KVS_BUSY, `the test KVS holds ${KEYS_MAX} keys, its most`);
    const merged = existing === undefined ? copy : (existing.merge(copy) as AnyLattice);
    this.values.set(key, merged.encode());
    this.notify(key);
  }

  private notify(key: string): void {
    const set = this.subscribers.get(key);
    if (set === undefined || set.size === 0) return;
    const value = this.read(key);
    // After the write returns, as a push arrives after the write's acknowledgement.
    queueMicrotask(() => {
      for (const subscriber of set) subscriber(key, value);
    });
  }
}
