/**
 * An in-memory network of named endpoints (`mem://name`) for tests and the simulator. Every
 * delivery is scheduled on the injected clock, with delay, loss, duplication and reordering drawn
 * from the injected seeded PRNG: with a virtual clock a run is a pure function of its seed; with
 * the system clock it behaves like a (fast, lossless by default) real network.
 *
 * Like the network under ZeroMQ, it is one-way and unacknowledged: a frame to a name nobody has,
 * to a crashed endpoint or across a partition is lost silently; callers rely on timeouts.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import type { Random } from './random.js';
import type { Clock, FrameReceiver, Transport } from './transport.js';

export interface MemoryNetworkOptions {
  readonly clock: Clock;
  readonly random: Random;
  /** One-way delay of a frame, drawn uniformly from this range. */
  readonly delayMs?: { readonly min: number; readonly max: number };
  readonly dropRate?: number;
  readonly duplicateRate?: number;
  /**
   * Whether frames between one pair may overtake each other. Without it, a frame is never
   * delivered before an earlier frame of the same sender to the same receiver.
   */
  readonly reorder?: boolean;
  /** Frames in flight towards one endpoint before sends to it are refused (TRANSPORT_BUSY). */
  readonly queueFramesMax?: number;
}

/** What the network counts. */
export interface NetworkCounters {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
}

const PREFIX = 'mem://';

class MemoryEndpoint implements Transport {
  receiver: FrameReceiver = () => {};
  closed = false;
  inFlight = 0;

  constructor(
    private readonly network: MemoryNetwork,
    readonly name: string,
  ) {}

  get address(): string {
    return PREFIX + this.name;
  }

  /** The network knows who sent each frame: the peer is the sender's name (what a seal proves on ZeroMQ). */
  get verifiesPeers(): boolean {
    return true;
  }

  onFrame(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  send(to: string, frame: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'endpoint is closed'));
    if (!to.startsWith(PREFIX) || to.length === PREFIX.length) {
      return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `not a mem:// address: ${JSON.stringify(to)}`));
    }
    try {
      this.network.transmit(this.name, to.slice(PREFIX.length), frame);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.network.release(this);
  }
}

/**
 * The in-memory network: make endpoints with `endpoint(name)`, inject faults with `partition`,
 * `crash` and the drop/duplicate/delay options. A frame to an unknown `mem://` name is dropped
 * silently (counted in `dropped`); an address without the `mem://` scheme is TRANSPORT_BAD_ADDRESS.
 *
 * @example
 * ```ts
 * const network = new MemoryNetwork({ clock: systemClock, random: seededRandom(1) });
 * const a = network.endpoint('a');
 * const b = network.endpoint('b');
 * b.onFrame((frame) => ...);
 * await a.send(b.address, frame);
 * ```
 */
