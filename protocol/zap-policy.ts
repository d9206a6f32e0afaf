/**
 * The process's connection policy: which public keys may finish a handshake with any secure
 * transport of this process. ZeroMQ's ZAP handler (zap.ts) asks it for every CURVE handshake, the
 * node:net transport (net-transport.ts) for every TLS-PSK handshake, through {@link zapAllows}.
 * Kept apart from zap.ts so that asking it loads no ZeroMQ.
 *
 * By default every key may connect (clients are not members and come with keys of their own; what
 * a key may then do is decided per message). A process with a member list sets a policy that
 * refuses the keys that list revoked.
 */
import { reportFatal } from './crash-guard.js';

/** Whether a connecting key may finish its handshake. */
export type ZapPolicy = (key: Uint8Array) => boolean;

/** Handshakes the policy let through and refused, over every secure transport of the process. */
export const zapCounters = { accepted: 0, refused: 0 };

let policy: ZapPolicy = () => true;

/**
 * Sets the process's policy (replacing the earlier one).
 *
 * @example
 * ```ts
 * setZapPolicy((key) => !revoked.has(keyText(key)));
 * ```
 */
export function setZapPolicy(next: ZapPolicy): void {
  policy = next;
}

/**
 * Whether `key` (a 32-byte public key) may finish a handshake, by the current policy; counted in
 * {@link zapCounters}. A key of another length is refused; a policy that throws is a bug
 * (crash-guard.ts) and refuses.
 *
 * @example
 * ```ts
 * if (!zapAllows(clientKey)) return null; // the TLS handshake fails
 * ```
 */
export function zapAllows(key: Uint8Array): boolean {
  let allowed = false;
  try {
    allowed = key.byteLength === 32 && policy(key);
  } catch (error) {
    reportFatal(error, 'the ZAP policy');
  }
  if (allowed) zapCounters.accepted++;
  else zapCounters.refused++;
  return allowed;
}
