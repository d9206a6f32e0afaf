/**
 * The one error catalogue of Lattice FaaS.
 *
 * It lives in `lattices/` because that folder is the root of the dependency graph
 * (`lattices` <- `protocol` <- everything else): every role, and the lattice codecs themselves,
 * can throw these without an import cycle. `protocol/` re-exports it and mirrors the codes in the
 * wire enum `ErrorCode` (a test keeps the two in step).
 *
 * Callers switch on `error.code`, never on message text. Errors that cross a process, worker or vm
 * boundary are rebuilt with {@link errorFromWire} from `{ code, message }`, so never match them with
 * a bare `instanceof` on a subclass; use {@link isLfaasError} and the code.
 *
 * @example
 * ```ts
 * try { decodeLattice(bytes) } catch (e) {
 *   if (isLfaasError(e) && e.code === ErrorCode.LATTICE_DECODE) { ... }
 * }
 * ```
 */
export const ErrorCode = {
  /** Something that should not happen did; a bug. */
  INTERNAL: 'INTERNAL',
  /**
   * A lattice payload could not be decoded (bad msgpack, bad shape, bad field, ill-formed UTF-8), or a
   * lattice could not be built or read faithfully: a value the codec cannot carry back unchanged (a
   * `Date`, a lone surrogate, ...), a count past 2^53 - 1.
   */
  LATTICE_DECODE: 'LATTICE_DECODE',
  /** A lattice payload carries a type tag that no registered lattice has. */
  LATTICE_UNKNOWN_TYPE: 'LATTICE_UNKNOWN_TYPE',
  /** Two lattices of different types were merged or compared. */
  LATTICE_TYPE_MISMATCH: 'LATTICE_TYPE_MISMATCH',
  /** A frame is not a valid protobuf envelope. */
  PROTO_MALFORMED: 'PROTO_MALFORMED',
  /** A frame is larger than the configured maximum. */
  PROTO_TOO_LARGE: 'PROTO_TOO_LARGE',
  /** A required field of a message is missing or empty. */
  PROTO_MISSING_FIELD: 'PROTO_MISSING_FIELD',
  /** An enum field carries a value this version does not know. */
  PROTO_UNKNOWN_ENUM: 'PROTO_UNKNOWN_ENUM',
  /** An envelope carries no body, or a body this node does not handle. */
  PROTO_UNKNOWN_MESSAGE: 'PROTO_UNKNOWN_MESSAGE',
  /** A request got no reply within its timeout (after its retries). Retryable. */
  TRANSPORT_TIMEOUT: 'TRANSPORT_TIMEOUT',
  /** The transport was closed while the operation was pending. */
  TRANSPORT_CLOSED: 'TRANSPORT_CLOSED',
  /** A send queue is full: back off and retry. Retryable. */
  TRANSPORT_BUSY: 'TRANSPORT_BUSY',
  /** An address could not be parsed or connected to. */
  TRANSPORT_BAD_ADDRESS: 'TRANSPORT_BAD_ADDRESS',
  /** The key does not exist (or was deleted). */
  KVS_KEY_NOT_FOUND: 'KVS_KEY_NOT_FOUND',
  /** The node asked is not responsible for the key; the reply carries the current ring. Retryable. */
  KVS_WRONG_NODE: 'KVS_WRONG_NODE',
  /** A PUT of a lattice type other than the key's; nothing was written. */
  KVS_LATTICE_MISMATCH: 'KVS_LATTICE_MISMATCH',
  /** No storage node is known for the key. Retryable. */
  KVS_NO_SERVERS: 'KVS_NO_SERVERS',
  /** The node is overloaded; nothing was done. Retryable. */
  KVS_BUSY: 'KVS_BUSY',
  /** A key is empty or larger than the limit. */
  KVS_BAD_KEY: 'KVS_BAD_KEY',
  /** No function of that name (or version) is registered. */
  SCHED_FUNCTION_NOT_FOUND: 'SCHED_FUNCTION_NOT_FOUND',
  /** No DAG of that name is registered. */
  SCHED_DAG_NOT_FOUND: 'SCHED_DAG_NOT_FOUND',
  /** No executor has room for the call. Retryable after the hint. */
  SCHED_NO_CAPACITY: 'SCHED_NO_CAPACITY',
  /** The function ran past its timeout; its runtime was replaced. */
  EXEC_TIMEOUT: 'EXEC_TIMEOUT',
  /** The function exhausted its memory limit; its runtime was replaced. */
  EXEC_OUT_OF_MEMORY: 'EXEC_OUT_OF_MEMORY',
  /** The user's function threw; terminal, returned as is. */
  EXEC_USER_ERROR: 'EXEC_USER_ERROR',
  /** The arguments or the result could not be encoded, or are too large. */
  EXEC_BAD_VALUE: 'EXEC_BAD_VALUE',
  /** The function broke a bound of its sandbox (pending timers, log volume, recursion depth); terminal. */
  EXEC_LIMIT: 'EXEC_LIMIT',
  /** The thing asked for existed but is gone (a deleted version, a finished run). */
  GONE: 'GONE',
  /** The caller did not present valid credentials. */
  UNAUTHORISED: 'UNAUTHORISED',
  /** The executor running the call stopped answering (crashed, partitioned). Retryable. */
  EXEC_LOST: 'EXEC_LOST',
  /**
   * No cluster answers where the client was told to look (flags, `LFAAS_*`, or the `lfaas up`
   * state file, which may be stale): start one with `lfaas up`. Not retried by the clients.
   */
  TRANSPORT_NO_CLUSTER: 'TRANSPORT_NO_CLUSTER',
  /**
   * The call was cancelled (`faas.cancel`, `future.cancel()`, or its caller's `AbortSignal`): its
   * functions saw `ctx.signal` aborted; an async call's result says so. Terminal, never re-run.
   */
  EXEC_CANCELLED: 'EXEC_CANCELLED',
  /**
   * The caller's `AbortSignal` fired: the SDK stopped waiting at once (and asked the cluster to
   * cancel the call, if it was running). Terminal.
   */
  CALL_ABORTED: 'CALL_ABORTED',
  /**
   * An optional package the client needs for what was asked is not installed (esbuild, to bundle
   * a function module: install it, or register `{ code }`). Terminal; never crosses the wire.
   */
  CLIENT_MISSING_DEPENDENCY: 'CLIENT_MISSING_DEPENDENCY',
} as const;

