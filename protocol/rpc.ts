/**
 * Request/response over any one-way transport. A request carries a fresh request id and this
 * endpoint's address as `reply_to`; whatever node answers sets `response_to` to that id. Pending
 * requests are futures in a bounded table, each with a timeout and bounded retries (resent with
 * the same id, so a server can recognise a duplicate); an `ErrorReply` rejects with the typed
 * error it carries; late and duplicate responses are counted and dropped.
 */
import { ErrorCode, LfaasError, ensureLfaasError } from '../lattices/index.js';
import { errorFromWireMessage, errorToWire } from './errors-wire.js';
import { decodeEnvelope, encodeEnvelope, envelopeWith } from './frame.js';
import type { DecodeOptions } from './frame.js';
import type { PbTypes } from './messages.js';
import type { Clock, Transport } from './transport.js';

/** An envelope body with optional header fields; ids and reply address are filled in by Rpc. */
export type RequestBody = Omit<PbTypes.IEnvelope, 'requestId' | 'replyTo' | 'responseTo'>;

export interface RequestOptions {
  /** Time to wait for each attempt. */
  readonly timeoutMs?: number;
  /** Extra attempts after the first times out; each resends the same frame (same request id). */
  readonly retries?: number;
  /**
   * Pause between a timed-out attempt and the next one (0 by default). The request stays pending
   * meanwhile: a late response to an earlier attempt still resolves it.
   */
  readonly retryDelayMs?: number;
}

export interface RpcOptions extends DecodeOptions {
  /** Requests awaiting a response before new ones are refused with TRANSPORT_BUSY. */
  readonly pendingMax?: number;
  readonly defaultTimeoutMs?: number;
  /** A client's owner token, carried by every request (tokens.ts); members send none. */
  readonly token?: string;
}

export interface RpcCounters {
  requests: number;
  retries: number;
  timeouts: number;
  lateResponses: number;
  framesRejected: number;
}

interface Pending {
  readonly resolve: (envelope: PbTypes.Envelope) => void;
  readonly reject: (error: LfaasError) => void;
  cancelTimer: () => void;
}

/** Request/response on one transport; see the file comment. */
export class Rpc {
  readonly counters: RpcCounters = { requests: 0, retries: 0, timeouts: 0, lateResponses: 0, framesRejected: 0 };
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private requestHandler: (envelope: PbTypes.Envelope) => void = () => {};
  private closed = false;
  private readonly pendingMax: number;
  private readonly defaultTimeoutMs: number;

  /**
   * Takes over `transport`'s frame receiver.
   *
   * @example
   * ```ts
   * const rpc = new Rpc(await ZmqTransport.bind(), systemClock);
   * const reply = await rpc.request('tcp://127.0.0.1:7000', { echo: { payload } }, { timeoutMs: 1000, retries: 2 });
   * ```
   */
  constructor(
    readonly transport: Transport,
    private readonly clock: Clock,
    private readonly options: RpcOptions = {},
  ) {
    this.pendingMax = options.pendingMax ?? 10_000;
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 5000;
    transport.onFrame((frame) => this.receive(frame));
  }

  /** Handles envelopes that are not responses (the server side). */
  onRequest(handler: (envelope: PbTypes.Envelope) => void): void {
    this.requestHandler = handler;
  }

