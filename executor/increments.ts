/**
 * `ctx.increment(key, amount)`: adds to the `Counter` lattice at `key` as one writer per executor,
 * with the increments of concurrent calls combined into one KVS write.
 *
 * A Counter keeps one count per writer and merges by maximum, so a writer must only ever raise
 * its own count, and its state grows by one entry per writer. Writing as the call (one writer per
 * call id) is correct but grows the counter by an entry per call, so every later read and merge
 * costs more. Here the executor is the writer: per key it keeps the totals it has written, adds
 * each call's amount to them, and merges `{ writer: total }` into the KVS. While one write of a
 * key is in flight, the calls that arrive wait and go together in the next one (a group commit):
 * a hot counter costs one KVS write per round trip, not per call, and each call is answered only
 * once its increment is in the KVS (at the cache's ack level).
 *
 * The writer is `<executor>#<random>`, new for every key state, so a restarted executor (or a key
 * state dropped when idle and made again) never reuses a count it may have lost track of.
 *
 * Failures. A key that holds another lattice type is refused before anything is added (the key is
 * read through the cache first). A write that fails (a timeout, a crashed storage node) fails the
 * calls of its batch with that error, but their amounts stay in the totals: the write may have
 * landed, and a lower total sent later would be absorbed by it (max), losing the later calls'
 * increments. So an increment whose call failed that way may still be counted (by the next write
 * of the key), as with any write whose answer was lost.
 *
 * Retries. A call retried on this executor (an async call re-run after a crash elsewhere) makes the
 * same increments in the same order; each is named by its invocation and its position among that
 * invocation's increments, and a name seen before is not added twice. A retry on another executor
 * is counted again: exactly-once across executors would need the names in the KVS.
 */
import { randomBytes } from 'node:crypto';
import { Counter, ErrorCode, LfaasError } from '../lattices/index.js';
import type { ExecutorCache } from './cache.js';

/** The largest amount one increment may add or take away. */
export const INCREMENT_AMOUNT_MAX = 2 ** 32;
/** Key states kept (idle ones beyond this are dropped, oldest first). */
const KEYS_MAX = 10_000;
/** Increment names remembered for retries. */
const NAMES_MAX = 100_000;

interface Waiter {
  readonly resolve: (value: number) => void;
  readonly reject: (error: unknown) => void;
}

interface KeyState {
  readonly writer: string;
  /** What this writer has added and taken away, in writes sent or being sent. */
  up: number;
  down: number;
  /** Not yet sent. */
  pendingUp: number;
  pendingDown: number;
  waiting: Waiter[];
  flushing: boolean;
}

export class CounterIncrements {
  private readonly keys = new Map<string, KeyState>();
  private readonly names = new Set<string>();
  readonly counters = { increments: 0, writes: 0, retriesSkipped: 0, failures: 0 };

  constructor(
    private readonly cache: ExecutorCache,
    /** This executor's name, the start of its writer ids. */
    private readonly self: string,
  ) {}

  /**
   * Adds `amount` (a safe integer, negative to take away) to the Counter at `key`; resolves with
   * the counter's value as this executor holds it once the increment is in the KVS. `name`
   * identifies the increment for retries (see the file comment).
   */
  async add(key: string, amount: number, name?: string): Promise<number> {
    if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || Math.abs(amount) > INCREMENT_AMOUNT_MAX) {
      throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `increment takes an integer amount from -${INCREMENT_AMOUNT_MAX} to ${INCREMENT_AMOUNT_MAX}`);
    }
    const current = await this.cache.get(key);
    if (current !== undefined && !(current instanceof Counter)) {
      throw new LfaasError(ErrorCode.KVS_LATTICE_MISMATCH, `key ${JSON.stringify(key)} holds lattice type ${current.type}; increment needs a Counter (or no value yet)`);
    }
    if (name !== undefined) {
      if (this.names.has(name)) {
        this.counters.retriesSkipped++;
        return this.valueOf(key);
      }
      this.remember(name);
    }
    if (amount === 0) return this.valueOf(key);
    const state = this.stateOf(key);
    if (amount > 0) state.pendingUp += amount;
    else state.pendingDown -= amount;
    this.counters.increments++;
    const answer = new Promise<number>((resolve, reject) => state.waiting.push({ resolve, reject }));
    if (!state.flushing) void this.flush(key, state);
    return answer;
  }

  /** Sends the key's pending amounts, one write at a time, until none are left. */
  private async flush(key: string, state: KeyState): Promise<void> {
    state.flushing = true;
    try {
      while (state.waiting.length > 0) {
        const batch = state.waiting;
        state.waiting = [];
        // Added to the totals before the write and never taken back (see the file comment).
        state.up += state.pendingUp;
        state.down += state.pendingDown;
        state.pendingUp = 0;
        state.pendingDown = 0;
        this.counters.writes++;
        try {
          // Refused past 2^53 - 1 (the Counter's own limit): the batch fails, the next may fit.
          let value = Counter.ZERO;
          if (state.up > 0) value = value.increment(state.writer, state.up);
          if (state.down > 0) value = value.decrement(state.writer, state.down);
          const held = await this.cache.mergeAfterWrite(key, value);
          const revealed = held instanceof Counter ? held.reveal() : value.reveal();
          for (const waiter of batch) waiter.resolve(revealed);
        } catch (error) {
          this.counters.failures++;
          for (const waiter of batch) waiter.reject(error);
        }
      }
    } finally {
      state.flushing = false;
    }
  }

  /** The counter's value as held here (0 for no value). */
  private async valueOf(key: string): Promise<number> {
    const value = await this.cache.get(key);
    return value instanceof Counter ? value.reveal() : 0;
  }

  private stateOf(key: string): KeyState {
    let state = this.keys.get(key);
    if (state !== undefined) {
      // Most recently used last.
      this.keys.delete(key);
      this.keys.set(key, state);
      return state;
    }
    if (this.keys.size >= KEYS_MAX) {
      for (const [oldKey, old] of this.keys) {
        if (this.keys.size < KEYS_MAX) break;
        if (!old.flushing && old.waiting.length === 0) this.keys.delete(oldKey);
      }
    }
    state = { writer: `${this.self}#${randomBytes(6).toString('hex')}`, up: 0, down: 0, pendingUp: 0, pendingDown: 0, waiting: [], flushing: false };
    this.keys.set(key, state);
    return state;
  }

  private remember(name: string): void {
    if (this.names.size >= NAMES_MAX) this.names.delete(this.names.values().next().value!);
    this.names.add(name);
  }
}
