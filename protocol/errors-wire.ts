/**
 * The catalogue (`ErrorCode` strings and `LfaasError`, lattices/errors.ts) and the wire enum
 * (`pb.ErrorCode` numbers and `pb.Error` messages, common.proto) share their names; these convert
 * between them by name, so the enum numbers never leak into the rest of the code. A test keeps the
 * two lists identical (besides the wire's ERROR_CODE_UNSPECIFIED = 0, "no error").
 */
import { ErrorCode, LfaasError, ensureLfaasError, errorFromWire, isErrorCode } from '../lattices/index.js';
import { pb } from './messages.js';
import type { PbTypes } from './messages.js';

/** A function's stack trace on the wire, at most (characters). */
export const REMOTE_STACK_CHARS_MAX = 16 * 1024;

/** Name -> number, and (through the generated enum's prototype) number -> name. */
const wireEnum = pb.ErrorCode as unknown as Readonly<Record<string, number>>;
const wireNames = new Map<number, string>(Object.entries(wireEnum).map(([name, value]) => [value, name]));

/**
 * The wire number of a catalogue code.
 *
 * @example
 * ```ts
 * errorCodeToWire(ErrorCode.KVS_WRONG_NODE) === pb.ErrorCode.KVS_WRONG_NODE
 * ```
 */
export function errorCodeToWire(code: ErrorCode): PbTypes.ErrorCode {
  // Always defined while the catalogue-sync test passes; INTERNAL keeps a reply typed otherwise.
  return (Object.hasOwn(wireEnum, code) ? wireEnum[code] : pb.ErrorCode.INTERNAL) as PbTypes.ErrorCode;
}

/**
 * The catalogue code of a wire number; 0 (unspecified) and numbers this version does not know
 * become INTERNAL.
 */
export function errorCodeFromWire(value: number): ErrorCode {
  const name = wireNames.get(value);
  return isErrorCode(name) ? name : ErrorCode.INTERNAL;
}

/**
 * The wire message of an error; anything thrown is normalised first (a non-`LfaasError` becomes
 * INTERNAL, keeping its text). Returns a generated instance: it encodes faster than a plain object.
 *
 * @example
 * ```ts
 * const body = { errorReply: { error: errorToWire(new LfaasError(ErrorCode.KVS_BUSY, 'try later')) } };
 * ```
 */
export function errorToWire(error: unknown): PbTypes.Error {
  const typed = ensureLfaasError(error);
  const wire = new pb.Error();
  wire.code = errorCodeToWire(typed.code);
  wire.message = typed.message;
  if (typed.retryAfterMs !== undefined) wire.retryAfterMs = Math.min(2 ** 32 - 1, Math.max(0, Math.round(typed.retryAfterMs)));
  if (typed.remoteStack !== undefined) wire.stack = typed.remoteStack.slice(0, REMOTE_STACK_CHARS_MAX);
  return wire;
}

/**
 * Rebuilds an `LfaasError` from a wire `Error` message. A code the catalogue does not know becomes
 * INTERNAL, with the number kept in the message.
 */
export function errorFromWireMessage(wire: PbTypes.IError): LfaasError {
  const value = wire.code ?? 0;
  const message = wire.message ?? '';
  const name = wireNames.get(value);
  const retryAfterMs = wire.retryAfterMs ?? 0;
  // A stack is text from a function: bounded, and only an error of the function's carries one.
  const remoteStack = name === ErrorCode.EXEC_USER_ERROR && typeof wire.stack === 'string' ? wire.stack.slice(0, REMOTE_STACK_CHARS_MAX) : '';
  if (isErrorCode(name) && (retryAfterMs > 0 || remoteStack.length > 0)) return new LfaasError(name, message, { ...(retryAfterMs > 0 ? { retryAfterMs } : {}), ...(remoteStack.length > 0 ? { remoteStack } : {}) });
  if (isErrorCode(name)) return errorFromWire({ code: name, message });
  return errorFromWire({ code: ErrorCode.INTERNAL, message: `unknown wire error code ${value}${message === '' ? '' : `: ${message}`}` });
}

/** Every name of the wire enum except ERROR_CODE_UNSPECIFIED (for the catalogue-sync test). */
export function wireErrorNames(): string[] {
  return Object.keys(wireEnum).filter((name) => name !== 'ERROR_CODE_UNSPECIFIED');
}
