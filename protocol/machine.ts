/**
 * The sans-I/O contract of every node role. A machine never touches a socket, a timer or a disk:
 * it is handed inputs with the current time and returns effects, which a shell carries out (over
 * real ZeroMQ sockets and timers in a process, or over the in-memory network and virtual clock in
 * the simulator). Same machine, both worlds.
 */
import type { PbTypes } from './messages.js';

/** A decoded envelope as machines see it. */
export type Envelope = PbTypes.Envelope;

/** What a machine is handed. */
export type MachineInput =
  | { readonly kind: 'start' }
  | { readonly kind: 'message'; readonly envelope: Envelope }
  | { readonly kind: 'timer'; readonly timer: string }
  /** The writes of `persist` effect `token` are durable (or failed with `error`). */
  | { readonly kind: 'persisted'; readonly token: number; readonly error?: Error }
  /** `task` effect `token` finished with `result`, or failed with `error`. */
  | { readonly kind: 'taskDone'; readonly token: number; readonly result?: unknown; readonly error?: Error };

/** One write to a machine's disk: new bytes for a key, or `undefined` to remove it. */
export interface PersistWrite {
  readonly key: string;
  readonly bytes: Uint8Array | undefined;
}

/**
 * A machine's disk as its shell sees it. A callback, not a promise: the simulator runs its virtual
 * time synchronously, and promise reactions would only run after the whole simulation.
 */
export interface MachineStore {
  /**
   * Applies the writes; calls `done` once they are committed and, with `sync`, synced to disk
   * (together with everything committed before), or with the error that stopped them.
   */
  commit(writes: readonly PersistWrite[], sync: boolean, done: (error?: Error) => void): void;
}

/**
 * Work a machine hands to its shell that is neither a message nor a disk write: reading the KVS,
 * running a user function. The machine defines what its tasks are; the shell's runner carries
 * them out (over the real KVS and runtime pool in a process, over simulated ones in the
 * simulator) and answers `{ kind: 'taskDone', token }`. A callback, like {@link MachineStore}.
 */
export interface MachineTasks {
  run(task: unknown, done: (error: Error | undefined, result?: unknown) => void): void;
}

/** What a machine asks its shell to do. */
export type Effect =
  /** Send an envelope to a transport address. */
  | { readonly kind: 'send'; readonly to: string; readonly envelope: PbTypes.IEnvelope }
  /** Fire `{ kind: 'timer', timer }` after `delayMs` (re-setting a timer replaces it). */
  | { readonly kind: 'timer'; readonly timer: string; readonly delayMs: number }
  /**
   * Write to the disk; the shell answers `{ kind: 'persisted', token }` once committed (a process
   * crash no longer loses it) and, with `sync`, synced (a machine crash does not either; a sync
   * covers every earlier commit).
   */
  | { readonly kind: 'persist'; readonly token: number; readonly writes: readonly PersistWrite[]; readonly sync: boolean }
  /** Cancel timer `timer` if it is set. */
  | { readonly kind: 'cancelTimer'; readonly timer: string }
  /** Hand `task` to the shell's {@link MachineTasks}; it answers `{ kind: 'taskDone', token }`. */
  | { readonly kind: 'task'; readonly token: number; readonly task: unknown };

/** A node role's state machine. */
export interface Machine {
  /** A stable name for logs and the simulator (also its address in `mem://` networks). */
  readonly id: string;
  /** Handles one input at time `nowMs` and returns what to do. Must not throw on any input. */
  handle(input: MachineInput, nowMs: number): readonly Effect[];
}
