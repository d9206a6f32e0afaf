/**
 * A raw sender to a node, for tests that send hand-made frames (hostile ones included), on the
 * transport the cluster runs (`LFAAS_TRANSPORT`, node:net by default), with a key pair of its own
 * (a fresh one: not a member), so the frames reach the node's decoder as an authenticated
 * non-member's:
 * - node:net: a TCP connection with the transport's greeting and TLS-PSK as that key, then frames
 *   as the transport writes them (a 4-byte length, the bytes), the parts of one send in one
 *   write. Nothing is checked on the way out: a frame above the receiver's limit is sent as it is
 *   (the receiver closes the connection at its length; the next send connects again, as a ZeroMQ
 *   socket reconnects).
 * - ZeroMQ: a CURVE DEALER socket, every message sealed as the transport seals it.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Dealer } from 'zeromq';
import { dialPsk, generateKeyPair, keyFromText, parseTcpAddress, pskFor, pskSecureContext, seal, transportKind, z85 } from '../protocol/index.js';
import type { KeyPair } from '../protocol/index.js';

/** The greeting of a TLS-PSK connection of the node:net transport (protocol/net-transport.ts). */
const TLS_GREETING = Buffer.from([0x4c, 0x46, 0x4e, 0x31, 1]);

export interface RawSocketOptions {
  readonly keyPair?: KeyPair;
  /** ZeroMQ: messages buffered before a send waits. */
  readonly sendHighWaterMark?: number;
  /** How long one send may wait for the connection or for room, in ms (default: no bound on ZeroMQ, 30 s on node:net). */
  readonly sendTimeout?: number;
}

export class RawSocket {
  readonly keyPair: KeyPair;
  private readonly key: Uint8Array;
  private readonly host: string;
  private readonly port: number;
  private readonly dealer: Dealer | undefined;
  private connection: Promise<TLSSocket> | undefined;
  private closed = false;

  constructor(
    address: string,
    private readonly options: RawSocketOptions = {},
  ) {
    const parsed = parseTcpAddress(address);
    if (parsed?.key === undefined) throw new Error(`not a keyed tcp address: ${address}`);
    this.key = keyFromText(parsed.key);
    this.host = parsed.host;
    this.port = parsed.port;
    this.keyPair = options.keyPair ?? generateKeyPair();
    if (transportKind() === 'zmq') {
      this.dealer = new Dealer({
        linger: 0,
        sendHighWaterMark: options.sendHighWaterMark ?? 100_000,
        ...(options.sendTimeout === undefined ? {} : { sendTimeout: options.sendTimeout }),
        curveServerKey: z85(this.key),
        curvePublicKey: z85(this.keyPair.publicKey),
        curveSecretKey: z85(this.keyPair.secretKey),
      });
      this.dealer.connect(`tcp://${parsed.host}:${parsed.port}`);
    }
  }

  /** Sends one message of `parts` (one frame or several, sent together). */
  async send(parts: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const frames = parts instanceof Uint8Array ? [parts] : [...parts];
    if (this.dealer !== undefined) {
      await this.dealer.send([seal(this.keyPair, this.key), ...frames]);
      return;
    }
    const timeoutMs = this.options.sendTimeout ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`a send to ${this.host}:${this.port} took over ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.write(frames), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.closed = true;
    this.dealer?.close();
    void this.connection?.then((socket) => socket.destroy(), () => undefined);
  }

  private async write(frames: readonly Uint8Array[]): Promise<void> {
    const socket = await this.connected();
    const chunks: Buffer[] = [];
    for (const frame of frames) {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(frame.byteLength, 0);
      chunks.push(length, Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
    }
    if (socket.write(Buffer.concat(chunks))) return;
    // The kernel's buffer is full: wait for room, or for the connection to go (its frames are lost, as ZeroMQ's would be).
    await new Promise<void>((resolve) => {
      const done = (): void => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.once('drain', done);
      socket.once('close', done);
    });
  }

  /** The open connection, or a new one (the node closes one that broke its framing). */
  private connected(): Promise<TLSSocket> {
    if (this.closed) return Promise.reject(new Error('the raw socket is closed'));
    if (this.connection !== undefined) return this.connection;
    const made = new Promise<TLSSocket>((resolve, reject) => {
      const raw: Socket = connect(this.port, this.host);
      raw.once('error', reject);
      raw.once('connect', () => {
        raw.write(TLS_GREETING);
        const secure = dialPsk(raw, this.keyPair, pskFor(this.keyPair, this.key), pskSecureContext());
        secure.on('error', () => secure.destroy());
        secure.once('close', () => {
          if (this.connection === made) this.connection = undefined;
          reject(new Error('the connection closed during its handshake'));
        });
        secure.once('secureConnect', () => resolve(secure));
      });
    });
    this.connection = made;
    made.catch(() => {
      if (this.connection === made) this.connection = undefined;
    });
    return made;
  }
}
