/**
 * The type of `ctx`, the user library every function gets as its last argument. It lives here,
 * below both the executor that implements it and the SDK that users import it from.
 */
import type { AnyLattice } from '../lattices/index.js';
import type { TensorValue } from './tensors.js';

/**
 * The user library a function gets as its last argument.
 *
 * KVS access goes through the executor's cache, in the consistency mode of the call: `get`
 * reveals the plain value (the first of concurrent causal versions; `getLattice` has them all),
 * `put` writes a plain value (an LWW register, or a causal version in `causal` mode), `merge`
 * merges a lattice. `send`/`recv` pass messages between running invocations of one DAG run.
 *
 * @example
 * ```ts
 * export default async function visit(page: string, ctx: FunctionContext) {
 *   const seen = ((await ctx.get(page)) as number | undefined) ?? 0;
 *   await ctx.put(page, seen + 1);
 *   ctx.log.info({ page, seen }, 'visited');
 *   return seen + 1;
 * }
 * ```
 */
export interface FunctionContext {
  /** The call (run) id: the same for every function of one DAG run. */
  readonly callId: string;
  /** This function's name in the run. */
  readonly functionName: string;
  /** The call's log: each record is kept by the executor with the call id and function name, for its owner to read (`lfaas logs`, `faas.logs()`), as `console.log`'s are. */
  readonly log: FunctionLogger;
  /** Aborted when the call's time is up. */
  readonly signal: CallSignal;
  get(key: string): Promise<unknown>;
  getLattice(key: string): Promise<AnyLattice | undefined>;
  /** Several keys at once (the cache batches their misses into one KVS request per shard). */
  getMany(keys: readonly string[]): Promise<Record<string, unknown>>;
  put(key: string, value: unknown): Promise<void>;
  merge(key: string, value: AnyLattice): Promise<void>;
  delete(key: string): Promise<void>;
  /**
   * Adds `amount` (an integer, default 1; negative takes away) to the `Counter` lattice at `key`
   * (made if the key holds nothing yet) and resolves with the counter's value as this executor
   * holds it once the increment is in the KVS. Concurrent increments never lose each other, and
   * the counter does not grow per call: the executor is the writer, and the increments of calls
   * running at once go to the KVS in one write. Refused (KVS_LATTICE_MISMATCH) for a key of
   * another lattice type.
   */
  increment(key: string, amount?: number): Promise<number>;
  /**
   * Runs the ONNX model stored at `modelKey` (put with the SDK's `putModel`) on `feeds` (input
   * name -> tensor) and resolves with its outputs. The executor runs it (onnxruntime, in a process
   * of its own) and keeps the loaded model: the first call on an executor loads it, later calls do
   * not. Fails with EXEC_BAD_VALUE for a malformed tensor or feeds the model refuses,
   * KVS_KEY_NOT_FOUND for no model, SCHED_NO_CAPACITY where the executor has no ML runtime.
   */
  infer(modelKey: string, feeds: Readonly<Record<string, TensorValue>>): Promise<Record<string, TensorValue>>;
  /** Sends `message` to the invocation of function `target` in this run; resolves once it is in its mailbox. */
  send(target: string, message: unknown): Promise<void>;
  /** The next message for this invocation, or undefined after `timeoutMs` (default 1000). */
  recv(options?: { readonly timeoutMs?: number }): Promise<unknown>;
}


/** A function's logger, in pino's shapes: `info('text')`, `info({ fields }, 'text')`. */
export interface FunctionLogger {
  trace(first?: unknown, ...rest: unknown[]): void;
  debug(first?: unknown, ...rest: unknown[]): void;
  info(first?: unknown, ...rest: unknown[]): void;
  warn(first?: unknown, ...rest: unknown[]): void;
  error(first?: unknown, ...rest: unknown[]): void;
  fatal(first?: unknown, ...rest: unknown[]): void;
}

/** The call's abort signal: aborted when its time is up. */
export interface CallSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  throwIfAborted(): void;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}
