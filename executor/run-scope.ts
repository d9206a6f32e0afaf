/**
 * What one run (a function call or a DAG run) sees of the KVS on one executor, in its consistency
 * mode. Every `ctx` read and write of the run's functions here goes through it.
 *
 * - `lww`: reads see the cache's current merged value; plain writes are LWW registers.
 * - `repeatable-read`: the first read of a key in the run pins the version read; every later
 *   read in the run returns it. One executor of the run, its holder (the lowest address it is
 *   placed on), pins the first reads of all its functions: a function elsewhere asks the holder,
 *   which pins the key (read from the KVS without caching it) unless the run has already, so two
 *   sibling functions on different executors that both read a key first read one version.
 *   Downstream executors learn from the trigger's cut which executor pinned each key and ask that
 *   executor's cache for the pinned version. A run's own write replaces its pin (it reads its
 *   writes), held where it was written.
 * - `causal`: values are `MultiKeyCausal`. The run carries a causal cut: for each key read or
 *   written, the least vector clock it may read, plus the dependencies of every version it read.
 *   A read whose cached version is older than the cut asks the upstream cache that had it, then
 *   the KVS, until it catches up (bounded by `causalWaitMs`); a write's version dominates what
 *   the run read of the key and depends on everything else in the cut.
 *
 * LWW values read are observed by the executor's hybrid clock, so a write that follows a read
 * (a read-modify-write) is later than what it read, even when that came from a faster clock.
 */
import { ErrorCode, HybridClock, LatticeType, LfaasError, Lww, MultiKeyCausal, SingleKeyCausal, VectorClock } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import type { PbTypes } from '../protocol/index.js';
import type { ExecutorCache } from './cache.js';

export type ConsistencyMode = 'lww' | 'repeatable-read' | 'causal';

export interface ScopeEnvironment {
  readonly cache: ExecutorCache;
  readonly clock: HybridClock;
  /** This executor's address: the holder named in the cuts it makes. */
  readonly self: string;
  /** The vector clock entry of this executor's causal writes. */
  readonly writerId: string;
  /**
   * Asks executor `holder` for the version of `key` its cache holds for run `runId`; `first`: the
   * run's first read of the key, asked of the run's holder, which pins it then if the run has not.
   */
  fetchPinned(holder: string, runId: string, key: string, first?: boolean): Promise<AnyLattice | undefined>;
  /** Reads `key` from the KVS without caching it (a holder's pin for another executor). */
  readUncached(key: string): Promise<AnyLattice | undefined>;
  /** How long a causal read waits for its dependencies to reach this cache. */
  readonly causalWaitMs: number;
}

interface CutValue {
  clock: VectorClock | undefined;
  holder: string;
}

function causalClock(value: AnyLattice | undefined): VectorClock | undefined {
  return value instanceof MultiKeyCausal || value instanceof SingleKeyCausal ? value.clock : undefined;
}

/** Whether `value` is at least as new as the cut's clock for its key. */
function satisfies(value: AnyLattice | undefined, need: VectorClock | undefined): boolean {
  if (need === undefined || need.entries.size === 0) return true;
  const clock = causalClock(value);
  return clock !== undefined && need.leq(clock);
}