export class MemoryNetwork {
  readonly counters: NetworkCounters = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };
  private readonly endpoints = new Map<string, MemoryEndpoint>();
  private readonly crashed = new Set<string>();
  /** Pairs "a|b" that cannot talk (both directions stored). */
  private readonly cut = new Set<string>();
  /** Per ordered pair, the latest scheduled delivery time: keeps FIFO when reorder is off. */
  private readonly lastDeliveryMs = new Map<string, number>();
  /** Per ordered pair, frames scheduled and not yet delivered, oldest first (reorder off). */
  private readonly pairQueues = new Map<string, { frame: Uint8Array; target: MemoryEndpoint | undefined }[]>();

  constructor(private readonly options: MemoryNetworkOptions) {}

  /** A transport bound to `name` (reachable at `mem://name`). One live endpoint per name. */
  endpoint(name: string): Transport {
    if (name.length === 0) throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, 'an endpoint needs a name');
    if (this.endpoints.has(name)) throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `mem://${name} is already bound`);
    const endpoint = new MemoryEndpoint(this, name);
    this.endpoints.set(name, endpoint);
    return endpoint;
  }

  /** Cuts every link between the two groups (both directions). */
  partition(sideA: readonly string[], sideB: readonly string[]): void {
    for (const a of sideA) for (const b of sideB) if (a !== b) {
      this.cut.add(`${a}|${b}`);
      this.cut.add(`${b}|${a}`);
    }
  }

  /** Removes every partition. */
  heal(): void {
    this.cut.clear();
  }

  /** Frames to `name` are lost until `recover(name)`, including those already in flight. */
  crash(name: string): void {
    this.crashed.add(name);
  }

  /** Ends a `crash(name)`: frames sent from now on arrive again. */
  recover(name: string): void {
    this.crashed.delete(name);
  }

  /** @internal */
  release(endpoint: MemoryEndpoint): void {
    if (this.endpoints.get(endpoint.name) === endpoint) this.endpoints.delete(endpoint.name);
  }

  /** @internal Schedules the delivery of one frame (and maybe a duplicate). */
  transmit(from: string, to: string, frame: Uint8Array): void {
    const target = this.endpoints.get(to);
    const queueFramesMax = this.options.queueFramesMax ?? 10_000;
    if (target !== undefined && target.inFlight >= queueFramesMax) {
      throw new LfaasError(ErrorCode.TRANSPORT_BUSY, `mem://${to} has ${target.inFlight} frames in flight`);
    }
    this.counters.sent++;
    const { random } = this.options;
    if (random.chance(this.options.dropRate ?? 0)) {
      this.counters.dropped++;
      return;
    }
    // The receiver gets its own copy (one per delivery), as it would from a socket.
    this.schedule(from, to, Uint8Array.from(frame));
    if (random.chance(this.options.duplicateRate ?? 0)) {
      this.counters.duplicated++;
      this.schedule(from, to, Uint8Array.from(frame));
    }
  }

  private schedule(from: string, to: string, frame: Uint8Array): void {
    const { clock, random } = this.options;
    const delay = this.options.delayMs ?? { min: 0, max: 0 };
    let atMs = clock.now() + delay.min + (delay.max > delay.min ? random.next() * (delay.max - delay.min) : 0);
    const pair = `${from}|${to}`;
    const target = this.endpoints.get(to);
    if (target !== undefined) target.inFlight++;
    if (this.options.reorder === true) {
      clock.setTimer(atMs - clock.now(), () => this.deliver(target, from, to, pair, frame));
      return;
    }
    // FIFO per pair: never due before the pair's previous frame, and each timer delivers the head
    // of the pair's queue, so order holds even if a clock fires equal-time timers out of order.
    atMs = Math.max(atMs, this.lastDeliveryMs.get(pair) ?? Number.NEGATIVE_INFINITY);
    this.lastDeliveryMs.set(pair, atMs);
    let queue = this.pairQueues.get(pair);
    if (queue === undefined) {
      queue = [];
      this.pairQueues.set(pair, queue);
    }
    queue.push({ frame, target });
    clock.setTimer(atMs - clock.now(), () => {
      const pending = this.pairQueues.get(pair);
      const head = pending?.shift();
      if (pending === undefined || head === undefined) return;
      if (pending.length === 0) {
        this.pairQueues.delete(pair);
        this.lastDeliveryMs.delete(pair);
      }
      this.deliver(head.target, from, to, pair, head.frame);
    });
  }

  private deliver(target: MemoryEndpoint | undefined, from: string, to: string, pair: string, frame: Uint8Array): void {
    if (target !== undefined) target.inFlight--;
    const receiver = this.endpoints.get(to);
    if (receiver === undefined || receiver.closed || this.crashed.has(to) || this.cut.has(pair)) {
      this.counters.dropped++;
      return;
    }
    this.counters.delivered++;
    try {
      receiver.receiver(frame, from);
    } catch {
      // A receiver must not throw; the network carries on.
    }
  }
}