/** A stable error code; see {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ErrorCode.TRANSPORT_TIMEOUT,
  ErrorCode.TRANSPORT_BUSY,
  ErrorCode.KVS_WRONG_NODE,
  ErrorCode.KVS_NO_SERVERS,
  ErrorCode.KVS_BUSY,
  ErrorCode.SCHED_NO_CAPACITY,
  ErrorCode.EXEC_LOST,
]);

const ALL_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** Whether a string is a code of the catalogue. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && ALL_CODES.has(value);
}

/** Whether an error with this code may succeed when tried again (bounded by the caller). */
export function isRetryable(code: ErrorCode): boolean {
  return RETRYABLE.has(code);
}

/**
 * The base of every error Lattice FaaS throws. `code` is stable; `message` is for people.
 *
 * @example
 * ```ts
 * throw new LfaasError(ErrorCode.KVS_BAD_KEY, 'key is empty');
 * ```
 */
export class LfaasError extends Error {
  readonly code: ErrorCode;
  /**
   * How long to wait before trying again, when the sender said (SCHED_NO_CAPACITY carries its
   * scheduler's estimate); undefined without a hint.
   */
  readonly retryAfterMs?: number;
  /**
   * EXEC_USER_ERROR: the user function's own stack trace, its frames mapped back to its source
   * files (the bundle's source map), as the executor sent it; also appended to `stack`.
   */
  readonly remoteStack?: string;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; retryAfterMs?: number; remoteStack?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = 'LfaasError';
    if (options?.retryAfterMs !== undefined && options.retryAfterMs > 0) this.retryAfterMs = options.retryAfterMs;
    if (options?.remoteStack !== undefined && options.remoteStack.length > 0) {
      this.remoteStack = options.remoteStack;
      this.stack = `${this.stack ?? `LfaasError: ${message}`}\n    --- in the function (remote) ---\n${options.remoteStack}`;
    }
  }

  /** Whether trying again may succeed. */
  get retryable(): boolean {
    return isRetryable(this.code);
  }

  /** The plain shape that crosses process, worker and vm boundaries. */
  toWire(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Whether a value is an {@link LfaasError}, also across realms (checks the shape, not the class). */
export function isLfaasError(value: unknown): value is LfaasError {
  if (value instanceof LfaasError) return true;
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { code?: unknown; message?: unknown };
  return isErrorCode(candidate.code) && typeof candidate.message === 'string';
}

/** Rebuilds an error from its wire shape; an unknown code becomes `INTERNAL` (keeping the text). */
export function errorFromWire(wire: { code: unknown; message: unknown }): LfaasError {
  const message = typeof wire.message === 'string' ? wire.message : String(wire.message);
  if (isErrorCode(wire.code)) return new LfaasError(wire.code, message);
  return new LfaasError(ErrorCode.INTERNAL, `unknown error code ${String(wire.code)}: ${message}`);
}

/** Turns anything thrown into an {@link LfaasError}; non-errors are wrapped, never lost. */
export function ensureLfaasError(thrown: unknown, fallback: ErrorCode = ErrorCode.INTERNAL): LfaasError {
  if (thrown instanceof LfaasError) return thrown;
  if (isLfaasError(thrown)) return errorFromWire(thrown);
  if (thrown instanceof Error) return new LfaasError(fallback, thrown.message, { cause: thrown });
  return new LfaasError(fallback, `non-error thrown: ${String(thrown)}`, { cause: thrown });
}
