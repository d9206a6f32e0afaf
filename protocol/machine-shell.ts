/**
 * The thin shell around a sans-I/O {@link Machine}: it owns the transport and the timers, decodes
 * every incoming frame (a bad frame is counted and, when it names a reply address, answered with a
 * typed error; it never reaches the machine and never kills the node), hands inputs to the
 * machine with the current time and carries out the effects it returns.
 *
 * Failures are of two kinds. Expected ones concern one request or one destination: a frame that
 * does not decode, a send that is refused, a frame beyond its peer's share of the inbox; they are
 * counted, answered where the frame names a reply address, and reported to `onError` with the
 * peer (role processes log them sampled: one line per peer and reason per interval). A machine
 * that throws from `handle` is a bug, after which its state may be half-updated: that goes to the
 * process's crash guard (crash-guard.ts), which ends a role process for its supervisor to restart.
 *
 * The same shell runs a machine over ZeroMQ with the system clock (a real process) and over the
 * in-memory network with the simulator's virtual clock, so the code under test is the code that
 * ships.
 */
import { ErrorCode, LfaasError, ensureLfaasError } from '../lattices/index.js';
import { reportFatal } from './crash-guard.js';
import { FAILPOINT_MACHINE_THROWS, failpointOn } from './failpoints.js';
import { errorToWire } from './errors-wire.js';
import { decodeEnvelope, encodeEnvelope, peekReplyAddress } from './frame.js';
import type { DecodeOptions } from './frame.js';
import type { Effect, Envelope, Machine, MachineInput, MachineStore, MachineTasks } from './machine.js';
import type { Clock, Transport } from './transport.js';
import type { Role } from './membership.js';
import { refusalOf } from './message-rights.js';
import { accessRefusalOf } from './owner-access.js';
import type { TokenClaims } from './tokens.js';

/** What a shell counts; exposed for metrics and tests. */
export interface ShellCounters {
  framesIn: number;
  /** Frames that did not decode or validate (answered with PROTO_* when they name a reply address). */
  framesRejected: number;
  /** Frames beyond their peer's share of the inbox (answered with TRANSPORT_BUSY, at most one a peer per interval). */
  framesRefused: number;
  errorsReplied: number;
  sendsFailed: number;
  timersFired: number;
  /** Frames whose sender's key may not send them (message-rights.ts; answered UNAUTHORISED). */
  framesUnauthorised: number;
}

export interface ShellOptions extends DecodeOptions {
  /**
   * Called for every rejected or refused frame and failed send (logging, sampled by the caller),
   * with the peer it concerns (the connection a frame came on, or a send's destination); must not
   * throw.
   */
  readonly onError?: (error: Error, peer?: string) => void;
  /** A peer over its share of the inbox gets at most one TRANSPORT_BUSY answer per this interval. */
  readonly refusalReplyIntervalMs?: number;
  /** Where `persist` effects go; without one, a persist is answered at once (no disk). */
  readonly store?: MachineStore;
  /** Where `task` effects go; without one, a task fails at once with INTERNAL. */
  readonly tasks?: MachineTasks;
  /**
   * Who is a member (membership.ts): with one, every frame's sender (its key, as a transport that
   * verifies peers proves it) must have the right to send its message (message-rights.ts), or
   * the frame is refused UNAUTHORISED before the machine sees it. Without one (an insecure
   * cluster), everyone may send everything.
   */
  readonly membership?: { roleOf(key: string): Role | undefined };
  /**
   * The cluster's token verifier (tokens.ts): with one (and a membership), every request from a
   * sender that is no member needs a valid owner token reaching every name it carries
   * (owner-access.ts), or it is refused UNAUTHORISED before the machine sees it. An echo needs
   * none (a liveness probe), nor a services request (discovery: which schedulers are there, for
   * an ingress that holds no token of its own; every request to them needs one).
   */
  readonly tokens?: { verify(token: string): TokenClaims };
}

/** A running machine; `stop()` cancels its timers and closes its transport. */
export interface MachineShell {
  readonly machine: Machine;
  readonly counters: ShellCounters;
  /** Hands an input to the machine now (used for `start` and by tests). */
  deliver(input: MachineInput): void;
  stop(): Promise<void>;
}