/** Per executor (its environment), the last count its causal writes gave its own clock entry. */
const issuedCounts = new WeakMap<ScopeEnvironment, number>();

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class RunScope {
  /** Repeatable read: key -> the version pinned (null: it did not exist). */
  private readonly pins = new Map<string, AnyLattice | null>();
  private readonly reading = new Map<string, Promise<AnyLattice | undefined>>();
  private readonly cut = new Map<string, CutValue>();
  /** Repeatable read: the executor that pins the run's first reads (this one when unset). */
  private holder: string | undefined;
  readonly counters = { remoteReads: 0, causalWaits: 0 };

  constructor(
    private readonly env: ScopeEnvironment,
    readonly runId: string,
    readonly mode: ConsistencyMode,
  ) {}

  /** Repeatable read: the run's first reads are pinned at `holder` (see the file comment). */
  holdFirstReadsAt(holder: string): void {
    this.holder = holder;
  }

  /**
   * Repeatable read, at the run's holder: the version of `key` the run has pinned, pinned now if
   * it has none (read from the cache if it holds the key, else from the KVS without caching it).
   */
  pinFirst(key: string): Promise<AnyLattice | undefined> {
    return this.pinOnce(key, async () => this.env.cache.peek(key) ?? (await this.env.readUncached(key)));
  }

  /** Merges a cut that arrived with a trigger. */
  absorb(entries: readonly PbTypes.ICutEntry[]): void {
    for (const entry of entries) {
      const key = entry.key ?? '';
      if (key.length === 0) continue;
      const clock = entry.clock?.entries === undefined || entry.clock.entries === null ? undefined : VectorClock.of(Object.fromEntries(Object.entries(entry.clock.entries).map(([node, count]) => [node, Number(count)])));
      this.extendCut(key, clock, entry.holder ?? '');
    }
  }

  /** The cut to hand to the successors. */
  cutOut(): PbTypes.ICutEntry[] {
    if (this.mode === 'lww') return [];
    const entries: PbTypes.ICutEntry[] = [];
    for (const [key, value] of this.cut) {
      entries.push({ key, holder: value.holder, ...(value.clock === undefined ? {} : { clock: { entries: value.clock.reveal() } }) });
    }
    return entries;
  }

  async get(key: string): Promise<AnyLattice | undefined> {
    switch (this.mode) {
      case 'lww':
        return this.observed(await this.env.cache.get(key));
      case 'repeatable-read':
        return this.observed(await this.readPinned(key));
      case 'causal':
        return this.readCausal(key);
    }
  }

  /** A plain value: an LWW register, or a causal version in `causal` mode. */
  async put(key: string, value: unknown): Promise<void> {
    if (this.mode !== 'causal') {
      await this.merge(key, Lww.write(this.env.clock, value));
      return;
    }
    const current = await this.readCausal(key);
    if (current !== undefined && !(current instanceof MultiKeyCausal)) {
      throw new LfaasError(ErrorCode.KVS_LATTICE_MISMATCH, `key ${JSON.stringify(key)} holds lattice type ${current.type}; a causal write needs MultiKeyCausal`);
    }
    let base = causalClock(current) ?? VectorClock.EMPTY;
    const need = this.cut.get(key)?.clock;
    if (need !== undefined) base = base.merge(need);
    // A count this executor has not used yet: two runs here that read the same version must not
    // write two different values under one clock (a reader depending on one would take the other).
    const count = Math.max(base.get(this.env.writerId), issuedCounts.get(this.env) ?? 0) + 1;
    issuedCounts.set(this.env, count);
    const clock = VectorClock.of({ ...base.reveal(), [this.env.writerId]: count });
    const deps: Record<string, VectorClock> = {};
    for (const [other, entry] of this.cut) if (other !== key && entry.clock !== undefined && entry.clock.entries.size > 0) deps[other] = entry.clock;
    await this.env.cache.merge(key, MultiKeyCausal.write(clock, value, deps));
    this.cut.set(key, { clock, holder: this.env.self });
  }

  async merge(key: string, value: AnyLattice): Promise<void> {
    await this.env.cache.merge(key, value);
    if (this.mode === 'repeatable-read') this.pinHere(key, this.env.cache.peek(key) ?? value);
    if (this.mode === 'causal') this.extendCut(key, causalClock(value), this.env.self);
  }

  async delete(key: string): Promise<void> {
    await this.env.cache.delete(key);
    if (this.mode === 'repeatable-read') this.pinHere(key, null);
  }

  /** A run's own write is its new pin, and downstream executors read it from here. */
  private pinHere(key: string, value: AnyLattice | null): void {
    this.pins.set(key, value);
    this.cut.set(key, { clock: undefined, holder: this.env.self });
  }

  /** The version of `key` this executor holds for the run (what a downstream executor asks for). */
  pinned(key: string): AnyLattice | undefined {
    if (this.mode === 'repeatable-read') {
      const pin = this.pins.get(key);
      if (pin === undefined) throw new LfaasError(ErrorCode.GONE, `run ${this.runId} has no pinned version of ${JSON.stringify(key)}`);
      return pin ?? undefined;
    }
    // Causal: the cache only moves up, so what it holds now is at least what the run read.
    return this.env.cache.peek(key);
  }

  private observed(value: AnyLattice | undefined): AnyLattice | undefined {
    if (value instanceof Lww) this.env.clock.observe({ wallMs: value.wallMs, logical: value.logical });
    return value;
  }

  private readPinned(key: string): Promise<AnyLattice | undefined> {
    const pinnedAt = this.cut.get(key)?.holder ?? '';
    // Pinned upstream: ask that executor. Not yet: ask the run's holder to pin it (or pin it here).
    const first = pinnedAt.length === 0;
    const holder = first ? (this.holder ?? this.env.self) : pinnedAt;
    return this.pinOnce(key, async () => {
      if (holder === this.env.self) return this.env.cache.get(key);
      this.counters.remoteReads++;
      const value = await this.env.fetchPinned(holder, this.runId, key, first);
      if (first && !this.cut.has(key)) this.cut.set(key, { clock: undefined, holder });
      return value;
    });
  }

  /** The run's pin of `key`, made by `read` if it has none (one read at a time per key). */
  private pinOnce(key: string, read: () => Promise<AnyLattice | undefined>): Promise<AnyLattice | undefined> {
    const pin = this.pins.get(key);
    if (pin !== undefined) return Promise.resolve(pin ?? undefined);
    let reading = this.reading.get(key);
    if (reading === undefined) {
      reading = (async () => {
        const value = await read();
        if (!this.pins.has(key)) this.pins.set(key, value ?? null);
        if (!this.cut.has(key)) this.cut.set(key, { clock: undefined, holder: this.env.self });
        return this.pins.get(key) ?? undefined;
      })().finally(() => this.reading.delete(key));
      this.reading.set(key, reading);
    }
    return reading;
  }

  private async readCausal(key: string): Promise<AnyLattice | undefined> {
    const entry = this.cut.get(key);
    const need = entry?.clock;
    let value = await this.env.cache.get(key);
    if (!satisfies(value, need)) {
      this.counters.causalWaits++;
      const holder = entry?.holder ?? '';
      if (holder.length > 0 && holder !== this.env.self) {
        this.counters.remoteReads++;
        try {
          const upstream = await this.env.fetchPinned(holder, this.runId, key);
          if (upstream !== undefined) value = this.env.cache.absorb(key, upstream);
        } catch {
          // The upstream cache is gone: the KVS has the version or will have it soon.
        }
      }
      const deadline = Date.now() + this.env.causalWaitMs;
      for (let attempt = 0; !satisfies(value, need) && Date.now() < deadline && attempt < 1000; attempt++) {
        await sleep(Math.min(50, 1 + attempt * 2));
        value = await this.env.cache.refresh(key);
      }
      if (!satisfies(value, need)) {
        throw new LfaasError(ErrorCode.TRANSPORT_TIMEOUT, `causal read of ${JSON.stringify(key)}: the version the run depends on did not arrive within ${this.env.causalWaitMs} ms`);
      }
    }
    if (value !== undefined && value.type !== LatticeType.MultiKeyCausal && value.type !== LatticeType.SingleKeyCausal) return this.observed(value);
    const clock = causalClock(value);
    this.extendCut(key, clock, this.env.self);
    if (value instanceof MultiKeyCausal) {
      // Everything the version depends on is now a lower bound of the run's reads.
      for (const version of value.versions) for (const [dependency, depClock] of version.deps) this.extendCut(dependency, depClock, '');
    }
    return value;
  }

  private extendCut(key: string, clock: VectorClock | undefined, holder: string): void {
    const current = this.cut.get(key);
    if (current === undefined) {
      this.cut.set(key, { clock, holder });
      return;
    }
    if (clock !== undefined) current.clock = current.clock === undefined ? clock : current.clock.merge(clock);
    // The newest holder has at least what the older one had.
    if (holder.length > 0) current.holder = holder;
  }
}
