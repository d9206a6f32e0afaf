/**
 * Key material of the encrypted transport: Curve25519 key pairs (ZeroMQ CURVE's keys are X25519
 * keys), their text forms, and the secret two keys share.
 *
 * - In addresses and key files a key is 43 characters of unpadded base64url ({@link keyText}); in
 *   ZeroMQ's socket options it is Z85 (40 characters, {@link z85}).
 * - {@link sharedSecret}: X25519 of one side's secret and the other's public key (the same on
 *   both sides), through node:crypto; the frame seal (frame-seal.ts) keys its tokens with it.
 */
import { createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import { ErrorCode, LfaasError } from '../lattices/index.js';

export const KEY_BYTES = 32;
/** Characters of a key in base64url without padding. */
export const KEY_TEXT_LENGTH = 43;
const KEY_TEXT = /^[A-Za-z0-9_-]{43}$/;

export interface KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/** A fresh key pair. */
export function generateKeyPair(): KeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  return { publicKey: Buffer.from(jwk.x!, 'base64url'), secretKey: Buffer.from(jwk.d!, 'base64url') };
}

export function keyText(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64url');
}

/** The key a {@link keyText} names; throws TRANSPORT_BAD_ADDRESS for anything else. */
export function keyFromText(text: string): Uint8Array {
  if (!KEY_TEXT.test(text)) throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `not a key (43 base64url characters): ${JSON.stringify(text.slice(0, 60))}`);
  const key = Buffer.from(text, 'base64url');
  // The last character carries 4 bits of padding: only one text names each key.
  if (key.toString('base64url') !== text) throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, 'not a canonical key text');
  return key;
}

export function isKeyText(text: string): boolean {
  return KEY_TEXT.test(text) && Buffer.from(text, 'base64url').toString('base64url') === text;
}

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';

/** Z85 (ZeroMQ RFC 32) of bytes whose length is a multiple of 4. */
export function z85(bytes: Uint8Array): string {
  if (bytes.byteLength % 4 !== 0) throw new RangeError('z85 needs a multiple of 4 bytes');
  let out = '';
  for (let at = 0; at < bytes.byteLength; at += 4) {
    let value = ((bytes[at]! << 24) >>> 0) + (bytes[at + 1]! << 16) + (bytes[at + 2]! << 8) + bytes[at + 3]!;
    const chunk: string[] = [];
    for (let i = 0; i < 5; i++) {
      chunk.unshift(Z85[value % 85]!);
      value = Math.floor(value / 85);
    }
    out += chunk.join('');
  }
  return out;
}

/**
 * The secret `mine` (a key pair) shares with the holder of `theirs`: SHA-256 over a label and
 * their X25519 result. Not cached here: deriving one costs tens of microseconds, and its users
 * (the seals, frame-seal.ts) keep what they derive from it.
 */
export function sharedSecret(mine: KeyPair, theirs: Uint8Array): Buffer {
  const privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: keyText(mine.secretKey), x: keyText(mine.publicKey) }, format: 'jwk' });
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: keyText(theirs) }, format: 'jwk' });
  return createHash('sha256').update('lfaas frame seal v1').update(diffieHellman({ privateKey, publicKey })).digest();
}
