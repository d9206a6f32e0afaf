/**
 * The ZeroMQ transport. A node binds one ROUTER socket; it sends through one DEALER socket per
 * destination, each with exactly one writer (zeromq allows a single send in flight per socket).
 * ROUTER rather than PULL because it tells connections apart: every incoming message comes with
 * the routing id of the connection it arrived on, a peer identity no frame content can forge, and
 * the key of the per-peer fairness of fair-inbox.ts.
 *
 * Security (the default): every socket speaks CURVE. The ROUTER is a CURVE server with the
 * endpoint's key pair, and its address carries its public key (`tcp://host:port#key`), so whoever
 * may send to an address knows the key to encrypt to, replies included: a client's reply socket is
 * a CURVE server like any other, with a key pair of its own. Each DEALER is a CURVE client with the
 * same key pair. The thread's ZAP handler (zap.ts) sees every handshake. Every message starts
 * with a seal (frame-seal.ts) proving which key sent it: on a secure transport the `peer` of each
 * incoming frame is that key, and a message without a valid seal is dropped and counted. With
 * `keyPair: 'insecure'`, plain ZeroMQ and routing ids as peers.
 *
 * Sending: frames queued while a send is in flight leave together as one multipart message, so
 * under load batching happens by itself and at low load a frame goes out at once. Queues are
 * bounded in frames and bytes per destination; a full queue rejects with TRANSPORT_BUSY rather than
 * growing. Every failure is a typed error for that one destination and never reaches the process's
 * top level: an address is checked by address.ts's rule before ZeroMQ sees it, and anything ZeroMQ
 * still throws when a socket is made or connected (EMFILE, EINVAL) rejects that send.
 *
 * Sockets: ZeroMQ's context allows `context.maxSockets` sockets in the process (1,023 by default);
 * one more and `new Dealer()` throws. This module sets the limit explicitly (CONTEXT_SOCKETS_MAX)
 * and every transport keeps at most `socketsMax` destination sockets (DESTINATION_SOCKETS_MAX by
 * default, a hard bound: the least recently used one is closed to make room; frames still in our
 * queue are lost as on any one-way network, and counted, and what ZeroMQ already holds gets
 * EVICTED_LINGER_MS to leave). A process runs at most a few
 * transports, so their sockets stay well below the context's limit. Reconnection to an
 * unreachable destination backs off exponentially up to RECONNECT_MAX_MS, so a thousand hostile
 * reply addresses cost little. Every socket has `linger: 0`: nothing queued keeps the process
 * alive after `close()`.
 *
 * Addresses: a transport binds `host` and advertises `advertise` (default: the bind host) as its
 * address, `tcp://<advertise>:<port>#key`: what it puts in every reply address, ring join and
 * ready line. A wildcard bind (`0.0.0.0`, `::`) with no `advertise` advertises the first
 * non-loopback interface address of the family (os.networkInterfaces(), in its order), and fails
 * TRANSPORT_BAD_ADDRESS when the machine has none: a wildcard never advertises loopback, which
 * no other machine could reach (docs/multi-host.md).
 *
 * Test hook: `LFAAS_TEST_SEND_DELAY_MS` (read once, when this module loads) delays every send by
 * that many milliseconds, order kept: the latency of a link between network namespaces, which this
 * kernel cannot add with `tc netem` (test/multi-host.test.ts). Unset, sends go at once.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Dealer, Router, context } from 'zeromq';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { parseTcpAddress } from './address.js';
import { reportFatal } from './crash-guard.js';
import { SEAL_PACKED, SealOpener, seal } from './frame-seal.js';
import { generateKeyPair, keyFromText, keyText, z85 } from './keys.js';
import type { KeyPair } from './keys.js';
import { releaseZapHandler, useZapHandler } from './zap.js';
import { FairInbox } from './fair-inbox.js';
import type { FairInboxCounters, FairInboxOptions } from './fair-inbox.js';
import type { FrameReceiver, Transport } from './transport.js';
import { SEND_DELAY_MS, advertisedHost, delayedSend } from './transport-options.js';
import type { RefusedFrameReceiver, TransportCounters, ZmqTransportOptions } from './transport-options.js';

// The options, counters and advertised host are shared with the node:net transport (net-transport.ts).
export { advertisedHost } from './transport-options.js';
export type { RefusedFrameReceiver, TransportCounters, ZmqTransportOptions } from './transport-options.js';

/** The ZeroMQ context's socket limit, set once for the process. */
export const CONTEXT_SOCKETS_MAX = 4096;
/** Destination sockets one transport keeps at most (a process runs a handful of transports). */
export const DESTINATION_SOCKETS_MAX = 512;
/** Receiving back to back for this long yields to the event loop once. */
const RECEIVE_TURN_MS = 5;
/** A receive that took longer than this waited for the socket (the event loop turned meanwhile). */
const RECEIVE_WAITED_MS = 0.05;
/**
 * How long an evicted socket may still deliver what ZeroMQ holds for it. A lingering socket still
 * counts against the context's limit until then: at most the evictions of this long.
 */
