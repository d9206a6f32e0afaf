/**
 * The availability check of the elasticity simulation: a client machine that keeps reading every
 * key a writer had acknowledged REPLICATED (from then on a majority of its replicas hold it
 * durably, so one failure must not make it unreadable), and measures, per key, the longest
 * stretch it stayed unreadable.
 *
 * What "readable" means here is that the cluster can answer: a read asks every replica of the key
 * (per the reader's ring, which may change while it reads) at once, and again every `roundMs`
 * until one of them answers with a value; any answer to any round counts. So a lost message or
 * a replica that is down or slow does not count against the key while another replica answers,
 * and the measure is the cluster's, not one client's retry policy. A read that gets its value
 * within its first round leaves the key readable; otherwise the key was unreadable from the
 * read's start to its answer (or to the end of the run, `finish`). A read gives up after
 * `roundsMax` rounds (the key stays unreadable until a later read gets it).
 * Keys are read in turns, `inFlight` reads at a time, once the reader has a ring.
 */
import { pb } from '../../protocol/index.js';
import type { Effect, Random } from '../../protocol/index.js';
import { RingClient, outcomeOf } from './load-client.js';

export interface ReaderOptions {
  /** The keys to read, with the time each became readable (a REPLICATED ack). */
  readonly keys: () => ReadonlyMap<string, number>;
  readonly inFlight: number;
  /** A read asks every replica again after this long without a value (ms). */
  readonly roundMs: number;
  readonly roundsMax: number;
}

interface KeyState {
  /** When the current unreadable stretch began (undefined: readable at the last look). */
  failingSinceMs: number | undefined;
  reading: boolean;
}

interface Read {
  readonly key: string;
  readonly state: KeyState;
  readonly startedMs: number;
  nextRoundMs: number;
  rounds: number;
  done: boolean;
}

/** How long one request of a read is waited for at most (later answers are ignored). */
const REQUEST_TIMEOUT_MS = 3000;

export class AvailabilityReader extends RingClient {
  stopped = false;
  readonly counters = { reads: 0, rounds: 0, slowReads: 0, gaveUp: 0 };
  /** The longest unreadable stretch seen, with its key and when it ended. */
  longest = { key: '', ms: 0, endedAtMs: 0 };
  private readonly state = new Map<string, KeyState>();
  private readonly reads: Read[] = [];
  private order: string[] = [];
  private next = 0;

  constructor(
    address: string,
    routing: readonly string[],
    random: Random,
    private readonly options: ReaderOptions,
  ) {
    super(address, routing, random, 50);
  }

  /** Closes every stretch still open at `nowMs` (the end of the run) into `longest`. */
  finish(nowMs: number): void {
    for (const [key, state] of this.state) if (state.failingSinceMs !== undefined) this.note(key, nowMs - state.failingSinceMs, nowMs);
  }

  protected tick(nowMs: number): Effect[] {
    // Without a ring the reader cannot ask anyone: that is the reader's state, not the cluster's.
    if (this.stopped || this.membership.ring().nodeCount === 0) return [];
    const effects: Effect[] = [];
    // Reads still waiting: another round when theirs is up.
    for (const read of this.reads) {
      if (read.done || nowMs < read.nextRoundMs) continue;
      if (read.rounds === 1) this.counters.slowReads++;
      read.state.failingSinceMs ??= read.startedMs;
      if (read.rounds >= this.options.roundsMax) {
        read.done = true;
        read.state.reading = false;
        this.counters.gaveUp++;
        continue;
      }
      effects.push(...this.round(read, nowMs));
    }
    for (let i = this.reads.length - 1; i >= 0; i--) if (this.reads[i]!.done) this.reads.splice(i, 1);
    // New reads, in turns over the keys.
    const keys = this.options.keys();
    if (this.order.length !== keys.size) {
      this.order = [...keys.keys()];
      for (const key of this.order) if (!this.state.has(key)) this.state.set(key, { failingSinceMs: undefined, reading: false });
    }
    for (let looked = 0; looked < this.order.length && this.reads.length < this.options.inFlight; looked++) {
      const key = this.order[this.next++ % this.order.length]!;
      const state = this.state.get(key)!;
      if (state.reading) continue;
      state.reading = true;
      this.counters.reads++;
      const read: Read = { key, state, startedMs: nowMs, nextRoundMs: nowMs, rounds: 0, done: false };
      this.reads.push(read);
      effects.push(...this.round(read, nowMs));
    }
    return effects;
  }

  /** Asks every replica of the read's key, per the ring now. */
  private round(read: Read, nowMs: number): Effect[] {
    read.rounds++;
    read.nextRoundMs = nowMs + this.options.roundMs;
    this.counters.rounds++;
    return this.membership
      .ring()
      .replicasOf(read.key)
      .map((replica) =>
        this.request(replica, { kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: read.key }] } }, nowMs, REQUEST_TIMEOUT_MS, (envelope, at) => {
          if (read.done || outcomeOf(envelope) !== 'ok') return [];
          read.done = true;
          read.state.reading = false;
          const since = read.state.failingSinceMs ?? (read.rounds > 1 || at - read.startedMs > this.options.roundMs ? read.startedMs : undefined);
          if (since !== undefined) this.note(read.key, at - since, at);
          read.state.failingSinceMs = undefined;
          return [];
        }),
      );
  }

  private note(key: string, ms: number, atMs: number): void {
    if (ms > this.longest.ms) this.longest = { key, ms, endedAtMs: atMs };
  }
}
