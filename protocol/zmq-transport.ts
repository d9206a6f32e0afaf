/**
 * The ZeroMQ transport: one PULL socket bound per node; one PUSH socket per destination, each with
 * exactly one writer (zeromq allows a single send in flight per socket). Frames queued while a
 * send is in flight leave together as one multipart message: under load, batching happens by
 * itself, and at low load a frame goes out at once. Queues are bounded in frames and bytes; a full
 * queue rejects with TRANSPORT_BUSY rather than growing. Every socket has `linger: 0`, so nothing
 * queued keeps the process alive after `close()`.
 */
import { Pull, Push } from 'zeromq';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import type { FrameReceiver, Transport } from './transport.js';

export interface ZmqTransportOptions {
  /** Interface to bind; loopback by default. */
  readonly host?: string;
  /** Port to bind; 0 picks a free one. */
  readonly port?: number;
  /** Frames queued per destination before sends are refused. */
  readonly queueFramesMax?: number;
  /** Bytes queued per destination before sends are refused. */
  readonly queueBytesMax?: number;
  /**
   * Destination sockets kept open; beyond it the least recently used idle one is closed (one with
   * frames still queued or in flight is kept, so the count can exceed this while all are busy).
   */
  readonly socketsMax?: number;
  /** Frames per multipart message, at most. */
  readonly batchFramesMax?: number;
  /**
   * ZeroMQ's own buffer per destination socket, in messages (each frame is one message part), before
   * a send waits; beyond it frames wait in our bounded queue.
   */
  readonly sendHighWaterMark?: number;
}

/** What a transport counts; exposed for metrics. */
export interface TransportCounters {
  framesSent: number;
  batchesSent: number;
  framesReceived: number;
  sendErrors: number;
}

const ADDRESS = /^tcp:\/\/([^:/\s]+):(\d{1,5})$/;

class Destination {
  readonly socket: Push;
  queue: Uint8Array[] = [];
  waiters: (() => void)[] = [];
  queuedBytes = 0;
  writing = false;
  closed = false;

  constructor(address: string, sendHighWaterMark: number) {
    this.socket = new Push({ linger: 0, sendHighWaterMark, immediate: false });
    this.socket.connect(address);
  }
}

/** A node's ZeroMQ endpoint; see the file comment. Make one with `ZmqTransport.bind`. */
export class ZmqTransport implements Transport {
  readonly counters: TransportCounters = { framesSent: 0, batchesSent: 0, framesReceived: 0, sendErrors: 0 };
  private readonly destinations = new Map<string, Destination>();
  private receiver: FrameReceiver = () => {};
  private closed = false;
  private readonly queueFramesMax: number;
  private readonly queueBytesMax: number;
  private readonly socketsMax: number;
  private readonly batchFramesMax: number;
  private readonly sendHighWaterMark: number;

  private constructor(
    private readonly pull: Pull,
    readonly address: string,
    options: ZmqTransportOptions,
  ) {
    this.queueFramesMax = options.queueFramesMax ?? 10_000;
    this.queueBytesMax = options.queueBytesMax ?? 64 * 1024 * 1024;
    this.socketsMax = options.socketsMax ?? 1024;
    this.batchFramesMax = options.batchFramesMax ?? 1024;
    this.sendHighWaterMark = options.sendHighWaterMark ?? 100_000;
    void this.receiveLoop();
  }

