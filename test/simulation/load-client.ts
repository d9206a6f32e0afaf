/**
 * A load generator for the simulated KVS: one client machine that sends single-key GETs and PUTs
 * (a GSet element each, so every acknowledged write can be checked later) straight to a random
 * replica of the key, per the ring it subscribes to at the routing nodes. One request is one
 * operation, so the requests a shard counts are the operations sent to it.
 *
 * - Load: open loop (`rate(nowMs)` operations per virtual second, whatever the answers: a load
 *   that can exceed the cluster's capacity) or closed loop (`window` operations in flight, a new
 *   one as each ends: the throughput the cluster gives).
 * - Keys: `keys` names `<prefix><i>`; the i-th most popular is drawn uniformly or by a Zipf law of
 *   exponent `zipf`, and popularity rank r names key (r + shift) mod keys, so moving `shift`
 *   moves the hot set to other keys.
 * - Answers: each operation has a deadline (`timeoutMs`); an answer is ok when the tuple carries
 *   no error (a GET of a key nobody wrote, KVS_KEY_NOT_FOUND, is an answer too), failed otherwise
 *   (an error, a refusal, no answer in time). Per virtual second: operations ok, failed, and the
 *   latencies of the ok ones.
 * - Writes: every element sent, per key; those acknowledged DURABLE or REPLICATED (`safe`), and
 *   when each key first had a REPLICATED acknowledgement (from then on it must stay readable).
 * - `preload`: before its load, the client writes every key once (REPLICATED), `window` at a time.
 */
import { ErrorCode, GSet } from '../../lattices/index.js';
import { envelopeWith, errorCodeFromWire, pb } from '../../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes, Random } from '../../protocol/index.js';
import { Membership } from '../../kvs/index.js';

/** A request in flight: what to do with its answer (undefined: no answer in time). */
interface InFlight {
  readonly deadlineMs: number;
  readonly onAnswer: (envelope: Envelope | undefined, nowMs: number) => Effect[];
}

/**
 * What every simulated KVS client shares: the ring (asked of the routing nodes every second, every
 * 200 ms until it has one, with a lease so that changes are pushed, and taken from KVS_WRONG_NODE
 * answers), and requests with deadlines (oldest first, so the sweep stops at the first one still
 * in time).
 */
export abstract class RingClient implements Machine {
  readonly id: string;
  protected readonly membership = new Membership({ global: 1, local: 1 });
  private readonly inFlight = new Map<number, InFlight>();
  private nextId = 1;
  private askedRing = 0;

  constructor(
    protected readonly address: string,
    private readonly routing: readonly string[],
    protected readonly random: Random,
    private readonly tickMs: number,
  ) {
    this.id = address;
  }

  /** How often deadlines are looked at (ms): a request fails at most this late. */
  private static readonly SWEEP_MS = 100;

  /** Requests waiting for an answer. */
  get outstanding(): number {
    return this.inFlight.size;
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    switch (input.kind) {
      case 'start':
        return [this.askRing(), { kind: 'timer', timer: 'ring', delayMs: 200 }, { kind: 'timer', timer: 'tick', delayMs: this.tickMs }, { kind: 'timer', timer: 'sweep', delayMs: RingClient.SWEEP_MS }];
      case 'timer':
        // Every second; every 200 ms while it has no ring yet (the answer may have been lost).
        if (input.timer === 'ring') return [this.askRing(), { kind: 'timer', timer: 'ring', delayMs: this.membership.ring().nodeCount === 0 ? 200 : 1000 }];
        if (input.timer === 'sweep') return [...this.sweep(nowMs), { kind: 'timer', timer: 'sweep', delayMs: RingClient.SWEEP_MS }];
        return [...this.tick(nowMs), { kind: 'timer', timer: 'tick', delayMs: this.tickMs }];
      case 'taskDone':
      case 'persisted':
        return [];
      case 'message':
        return this.onMessage(input.envelope, nowMs);
    }
  }

  /** Called every `tickMs`: the client's own work. */
  protected abstract tick(nowMs: number): Effect[];

  /** Sends a request to `to`; `onAnswer` gets its answer, or undefined at its deadline. */
  protected request(to: string, body: PbTypes.IEnvelope, nowMs: number, timeoutMs: number, onAnswer: InFlight['onAnswer']): Effect {
    const requestId = this.nextId++;
    this.inFlight.set(requestId, { deadlineMs: nowMs + timeoutMs, onAnswer });
    return { kind: 'send', to, envelope: envelopeWith(body, { requestId, replyTo: this.address, sender: this.address }) };
  }

  private askRing(): Effect {
    const to = this.routing[this.askedRing++ % this.routing.length]!;
    return { kind: 'send', to, envelope: envelopeWith({ ringRequest: { subscriber: this.address, leaseMs: 5000 } }, { requestId: this.nextId++, replyTo: this.address, sender: this.address }) };
  }

