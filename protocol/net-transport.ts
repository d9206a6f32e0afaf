/**
 * The node:net transport: TCP from the event loop, no ZeroMQ. Same options, addresses, counters
 * and contract as the ZeroMQ transport (zmq-transport.ts), so either runs a node; it exists
 * because ZeroMQ's I/O threads cost two thread hops per message on each side (measured on two
 * cores: a raw zeromq.js echo does ~0.25 ms p50, a node:net echo with these frames ~0.08 ms).
 *
 * Wire: each direction is a connection its SENDER opens to the destination's listening port (as
 * ZeroMQ's DEALER to ROUTER: frames flow one way per connection, and replies travel on the other
 * side's own connection to the address in `reply_to`). A connection starts with a greeting of 5
 * bytes, `LFN1` and a mode byte (0 plain, 1 TLS-PSK), so a ZeroMQ peer, a plain peer at a secure
 * endpoint or stray bytes are refused (the connection closed, counted in `connectionCounters`),
 * never misparsed. Then frames: a 4-byte big-endian length and the bytes (frame-reader.ts);
 * a length above DEFAULT_MAX_FRAME_BYTES plus a little slack closes that connection, counted.
 *
 * Security (the default): after the greeting, TLS 1.2 with ECDHE-PSK-CHACHA20-POLY1305 (tls-psk.ts):
 * the PSK is derived from the two endpoints' X25519 keys, the client's identity is its public key
 * text, the process's policy (zap-policy.ts) is asked before a PSK is given. So `peer` of every
 * incoming frame is the sender's public key, proven by the handshake (`verifiesPeers`), and an
 * address must name the destination's key (`tcp://host:port#key`). With `keyPair: 'insecure'`,
 * plain TCP and a connection id as the peer.
 *
 * Sending: a bounded queue per destination (frames and bytes; TRANSPORT_BUSY when full). Frames
 * queued in one turn leave in one write (flushed from a microtask; small frames copied with their
 * length prefixes into one buffer, large ones written as they are, under one cork). When the
 * socket's buffer is above its high-water mark, writing waits for `drain` while the queue grows up
 * to its bound. A destination connects on its first send; when its connection fails or closes, the
 * frames not yet written are lost (counted in `sendErrors`; their sends resolve, as on the ZeroMQ
 * transport) and the next send reconnects, after a backoff that doubles per failed attempt up to
 * RECONNECT_MAX_MS (a connection that closes within STABLE_CONNECTION_MS of opening counts as
 * failed: a peer that refuses our greeting is not redialled at every send). Sends to a destination
 * not connected yet resolve once queued. At most `socketsMax` destinations: the least recently
 * used one is closed (its written bytes get EVICTED_LINGER_MS to leave). Host names are resolved
 * asynchronously, a few at a time, bounded in time (as in zmq-transport.ts).
 *
 * Receiving: one listening server; at most `inboundConnectionsMax` connections (one more is closed
 * at once, counted); a connection must finish its greeting and handshake within `handshakeMaxMs`.
 * Frames go through the per-peer fairness of fair-inbox.ts; while that inbox is full, every
 * connection stops reading, and TCP pushes back on the senders.
 *
 * Test hook: `LFAAS_TEST_SEND_DELAY_MS`, as in zmq-transport.ts.
 */
import { lookup } from 'node:dns/promises';
import { connect as netConnect, createServer, isIP } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { parseTcpAddress } from './address.js';
import { afterReceive, afterSend } from './busy-poll.js';
import { reportFatal } from './crash-guard.js';
import { FairInbox } from './fair-inbox.js';
import type { FairInboxCounters } from './fair-inbox.js';
import { DEFAULT_MAX_FRAME_BYTES } from './frame.js';
import { FRAME_HEADER_BYTES, FrameReader } from './frame-reader.js';
import { generateKeyPair, keyFromText, keyText } from './keys.js';
import type { KeyPair } from './keys.js';
import { acceptPsk, dialPsk, pskFor, pskSecureContext } from './tls-psk.js';
import { SEND_DELAY_MS, advertisedHost, delayedSend } from './transport-options.js';
import type { RefusedFrameReceiver, TransportCounters, ZmqTransportOptions } from './transport-options.js';
import type { FrameReceiver, Transport } from './transport.js';

