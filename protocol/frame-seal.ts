/**
 * The seal: which key sent a message.
 *
 * CURVE encrypts and authenticates each connection, but ZeroMQ (as zeromq.js exposes it) does not
 * tell the receiving socket which key a connection was made with. So each multipart message a
 * secure transport sends starts with a seal part: a version byte, the sender's public key, and a
 * 16-byte token, HMAC-SHA256 of a label keyed by the secret the sender's key pair shares with the
 * receiver's key (X25519, keys.ts).
 *
 * Only the two holders of that pair's secrets can compute the token, and it only ever travels
 * inside CURVE connections to its receiver, where no third party can read it; the token for one
 * receiver is worthless at another. What the message says is protected by CURVE itself (each
 * frame is authenticated encryption), so the token need not cover the frames, and it is the same
 * for every message of a pair: computed once per pair, a seal costs a lookup per message.
 * (A first version MACed every message's frames: 8 us a round trip more, and half the
 * throughput at 64 requests in flight, measured with the `wire` bench.)
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { KEY_BYTES, keyText, sharedSecret } from './keys.js';
import type { KeyPair } from './keys.js';

/** The seal's first byte: the message's frames follow as parts, or packed in one part. */
export const SEAL_PARTS = 2;
export const SEAL_PACKED = 3;
const TOKEN_BYTES = 16;
export const SEAL_BYTES = 1 + KEY_BYTES + TOKEN_BYTES;
const CACHE_MAX = 4096;

function token(secret: Buffer): Buffer {
  return createHmac('sha256', secret).update('lfaas seal v2').digest().subarray(0, TOKEN_BYTES);
}

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(key, value);
  return value;
}

/** Seals by sender and receiver public keys (latin1 of the 64 bytes). */
const seals = new Map<string, Buffer>();

/**
 * The seal `sender` puts on every message to the holder of `receiver`; `packed` says the
 * message's frames follow packed in one part (see the transport) rather than one part each.
 */
export function seal(sender: KeyPair, receiver: Uint8Array, packed = false): Buffer {
  const id = Buffer.from(sender.publicKey).toString('latin1') + Buffer.from(receiver).toString('latin1') + (packed ? 'p' : '');
  const cached = seals.get(id);
  if (cached !== undefined) return cached;
  const out = Buffer.allocUnsafe(SEAL_BYTES);
  out[0] = packed ? SEAL_PACKED : SEAL_PARTS;
  out.set(sender.publicKey, 1);
  token(sharedSecret(sender, receiver)).copy(out, 1 + KEY_BYTES);
  return remember(seals, id, out);
}

/** What a receiver knows of a sender key it has seen: the token it must show, and its text. */
interface Known {
  readonly token: Buffer;
  readonly text: string;
}

/**
 * A receiver's side of seals: opens them, remembering each sender key it has seen (bounded), so
 * a message costs a lookup and a 16-byte comparison.
 */
export class SealOpener {
  private readonly known = new Map<string, Known | null>();

  constructor(private readonly receiver: KeyPair) {}

  /**
   * The sender's key, as text (keys.ts), if `sealPart` is a valid seal for this receiver;
   * undefined for anything else (wrong length or version, a token that does not match, a key
   * X25519 refuses).
   */
  open(sealPart: Uint8Array): string | undefined {
    if (sealPart.byteLength !== SEAL_BYTES || (sealPart[0] !== SEAL_PARTS && sealPart[0] !== SEAL_PACKED)) return undefined;
    const part = Buffer.isBuffer(sealPart) ? sealPart : Buffer.from(sealPart.buffer, sealPart.byteOffset, sealPart.byteLength);
    const id = part.toString('latin1', 1, 1 + KEY_BYTES);
    let entry = this.known.get(id);
    if (entry === undefined) {
      const sender = Uint8Array.from(part.subarray(1, 1 + KEY_BYTES));
      let secret: Buffer | undefined;
      try {
        secret = sharedSecret(this.receiver, sender);
      } catch {
        secret = undefined; // A low-order point: no shared secret.
      }
      entry = remember(this.known, id, secret === undefined ? null : { token: token(secret), text: keyText(sender) });
    }
    if (entry === null) return undefined;
    return timingSafeEqual(entry.token, part.subarray(1 + KEY_BYTES)) ? entry.text : undefined;
  }
}

/** {@link SealOpener.open} without a receiver's cache kept (tests, one-off checks). */
export function openSeal(receiver: KeyPair, sealPart: Uint8Array): string | undefined {
  return new SealOpener(receiver).open(sealPart);
}
