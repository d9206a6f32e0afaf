/**
 * The thin shell around a sans-I/O {@link Machine}: it owns the transport and the timers, decodes
 * every incoming frame (a bad frame is counted and, when it names a reply address, answered with a
 * typed error; it never reaches the machine and never kills the node), hands inputs to the
 * machine with the current time and carries out the effects it returns.
 *
 * The same shell runs a machine over ZeroMQ with the system clock (a real process) and over the
 * in-memory network with the simulator's virtual clock, so the code under test is the code that
 * ships.
 */
import { ErrorCode, LfaasError, ensureLfaasError } from '../lattices/index.js';
import { errorToWire } from './errors-wire.js';
import { decodeEnvelope, encodeEnvelope, peekReplyAddress } from './frame.js';
import type { DecodeOptions } from './frame.js';
import type { Effect, Machine, MachineInput, MachineStore, MachineTasks } from './machine.js';
import type { Clock, Transport } from './transport.js';

/** What a shell counts; exposed for metrics and tests. */
export interface ShellCounters {
  framesIn: number;
  framesRejected: number;
  errorsReplied: number;
  sendsFailed: number;
  timersFired: number;
}

export interface ShellOptions extends DecodeOptions {
  /** Called for every rejected frame or failed send (logging); must not throw. */
  readonly onError?: (error: Error) => void;
  /** Where `persist` effects go; without one, a persist is answered at once (no disk). */
  readonly store?: MachineStore;
  /** Where `task` effects go; without one, a task fails at once with INTERNAL. */
  readonly tasks?: MachineTasks;
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
  const counters: ShellCounters = { framesIn: 0, framesRejected: 0, errorsReplied: 0, sendsFailed: 0, timersFired: 0 };
  const timers = new Map<string, () => void>();
  let stopped = false;
  const report = (error: Error): void => {
    try {
      options.onError?.(error);
    } catch {
      // A logger that throws must not take the node down.
    }
  };

  const send = (to: string, frame: Uint8Array): void => {
    transport.send(to, frame).catch((error: unknown) => {
      counters.sendsFailed++;
      report(ensureLfaasError(error));
    });
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
      effects = machine.handle(input, clock.now());
    } catch (error) {
      // A machine must not throw; if it does, it is a bug: report it, keep the node up.
      report(ensureLfaasError(error, ErrorCode.INTERNAL));
      return;
    }
    apply(effects);
  };

  transport.onFrame((frame) => {
    if (stopped) return;
    counters.framesIn++;
    let envelope;
    try {
      envelope = decodeEnvelope(frame, options);
    } catch (error) {
      counters.framesRejected++;
      const typed = ensureLfaasError(error, ErrorCode.PROTO_MALFORMED);
      report(typed);
      const replyTo = peekReplyAddress(frame);
      if (replyTo !== undefined) {
        counters.errorsReplied++;
        send(
          replyTo.replyTo,
          encodeEnvelope({ responseTo: replyTo.requestId, sender: transport.address, errorReply: { error: errorToWire(typed) } }),
        );
      }
      return;
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