  private sweep(nowMs: number): Effect[] {
    const effects: Effect[] = [];
    for (const [requestId, flight] of this.inFlight) {
      // Equal timeouts, so insertion order is deadline order (a client uses one timeout).
      if (flight.deadlineMs > nowMs) break;
      this.inFlight.delete(requestId);
      effects.push(...flight.onAnswer(undefined, nowMs));
    }
    return effects;
  }

  private onMessage(envelope: Envelope, nowMs: number): Effect[] {
    if (envelope.body === 'ringUpdate') {
      this.membership.merge(envelope.ringUpdate!);
      return [];
    }
    if (envelope.kvsResponse?.ring) this.membership.merge(envelope.kvsResponse.ring);
    const requestId = Number(envelope.responseTo);
    const flight = this.inFlight.get(requestId);
    if (flight === undefined) return [];
    this.inFlight.delete(requestId);
    return flight.onAnswer(envelope, nowMs);
  }
}

/** The outcome of one key's operation: ok, a miss (a GET of a key with no value), or failed. */
export type Outcome = 'ok' | 'miss' | 'failed';

/** The outcome of a single-key request's answer. */
export function outcomeOf(envelope: Envelope | undefined): Outcome {
  const tuple = envelope?.kvsResponse?.tuples?.[0];
  if (envelope?.body !== 'kvsResponse' || tuple === undefined) return 'failed';
  if ((tuple.error?.code ?? 0) === 0) return 'ok';
  return errorCodeFromWire(tuple.error?.code ?? 0) === ErrorCode.KVS_KEY_NOT_FOUND ? 'miss' : 'failed';
}

/** Draws popularity ranks 0..keys-1: uniformly (zipf 0) or by a Zipf law (rank r with weight 1/(r+1)^zipf). */
export class RankChooser {
  private readonly cdf: Float64Array | undefined;

  constructor(
    readonly keys: number,
    readonly zipf: number,
  ) {
    if (zipf <= 0) return;
    const cdf = new Float64Array(keys);
    let sum = 0;
    for (let r = 0; r < keys; r++) cdf[r] = sum += 1 / Math.pow(r + 1, zipf);
    for (let r = 0; r < keys; r++) cdf[r] = cdf[r]! / sum;
    this.cdf = cdf;
  }

  /** The share of draws that land on rank `r`. */
  share(r: number): number {
    if (this.cdf === undefined) return 1 / this.keys;
    return this.cdf[r]! - (r === 0 ? 0 : this.cdf[r - 1]!);
  }

  draw(random: Random): number {
    if (this.cdf === undefined) return random.int(this.keys);
    const u = random.next();
    let low = 0;
    let high = this.keys - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.cdf[middle]! < u) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

export interface LoadOptions {
  readonly keys: number;
  readonly prefix: string;
  /** The Zipf exponent of key popularity (0: uniform). */
  readonly zipf: number;
  /** The share of operations that are GETs (the rest are PUTs). */
  readonly readFraction: number;
  /** Ack modes of the PUTs, drawn uniformly from this list. */
  readonly acks?: readonly PbTypes.AckMode[];
  /** Open loop: operations per virtual second at `nowMs`. */
  readonly rate?: (nowMs: number) => number;
  /** Closed loop: operations in flight. */
  readonly window?: number;
  readonly timeoutMs: number;
  /** Open loop: operations in flight at most (beyond, an operation is not sent: `shed`). */
  readonly outstandingMax?: number;
  readonly preload?: boolean;
  /** How often the client sends what it owes (ms; 20 by default). */
  readonly tickMs?: number;
}

/** One virtual second of the client's view. */
export interface SecondStats {
  ok: number;
  failed: number;
  readonly latenciesMs: number[];
}

const LATENCIES_PER_SECOND_MAX = 20_000;

export class LoadClient extends RingClient {
  /** Rank r names key (r + shift) mod keys: moving it moves the hot set. */
  shift = 0;
  /** Whether it sends new operations (a stopped client still takes answers). */
  stopped = false;
  readonly counters = { sent: 0, ok: 0, misses: 0, failed: 0, shed: 0, noRing: 0 };
  /** Per virtual second (index: floor(ms / 1000)). */
  readonly seconds: SecondStats[] = [];
  /** key -> every element sent. */
  readonly sent = new Map<string, Set<string>>();
  /** key -> elements acknowledged DURABLE or REPLICATED. */
  readonly safe = new Map<string, Set<string>>();
  /** key -> when it first had a REPLICATED acknowledgement. */
  readonly replicatedAtMs = new Map<string, number>();
  private readonly chooser: RankChooser;
  private owed = 0;
  private elements = 0;
  private preloaded = 0;
  private lastTickMs: number | undefined;

