/**
 * The frame seal: who sent a message, proven per message.
 *
 * CURVE encrypts and authenticates a connection, but ZeroMQ (as zeromq.js exposes it) does not
 * tell the receiving socket which key the connection was made with. So each multipart message a
 * transport sends starts with a seal part: a version byte, the sender's public key and a 16-byte
 * HMAC-SHA256 over the message's frames, keyed by the secret the sender's key pair shares with
 * the receiver's public key (X25519, keys.ts). Only the holder of the sender's secret key can
 * make a seal the receiver accepts for that key, and a seal made for one receiver is worthless
 * at any other. Replays within a connection are not possible without the connection's CURVE
 * keys; across connections the receivers differ.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { KEY_BYTES, sharedSecret } from './keys.js';
import type { KeyPair } from './keys.js';

const VERSION = 1;
const MAC_BYTES = 16;
export const SEAL_BYTES = 1 + KEY_BYTES + MAC_BYTES;

function mac(secret: Buffer, frames: readonly Uint8Array[]): Buffer {
  const hmac = createHmac('sha256', secret);
  for (const frame of frames) hmac.update(frame);
  return hmac.digest().subarray(0, MAC_BYTES);
}

/** The seal of `frames` from `sender` to the holder of `receiver`. */
export function seal(sender: KeyPair, receiver: Uint8Array, frames: readonly Uint8Array[]): Buffer {
  const out = Buffer.allocUnsafe(SEAL_BYTES);
  out[0] = VERSION;
  out.set(sender.publicKey, 1);
  mac(sharedSecret(sender, receiver), frames).copy(out, 1 + KEY_BYTES);
  return out;
}

/**
 * The sender's public key if `sealPart` is a valid seal of `frames` for `receiver`; undefined
 * for anything else (wrong length or version, a MAC that does not match, a key X25519 refuses).
 */
export function openSeal(receiver: KeyPair, sealPart: Uint8Array, frames: readonly Uint8Array[]): Uint8Array | undefined {
  if (sealPart.byteLength !== SEAL_BYTES || sealPart[0] !== VERSION) return undefined;
  const sender = sealPart.subarray(1, 1 + KEY_BYTES);
  let secret: Buffer;
  try {
    secret = sharedSecret(receiver, sender);
  } catch {
    return undefined; // A low-order point: no shared secret.
  }
  const expected = mac(secret, frames);
  return timingSafeEqual(expected, sealPart.subarray(1 + KEY_BYTES)) ? Uint8Array.from(sender) : undefined;
}
