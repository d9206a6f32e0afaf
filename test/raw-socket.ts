/**
 * A raw DEALER socket to a node, for tests that send hand-made frames (hostile ones included):
 * a CURVE client with a key pair of its own (a fresh one: not a member) connected to the node's
 * keyed address, and every message sealed as the transport seals it (protocol/frame-seal.ts), so
 * the frames reach the node's decoder as an authenticated non-member's. `unsealed` skips the
 * seal (the node drops such a message before decoding it).
 */
import { Dealer } from 'zeromq';
import { generateKeyPair, keyFromText, parseTcpAddress, seal, z85 } from '../protocol/index.js';
import type { KeyPair } from '../protocol/index.js';

export class RawSocket {
  readonly socket: Dealer;
  private readonly key: Uint8Array;

  constructor(
    address: string,
    options: { keyPair?: KeyPair; sendHighWaterMark?: number; sendTimeout?: number } = {},
    readonly keyPair: KeyPair = options.keyPair ?? generateKeyPair(),
  ) {
    const parsed = parseTcpAddress(address);
    if (parsed?.key === undefined) throw new Error(`not a keyed tcp address: ${address}`);
    this.key = keyFromText(parsed.key);
    this.socket = new Dealer({
      linger: 0,
      sendHighWaterMark: options.sendHighWaterMark ?? 100_000,
      ...(options.sendTimeout === undefined ? {} : { sendTimeout: options.sendTimeout }),
      curveServerKey: z85(this.key),
      curvePublicKey: z85(this.keyPair.publicKey),
      curveSecretKey: z85(this.keyPair.secretKey),
    });
    this.socket.connect(`tcp://${parsed.host}:${parsed.port}`);
  }

  /** Sends one message of `parts` (one frame or several), sealed unless `unsealed`. */
  async send(parts: Uint8Array | readonly Uint8Array[], options: { unsealed?: boolean } = {}): Promise<void> {
    const frames = parts instanceof Uint8Array ? [parts] : [...parts];
    await this.socket.send(options.unsealed === true ? frames : [seal(this.keyPair, this.key), ...frames]);
  }

  close(): void {
    this.socket.close();
  }
}