/** Destination connections one transport keeps at most, by default. */
export const NET_DESTINATIONS_MAX = 512;
/** Inbound connections one transport keeps at most; one more is closed at once. */
export const INBOUND_CONNECTIONS_MAX = 4096;
/** A connection must finish its greeting and TLS handshake within this (both sides). */
export const HANDSHAKE_MAX_MS = 10_000;
/** A frame may be this much above DEFAULT_MAX_FRAME_BYTES (the receiver's decoder refuses it then, typed). */
const FRAME_SLACK_BYTES = 64 * 1024;
/** The longest frame a connection carries; a longer length prefix closes it. */
export const NET_FRAME_BYTES_MAX = DEFAULT_MAX_FRAME_BYTES + FRAME_SLACK_BYTES;
/** The first wait before reconnecting after a failed attempt; it doubles per failure. */
const RECONNECT_MIN_MS = 50;
/** The longest wait between attempts to connect to a destination that does not answer. */
const RECONNECT_MAX_MS = 2000;
/** A connection open this long before it closed counts as a success: the next attempt does not wait. */
const STABLE_CONNECTION_MS = 1000;
/** How long an evicted connection may still deliver what is written to it. */
const EVICTED_LINGER_MS = 500;
/** Frames at least this big are written as they are rather than copied into the batch buffer. */
const WRITE_AS_IS_BYTES = 64 * 1024;
/** Host-name lookups in progress at once over this thread's transports (libuv's pool is shared). */
const LOOKUPS_MAX = 2;
let lookupsInProgress = 0;
/** A host name not resolved within this is given up (that attempt fails, counted). */
const LOOKUP_TIMEOUT_MS = 2000;

/** The greeting: magic and mode byte. */
const GREETING_MAGIC = Buffer.from('LFN1', 'latin1');
const MODE_PLAIN = 0;
const MODE_TLS_PSK = 1;
const GREETING_BYTES = 5;

/**
 * The options of {@link NetTransport.bind}: those of the ZeroMQ transport (`sendHighWaterMark` is
 * not used), and two limits of its own.
 */
export interface NetTransportOptions extends ZmqTransportOptions {
  /** Inbound connections kept at most (INBOUND_CONNECTIONS_MAX by default); one more is closed at once. */
  readonly inboundConnectionsMax?: number;
  /** Time a connection has to finish its greeting and handshake, either side (HANDSHAKE_MAX_MS by default). */
  readonly handshakeMaxMs?: number;
}

/** What happens to connections, counted; exposed for metrics and tests. */
export interface NetConnectionCounters {
  /** Inbound connections whose greeting (and handshake) finished. */
  inboundAccepted: number;
  /** Inbound connections closed at once: `inboundConnectionsMax` were open. */
  inboundOverLimit: number;
  /** Inbound connections whose first bytes were not our greeting, or named the other mode. */
  badGreetings: number;
  /** Inbound TLS handshakes that failed (key refused by the policy, wrong PSK, not TLS). */
  handshakesFailed: number;
  /** Connections (either side) whose greeting and handshake did not finish in time. */
  handshakeTimeouts: number;
  /** Inbound connections closed for a length prefix above NET_FRAME_BYTES_MAX. */
  oversizedFrames: number;
  /** Outbound connections made (greeting and handshake finished). */
  outboundConnected: number;
  /** Outbound connection attempts that failed, and established ones that closed. */
  outboundLost: number;
}

/** The waiter of a send that has already resolved. */
const settled = (): void => {};

/** A connection's stream: the TCP socket, or the TLS socket over it. */
type Wire = Socket | TLSSocket;

class Destination {
  queue: Uint8Array[] = [];
  waiters: (() => void)[] = [];
  queuedBytes = 0;
  state: 'idle' | 'connecting' | 'open' = 'idle';
  socket: Wire | undefined;
  /** Bumped per connection attempt: events of an older one are ignored. */
  attempt = 0;
  failures = 0;
  retryAtMs = 0;
  retryTimer: NodeJS.Timeout | undefined;
  /** When the current connection became usable (performance.now()). */
  openedAtMs = 0;
  flushScheduled = false;
  waitingDrain = false;
  closed = false;
  /** The address connected to, once a host name is resolved (again after each failure). */
  ip: string | undefined;
  /** Whether the host is an IP address (nothing to resolve). */
  readonly literal: boolean;