const EVICTED_LINGER_MS = 500;
/** Host-name lookups in progress at once, at most, hung ones included (a send to one more name is refused TRANSPORT_BUSY): lookups run on libuv's small thread pool, which the rest of the process needs too. */
const LOOKUPS_MAX = 2;
/**
 * Lookups in progress in this thread, over all its transports (a storage node has one per shard
 * and one for control): the thread pool is shared, so the bound is too.
 */
let lookupsInProgress = 0;
/** A host name not resolved within this is given up (its frames are lost, counted). */
const LOOKUP_TIMEOUT_MS = 2000;
/** The longest wait between attempts to reconnect to a destination that does not answer. */
const RECONNECT_MAX_MS = 2000;
/**
 * A connection whose handshake (CURVE and the ZAP answer included) has not finished by then is
 * dropped (ZeroMQ's default is 30 s): a half-open handshake holds a session, and one in flight
 * when a process closes its sockets can hold up the process's exit for that long.
 */
const HANDSHAKE_MAX_MS = 10_000;

if (context.maxSockets < CONTEXT_SOCKETS_MAX) context.maxSockets = CONTEXT_SOCKETS_MAX;


class Destination {
  queue: Uint8Array[] = [];
  waiters: (() => void)[] = [];
  queuedBytes = 0;
  writing = false;
  closed = false;

  constructor(
    readonly socket: Dealer,
    /** The seals every message to it starts with: one frame, or several packed (undefined: insecure). */
    readonly seals: { readonly parts: Uint8Array; readonly packed: Uint8Array } | undefined,
  ) {}
}

/** A node's ZeroMQ endpoint; see the file comment. Make one with `ZmqTransport.bind`. */
export class ZmqTransport implements Transport {
  readonly counters: TransportCounters = { framesSent: 0, batchesSent: 0, framesReceived: 0, sendErrors: 0, sendsRefused: 0, socketsEvicted: 0, framesRefused: 0, framesUnsealed: 0 };
  private readonly destinations = new Map<string, Destination>();
  private receiver: FrameReceiver = () => {};
  private refusedReceiver: RefusedFrameReceiver = () => {};
  private readonly inbox: FairInbox;
  private readonly sealOpener: SealOpener | undefined;
  private closed = false;
  private readonly queueFramesMax: number;
  private readonly queueBytesMax: number;
  private readonly socketsMax: number;
  private readonly batchFramesMax: number;
  private readonly sendHighWaterMark: number;

  private constructor(
    private readonly router: Router,
    readonly address: string,
    /** This endpoint's key pair; undefined when insecure. */
    readonly keyPair: KeyPair | undefined,
    options: ZmqTransportOptions,
  ) {
    this.sealOpener = keyPair === undefined ? undefined : new SealOpener(keyPair);
    this.queueFramesMax = options.queueFramesMax ?? 10_000;
    this.queueBytesMax = options.queueBytesMax ?? 64 * 1024 * 1024;
    this.socketsMax = Math.max(1, Math.min(options.socketsMax ?? DESTINATION_SOCKETS_MAX, CONTEXT_SOCKETS_MAX / 4));
    this.batchFramesMax = options.batchFramesMax ?? 1024;
    this.sendHighWaterMark = options.sendHighWaterMark ?? 100_000;
    this.inbox = new FairInbox((frame, peer) => {
      try {
        this.receiver(frame, peer);
      } catch (error) {
        // A receiver must not throw: this is a bug, for the process to decide (crash-guard.ts).
        reportFatal(error, `the frame receiver of ${this.address}`);
      }
    }, options.inbox);
    void this.receiveLoop();
  }

