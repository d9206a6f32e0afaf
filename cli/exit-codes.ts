/**
 * The exit codes of every `lfaas` command, and how a failure is printed. One table maps each
 * ErrorCode to a class, so scripts can tell "start the cluster" from "fix your function":
 *
 *   0 ok · 1 internal error · 2 usage (bad flags or arguments) · 3 not found (function, DAG, key,
 *   call id) · 4 refused (token missing, invalid or expired; permission; a request the cluster
 *   rejects as bad) · 5 unavailable (no cluster, timeouts, no capacity, busy) · 6 function error
 *   (the user's function threw, timed out, or hit a limit).
 *
 * With `--json` a failure is one document on stdout, `{ "error": { "code", "message",
 * "retryable" } }`; without, `lfaas: CODE: message` on stderr.
 */
import { ErrorCode, ensureLfaasError, isRetryable } from '../client/index.js';

export const ExitCode = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  REFUSED: 4,
  UNAVAILABLE: 5,
  FUNCTION_ERROR: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Every error code's exit class: a new code must be placed here (the compiler checks). */
export const EXIT_OF: Readonly<Record<ErrorCode, ExitCode>> = {
  INTERNAL: ExitCode.INTERNAL,
  LATTICE_DECODE: ExitCode.REFUSED,
  LATTICE_UNKNOWN_TYPE: ExitCode.REFUSED,
  LATTICE_TYPE_MISMATCH: ExitCode.REFUSED,
  PROTO_MALFORMED: ExitCode.REFUSED,
  PROTO_TOO_LARGE: ExitCode.REFUSED,
  PROTO_MISSING_FIELD: ExitCode.REFUSED,
  PROTO_UNKNOWN_ENUM: ExitCode.REFUSED,
  PROTO_UNKNOWN_MESSAGE: ExitCode.REFUSED,
  TRANSPORT_TIMEOUT: ExitCode.UNAVAILABLE,
  TRANSPORT_CLOSED: ExitCode.UNAVAILABLE,
  TRANSPORT_BUSY: ExitCode.UNAVAILABLE,
  TRANSPORT_BAD_ADDRESS: ExitCode.USAGE,
  TRANSPORT_NO_CLUSTER: ExitCode.UNAVAILABLE,
  KVS_KEY_NOT_FOUND: ExitCode.NOT_FOUND,
  KVS_WRONG_NODE: ExitCode.UNAVAILABLE,
  KVS_LATTICE_MISMATCH: ExitCode.REFUSED,
  KVS_NO_SERVERS: ExitCode.UNAVAILABLE,
  KVS_BUSY: ExitCode.UNAVAILABLE,
  KVS_BAD_KEY: ExitCode.REFUSED,
  SCHED_FUNCTION_NOT_FOUND: ExitCode.NOT_FOUND,
  SCHED_DAG_NOT_FOUND: ExitCode.NOT_FOUND,
  SCHED_NO_CAPACITY: ExitCode.UNAVAILABLE,
  EXEC_TIMEOUT: ExitCode.FUNCTION_ERROR,
  EXEC_OUT_OF_MEMORY: ExitCode.FUNCTION_ERROR,
  EXEC_USER_ERROR: ExitCode.FUNCTION_ERROR,
  EXEC_BAD_VALUE: ExitCode.REFUSED,
  EXEC_LIMIT: ExitCode.FUNCTION_ERROR,
  GONE: ExitCode.NOT_FOUND,
  UNAUTHORISED: ExitCode.REFUSED,
  EXEC_LOST: ExitCode.UNAVAILABLE,
  // The call was cancelled (or its caller stopped waiting): it ended without its result.
  EXEC_CANCELLED: ExitCode.FUNCTION_ERROR,
  CALL_ABORTED: ExitCode.FUNCTION_ERROR,
  // The CLI's own install lacks a package it depends on (esbuild): a broken install.
  CLIENT_MISSING_DEPENDENCY: ExitCode.INTERNAL,
};

/** The exit code of a failure with `code`. */
export function exitCodeOf(code: ErrorCode): ExitCode {
  return EXIT_OF[code];
}

/** The exit codes as `lfaas --help` and docs/cli.md list them. */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  internal error (a bug)
  2  usage: bad flags or arguments
  3  not found: function, DAG, key, call id
  4  refused: token missing, invalid or expired; no permission; a request the cluster rejects as bad
  5  unavailable: no cluster (is \`lfaas up\` running?), timeouts, no capacity, busy
  6  function error: the function threw, timed out, or hit a limit
With --json, output is one JSON document on stdout; a failure is {"error":{"code","message","retryable"}}, with "stack" when a function threw.`;

/** Whether this run asked for JSON output (`--json` anywhere before a `--`). */
export function jsonRequested(argv: readonly string[] = process.argv): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
}

/** Bad flags or arguments found by a command itself (commander finds the rest): exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The JSON document of a failure. */
export function errorDocument(code: string, message: string, retryable: boolean, stack?: string): string {
  return JSON.stringify({ error: { code, message, retryable, ...(stack === undefined ? {} : { stack }) } });
}

/**
 * Prints a failure (JSON on stdout with --json, a line on stderr otherwise) and sets the exit
 * code from its class. Anything thrown that is not an LfaasError is INTERNAL (exit 1).
 */
export function reportFailure(thrown: unknown, json: boolean = jsonRequested()): void {
  if (thrown instanceof UsageError) {
    reportUsage(thrown.message, json);
    return;
  }
  const error = ensureLfaasError(thrown);
  // A function's own stack trace (mapped to its sources) comes with its error: printed with it.
  const stack = error.remoteStack;
  if (json) process.stdout.write(`${errorDocument(error.code, error.message, isRetryable(error.code), stack)}\n`);
  else process.stderr.write(`lfaas: ${error.code}: ${error.message}\n${stack === undefined ? '' : `${framesOf(stack)}\n`}`);
  process.exitCode = exitCodeOf(error.code);
}

/** A remote stack's frames, indented, its control characters escaped (it is the function's text). */
function framesOf(stack: string): string {
  return stack
    .split('\n')
    .filter((line) => line.trim().startsWith('at '))
    .map((line) => `    ${line.trim().replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)}`)
    .join('\n');
}

/** A usage failure (exit 2): bad flags or arguments. */
export function reportUsage(message: string, json: boolean = jsonRequested()): void {
  if (json) process.stdout.write(`${errorDocument('USAGE', message, false)}\n`);
  else process.stderr.write(`lfaas: ${message}\n`);
  process.exitCode = ExitCode.USAGE;
}
