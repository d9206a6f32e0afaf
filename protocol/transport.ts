/**
 * The one interface every transport implements (ZeroMQ for real processes, in-memory for tests and
 * the deterministic simulator). Both pass `transport.conformance.test.ts`.
 *
 * A transport moves opaque frames (an encoded `Envelope` each) one way, to an address. Addresses
 * are strings: `tcp://127.0.0.1:7000` for ZeroMQ, `mem://name` for the in-memory network.
 * Request/response, timeouts and retries are built on top (`rpc.ts`).
 */
export interface Transport {
  /** Where peers reach this endpoint; put it in `reply_to`. */
  readonly address: string;
  /**
   * Queues `frame` for `to`. Resolves once the frame is accepted by the destination's queue (not
   * when it is delivered). Rejects with `TRANSPORT_BUSY` when that queue is full (backpressure:
   * the caller backs off), `TRANSPORT_CLOSED` after `close()`, `TRANSPORT_BAD_ADDRESS` for an
   * address it cannot parse.
   */
  send(to: string, frame: Uint8Array): Promise<void>;
  /** Sets the one receiver of incoming frames (replacing any earlier one). */
  onFrame(receiver: FrameReceiver): void;
  /**
   * Sets who hears of frames a transport with per-peer fairness refused because their peer's share
   * of the inbox was full (the ZeroMQ transport); a transport without it never calls it.
   */
  onRefused?(receiver: (frame: Uint8Array, peer: string) => void): void;
  /**
   * True when the `peer` of every incoming frame is the sender's public key, proven by the
   * transport (the secure ZeroMQ transport); otherwise `peer` only tells connections apart.
   */
  readonly verifiesPeers?: boolean;
  /** Stops receiving, drops what is queued, releases sockets. Idempotent. */
  close(): Promise<void>;
}

/**
 * Called once per incoming frame. `peer` names who sent it when the transport can tell (secure
 * ZeroMQ: the sender's public key, proven; plain ZeroMQ: the connection's routing id; frames of one peer arrive in order, frames of different peers in
 * the order per-peer fairness decides). Must not throw: a throw is a bug and ends the process.
 */
export type FrameReceiver = (frame: Uint8Array, peer?: string) => void;

/**
 * Time as a transport or a state machine sees it: real (`systemClock`) or virtual (the
 * simulator's). Nothing in a sans-I/O core reads `Date.now()` or sets `setTimeout` itself.
 */
export interface Clock {
  /** Milliseconds; monotonic. */
  now(): number;
  /** Runs `callback` after `delayMs`; returns a function that cancels it. */
  setTimer(delayMs: number, callback: () => void): () => void;
}

/** The real clock: `performance.now()` based (monotonic), with Node timers. */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimer(delayMs, callback) {
    // A deadline already past is "now": Node 24 warns (TimeoutNegativeWarning) on a negative delay.
    const handle = setTimeout(callback, Math.max(0, delayMs));
    return () => clearTimeout(handle);
  },
};
