/**
 * The msgpack codec for user values inside envelopes: function arguments and results, DAG
 * trigger values. Plain JSON-like values, `Uint8Array`, `bigint` and `Date` round-trip; a `Map`
 * arrives as a plain object (msgpack has no separate map type for it). Every failure is a typed
 * `EXEC_BAD_VALUE`, including a value larger than the limit.
 */
import { Packr } from 'msgpackr';
import { ErrorCode, LfaasError, refuseProtoKeys } from '../lattices/index.js';

/** The default largest encoded value: 8 MiB (a frame carries at most 16 MiB). */
export const DEFAULT_MAX_VALUE_BYTES = 8 * 1024 * 1024;

export interface ValueCodecOptions {
  readonly maxBytes?: number;
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', largeBigIntToFloat: false, moreTypes: false });

/** Encodes a user value; throws EXEC_BAD_VALUE if it cannot be encoded or is too large. */
export function encodeValue(value: unknown, options: ValueCodecOptions = {}): Uint8Array {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_VALUE_BYTES;
  let bytes: Uint8Array;
  try {
    bytes = packr.pack(value);
  } catch (cause) {
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `value cannot be encoded: ${(cause as Error).message}`, { cause });
  }
  if (bytes.byteLength > maxBytes) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `value of ${bytes.byteLength} bytes exceeds ${maxBytes}`);
  refuseProtoKeys(value, bytes, ErrorCode.EXEC_BAD_VALUE);
  return bytes;
}

/** Decodes a user value; throws EXEC_BAD_VALUE on malformed, trailing or oversized bytes. */
export function decodeValue(bytes: Uint8Array, options: ValueCodecOptions = {}): unknown {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_VALUE_BYTES;
  if (bytes.byteLength > maxBytes) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `value of ${bytes.byteLength} bytes exceeds ${maxBytes}`);
  if (bytes.byteLength === 0) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'empty value');
  try {
    const values = packr.unpackMultiple(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as unknown[];
    if (values.length !== 1) throw new Error(`${values.length} values where one was expected`);
    return values[0];
  } catch (cause) {
    if (cause instanceof LfaasError) throw cause;
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `malformed value: ${(cause as Error).message}`, { cause });
  }
}