  /**
   * Sends a request and resolves with the response envelope. Rejects with the typed error of an
   * `ErrorReply`, TRANSPORT_TIMEOUT once every attempt timed out, TRANSPORT_BUSY when `pendingMax`
   * requests are pending or the transport refuses the first send, TRANSPORT_CLOSED on `close()`.
   */
  request(to: string, body: RequestBody, options: RequestOptions = {}): Promise<PbTypes.Envelope> {
    if (this.closed) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'rpc is closed'));
    if (this.pending.size >= this.pendingMax) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_BUSY, `${this.pending.size} requests pending`));
    const requestId = this.nextRequestId;
    // Ids stay below 2^53 (validated on the wire); wrapping would take 2^53 requests.
    this.nextRequestId = this.nextRequestId >= Number.MAX_SAFE_INTEGER ? 1 : this.nextRequestId + 1;
    let frame: Uint8Array;
    try {
      frame = encodeEnvelope(envelopeWith(body, { requestId, replyTo: this.transport.address, token: this.options.token }));
    } catch (error) {
      return Promise.reject(ensureLfaasError(error));
    }
    const timeoutMs = options.timeoutMs ?? this.defaultTimeoutMs;
    const retryDelayMs = Math.max(0, options.retryDelayMs ?? 0);
    let attemptsLeft = Math.max(0, options.retries ?? 0);
    this.counters.requests++;
    return new Promise<PbTypes.Envelope>((resolve, reject) => {
      const entry: Pending = { resolve, reject, cancelTimer: () => {} };
      let firstAttempt = true;
      const attempt = (): void => {
        const isRetry = !firstAttempt;
        firstAttempt = false;
        this.transport.send(to, frame).catch((thrown: unknown) => {
          if (this.pending.get(requestId) !== entry) return;
          const error = ensureLfaasError(thrown);
          // A retry refused for backpressure still waits: an earlier attempt may yet be answered.
          if (isRetry && error.code === ErrorCode.TRANSPORT_BUSY) return;
          this.settle(requestId);
          reject(error);
        });
        entry.cancelTimer = this.clock.setTimer(timeoutMs, () => {
          if (this.pending.get(requestId) !== entry) return;
          if (attemptsLeft > 0) {
            attemptsLeft--;
            this.counters.retries++;
            if (retryDelayMs === 0) attempt();
            else entry.cancelTimer = this.clock.setTimer(retryDelayMs, () => {
              if (this.pending.get(requestId) === entry) attempt();
            });
            return;
          }
          this.counters.timeouts++;
          this.settle(requestId);
          reject(new LfaasError(ErrorCode.TRANSPORT_TIMEOUT, `no response from ${to} in ${timeoutMs} ms after ${(options.retries ?? 0) + 1} attempts`));
        });
      };
      this.pending.set(requestId, entry);
      attempt();
    });
  }

  /**
   * Answers a request: the response goes to its `reply_to` with `response_to` = its id. A request
   * without a reply address or id (a one-way message) gets no response. Send failures are dropped:
   * the requester times out and retries.
   */
  respond(request: PbTypes.Envelope, body: RequestBody): void {
    if (request.replyTo.length === 0 || Number(request.requestId) === 0) return;
    this.transport.send(request.replyTo, encodeEnvelope(envelopeWith(body, { responseTo: request.requestId, sender: this.transport.address }))).catch(() => {
      // The requester times out and retries; nothing else to do here.
    });
  }

  /** Answers a request with a typed error. */
  respondError(request: PbTypes.Envelope, error: LfaasError): void {
    this.respond(request, { errorReply: { error: errorToWire(error) } });
  }

  /** Requests awaiting a response. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Rejects every pending request with TRANSPORT_CLOSED; the transport stays the caller's to close. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const [id, entry] of this.pending) {
      this.settle(id);
      entry.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'rpc closed with the request pending'));
    }
  }

  private settle(requestId: number): void {
    this.pending.get(requestId)?.cancelTimer();
    this.pending.delete(requestId);
  }

  private receive(frame: Uint8Array): void {
    if (this.closed) return;
    let envelope: PbTypes.Envelope;
    try {
      envelope = decodeEnvelope(frame, this.options);
    } catch {
      this.counters.framesRejected++;
      return;
    }
    const responseTo = Number(envelope.responseTo);
    if (responseTo === 0) {
      this.requestHandler(envelope);
      return;
    }
    const entry = this.pending.get(responseTo);
    if (entry === undefined) {
      this.counters.lateResponses++;
      return;
    }
    this.settle(responseTo);
    if (envelope.body === 'errorReply') entry.reject(errorFromWireMessage(envelope.errorReply?.error ?? {}));
    else entry.resolve(envelope);
  }
}

