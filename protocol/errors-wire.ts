/**
 * The catalogue (`ErrorCode` strings, `LfaasError`) and the wire enum (`pb.ErrorCode` numbers)
 * share names; these convert between them.
 */
import { ErrorCode, errorFromWire } from '../lattices/index.js';
import type { LfaasError } from '../lattices/index.js';
import { pb } from './messages.js';

const wireEnum = pb.ErrorCode as unknown as Record<string, number> & Record<number, string>;

/** The wire number of a catalogue code. */
export function errorCodeToWire(code: ErrorCode): number {
  return wireEnum[code] ?? pb.ErrorCode.INTERNAL;
}

/** The catalogue code of a wire number; unknown numbers become INTERNAL. */
export function errorCodeFromWire(value: number): ErrorCode {
  const name = wireEnum[value];
  return errorFromWire({ code: name, message: '' }).code;
}

/** The wire message of an error. */
export function errorToWire(error: LfaasError): { code: number; message: string } {
  return { code: errorCodeToWire(error.code), message: error.message };
}

/** Rebuilds an `LfaasError` from a wire `Error` message. */
export function errorFromWireMessage(wire: { code?: number | null; message?: string | null }): LfaasError {
  return errorFromWire({ code: wireEnum[wire.code ?? pb.ErrorCode.INTERNAL] ?? ErrorCode.INTERNAL, message: wire.message ?? '' });
}

/** Every code of the wire enum except UNSPECIFIED, by name (for the catalogue-sync test). */
export function wireErrorNames(): string[] {
  return Object.keys(pb.ErrorCode).filter((name) => name !== 'ERROR_CODE_UNSPECIFIED');
}