  constructor(
    readonly to: string,
    readonly host: string,
    readonly port: number,
    /** The PSK shared with the destination (secure transports). */
    readonly psk: Buffer | undefined,
  ) {
    const bare = host.replace(/^\[|\]$/g, '');
    this.literal = isIP(bare) !== 0;
    if (this.literal) this.ip = bare;
  }
}

interface Inbound {
  readonly raw: Socket;
  wire: Wire;
  peer: string;
  established: boolean;
  paused: boolean;
}

/** A node's node:net endpoint; see the file comment. Make one with `NetTransport.bind`. */
export class NetTransport implements Transport {
  readonly counters: TransportCounters = { framesSent: 0, batchesSent: 0, framesReceived: 0, sendErrors: 0, sendsRefused: 0, socketsEvicted: 0, framesRefused: 0, framesUnsealed: 0 };
  readonly connectionCounters: NetConnectionCounters = { inboundAccepted: 0, inboundOverLimit: 0, badGreetings: 0, handshakesFailed: 0, handshakeTimeouts: 0, oversizedFrames: 0, outboundConnected: 0, outboundLost: 0 };
  private readonly destinations = new Map<string, Destination>();
  private readonly inbound = new Set<Inbound>();
  private receiver: FrameReceiver = () => {};
  private refusedReceiver: RefusedFrameReceiver = () => {};
  private readonly inbox: FairInbox;
  private closed = false;
  private connectionIds = 0;
  private waitingForRoom = false;
  private readonly queueFramesMax: number;
  private readonly queueBytesMax: number;
  private readonly socketsMax: number;
  private readonly batchFramesMax: number;
  private readonly inboundConnectionsMax: number;
  private readonly handshakeMaxMs: number;
  private readonly mode: number;
  private readonly context: SecureContext | undefined;

  private constructor(
    private readonly server: Server,
    readonly address: string,
    /** This endpoint's key pair; undefined when insecure. */
    readonly keyPair: KeyPair | undefined,
    options: NetTransportOptions,
  ) {
    this.queueFramesMax = options.queueFramesMax ?? 10_000;
    this.queueBytesMax = options.queueBytesMax ?? 64 * 1024 * 1024;
    this.socketsMax = Math.max(1, options.socketsMax ?? NET_DESTINATIONS_MAX);
    this.batchFramesMax = Math.max(1, options.batchFramesMax ?? 1024);
    this.inboundConnectionsMax = Math.max(1, options.inboundConnectionsMax ?? INBOUND_CONNECTIONS_MAX);
    this.handshakeMaxMs = Math.max(1, options.handshakeMaxMs ?? HANDSHAKE_MAX_MS);
    this.mode = keyPair === undefined ? MODE_PLAIN : MODE_TLS_PSK;
    this.context = keyPair === undefined ? undefined : pskSecureContext();
    this.inbox = new FairInbox((frame, peer) => {
      try {
        this.receiver(frame, peer);
      } catch (error) {
        // A receiver must not throw: this is a bug, for the process to decide (crash-guard.ts).
        reportFatal(error, `the frame receiver of ${this.address}`);
      }
    }, options.inbox);
    server.on('connection', (raw: Socket) => this.accept(raw));
  }