  /**
   * Binds a node's socket.
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
    // Checked before anything is bound: a wildcard with nothing to advertise fails here.
    const advertised = advertisedHost(host, options.advertise);
    const keyPair = options.keyPair === 'insecure' ? undefined : (options.keyPair ?? generateKeyPair());
    const router = new Router({ linger: 0, receiveHighWaterMark: 100_000, handshakeInterval: HANDSHAKE_MAX_MS });
    if (keyPair !== undefined) {
      await useZapHandler();
      router.curveServer = true;
      router.curveSecretKey = z85(keyPair.secretKey);
    }
    try {
      await router.bind(`tcp://${host}:${options.port === undefined || options.port === 0 ? '*' : options.port}`);
    } catch (cause) {
      router.close();
      if (keyPair !== undefined) releaseZapHandler();
      throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `cannot bind ${host}:${options.port ?? 0}: ${(cause as Error).message}`, { cause });
    }
    const port = /:(\d+)$/.exec(router.lastEndpoint ?? '')?.[1] ?? String(options.port ?? 0);
    const endpoint = `tcp://${advertised}:${port}`;
    return new ZmqTransport(router, keyPair === undefined ? endpoint : `${endpoint}#${keyText(keyPair.publicKey)}`, keyPair, options);
  }

  /** What the per-peer fairness of incoming frames counts. */
  get inboxCounters(): Readonly<FairInboxCounters> {
    return this.inbox.counters;
  }

  /** Whether `peer` in `onFrame` is the sender's public key, proven by the message's seal. */
  get verifiesPeers(): boolean {
    return this.keyPair !== undefined;
  }

  /** Destination sockets open now. */
  get socketCount(): number {
    return this.destinations.size;
  }

  onFrame(receiver: FrameReceiver): void {
    this.receiver = receiver;
  }

  /** Sets who hears of frames refused for their peer's full share (to answer them, count them). */
  onRefused(receiver: RefusedFrameReceiver): void {
    this.refusedReceiver = receiver;
  }

  /**
   * Queues `frame` for `to`; resolves once ZeroMQ has taken it (the frame is then in the socket's
   * buffer, not necessarily delivered), or when the transport closes with it still queued. Never
   * throws: every failure is a rejection with a typed error.
   */
  send(to: string, frame: Uint8Array): Promise<void> {
    // The test hook's delay, off the hot path when unset.
    if (SEND_DELAY_MS > 0 && !this.closed) return delayedSend((target, bytes) => this.sendNow(target, bytes), to, frame);
    return this.sendNow(to, frame);
  }

