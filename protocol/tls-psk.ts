/**
 * TLS with pre-shared keys for the node:net transport (net-transport.ts): standard TLS 1.2 with
 * one suite, ECDHE-PSK-CHACHA20-POLY1305 (RFC 7905): forward secrecy from the ephemeral ECDHE,
 * mutual authentication from the PSK, ChaCha20-Poly1305 records. No certificates (Node 20 accepts a PSK-only suite
 * without one; measured on 20.20, not yet on 24), no home-made cryptography.
 *
 * The PSK of a connection is what its two endpoints' X25519 keys share (keys.ts `sharedSecret`,
 * the same on both sides), through HKDF-SHA256 with its own label: only the holder of the client's
 * secret key and the holder of the server's secret key can derive it. The client's PSK identity is
 * its public key text (43 characters); the server derives the PSK from that key and its own secret
 * key, so a finished handshake proves the client holds the key it named, and the client, which
 * took the server's public key from the address it dialled, knows it reached that key's holder.
 * The server asks the process's policy (zap-policy.ts) first: a refused key gets no PSK, and the
 * handshake fails before any application byte is read.
 */
import { hkdfSync } from 'node:crypto';
import { TLSSocket, connect, createSecureContext } from 'node:tls';
import type { SecureContext, TLSSocketOptions } from 'node:tls';
import type { Socket } from 'node:net';
import { isKeyText, keyFromText, keyText, sharedSecret } from './keys.js';
import type { KeyPair } from './keys.js';
import { zapAllows } from './zap-policy.js';

/** The one suite offered and accepted. */
export const PSK_CIPHERS = 'ECDHE-PSK-CHACHA20-POLY1305';
/** The HKDF label of the PSK: a key derived for another purpose never doubles as this one. */
const PSK_LABEL = 'lfaas tls-psk v1';
/** Bytes of a PSK. */
const PSK_BYTES = 32;

/**
 * The PSK `mine` shares with the holder of `theirs` (the same from either side). Throws for a key
 * X25519 derives nothing with (a low-order point, such as all zeros): callers refuse such keys.
 *
 * @example
 * ```ts
 * pskFor(client, server.publicKey).equals(pskFor(server, client.publicKey)); // true
 * ```
 */
export function pskFor(mine: KeyPair, theirs: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', sharedSecret(mine, theirs), Buffer.alloc(0), PSK_LABEL, PSK_BYTES));
}

/** The TLS settings of both sides: TLS 1.2 only (PSK this way is a 1.2 feature), the one suite. */
export function pskSecureContext(): SecureContext {
  return createSecureContext({ ciphers: PSK_CIPHERS, minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
}

/**
 * Starts the server side of TLS on an accepted connection. `onPeer` hears the client's key text
 * when the policy lets it through and a PSK is offered (the handshake then still has to finish:
 * wait for the socket's `secure` event before trusting it).
 */
export function acceptPsk(raw: Socket, keyPair: KeyPair, context: SecureContext, onPeer: (peerKeyText: string) => void): TLSSocket {
  // Node's TLSSocket takes `pskCallback` for a server socket as tls.createServer does (measured on
  // Node 20), though @types/node lists it only on the server's options.
  const options: TLSSocketOptions & { pskCallback: (socket: TLSSocket, identity: string) => Buffer | null } = {
    isServer: true,
    secureContext: context,
    pskCallback: (_socket, identity) => {
      // Only a canonical key text; its key must pass the process's policy.
      if (!isKeyText(identity)) return null;
      const key = keyFromText(identity);
      if (!zapAllows(key)) return null;
      let psk: Buffer;
      try {
        psk = pskFor(keyPair, key);
      } catch {
        return null; // A low-order point: X25519 derives nothing with it.
      }
      onPeer(identity);
      return psk;
    },
  };
  return new TLSSocket(raw, options);
}

/** Starts the client side of TLS on a connected socket, to the holder of `serverKey`; `psk` is `pskFor(keyPair, serverKey)`. */
export function dialPsk(raw: Socket, keyPair: KeyPair, psk: Buffer, context: SecureContext): TLSSocket {
  const identity = keyText(keyPair.publicKey);
  return connect({
    socket: raw,
    secureContext: context,
    pskCallback: () => ({ identity, psk }),
    // No certificate in a PSK suite; the PSK itself authenticates the server.
    checkServerIdentity: () => undefined,
  });
}