/**
 * Starts `machine` on `transport`: wires incoming frames to it, gives it `{ kind: 'start' }`.
 *
 * @example
 * ```ts
 * const transport = await ZmqTransport.bind({ host: '127.0.0.1', port: 0 });
 * const shell = runMachine(new MyNode(...), transport, systemClock);
 * // ...
 * await shell.stop();
 * ```
 */
export function runMachine(machine: Machine, transport: Transport, clock: Clock, options: ShellOptions = {}): MachineShell {
  const counters: ShellCounters = { framesIn: 0, framesRejected: 0, framesRefused: 0, errorsReplied: 0, sendsFailed: 0, timersFired: 0, framesUnauthorised: 0 };
  const timers = new Map<string, () => void>();
  let stopped = false;
  const machineThrows = failpointOn('machine-throws');
  const report = (error: Error, peer?: string): void => {
    try {
      options.onError?.(error, peer);
    } catch (loggerError) {
      reportFatal(loggerError, `the error logger of ${machine.id}`);
    }
  };

  /** Why a client's request is refused by its token, or undefined. */
  const tokenRefusal = (envelope: Envelope): string | undefined => {
    const tokens = options.tokens;
    if (tokens === undefined || envelope.body === 'echo' || envelope.body === 'servicesRequest') return undefined;
    let claims: TokenClaims;
    try {
      claims = tokens.verify(envelope.token ?? '');
    } catch (error) {
      return ensureLfaasError(error).message;
    }
    return accessRefusalOf(envelope, claims);
  };

  const send = (to: string, frame: Uint8Array): void => {
    // A transport's send never throws (it rejects); the catch keeps it so for any transport.
    try {
      transport.send(to, frame).catch((error: unknown) => {
        counters.sendsFailed++;
        report(ensureLfaasError(error), to);
      });
    } catch (error) {
      counters.sendsFailed++;
      report(ensureLfaasError(error, ErrorCode.TRANSPORT_BAD_ADDRESS), to);
    }
  };

  const apply = (effects: readonly Effect[]): void => {
    for (const effect of effects) {
      if (stopped) return;
      switch (effect.kind) {
        case 'send':
          send(effect.to, encodeEnvelope(effect.envelope));
          break;
        case 'timer': {
          timers.get(effect.timer)?.();
          const name = effect.timer;
          timers.set(
            name,
            clock.setTimer(Math.max(0, effect.delayMs), () => {
              timers.delete(name);
              counters.timersFired++;
              deliver({ kind: 'timer', timer: name });
            }),
          );
          break;
        }
        case 'cancelTimer':
          timers.get(effect.timer)?.();
          timers.delete(effect.timer);
          break;
        case 'task': {
          const token = effect.token;
          const tasks = options.tasks;
          if (tasks === undefined) {
            queueMicrotask(() => deliver({ kind: 'taskDone', token, error: new LfaasError(ErrorCode.INTERNAL, 'this shell runs no tasks') }));
            break;
          }
          try {
            tasks.run(effect.task, (error, result) => deliver(error === undefined ? { kind: 'taskDone', token, result } : { kind: 'taskDone', token, error }));
          } catch (error) {
            const typed = ensureLfaasError(error, ErrorCode.INTERNAL);
            queueMicrotask(() => deliver({ kind: 'taskDone', token, error: typed }));
          }
          break;
        }
        case 'persist': {
          const token = effect.token;
          const store = options.store;
          if (store === undefined) {
            queueMicrotask(() => deliver({ kind: 'persisted', token }));
            break;
          }
          store.commit(effect.writes, effect.sync, (error) => {
            if (error === undefined) {
              deliver({ kind: 'persisted', token });
              return;
            }
            const typed = ensureLfaasError(error, ErrorCode.INTERNAL);
            report(typed);
            deliver({ kind: 'persisted', token, error: typed });
          });
          break;
        }
      }
    }
  };

  const deliver = (input: MachineInput): void => {
    if (stopped) return;
    let effects: readonly Effect[];
    try {
      if (machineThrows && isFailpointEcho(input)) throw new Error(`failpoint ${FAILPOINT_MACHINE_THROWS}`);
      effects = machine.handle(input, clock.now());
    } catch (error) {
      // A machine must not throw; if it does, it is a bug and its state may be half-updated: the
      // process's crash guard decides (a role process exits for its supervisor to restart it).
      stopped = true;
      for (const cancel of timers.values()) cancel();
      timers.clear();
      reportFatal(error, `machine ${machine.id} handling ${describeInput(input)}`);
      return;
    }
    apply(effects);
  };

  const answer = (frame: Uint8Array, error: LfaasError): void => {
    const replyTo = peekReplyAddress(frame);
    if (replyTo !== undefined) {
      counters.errorsReplied++;
      send(replyTo.replyTo, encodeEnvelope({ responseTo: replyTo.requestId, sender: transport.address, errorReply: { error: errorToWire(error) } }));
    }
  };

  // A peer over its share: answered TRANSPORT_BUSY (retryable) at most once per interval, so that
  // the answers to a flood do not become a flood of their own.
  const refusalReplyIntervalMs = options.refusalReplyIntervalMs ?? 100;
  const lastRefusalReply = new Map<string, number>();
  transport.onRefused?.((frame, peer) => {
    if (stopped) return;
    counters.framesRefused++;
    const error = new LfaasError(ErrorCode.TRANSPORT_BUSY, `${transport.address}: this connection's share of the inbox is full; back off and retry`);
    report(error, peer);
    const now = clock.now();
    if (now - (lastRefusalReply.get(peer) ?? Number.NEGATIVE_INFINITY) < refusalReplyIntervalMs) return;
    if (lastRefusalReply.size >= 4096) lastRefusalReply.clear();
    lastRefusalReply.set(peer, now);
    answer(frame, error);
  });

  transport.onFrame((frame, peer) => {
    if (stopped) return;
    counters.framesIn++;
    let envelope;
    try {
      envelope = decodeEnvelope(frame, options);
    } catch (error) {
      counters.framesRejected++;
      const typed = ensureLfaasError(error, ErrorCode.PROTO_MALFORMED);
      report(typed, peer ?? peekReplyAddress(frame)?.replyTo);
      answer(frame, typed);
      return;
    }
    const membership = options.membership;
    if (membership !== undefined) {
      // Peers are keys only on a transport that proves them; on any other, nobody is a member.
      const role = transport.verifiesPeers === true && peer !== undefined ? membership.roleOf(peer) : undefined;
      const memberRefusal = refusalOf(envelope, role ?? 'client');
      const refusal = memberRefusal === undefined ? (role === undefined ? tokenRefusal(envelope) : undefined) : `${memberRefusal}; ${role === undefined ? 'the sender is not a member' : `the sender is a ${role} member`}`;
      if (refusal !== undefined) {
        counters.framesUnauthorised++;
        const error = new LfaasError(ErrorCode.UNAUTHORISED, refusal);
        report(error, peer);
        answer(frame, error);
        return;
      }
    }
    deliver({ kind: 'message', envelope });
  });

  deliver({ kind: 'start' });

  return {
    machine,
    counters,
    deliver,
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const cancel of timers.values()) cancel();
      timers.clear();
      await transport.close();
    },
  };
}


/** An input in a few words, for the crash guard's log line. */
function describeInput(input: MachineInput): string {
  switch (input.kind) {
    case 'message':
      return `a ${input.envelope.body ?? 'bodiless'} message${input.envelope.replyTo ? ` from ${input.envelope.replyTo}` : ''}`;
    case 'timer':
      return `timer ${input.timer}`;
    case 'taskDone':
    case 'persisted':
      return `${input.kind} ${input.token}`;
    default:
      return input.kind;
  }
}

const failpointPayload = new TextEncoder().encode(FAILPOINT_MACHINE_THROWS);

/** An echo carrying the `machine-throws` failpoint's payload (failpoints.ts). */
function isFailpointEcho(input: MachineInput): boolean {
  if (input.kind !== 'message' || input.envelope.body !== 'echo') return false;
  const payload = input.envelope.echo?.payload;
  return payload !== undefined && payload !== null && Buffer.from(payload).equals(failpointPayload);
}