  private sendNow(to: string, frame: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'transport is closed'));
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
    const current = destination;
    const accepted = new Promise<void>((resolve) => current.waiters.push(resolve));
    if (!destination.writing) void this.writeLoop(destination);
    return accepted;
  }

  /** A connected socket for `to`, made room for; or the typed error that stops it. */
  private open(to: string): Destination | LfaasError {
    const parsed = parseTcpAddress(to);
    if (parsed === undefined) return new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `not a tcp://host:port[#key] address: ${JSON.stringify(to.slice(0, 320))}`);
    if (this.keyPair !== undefined && parsed.key === undefined) return new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `${JSON.stringify(to.slice(0, 300))} names no key (tcp://host:port#key): this endpoint is encrypted (CURVE) and connects only to keyed addresses`);
    // ZeroMQ resolves a host name synchronously in its one I/O thread (and again at every
    // reconnection): one name whose DNS server does not answer stalls every socket of the process
    // for seconds. So names are resolved here, asynchronously and bounded, and ZeroMQ only ever
    // connects to an IP address.
    const literal = isIP(parsed.host.replace(/^\[|\]$/g, '')) !== 0;
    if (!literal && lookupsInProgress >= LOOKUPS_MAX) return new LfaasError(ErrorCode.TRANSPORT_BUSY, `${lookupsInProgress} host names are being resolved; cannot send to ${to} now`);
    while (this.destinations.size >= this.socketsMax) this.evictLeastRecentlyUsed();
    const key = this.keyPair === undefined ? undefined : keyFromText(parsed.key!);
    // The seals first: a key X25519 refuses (a low-order point, well-formed as text) fails this
    // destination with a typed error, before a socket is made.
    let seals: { readonly parts: Uint8Array; readonly packed: Uint8Array } | undefined;
    try {
      seals = this.keyPair === undefined ? undefined : { parts: seal(this.keyPair, key!), packed: seal(this.keyPair, key!, true) };
    } catch (cause) {
      return new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `${JSON.stringify(to.slice(0, 300))} names a key no secret can be agreed with: ${(cause as Error).message}`, { cause });
    }
    let socket: Dealer | undefined;
    try {
      socket = new Dealer({ linger: 0, sendHighWaterMark: this.sendHighWaterMark, immediate: false, reconnectMaxInterval: RECONNECT_MAX_MS, handshakeInterval: HANDSHAKE_MAX_MS });
      if (this.keyPair !== undefined) {
        socket.curveServerKey = z85(key!);
        socket.curvePublicKey = z85(this.keyPair.publicKey);
        socket.curveSecretKey = z85(this.keyPair.secretKey);
      }
      if (literal) socket.connect(`tcp://${parsed.host}:${parsed.port}`);
    } catch (cause) {
      // EMFILE (no sockets or descriptors left), EINVAL (an address ZeroMQ reads differently):
      // this destination fails, the node goes on.
      socket?.close();
      const code = (cause as { code?: string }).code;
      return new LfaasError(code === 'EINVAL' ? ErrorCode.TRANSPORT_BAD_ADDRESS : ErrorCode.TRANSPORT_BUSY, `cannot connect to ${to}: ${(cause as Error).message}`, { cause });
    }
    const destination = new Destination(socket, seals);
    this.destinations.set(to, destination);
    // Until a name is resolved, the socket has no peer and its first send waits: frames queue.
    if (!literal) void this.resolveAndConnect(to, parsed.host, parsed.port, destination);
    return destination;
  }

  /** Resolves `host` (bounded in time) and connects the destination's socket to its address; on failure the destination is dropped. */
  private async resolveAndConnect(to: string, host: string, port: number, destination: Destination): Promise<void> {
    // The slot is held until the lookup itself ends, not until this send gives up on it: a
    // lookup that hangs (no resolver reachable) keeps one of libuv's four pool threads blocked,
    // and counting it free after the timeout let hung lookups take them all, stalling the disk
    // and the logs of the whole process.
    lookupsInProgress++;
    const pending = lookup(host).then(
      (found) => found.address,
      () => undefined,
    );
    void pending.finally(() => lookupsInProgress--);
    const address = await Promise.race([pending, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), LOOKUP_TIMEOUT_MS).unref())]);
    if (destination.closed) return;
    if (address !== undefined) {
      try {
        destination.socket.connect(`tcp://${isIP(address) === 6 ? `[${address}]` : address}:${port}`);
        return;
      } catch {
        // Fall through: this destination fails.
      }
    }
    this.counters.sendErrors += destination.queue.length + (destination.writing ? 1 : 0);
    if (this.destinations.get(to) === destination) this.destinations.delete(to);
    this.closeDestination(destination);
  }

  private evictLeastRecentlyUsed(): void {
    const oldest = this.destinations.entries().next();
    if (oldest.done === true) return;
    const [address, destination] = oldest.value;
    this.destinations.delete(address);
    this.counters.socketsEvicted++;
    this.counters.sendErrors += destination.queue.length;
    // What ZeroMQ already holds for this destination (a connection still being made) gets a
    // moment to leave: with linger 0 it would be dropped, and a node whose fan-out exceeds the
    // cache (a ring pushed to more peers than it holds sockets) would lose every answer.
    this.closeDestination(destination, EVICTED_LINGER_MS);
  }

  private closeDestination(destination: Destination, lingerMs = 0): void {
    destination.closed = true;
    for (const resolve of destination.waiters) resolve();
    destination.waiters = [];
    destination.queue = [];
    destination.queuedBytes = 0;
    if (lingerMs > 0) destination.socket.linger = lingerMs;
    destination.socket.close();
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
          const seals = destination.seals;
          // CURVE encrypts each part of a message on its own (a MAC and a nonce each): a secure
          // batch goes as one packed part, which measured 27% more frames a second at 8 a message.
          await destination.socket.send(seals === undefined ? batch : batch.length === 1 ? [seals.parts, batch[0]!] : [seals.packed, pack(batch)]);
          this.counters.framesSent += batch.length;
          this.counters.batchesSent++;
        } catch {
          // A socket closed under us (transport closing, eviction): the frames are lost, as on any
          // one-way network; callers above rely on timeouts and retries.
          this.counters.sendErrors += batch.length;
        }
        for (const resolve of waiters) resolve();
      }
    } finally {
      destination.writing = false;
    }
  }

  private async receiveLoop(): Promise<void> {
    // When the current run of back-to-back receives began: a receive that had to wait for the
    // socket let the event loop turn meanwhile, so it starts a new run (an idle node never yields).
    let turnStarted = performance.now();
    for (;;) {
      let parts: Buffer[];
      try {
        // Backpressure: with the inbox full, stop reading; ZeroMQ's buffers then fill per connection.
        if (this.inbox.full) await this.inbox.whenRoom();
        if (this.closed) return;
        const asked = performance.now();
        parts = await this.router.receive();
        const received = performance.now();
        if (received - asked > RECEIVE_WAITED_MS) turnStarted = received;
      } catch {
        return; // The socket was closed.
      }
      // The first part is the routing id of the connection the message came on; on a secure
      // transport the seal follows, and the peer is the key it proves.
      let peer = '';
      let first = 1;
      if (this.keyPair === undefined) peer = parts[0]!.toString('hex');
      else {
        const sender = parts.length > 2 ? this.sealOpener!.open(parts[1]!) : undefined;
        if (sender === undefined) {
          this.counters.framesUnsealed += Math.max(1, parts.length - 2);
          first = parts.length;
        } else {
          peer = sender;
          first = 2;
          if (parts[1]![0] === SEAL_PACKED) {
            const unpacked = parts.length === 3 ? unpack(parts[2]!) : undefined;
            if (unpacked === undefined) {
              this.counters.framesUnsealed += parts.length - 2;
              first = parts.length;
            } else parts = [parts[0]!, parts[1]!, ...unpacked];
          }
        }
      }
      for (let index = first; index < parts.length; index++) {
        const frame = parts[index]!;
        this.counters.framesReceived++;
        if (!this.inbox.offer(peer, frame)) {
          this.counters.framesRefused++;
          try {
            this.refusedReceiver(frame, peer);
          } catch (error) {
            reportFatal(error, `the refused-frame receiver of ${this.address}`);
          }
        }
      }
      // zeromq resolves a receive at once while messages wait, in a microtask: without a yield now
      // and then, a flood would starve timers and every other socket of the process.
      if (performance.now() - turnStarted >= RECEIVE_TURN_MS) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        turnStarted = performance.now();
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const destination of this.destinations.values()) this.closeDestination(destination);
    this.destinations.clear();
    this.router.close();
    if (this.keyPair !== undefined) releaseZapHandler();
  }
}