  /**
   * Binds a node's listening socket.
   *
   * @example
   * ```ts
   * const transport = await NetTransport.bind({ port: 0 });
   * transport.onFrame((frame, peer) => ...);
   * await transport.send(other.address, frame);
   * ```
   */
  static async bind(options: NetTransportOptions = {}): Promise<NetTransport> {
    const host = options.host ?? '127.0.0.1';
    // Checked before anything is bound: a wildcard with nothing to advertise fails here.
    const advertised = advertisedHost(host, options.advertise);
    const keyPair = options.keyPair === 'insecure' ? undefined : (options.keyPair ?? generateKeyPair());
    const server = createServer({ noDelay: true });
    const listenHost = host === '*' ? '0.0.0.0' : host.replace(/^\[|\]$/g, '');
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: listenHost, port: options.port ?? 0 }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (cause) {
      server.close();
      throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `cannot bind ${host}:${options.port ?? 0}: ${(cause as Error).message}`, { cause });
    }
    // A listening server's later errors (none expected) must not end the process.
    server.on('error', () => {});
    const port = (server.address() as { port: number }).port;
    const endpoint = `tcp://${advertised}:${port}`;
    return new NetTransport(server, keyPair === undefined ? endpoint : `${endpoint}#${keyText(keyPair.publicKey)}`, keyPair, options);
  }

  /** What the per-peer fairness of incoming frames counts. */
  get inboxCounters(): Readonly<FairInboxCounters> {
    return this.inbox.counters;
  }

  /** Whether `peer` in `onFrame` is the sender's public key, proven by the TLS-PSK handshake. */
  get verifiesPeers(): boolean {
    return this.keyPair !== undefined;
  }

  /** Destinations kept now (connected, connecting or waiting to reconnect). */
  get socketCount(): number {
    return this.destinations.size;
  }

  /** Inbound connections open now. */
  get inboundCount(): number {
    return this.inbound.size;
  }

  onFrame(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  /** Sets who hears of frames refused for their peer's full share (to answer them, count them). */
  onRefused(receiver: RefusedFrameReceiver): void {
    this.refusedReceiver = receiver;
  }

  /**
   * Queues `frame` for `to`. While the destination is connected, resolves once the frame is
   * written to its connection (in the kernel's or Node's buffer, not necessarily delivered: a full
   * socket buffer holds the caller back), or when it is lost with the connection or the transport
   * closes with it queued (counted in `sendErrors`); while it is not (connecting, or waiting to
   * reconnect), resolves once queued. Never throws: every refusal is a rejection with a typed error.
   * The transport holds `frame` itself (no copy) until the kernel has it: do not change it after.
   */
  send(to: string, frame: Uint8Array): Promise<void> {
    // The test hook's delay, off the hot path when unset.
    if (SEND_DELAY_MS > 0 && !this.closed) return delayedSend((target, bytes) => this.sendNow(target, bytes), to, frame);
    return this.sendNow(to, frame);
  }

  private sendNow(to: string, frame: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'transport is closed'));
    afterSend();
    if (frame.byteLength > NET_FRAME_BYTES_MAX) {
      // The receiver would close the connection at its length prefix (no reply could come): the
      // sender hears it here, typed, and nothing crosses the wire.
      this.counters.sendsRefused++;
      return Promise.reject(new LfaasError(ErrorCode.PROTO_TOO_LARGE, `a frame of ${frame.byteLength} bytes is above the ${NET_FRAME_BYTES_MAX} a connection carries`));
    }
    let destination = this.destinations.get(to);
    if (destination === undefined) {
      const made = this.open(to);
      if (made instanceof LfaasError) {
        this.counters.sendsRefused++;
        return Promise.reject(made);
      }
      destination = made;
    } else {
      // Keep the map in least-recently-used order.
      this.destinations.delete(to);
      this.destinations.set(to, destination);
    }
    if (destination.queue.length >= this.queueFramesMax || destination.queuedBytes + frame.byteLength > this.queueBytesMax) {
      this.counters.sendsRefused++;
      return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_BUSY, `send queue to ${to} is full (${destination.queue.length} frames, ${destination.queuedBytes} bytes)`));
    }
    destination.queue.push(frame);
    destination.queuedBytes += frame.byteLength;
    if (destination.state !== 'open') {
      // Not connected (connecting, or waiting to reconnect): the queue is the buffer that takes the
      // frame, as ZeroMQ's takes a frame for a peer not yet connected; bounded all the same.
      destination.waiters.push(settled);
      this.kick(destination);
      return Promise.resolve();
    }
    const current = destination;
    const accepted = new Promise<void>((resolve) => current.waiters.push(resolve));
    this.kick(destination);
    return accepted;
  }

  /** A destination for `to`, made room for; or the typed error that stops it. */
  private open(to: string): Destination | LfaasError {
    const parsed = parseTcpAddress(to);
    if (parsed === undefined) return new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `not a tcp://host:port[#key] address: ${JSON.stringify(to.slice(0, 320))}`);
    if (this.keyPair !== undefined && parsed.key === undefined) return new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `${JSON.stringify(to.slice(0, 300))} names no key (tcp://host:port#key): this endpoint is encrypted (TLS-PSK) and connects only to keyed addresses`);
    if (isIP(parsed.host.replace(/^\[|\]$/g, '')) === 0 && lookupsInProgress >= LOOKUPS_MAX) return new LfaasError(ErrorCode.TRANSPORT_BUSY, `${lookupsInProgress} host names are being resolved; cannot send to ${to} now`);
    let psk: Buffer | undefined;
    if (this.keyPair !== undefined) {
      try {
        psk = pskFor(this.keyPair, keyFromText(parsed.key!));
      } catch (cause) {
        // A well-formed text can still name a low-order point, with which X25519 derives nothing.
        return new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `${JSON.stringify(to.slice(0, 300))} names a key no secret can be shared with`, { cause });
      }
    }
    const destination = new Destination(to, parsed.host, parsed.port, psk);
    while (this.destinations.size >= this.socketsMax) this.evictLeastRecentlyUsed();
    this.destinations.set(to, destination);
    return destination;
  }

  /** Moves a destination with frames queued on: flush when open, connect when idle (after its backoff). */
  private kick(destination: Destination): void {
    if (destination.state === 'open') this.scheduleFlush(destination);
    else if (destination.state === 'idle' && destination.retryTimer === undefined) {
      const waitMs = destination.retryAtMs - performance.now();
      if (waitMs <= 0) void this.connect(destination);
      else {
        destination.retryTimer = setTimeout(() => {
          destination.retryTimer = undefined;
          if (!destination.closed && destination.state === 'idle' && destination.queue.length > 0) void this.connect(destination);
        }, waitMs);
        destination.retryTimer.unref();
      }
    }
  }

  private async connect(destination: Destination): Promise<void> {
    destination.state = 'connecting';
    const attempt = ++destination.attempt;
    if (destination.ip === undefined) {
      const ip = await this.resolve(destination.host);
      if (destination.closed || destination.attempt !== attempt) return;
      if (ip === undefined) {
        this.connectionLost(destination, attempt);
        return;
      }
      destination.ip = ip;
    }
    const raw = netConnect({ host: destination.ip, port: destination.port, noDelay: true });
    destination.socket = raw;
    const deadline = setTimeout(() => {
      this.connectionCounters.handshakeTimeouts++;
      raw.destroy();
    }, this.handshakeMaxMs);
    const lost = (): void => {
      clearTimeout(deadline);
      this.connectionLost(destination, attempt);
    };
    raw.on('error', () => {}); // 'close' follows and does the work.
    raw.on('close', lost);
    raw.once('connect', () => {
      raw.write(Buffer.concat([GREETING_MAGIC, Buffer.from([this.mode])]));
      if (this.keyPair === undefined) {
        clearTimeout(deadline);
        this.connected(destination, attempt, raw);
        return;
      }
      const secure = dialPsk(raw, this.keyPair, destination.psk!, this.context!);
      destination.socket = secure;
      secure.on('error', () => secure.destroy());
      secure.on('close', lost);
      secure.once('secureConnect', () => {
        clearTimeout(deadline);
        this.connected(destination, attempt, secure);
      });
    });
  }

  /** Resolves a host name, bounded in count and time; undefined when it cannot. */
  private async resolve(host: string): Promise<string | undefined> {
    if (lookupsInProgress >= LOOKUPS_MAX) return undefined;
    // The slot is held until the lookup itself ends (see zmq-transport.ts: hung lookups hold pool threads).
    lookupsInProgress++;
    const pending = lookup(host).then(
      (found) => found.address,
      () => undefined,
    );
    void pending.finally(() => lookupsInProgress--);
    let timer: NodeJS.Timeout | undefined;
    const found = await Promise.race([pending, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), LOOKUP_TIMEOUT_MS)))]);
    clearTimeout(timer);
    return found;
  }

  private connected(destination: Destination, attempt: number, socket: Wire): void {
    if (destination.closed || destination.attempt !== attempt) return;
    destination.state = 'open';
    destination.openedAtMs = performance.now();
    destination.waitingDrain = false;
    this.connectionCounters.outboundConnected++;
    socket.on('drain', () => {
      if (destination.attempt !== attempt) return;
      destination.waitingDrain = false;
      this.flush(destination);
    });
    // The receiving side never writes on this connection: anything it sends is a protocol error.
    socket.on('data', () => socket.destroy());
    this.flush(destination);
  }

  /** A connection attempt failed or an open connection closed: its queued frames are lost; the next send reconnects. */
  private connectionLost(destination: Destination, attempt: number): void {
    if (destination.closed || destination.attempt !== attempt) return;
    destination.attempt++;
    this.connectionCounters.outboundLost++;
    // A connection that lived a while and closed (the peer restarted) is retried at once when asked;
    // one that failed, or closed soon after opening (a peer that refuses our greeting), backs off.
    const wasOpen = destination.state === 'open' && performance.now() - destination.openedAtMs >= STABLE_CONNECTION_MS;
    destination.socket?.destroy();
    destination.socket = undefined;
    destination.state = 'idle';
    destination.waitingDrain = false;
    // A name is resolved again next time: the peer may have moved.
    if (!destination.literal) destination.ip = undefined;
    this.dropQueued(destination, true);
    if (wasOpen) {
      destination.failures = 0;
      destination.retryAtMs = 0;
    } else {
      destination.failures++;
      destination.retryAtMs = performance.now() + Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(destination.failures - 1, 16));
    }
  }

  /** Resolves the sends still queued for `destination` (their frames are lost), counting them when `count`. */
  private dropQueued(destination: Destination, count: boolean): void {
    if (count) this.counters.sendErrors += destination.queue.length;
    const waiters = destination.waiters;
    destination.queue = [];
    destination.waiters = [];
    destination.queuedBytes = 0;
    for (const resolve of waiters) resolve();
  }

  private scheduleFlush(destination: Destination): void {
    if (destination.flushScheduled || destination.waitingDrain) return;
    destination.flushScheduled = true;
    queueMicrotask(() => {
      destination.flushScheduled = false;
      this.flush(destination);
    });
  }

  /** Writes what is queued, in batches of at most `batchFramesMax` frames, until the socket's buffer is full. */
  private flush(destination: Destination): void {
    const socket = destination.socket;
    if (destination.closed || destination.state !== 'open' || socket === undefined || socket.destroyed) return;
    while (destination.queue.length > 0 && !destination.waitingDrain) {
      const count = Math.min(destination.queue.length, this.batchFramesMax);
      const whole = count === destination.queue.length;
      const batch = whole ? destination.queue : destination.queue.slice(0, count);
      const waiters = whole ? destination.waiters : destination.waiters.slice(0, count);
      destination.queue = whole ? [] : destination.queue.slice(count);
      destination.waiters = whole ? [] : destination.waiters.slice(count);
      for (const frame of batch) destination.queuedBytes -= frame.byteLength;
      const chunks = encodeBatch(batch);
      let room = true;
      if (chunks.length === 1) room = socket.write(chunks[0]!);
      else {
        socket.cork();
        for (const chunk of chunks) room = socket.write(chunk);
        socket.uncork();
      }
      this.counters.framesSent += batch.length;
      this.counters.batchesSent++;
      for (const resolve of waiters) resolve();
      if (!room) destination.waitingDrain = true;
    }
  }

  private evictLeastRecentlyUsed(): void {
    const oldest = this.destinations.entries().next();
    if (oldest.done === true) return;
    const [address, destination] = oldest.value;
    this.destinations.delete(address);
    this.counters.socketsEvicted++;
    this.counters.sendErrors += destination.queue.length;
    this.closeDestination(destination, EVICTED_LINGER_MS);
  }

  /** Ends a destination: its queued sends resolve; what is written gets `lingerMs` to leave. */
  private closeDestination(destination: Destination, lingerMs = 0): void {
    destination.closed = true;
    if (destination.retryTimer !== undefined) clearTimeout(destination.retryTimer);
    this.dropQueued(destination, false);
    const socket = destination.socket;
    destination.socket = undefined;
    if (socket === undefined) return;
    if (lingerMs > 0 && destination.state === 'open') {
      socket.end();
      setTimeout(() => socket.destroy(), lingerMs).unref();
    } else socket.destroy();
  }

  /** A new inbound connection: bounded in number, greeted and (secure) handshaken within the deadline. */
  private accept(raw: Socket): void {
    raw.on('error', () => {}); // 'close' follows.
    if (this.closed) {
      raw.destroy();
      return;
    }
    if (this.inbound.size >= this.inboundConnectionsMax) {
      this.connectionCounters.inboundOverLimit++;
      raw.destroy();
      return;
    }
    const connection: Inbound = { raw, wire: raw, peer: '', established: false, paused: false };
    this.inbound.add(connection);
    const deadline = setTimeout(() => {
      this.connectionCounters.handshakeTimeouts++;
      connection.wire.destroy();
      raw.destroy();
    }, this.handshakeMaxMs);
    raw.on('close', () => {
      clearTimeout(deadline);
      this.inbound.delete(connection);
    });
    const onGreeting = (): void => {
      const greeting = raw.read(GREETING_BYTES) as Buffer | null;
      if (greeting === null) return; // Fewer bytes so far.
      raw.off('readable', onGreeting);
      if (!greeting.subarray(0, 4).equals(GREETING_MAGIC) || greeting[4] !== this.mode) {
        this.connectionCounters.badGreetings++;
        raw.destroy();
        return;
      }
      if (this.keyPair === undefined) {
        clearTimeout(deadline);
        connection.peer = `connection-${++this.connectionIds}`;
        this.established(connection, raw);
        return;
      }
      // What follows the greeting (the ClientHello) is still buffered in `raw`: TLS reads it from there.
      let claimed = '';
      const secure = acceptPsk(raw, this.keyPair, this.context!, (peer) => (claimed = peer));
      connection.wire = secure;
      secure.on('close', () => {
        clearTimeout(deadline);
        this.inbound.delete(connection);
        raw.destroy();
      });
      secure.on('error', () => {
        if (!connection.established) this.connectionCounters.handshakesFailed++;
        secure.destroy();
      });
      secure.once('secure', () => {
        clearTimeout(deadline);
        // The handshake finished, so the PSK of `claimed` matched: the client holds that key.
        connection.peer = claimed;
        this.established(connection, secure);
      });
    };
    raw.on('readable', onGreeting);
  }

  private established(connection: Inbound, wire: Wire): void {
    if (this.closed) {
      wire.destroy();
      return;
    }
    connection.established = true;
    this.connectionCounters.inboundAccepted++;
    const reader = new FrameReader(NET_FRAME_BYTES_MAX);
    const deliver = (frame: Buffer): void => this.deliver(connection, frame);
    wire.on('data', (chunk: Buffer) => {
      if (!reader.push(chunk, deliver)) {
        this.connectionCounters.oversizedFrames++;
        wire.destroy();
        connection.raw.destroy();
      }
    });
    if (wire === connection.raw) wire.resume();
  }

  private deliver(connection: Inbound, frame: Buffer): void {
    if (this.closed) return;
    this.counters.framesReceived++;
    afterReceive();
    if (!this.inbox.offer(connection.peer, frame)) {
      this.counters.framesRefused++;
      try {
        this.refusedReceiver(frame, connection.peer);
      } catch (error) {
        reportFatal(error, `the refused-frame receiver of ${this.address}`);
      }
    }
    // Backpressure: with the inbox full, stop reading until it has room; TCP pushes back on the senders.
    if (this.inbox.full && !connection.paused) {
      connection.paused = true;
      connection.wire.pause();
      if (!this.waitingForRoom) {
        this.waitingForRoom = true;
        void this.inbox.whenRoom().then(() => {
          this.waitingForRoom = false;
          for (const each of this.inbound) {
            if (each.paused) {
              each.paused = false;
              each.wire.resume();
            }
          }
        });
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const destination of this.destinations.values()) this.closeDestination(destination);
    this.destinations.clear();
    for (const connection of this.inbound) {
      connection.wire.destroy();
      connection.raw.destroy();
    }
    this.inbound.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * The bytes of a batch: each frame's 4-byte big-endian length and its bytes. Small frames are
 * copied into one buffer with the lengths; a frame of WRITE_AS_IS_BYTES or more goes as its own
 * chunk (no copy), after its length.
 */
function encodeBatch(frames: readonly Uint8Array[]): Uint8Array[] {
  let copied = 0;
  for (const frame of frames) copied += FRAME_HEADER_BYTES + (frame.byteLength < WRITE_AS_IS_BYTES ? frame.byteLength : 0);
  const buffer = Buffer.allocUnsafe(copied);
  const chunks: Uint8Array[] = [];
  let at = 0;
  let start = 0;
  for (const frame of frames) {
    buffer.writeUInt32BE(frame.byteLength, at);
    at += FRAME_HEADER_BYTES;
    if (frame.byteLength < WRITE_AS_IS_BYTES) {
      buffer.set(frame, at);
      at += frame.byteLength;
    } else {
      chunks.push(buffer.subarray(start, at), frame);
      start = at;
    }
  }
  if (at > start) chunks.push(buffer.subarray(start, at));
  return chunks;
}
