/**
 * Typed error bodies and the HTTP status of each error code.
 *
 * Every error the ingress answers has the body
 * `{ "error": { "code": "EXEC_USER_ERROR", "message": "...", "retryable": false } }` (plus
 * `retryAfterMs` when the cluster gave a hint): callers switch on `code`, as SDK users do on
 * `LfaasError.code`. The status says who is at fault: 4xx the request (or the function it named),
 * 5xx the cluster or the ingress. The mapping is a table, one line per code of the catalogue
 * (lattices/errors.ts), so a new code fails to compile here until it is given a status.
 */
import { ErrorCode, LfaasError, ensureLfaasError, isRetryable } from '../lattices/index.js';

/** The HTTP status of each error code (docs/http.md repeats this table). */
export const HTTP_STATUS_OF_CODE: Readonly<Record<ErrorCode, number>> = {
  INTERNAL: 500,
  LATTICE_DECODE: 400,
  LATTICE_UNKNOWN_TYPE: 400,
  LATTICE_TYPE_MISMATCH: 409,
  PROTO_MALFORMED: 400,
  PROTO_TOO_LARGE: 413,
  PROTO_MISSING_FIELD: 400,
  PROTO_UNKNOWN_ENUM: 400,
  PROTO_UNKNOWN_MESSAGE: 404,
  TRANSPORT_TIMEOUT: 504,
  TRANSPORT_CLOSED: 503,
  TRANSPORT_BUSY: 503,
  TRANSPORT_BAD_ADDRESS: 502,
  KVS_KEY_NOT_FOUND: 404,
  KVS_WRONG_NODE: 503,
  KVS_LATTICE_MISMATCH: 409,
  KVS_NO_SERVERS: 503,
  KVS_BUSY: 503,
  KVS_BAD_KEY: 400,
  SCHED_FUNCTION_NOT_FOUND: 404,
  SCHED_DAG_NOT_FOUND: 404,
  SCHED_NO_CAPACITY: 503,
  EXEC_TIMEOUT: 504,
  // The function's own failures: the request was understood, the function failed on it.
  EXEC_OUT_OF_MEMORY: 422,
  EXEC_USER_ERROR: 422,
  EXEC_BAD_VALUE: 400,
  EXEC_LIMIT: 422,
  GONE: 410,
  // 401 when the token is missing or does not verify; 403 when a valid token may not do this (see httpStatusOf).
  UNAUTHORISED: 403,
  EXEC_LOST: 502,
  TRANSPORT_NO_CLUSTER: 503,
  // Cancelled by someone (faas.cancel): the call did not finish; a conflict with the caller's wish for its result.
  EXEC_CANCELLED: 409,
  // The caller went away (nginx's 499: client closed request).
  CALL_ABORTED: 499,
  CLIENT_MISSING_DEPENDENCY: 500,
};

/** The body of every error answer. */
export interface ErrorBody {
  readonly error: { readonly code: ErrorCode; readonly message: string; readonly retryable: boolean; readonly retryAfterMs?: number };
}

/** An error the ingress answers with a status of its own choosing (401, 405, 413...), and a code of the catalogue. */
export class HttpError extends LfaasError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(code, message, options);
  }
}

/** A token refused as a token (absent, forged, expired, revoked): 401; any other refusal: 403. */
const TOKEN_REFUSED = /^token refused|no token|none was presented/;

/** The HTTP status of an error: its own (HttpError), else the table's. */
export function httpStatusOf(error: LfaasError): number {
  if (error instanceof HttpError) return error.status;
  if (error.code === ErrorCode.UNAUTHORISED && TOKEN_REFUSED.test(error.message)) return 401;
  return HTTP_STATUS_OF_CODE[error.code] ?? 500;
}

/** Messages are capped: a function's error text is the caller's to read, not a way to send megabytes. */
const MESSAGE_LENGTH_MAX = 4096;

/** The typed body and status of anything thrown. */
export function errorAnswer(thrown: unknown): { status: number; body: ErrorBody; retryAfterSeconds?: number } {
  const error = ensureLfaasError(thrown);
  const status = httpStatusOf(error);
  const retryAfterMs = error.retryAfterMs;
  const body: ErrorBody = {
    error: {
      code: error.code,
      message: error.message.length > MESSAGE_LENGTH_MAX ? `${error.message.slice(0, MESSAGE_LENGTH_MAX)}...` : error.message,
      retryable: isRetryable(error.code),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    },
  };
  const retryAfterSeconds = retryAfterMs !== undefined ? Math.max(1, Math.ceil(retryAfterMs / 1000)) : status === 503 ? 1 : undefined;
  return { status, body, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) };
}