/** Frames packed in one part: each as a 4-byte big-endian length and its bytes. */
function pack(frames: readonly Uint8Array[]): Buffer {
  let bytes = 0;
  for (const frame of frames) bytes += 4 + frame.byteLength;
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const frame of frames) {
    out.writeUInt32BE(frame.byteLength, at);
    out.set(frame, at + 4);
    at += 4 + frame.byteLength;
  }
  return out;
}

/** The frames of a packed part (views, no copies), or undefined when its lengths do not add up. */
function unpack(part: Buffer): Buffer[] | undefined {
  const frames: Buffer[] = [];
  let at = 0;
  while (at < part.byteLength) {
    if (part.byteLength - at < 4) return undefined;
    const length = part.readUInt32BE(at);
    if (length > part.byteLength - at - 4) return undefined;
    frames.push(part.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return frames.length === 0 ? undefined : frames;
}

let warnedInsecure = false;

/**
 * The key pair a client endpoint binds with: `given` if any; otherwise a fresh one, or plain
 * ZeroMQ (with a warning, once) when none of the cluster's `addresses` names a key: the cluster
 * runs `--insecure`, and a secure client could not reach it.
 */
export function clientKeyPair(addresses: readonly string[], given?: KeyPair | 'insecure'): KeyPair | 'insecure' {
  if (given !== undefined) return given;
  const parsed = addresses.map((address) => parseTcpAddress(address));
  if (parsed.length === 0 || parsed.some((address) => address === undefined || address.key !== undefined)) return generateKeyPair();
  if (!warnedInsecure) {
    warnedInsecure = true;
    process.emitWarning('the cluster\'s addresses name no keys: talking to it in plain (an --insecure cluster: nothing is encrypted or authenticated)', { code: 'LFAAS_INSECURE' });
  }
  return 'insecure';
}
