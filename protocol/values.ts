/**
 * The msgpack codec for user values that travel inside envelopes: function arguments
 * (`Argument.value`), results (`CallResponse.result`) and DAG trigger values.
 *
 * A value round-trips exactly or is refused, never changed silently. The accepted values are:
 * `null`, `undefined`, booleans, numbers (`-0` arrives as `0`, as msgpack has one integer zero),
 * strings (well-formed Unicode, keys too: a lone surrogate has no UTF-8 form, so it is refused rather
 * than sent as U+FFFD), bigints in the 64-bit
 * range [-2^63, 2^64), `Uint8Array` (and `Buffer`; bytes arrive as a `Buffer`, a `Uint8Array`
 * subclass), `Date`, arrays (a hole arrives as `undefined`), and plain objects (prototype `Object`
 * or `null`; own enumerable string keys, as in JSON; no `"__proto__"` key, which msgpackr would
 * rename on decode).
 *
 * Refused, with EXEC_BAD_VALUE and the path of the offending part: `Map` and `Set` (msgpack has one
 * map type, used for plain objects; a msgpackr extension for them would be process-global and change
 * the lattice codec too), other typed arrays, `ArrayBuffer`, functions, symbols, class instances
 * (including `Error` and `RegExp`, which msgpackr flattens to arrays), cycles, nesting deeper than
 * {@link MAX_USER_VALUE_DEPTH}, and anything whose encoding exceeds `maxBytes` (default 8 MiB,
 * half the 16 MiB frame limit so a value always fits in an envelope).
 *
 * Decoding checks the same rules on its result, so bytes from a peer that decode to something else
 * (a typed array, a `Set` from a msgpackr extension) are refused too, and it checks the bytes
 * themselves for what msgpackr would change without a word: a string that is not well-formed UTF-8
 * (it would arrive with U+FFFD in it) and a map key that is not a string (an integer key would
 * arrive as a string). `decodeValue` only ever returns an accepted value or throws EXEC_BAD_VALUE.
 */
import { Packr } from 'msgpackr';
import { ErrorCode, LfaasError, isWellFormedString, msgpackStringProblem } from '../lattices/index.js';

/** The default largest encoded value: 8 MiB (a frame carries at most 16 MiB). */
export const DEFAULT_MAX_VALUE_BYTES = 8 * 1024 * 1024;

/** The deepest nesting of arrays and objects accepted (a cycle is refused when it reaches it). */
export const MAX_USER_VALUE_DEPTH = 512;

export interface ValueCodecOptions {
  /** The largest encoding accepted, in bytes, on both sides. */
  readonly maxBytes?: number;
}

// One codec for the process (building one per call costs more than the encoding of a small value).
// useRecords: false keeps plain msgpack maps (no msgpackr record extension) so other clients can
// read our values; int64AsType: 'bigint' makes every 64-bit msgpack integer a bigint, which is what
// bigints encode to (numbers beyond 32 bits encode as float64 and stay numbers); copyBuffers gives
// decoded bytes their own memory instead of a view that would keep a whole frame alive.
const packr = new Packr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: 'bigint',
  largeBigIntToFloat: false,
  moreTypes: false,
  copyBuffers: true,
});

const MIN_INT64 = -(2n ** 63n);
const MAX_UINT64 = 2n ** 64n - 1n;

/**
 * Encodes a user value. Throws EXEC_BAD_VALUE for a value outside the accepted set (see the file
 * comment) or an encoding larger than `maxBytes`. The result may share its `ArrayBuffer` with other
 * results: copy it before transferring its buffer to a worker.
 *
 * @example
 * ```ts
 * const bytes = encodeValue({ user: 'ada', visits: 3n, avatar: new Uint8Array([1, 2]) });
 * ```
 */
export function encodeValue(value: unknown, options: ValueCodecOptions = {}): Uint8Array {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_VALUE_BYTES;
  // Also bounds the work of packing: a value whose encoding must exceed the limit is refused first.
  const atLeastBytes = checkValue(value, 'value', 0, { maxBytes, seenBytes: 0 });
  if (atLeastBytes > maxBytes) throw tooLarge(`at least ${atLeastBytes}`, maxBytes);
  let bytes: Uint8Array;
  try {
    bytes = packr.pack(value);
  } catch (cause) {
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `value cannot be encoded: ${messageOf(cause)}`, { cause });
  }
  if (bytes.byteLength > maxBytes) throw tooLarge(String(bytes.byteLength), maxBytes);
  return bytes;
}

