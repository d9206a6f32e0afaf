/**
 * Which function usually follows which: when a plain call of `f` is dispatched, the scheduler
 * prepares the likely next function on the executor it would place it on, while `f` runs. The
 * scheduler learns it, not an executor: it sees every caller's calls, wherever they are placed
 * (an executor sees only its share of them). Pure and bounded (the scheduler feeds it virtual time).
 *
 * Two sources:
 * - DAGs: every edge `f -> g` of a DAG called through this scheduler is a certain successor.
 * - Observed chains: plain calls from one caller (the address a sync call answers to). A call of
 *   `g` from the caller whose previous call was of `f`, within `windowMs` of it, counts once for
 *   `f -> g`; every call of `f` counts once for `f`. `g` follows `f` when it came after at least
 *   `minCount` of them and after at least `minShare` of the calls of `f`.
 * Counts decay: each is halved every `halfLifeCalls` calls of its function, so a chain that stops
 * is forgotten and the tables stay small. Functions are ids (`name@version`).
 */
export interface CallChainOptions {
  /** Longest time from a call to the next call of the same caller that counts as a chain (1 s). */
  readonly windowMs?: number;
  /** Chains observed at least this many times (3). */
  readonly minCount?: number;
  /** And after at least this share of the calls of the first function (0.5). */
  readonly minShare?: number;
  /** Callers remembered (4,096), functions with successors (1,024), successors per function (8). */
  readonly callersMax?: number;
  readonly functionsMax?: number;
  readonly successorsMax?: number;
  /** Calls of a function after which its counts are halved (64). */
  readonly halfLifeCalls?: number;
  /** A function is prepared for a chain at most once per this long (2 s), and this many are remembered (4,096). */
  readonly prepareEveryMs?: number;
  readonly preparedMax?: number;
}

interface Followers {
  /** Calls of the function observed since the last halving (decayed). */
  calls: number;
  sinceHalving: number;
  /** Successor id -> times it followed (decayed). */
  readonly next: Map<string, number>;
  /** Successors named by DAG edges: always warmed. */
  readonly dag: Set<string>;
}

export class CallChains {
  private readonly last = new Map<string, { readonly fn: string; readonly atMs: number }>();
  private readonly followers = new Map<string, Followers>();
  /** Function id -> when it was last prepared for a chain, least recent first. */
  private readonly prepared = new Map<string, number>();
  private readonly options: Required<CallChainOptions>;

  constructor(options: CallChainOptions = {}) {
    this.options = { windowMs: 1000, minCount: 3, minShare: 0.5, callersMax: 4096, functionsMax: 1024, successorsMax: 8, halfLifeCalls: 64, prepareEveryMs: 2000, preparedMax: 4096, ...options };
  }

  /**
   * A plain call of `fn` by `caller` at `nowMs`: observed, and its likely successors to prepare
   * now returned with where. `where(id)` is the executor placement would choose for `id`, or
   * undefined when there is none or that one is warm for it already. A function is returned at
   * most once per `prepareEveryMs`; an id that is not `name@version` never.
   */
  prepareAfter(caller: string, fn: string, nowMs: number, where: (id: string) => string | undefined): { readonly address: string; readonly name: string; readonly version: number }[] {
    this.observe(caller, fn, nowMs);
    const out: { address: string; name: string; version: number }[] = [];
    for (const id of this.next(fn)) {
      const at = id.lastIndexOf('@');
      const version = Number(id.slice(at + 1));
      if (at <= 0 || !Number.isSafeInteger(version)) continue;
      if (nowMs - (this.prepared.get(id) ?? -Infinity) < this.options.prepareEveryMs) continue;
      const address = where(id);
      if (address === undefined) continue;
      this.prepared.delete(id);
      this.prepared.set(id, nowMs);
      if (this.prepared.size > this.options.preparedMax) this.prepared.delete(this.prepared.keys().next().value!);
      out.push({ address, name: id.slice(0, at), version });
    }
    return out;
  }

  /** A DAG's edge: `to` runs after `from`. */
  learnEdge(from: string, to: string): void {
    const entry = this.entry(from);
    if (entry.dag.has(to) || entry.dag.size >= this.options.successorsMax) return;
    entry.dag.add(to);
  }

  /** A plain call of `fn` by `caller` at `nowMs`. */
  observe(caller: string, fn: string, nowMs: number): void {
    const entry = this.entry(fn);
    entry.calls++;
    if (++entry.sinceHalving >= this.options.halfLifeCalls) this.halve(entry);
    if (caller.length === 0) return;
    const previous = this.last.get(caller);
    if (previous !== undefined && previous.fn !== fn && nowMs - previous.atMs <= this.options.windowMs) {
      const from = this.entry(previous.fn);
      if (from.next.has(fn) || from.next.size < this.options.successorsMax) from.next.set(fn, (from.next.get(fn) ?? 0) + 1);
      else {
        // Full: the weakest successor makes room when the new one would outweigh it.
        let weakest: string | undefined;
        for (const [id, count] of from.next) if (weakest === undefined || count < from.next.get(weakest)!) weakest = id;
        if (weakest !== undefined && from.next.get(weakest)! < 1) {
          from.next.delete(weakest);
          from.next.set(fn, 1);
        }
      }
    }
    this.last.delete(caller);
    this.last.set(caller, { fn, atMs: nowMs });
    if (this.last.size > this.options.callersMax) this.last.delete(this.last.keys().next().value!);
  }

  /** The functions likely to be called after `fn`: its DAG successors, and the chains observed often enough. */
  next(fn: string): string[] {
    const entry = this.followers.get(fn);
    if (entry === undefined) return [];
    const out = [...entry.dag];
    for (const [id, count] of entry.next) {
      if (entry.dag.has(id)) continue;
      if (count >= this.options.minCount && count >= this.options.minShare * entry.calls) out.push(id);
    }
    return out;
  }

  private entry(fn: string): Followers {
    let entry = this.followers.get(fn);
    if (entry === undefined) {
      if (this.followers.size >= this.options.functionsMax) this.followers.delete(this.followers.keys().next().value!);
      entry = { calls: 0, sinceHalving: 0, next: new Map(), dag: new Set() };
      this.followers.set(fn, entry);
    } else {
      // Most recently used last: the eviction above drops the least recently used.
      this.followers.delete(fn);
      this.followers.set(fn, entry);
    }
    return entry;
  }

  private halve(entry: Followers): void {
    entry.sinceHalving = 0;
    entry.calls /= 2;
    for (const [id, count] of entry.next) {
      if (count / 2 < 0.25) entry.next.delete(id);
      else entry.next.set(id, count / 2);
    }
  }
}