  constructor(
    address: string,
    routing: readonly string[],
    random: Random,
    private readonly options: LoadOptions,
  ) {
    super(address, routing, random, options.tickMs ?? 20);
    if ((options.rate === undefined) === (options.window === undefined)) throw new Error('a load is open (rate) or closed (window), one of them');
    this.chooser = new RankChooser(options.keys, options.zipf);
  }

  get preloading(): boolean {
    return this.options.preload === true && this.preloaded < this.options.keys;
  }

  keyName(index: number): string {
    return `${this.options.prefix}${index}`;
  }

  /** The key at popularity rank `rank` now. */
  keyOfRank(rank: number): string {
    return this.keyName((rank + this.shift) % this.options.keys);
  }

  protected tick(nowMs: number): Effect[] {
    const elapsedMs = this.lastTickMs === undefined ? 0 : nowMs - this.lastTickMs;
    this.lastTickMs = nowMs;
    if (this.stopped) return [];
    if (this.options.window !== undefined || this.preloading) return this.topUp(nowMs);
    this.owed += (this.options.rate!(nowMs) * elapsedMs) / 1000;
    const effects: Effect[] = [];
    for (let i = 0; i < 100_000 && this.owed >= 1; i++) {
      this.owed--;
      if (this.outstanding >= (this.options.outstandingMax ?? 10_000)) this.counters.shed++;
      else effects.push(...this.operation(nowMs));
    }
    return effects;
  }

  /** Closed loop (and preloading): operations until `window` are in flight. */
  private topUp(nowMs: number): Effect[] {
    const effects: Effect[] = [];
    const window = this.options.window ?? 32;
    for (let i = 0; i < window && this.outstanding < window && !this.stopped; i++) {
      const sent = this.operation(nowMs);
      if (sent.length === 0) break;
      effects.push(...sent);
    }
    return effects;
  }

  private operation(nowMs: number): Effect[] {
    const ring = this.membership.ring();
    if (ring.nodeCount === 0) {
      this.counters.noRing++;
      return [];
    }
    let key: string;
    let read: boolean;
    let ack: PbTypes.AckMode;
    if (this.preloading) {
      key = this.keyName(this.preloaded++);
      read = false;
      ack = pb.AckMode.ACK_REPLICATED;
    } else {
      key = this.keyOfRank(this.chooser.draw(this.random));
      read = this.random.next() < this.options.readFraction;
      const acks = this.options.acks ?? [pb.AckMode.ACK_LOCAL, pb.AckMode.ACK_DURABLE, pb.AckMode.ACK_REPLICATED];
      ack = acks[this.random.int(acks.length)]!;
    }
    const replicas = ring.replicasOf(key);
    const to = replicas[this.random.int(replicas.length)]!;
    this.counters.sent++;
    const startedMs = nowMs;
    if (read) {
      return [this.request(to, { kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key }] } }, nowMs, this.options.timeoutMs, (envelope, at) => this.answered(outcomeOf(envelope), startedMs, at))];
    }
    const element = `${this.address}:${this.elements++}`;
    let sent = this.sent.get(key);
    if (sent === undefined) this.sent.set(key, (sent = new Set()));
    sent.add(element);
    const value = GSet.of(element);
    const body = { kvsRequest: { kind: pb.RequestKind.PUT, ack, tuples: [{ key, latticeType: value.type, payload: value.encode() }] } };
    return [
      this.request(to, body, nowMs, this.options.timeoutMs, (envelope, at) => {
        const outcome = outcomeOf(envelope);
        if (outcome === 'ok' && ack !== pb.AckMode.ACK_LOCAL) {
          let safe = this.safe.get(key);
          if (safe === undefined) this.safe.set(key, (safe = new Set()));
          safe.add(element);
          if (ack === pb.AckMode.ACK_REPLICATED && !this.replicatedAtMs.has(key)) this.replicatedAtMs.set(key, at);
        }
        return this.answered(outcome, startedMs, at);
      }),
    ];
  }

  private answered(outcome: Outcome, startedMs: number, nowMs: number): Effect[] {
    const second = Math.floor(nowMs / 1000);
    for (let s = this.seconds.length; s <= second; s++) this.seconds.push({ ok: 0, failed: 0, latenciesMs: [] });
    const stats = this.seconds[second]!;
    if (outcome === 'failed') {
      this.counters.failed++;
      stats.failed++;
    } else {
      if (outcome === 'ok') this.counters.ok++;
      else this.counters.misses++;
      stats.ok++;
      if (stats.latenciesMs.length < LATENCIES_PER_SECOND_MAX) stats.latenciesMs.push(nowMs - startedMs);
    }
    // Closed loop: the next operation as this one ends.
    return this.options.window !== undefined && !this.stopped ? this.topUp(nowMs) : [];
  }
}