  /**
   * Binds a node's PULL socket.
   *
   * @example
   * ```ts
   * const transport = await ZmqTransport.bind({ port: 0 });
   * transport.onFrame((frame) => ...);
   * await transport.send('tcp://127.0.0.1:7001', frame);
   * ```
   */
  static async bind(options: ZmqTransportOptions = {}): Promise<ZmqTransport> {
    const host = options.host ?? '127.0.0.1';
    const pull = new Pull({ linger: 0, receiveHighWaterMark: 100_000 });
    try {
      await pull.bind(`tcp://${host}:${options.port === undefined || options.port === 0 ? '*' : options.port}`);
    } catch (cause) {
      pull.close();
      throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `cannot bind ${host}:${options.port ?? 0}: ${(cause as Error).message}`, { cause });
    }
    const endpoint = pull.lastEndpoint ?? '';
    return new ZmqTransport(pull, endpoint.replace('0.0.0.0', '127.0.0.1'), options);
  }

  onFrame(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  /**
   * Queues `frame` for `to`; resolves once ZeroMQ has taken it (the frame is then in the socket's
   * buffer, not necessarily delivered), or when the transport closes with it still queued.
   */
  send(to: string, frame: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'transport is closed'));
    let destination = this.destinations.get(to);
    if (destination === undefined) {
      const match = ADDRESS.exec(to);
      if (match === null || Number(match[2]) > 65535 || Number(match[2]) === 0) {
        return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `not a tcp://host:port address: ${JSON.stringify(to)}`));
      }
      destination = new Destination(to, this.sendHighWaterMark);
      this.destinations.set(to, destination);
      this.evictIdle();
    } else {
      // Keep the map in least-recently-used order.
      this.destinations.delete(to);
      this.destinations.set(to, destination);
    }
    if (destination.queue.length >= this.queueFramesMax || destination.queuedBytes + frame.byteLength > this.queueBytesMax) {
      return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_BUSY, `send queue to ${to} is full (${destination.queue.length} frames, ${destination.queuedBytes} bytes)`));
    }
    destination.queue.push(frame);
    destination.queuedBytes += frame.byteLength;
    const accepted = new Promise<void>((resolve) => destination.waiters.push(resolve));
    if (!destination.writing) void this.writeLoop(destination);
    return accepted;
  }

  /** The one writer of a destination socket: sends everything queued as one multipart message. */
  private async writeLoop(destination: Destination): Promise<void> {
    destination.writing = true;
    try {
      while (destination.queue.length > 0 && !destination.closed) {
        const count = Math.min(destination.queue.length, this.batchFramesMax);
        const batch = count === destination.queue.length ? destination.queue : destination.queue.slice(0, count);
        const waiters = count === destination.waiters.length ? destination.waiters : destination.waiters.slice(0, count);
        destination.queue = count === destination.queue.length ? [] : destination.queue.slice(count);
        destination.waiters = count === destination.waiters.length ? [] : destination.waiters.slice(count);
        for (const frame of batch) destination.queuedBytes -= frame.byteLength;
        try {
          await destination.socket.send(batch);
          this.counters.framesSent += batch.length;
          this.counters.batchesSent++;
        } catch {
          // A socket closed under us (transport closing, eviction): the frames are lost, as on any
          // one-way network; callers above rely on timeouts and retries.
          this.counters.sendErrors++;
        }
        for (const resolve of waiters) resolve();
      }
    } finally {
      destination.writing = false;
    }
  }

  private evictIdle(): void {
    if (this.destinations.size <= this.socketsMax) return;
    for (const [address, destination] of this.destinations) {
      if (this.destinations.size <= this.socketsMax) break;
      if (destination.writing || destination.queue.length > 0) continue;
      destination.closed = true;
      destination.socket.close();
      this.destinations.delete(address);
    }
  }

  private async receiveLoop(): Promise<void> {
    try {
      for await (const parts of this.pull) {
        for (const part of parts) {
          this.counters.framesReceived++;
          try {
            this.receiver(part);
          } catch {
            // The receiver must not throw; if it does, the transport keeps going.
          }
        }
      }
    } catch {
      // The socket was closed.
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const destination of this.destinations.values()) {
      destination.closed = true;
      for (const resolve of destination.waiters) resolve();
      destination.waiters = [];
      destination.queue = [];
      destination.socket.close();
    }
    this.destinations.clear();
    this.pull.close();
  }
}