/**
 * Decodes a user value. Throws EXEC_BAD_VALUE on bytes longer than `maxBytes`, empty, malformed or
 * followed by trailing bytes, and on a decoded value outside the accepted set.
 *
 * @example
 * ```ts
 * const args = decodeValue(argument.value!) as unknown[];
 * ```
 */
export function decodeValue(bytes: Uint8Array, options: ValueCodecOptions = {}): unknown {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_VALUE_BYTES;
  if (bytes.byteLength > maxBytes) throw tooLarge(String(bytes.byteLength), maxBytes);
  if (bytes.byteLength === 0) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'malformed value: no bytes');
  let values: unknown[];
  try {
    values = packr.unpackMultiple(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as unknown[];
  } catch (cause) {
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `malformed value: ${messageOf(cause)}`, { cause });
  }
  if (values.length !== 1) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `malformed value: ${values.length} values where one was expected`);
  const problem = msgpackStringProblem(bytes);
  if (problem !== undefined) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `malformed value: ${problem}`);
  const value = values[0];
  checkValue(value, 'value', 0, { maxBytes: Number.POSITIVE_INFINITY, seenBytes: 0 });
  return value;
}

interface Budget {
  readonly maxBytes: number;
  /** A lower bound of the encoding's size so far: one byte per item plus string and byte lengths. */
  seenBytes: number;
}

/**
 * Throws EXEC_BAD_VALUE naming `path` unless `value` is in the accepted set; returns a lower bound
 * of its encoded size, stopping early once that passes the budget.
 */
function checkValue(value: unknown, path: string, depth: number, budget: Budget): number {
  budget.seenBytes += 1;
  switch (typeof value) {
    case 'undefined':
    case 'boolean':
    case 'number':
      return budget.seenBytes;
    case 'string':
      // UTF-8 takes at least one byte per UTF-16 code unit.
      budget.seenBytes += value.length;
      if (!isWellFormedString(value)) throw badValue(path, 'a string with a lone surrogate cannot be encoded faithfully');
      return budget.seenBytes;
    case 'bigint':
      if (value < MIN_INT64 || value > MAX_UINT64) throw badValue(path, `bigint ${value} is outside the 64-bit range [-2^63, 2^64)`);
      return budget.seenBytes;
    case 'function':
      throw badValue(path, 'a function cannot be encoded');
    case 'symbol':
      throw badValue(path, 'a symbol cannot be encoded');
    case 'object':
      break;
  }
  if (value === null) return budget.seenBytes;
  if (value instanceof Uint8Array) {
    budget.seenBytes += value.byteLength;
    return budget.seenBytes;
  }
  if (value instanceof Date) return budget.seenBytes;
  if (depth >= MAX_USER_VALUE_DEPTH) throw badValue(path, `nested deeper than ${MAX_USER_VALUE_DEPTH} levels (or a cycle)`);
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length && budget.seenBytes <= budget.maxBytes; index++) checkValue(value[index], `${path}[${index}]`, depth + 1, budget);
    return budget.seenBytes;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) throw badValue(path, unsupportedObject(value));
  for (const key in value) {
    if (budget.seenBytes > budget.maxBytes) break;
    if (!Object.hasOwn(value, key)) continue;
    if (key === '__proto__') throw badValue(path, 'a "__proto__" key cannot be encoded faithfully (msgpackr renames it on decode)');
    if (!isWellFormedString(key)) throw badValue(path, `the key ${JSON.stringify(key)} has a lone surrogate`);
    budget.seenBytes += key.length;
    checkValue((value as Record<string, unknown>)[key], `${path}.${key}`, depth + 1, budget);
  }
  return budget.seenBytes;
}

function unsupportedObject(value: object): string {
  if (value instanceof Map) return 'a Map cannot be encoded: use a plain object with string keys, or an array of [key, value] pairs';
  if (value instanceof Set) return 'a Set cannot be encoded: use an array';
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} cannot be encoded: use a Uint8Array of its bytes`;
  if (value instanceof ArrayBuffer) return 'an ArrayBuffer cannot be encoded: wrap it in a Uint8Array';
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return `an instance of ${typeof name === 'string' && name !== '' ? name : 'a class'} cannot be encoded: use a plain object`;
}

function badValue(path: string, problem: string): LfaasError {
  return new LfaasError(ErrorCode.EXEC_BAD_VALUE, `${path}: ${problem}`);
}

function tooLarge(size: string, maxBytes: number): LfaasError {
  return new LfaasError(ErrorCode.EXEC_BAD_VALUE, `value of ${size} bytes exceeds the limit of ${maxBytes} bytes`);
}

function messageOf(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
