/**
 * The simulator's capacity model: a machine serves at most `perSecond` messages per virtual second,
 * one at a time, first come first served. A message that arrives while the machine is busy waits in
 * its queue, so load turns into queueing delay in virtual time, as on a real server; the queue is
 * bounded (`queueMax` messages, the one in service included) and a message arriving at a full queue
 * is dropped and counted, so overload shows (timeouts at the sender) but memory stays bounded.
 *
 * It sits between the network and the machine's shell, as a wrapper around the machine's
 * transport: a message is handed to the shell at the end of its service time (1000 / perSecond
 * ms), so the reply of an idle machine leaves one service time after the request arrived, and that
 * of a busy one after the wait too. Only messages are served: timers, disk completions and task
 * completions are the machine's own work and reach it at once (a simplification: a shard's gossip
 * and anti-entropy rounds are the messages they send, which cost their receivers a service each).
 *
 * Deterministic: each service is one timer on the virtual clock, and the queue is FIFO. A crash
 * (the shell closes its transport) loses the queue, as a process's socket buffers are lost.
 */
import type { Clock, FrameReceiver, Transport } from '../../protocol/index.js';

export interface CapacityOptions {
  /** Messages one machine serves per virtual second. */
  readonly perSecond: number;
  /** Messages at one machine, at most (waiting, and the one in service); beyond, arrivals are dropped. */
  readonly queueMax: number;
  /** Which machines are bounded (by id); default: every one. */
  readonly applies?: (id: string) => boolean;
}

/** What the model counts for one machine (over all its restarts). */
export interface CapacityCounters {
  /** Messages served (handed to the machine). */
  served: number;
  /** Messages dropped at a full queue. */
  dropped: number;
  /** The longest the queue was. */
  queueMaxSeen: number;
  /** Virtual milliseconds spent serving (served x service time). */
  busyMs: number;
  /** Virtual milliseconds messages waited before their service began, summed. */
  waitMs: number;
}

export function newCapacityCounters(): CapacityCounters {
  return { served: 0, dropped: 0, queueMaxSeen: 0, busyMs: 0, waitMs: 0 };
}

interface Queued {
  readonly frame: Uint8Array;
  readonly peer: string | undefined;
  readonly arrivedMs: number;
}

/** A machine's transport with a bounded FIFO server in front of its receiver. */
export class CapacityTransport implements Transport {
  private receiver: FrameReceiver = () => {};
  private readonly queue: Queued[] = [];
  /** The head of the queue is in service until this timer fires. */
  private cancelService: (() => void) | undefined;
  private closed = false;
  private readonly serviceMs: number;

  constructor(
    private readonly inner: Transport,
    private readonly clock: Clock,
    private readonly options: CapacityOptions,
    readonly counters: CapacityCounters,
  ) {
    if (!(options.perSecond > 0) || !Number.isFinite(options.perSecond)) throw new RangeError(`capacity perSecond must be a positive number, got ${options.perSecond}`);
    if (!Number.isInteger(options.queueMax) || options.queueMax < 1) throw new RangeError(`capacity queueMax must be a positive integer, got ${options.queueMax}`);
    this.serviceMs = 1000 / options.perSecond;
    inner.onFrame((frame, peer) => this.arrive(frame, peer));
  }

  get address(): string {
    return this.inner.address;
  }

  get verifiesPeers(): boolean {
    return this.inner.verifiesPeers === true;
  }

  send(to: string, frame: Uint8Array): Promise<void> {
    return this.inner.send(to, frame);
  }

  onFrame(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    this.cancelService?.();
    this.cancelService = undefined;
    await this.inner.close();
  }

  private arrive(frame: Uint8Array, peer: string | undefined): void {
    if (this.closed) return;
    if (this.queue.length >= this.options.queueMax) {
      this.counters.dropped++;
      return;
    }
    this.queue.push({ frame, peer, arrivedMs: this.clock.now() });
    this.counters.queueMaxSeen = Math.max(this.counters.queueMaxSeen, this.queue.length);
    if (this.cancelService === undefined) this.serveHead();
  }

  /** Starts serving the head of the queue: it reaches the machine one service time from now. */
  private serveHead(): void {
    const head = this.queue[0]!;
    this.counters.waitMs += this.clock.now() - head.arrivedMs;
    this.cancelService = this.clock.setTimer(this.serviceMs, () => {
      this.cancelService = undefined;
      this.queue.shift();
      this.counters.served++;
      this.counters.busyMs += this.serviceMs;
      // The next service starts as this one ends (the machine is never idle with a queue).
      if (this.queue.length > 0) this.serveHead();
      this.receiver(head.frame, head.peer);
    });
  }
}
