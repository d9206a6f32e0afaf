/**
 * What the tcp:// transports share (the ZeroMQ one, zmq-transport.ts, and the node:net one,
 * net-transport.ts): their options, their counters, and the host a transport advertises in its
 * address. Moved here from zmq-transport.ts, which re-exports them unchanged.
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import type { FairInboxOptions } from './fair-inbox.js';
import type { KeyPair } from './keys.js';

/** Whether `host` is a wildcard (every interface). */
function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '*';
}

/**
 * The host a transport bound on `host` advertises: `advertise` if given, the bind host when it is
 * not a wildcard, else the first non-loopback interface address of the family; bracketed when IPv6.
 */
export function advertisedHost(host: string, advertise?: string): string {
  let chosen = advertise;
  if (chosen === undefined || chosen === '') {
    if (!isWildcard(host)) chosen = host;
    else {
      const family = host === '0.0.0.0' || host === '*' ? 'IPv4' : 'IPv6';
      const found = Object.values(networkInterfaces()).flatMap((list) => list ?? []).find((info) => !info.internal && info.family === family && !(family === 'IPv6' && info.address.startsWith('fe80')));
      if (found === undefined) throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `bound ${host} (every interface) but this machine has no non-loopback ${family} address to advertise: pass --advertise <address others reach this machine at>`);
      chosen = found.address;
    }
  }
  const bare = chosen.replace(/^\[|\]$/g, '');
  if (isWildcard(bare)) throw new LfaasError(ErrorCode.TRANSPORT_BAD_ADDRESS, `cannot advertise ${chosen}: nobody can connect to a wildcard address`);
  return isIP(bare) === 6 ? `[${bare}]` : bare;
}

export interface ZmqTransportOptions {
  /** Interface to bind; loopback by default. */
  readonly host?: string;
  /**
   * The host others reach this endpoint at, in its address (default: `host`; for a wildcard
   * `host`, the first non-loopback interface address: see the file comment).
   */
  readonly advertise?: string;
  /** Port to bind; 0 picks a free one. */
  readonly port?: number;
  /** Frames queued per destination before sends are refused. */
  readonly queueFramesMax?: number;
  /** Bytes queued per destination before sends are refused. */
  readonly queueBytesMax?: number;
  /** Destination sockets kept open at most; the least recently used one is closed to make room. */
  readonly socketsMax?: number;
  /** Frames per multipart message, at most. */
  readonly batchFramesMax?: number;
  /**
   * ZeroMQ's own buffer per destination socket, in messages (each frame is one message part), before
   * a send waits; beyond it frames wait in our bounded queue.
   */
  readonly sendHighWaterMark?: number;
  /** The per-peer fairness of incoming frames (fair-inbox.ts). */
  readonly inbox?: FairInboxOptions;
  /**
   * The endpoint's key pair (CURVE on every socket, every message sealed: see the file comment);
   * a fresh one when absent. `insecure`: plain ZeroMQ, no keys, peers unknown.
   */
  readonly keyPair?: KeyPair | 'insecure';
}

/** What a transport counts; exposed for metrics. */
export interface TransportCounters {
  framesSent: number;
  batchesSent: number;
  framesReceived: number;
  /** Frames lost after they were accepted: a socket closed under them (eviction, close). */
  sendErrors: number;
  /** Sends refused with a typed error: a bad address, a full queue, a socket ZeroMQ would not make. */
  sendsRefused: number;
  /** Destination sockets closed to make room for another. */
  socketsEvicted: number;
  /** Frames refused because their peer's share of the incoming queue was full. */
  framesRefused: number;
  /** Frames dropped because their message's seal did not prove a sender (secure transports). */
  framesUnsealed: number;
}

/** A frame a peer sent beyond its share of the incoming queue (see `onRefused`). */
export type RefusedFrameReceiver = (frame: Uint8Array, peer: string) => void;

/**
 * Test hook of both transports: with `LFAAS_TEST_SEND_DELAY_MS` (read once, when this module
 * loads; at most 10 s) every send waits this long first (the multi-host test's link delay); 0
 * when unset.
 */
export const SEND_DELAY_MS = ((): number => {
  const value = Number(process.env['LFAAS_TEST_SEND_DELAY_MS'] ?? '');
  return Number.isFinite(value) && value > 0 ? Math.min(value, 10_000) : 0;
})();

/**
 * `send(to, frame)` after the test hook's delay (timers of one duration fire in the order they
 * were set: the order of sends is kept).
 */
export function delayedSend(send: (to: string, frame: Uint8Array) => Promise<void>, to: string, frame: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => setTimeout(() => send(to, frame).then(resolve, reject), SEND_DELAY_MS));
}
