/**
 * The msgpack codec shared by every lattice, and the canonical identity of plain values (set
 * elements, tie-breaks). Decoding failures become `LATTICE_DECODE`.
 */
import { Packr } from 'msgpackr';
import { ErrorCode, LfaasError } from './errors.js';
import type { Ordering } from './lattice.js';
import { isWellFormedString } from './strings.js';

// copyBuffers: decoded byte strings are copies, never views of the (possibly reused) input.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', moreTypes: false, copyBuffers: true });

/** msgpack bytes of a value; refuses values msgpack cannot carry faithfully (see below). */
export function pack(value: unknown): Uint8Array {
  const bytes = packr.pack(value);
  refuseProtoKeys(value, bytes, ErrorCode.LATTICE_DECODE);
  return bytes;
}

/** The msgpack string "__proto__" (fixstr of 9 bytes). */
const PROTO_KEY = Uint8Array.of(0xa9, ...new TextEncoder().encode('__proto__'));

/** A plain loop: for the small payloads of the hot path it beats the native `indexOf` call. */
function containsProtoKey(bytes: Uint8Array): boolean {
  const last = bytes.byteLength - PROTO_KEY.byteLength;
  outer: for (let i = 0; i <= last; i++) {
    if (bytes[i] !== 0xa9) continue;
    for (let j = 1; j < PROTO_KEY.byteLength; j++) if (bytes[i + j] !== PROTO_KEY[j]) continue outer;
    return true;
  }
  return false;
}

/**
 * msgpackr renames an own `__proto__` key to `__proto_` when it decodes (its guard against
 * prototype pollution), so such a value would come back changed. Refuse it instead. The byte
 * search is the fast path; only a hit walks the value to tell a key from a string value.
 */
export function refuseProtoKeys(value: unknown, bytes: Uint8Array, code: ErrorCode): void {
  if (!containsProtoKey(bytes)) return;
  const walk = (node: unknown, depth: number): void => {
    if (depth > 256 || typeof node !== 'object' || node === null || node instanceof Uint8Array) return;
    if (Array.isArray(node)) {
      for (const item of node) walk(item, depth + 1);
      return;
    }
    for (const [key, child] of Object.entries(node)) {
      if (key === '__proto__') throw new LfaasError(code, 'a value with a "__proto__" key cannot be encoded faithfully');
      walk(child, depth + 1);
    }
  };
  walk(value, 0);
}

/** The one value in `bytes`; trailing bytes or malformed input are a `LATTICE_DECODE` error. */
export function unpack(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) throw decodeError('empty payload');
  try {
    // msgpackr's `unpack` refuses trailing bytes ("end of buffer not reached").
    return packr.unpack(bytes) as unknown;
  } catch (cause) {
    throw decodeError(`malformed msgpack: ${(cause as Error).message}`, cause);
  }
}

export function decodeError(message: string, cause?: unknown): LfaasError {
  return new LfaasError(ErrorCode.LATTICE_DECODE, message, cause === undefined ? undefined : { cause });
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
/** How deep a plain value may nest (arrays and objects); deeper values are refused. */
export const MAX_VALUE_DEPTH = 64;

/**
 * The canonical form of a plain value, as every replica will read it back from its encoding: a
 * fresh copy whose objects have their keys in sorted order at every level (plain `Object`
 * prototype, own enumerable string keys only), whose numbers are never `-0` (msgpack has one
 * integer zero, so `-0` becomes `0`) and whose `NaN`s are the one canonical `NaN` (msgpack would
 * keep a NaN's payload bits, giving equal values two encodings), and whose byte arrays are plain
 * `Uint8Array` copies. Equal values (same `canonicalKey`) therefore always encode to the same bytes
 * and reveal the same value, down to `Object.is` on every number.
 *
 * The lattice keeps this copy, so mutating the argument afterwards changes nothing; what `reveal()`
 * returns is the lattice's own value: read it, do not mutate it.
 *
 * Refused with `LATTICE_DECODE`: anything msgpack cannot carry back unchanged (functions, symbols,
 * `Map`, `Set`, `Date`, other typed arrays, class instances, bigints beyond 64 bits, a `"__proto__"`
 * key, nesting beyond `MAX_VALUE_DEPTH`) and strings or keys that are not well-formed Unicode (a
 * lone surrogate has no UTF-8 form; see `strings.ts`). `undefined` (also in arrays and as an object
 * value; an array hole becomes `undefined`), `null`, booleans, every other number including
 * `NaN` and the infinities, and 64-bit bigints round-trip exactly.
 *
 * @example
 * ```ts
 * canonicalValue({ b: [-0], a: 1 }); // { a: 1, b: [0] }, a new object
 * canonicalValue('\ud800');          // throws LfaasError LATTICE_DECODE
 * ```
 */
export function canonicalValue<T>(value: T): T {
  return canonicalAt(value, 0) as T;
}

function canonicalAt(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
      if (!isWellFormedString(value)) throw decodeError('a string is not well-formed Unicode (a lone surrogate has no UTF-8 form)');
      return value;
    case 'boolean':
    case 'undefined':
      return value;
    case 'number':
      // `value + 0` turns -0 into 0; `NaN` (the literal) is the canonical quiet NaN.
      return value === value ? value + 0 : Number.NaN;
    case 'bigint':
      if (value < INT64_MIN || value > UINT64_MAX) throw decodeError('a bigint value must fit in 64 bits');
      return value;
    case 'object':
      break;
    default:
      throw decodeError(`a ${typeof value} is not a plain value`);
  }
  if (value === null) return value;
  if (depth >= MAX_VALUE_DEPTH) throw decodeError(`a value nested deeper than ${MAX_VALUE_DEPTH}`);
  // Bytes are plain `Uint8Array` copies: never an alias of the caller's array or of a (possibly
  // reused) network buffer, and one type (not `Buffer`) on every replica.
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) {
    // A copy by index: holes become `undefined` (what msgpack carries), extra properties go.
    const copy = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) copy[i] = canonicalAt(value[i], depth + 1);
    return copy;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw decodeError('only plain objects, arrays, bytes and primitives are plain values');
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort(compareStrings);
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    if (key === '__proto__') throw decodeError('a value with a "__proto__" key cannot be encoded faithfully');
    if (!isWellFormedString(key)) throw decodeError('an object key is not well-formed Unicode (a lone surrogate has no UTF-8 form)');
    out[key] = canonicalAt(record[key], depth + 1);
  }
  return out;
}

/**
 * A string that identifies a plain value: equal for structurally equal values (object keys sorted,
 * bytes in hex, numbers, bigints and strings kept apart, `-0` as `0`, holes as `undefined`), so sets
 * and ties never depend on insertion or arrival order. Meant for canonical values (see
 * {@link canonicalValue}); for anything else it is only a best effort.
 */
export function canonicalKey(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `s${JSON.stringify(value)}`;
    case 'number':
      return Object.is(value, -0) ? 'n0' : `n${value}`;
    case 'bigint':
      return `b${value}`;
    case 'boolean':
      return value ? 'T' : 'F';
    case 'undefined':
      return 'u';
    default:
      break;
  }
  if (value === null) return 'z';
  if (value instanceof Uint8Array) return `x${hex(value)}`;
  if (Array.isArray(value)) {
    const parts: string[] = [];
    for (let i = 0; i < value.length; i++) parts.push(canonicalKey(value[i]));
    return `[${parts.join(',')}]`;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => compareStrings(a, b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalKey(v)}`).join(',')}}`;
  }
  return `?${String(value)}`;
}

/** Compares strings by code unit; the order every sorted encoding uses. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---- field readers: assert invariants where data is read ----

export function asArray(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw decodeError(`${what}: expected an array`);
  return value;
}

export function asCount(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw decodeError(`${what}: expected a non-negative integer`);
  return value;
}

export function asFinite(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw decodeError(`${what}: expected a finite number`);
  return value;
}

export function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw decodeError(`${what}: expected a string`);
  return checkString(value, what);
}

/**
 * `value` itself when it is well-formed Unicode; else `LATTICE_DECODE`. Every id and key a lattice
 * is built with passes here (see `strings.ts` for why the rule is refusal).
 */
export function checkString(value: string, what: string): string {
  if (!isWellFormedString(value)) throw decodeError(`${what}: not well-formed Unicode (a lone surrogate has no UTF-8 form)`);
  return value;
}

export function asBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw decodeError(`${what}: expected bytes`);
  return value;
}

/** Reads `[[name, count], ...]` sorted by name with no duplicates and no zero counts. */
export function readCountEntries(value: unknown, what: string): Map<string, number> {
  const out = new Map<string, number>();
  let previous: string | undefined;
  for (const entry of asArray(value, what)) {
    const pair = asArray(entry, what);
    if (pair.length !== 2) throw decodeError(`${what}: expected [name, count] pairs`);
    const name = asString(pair[0], what);
    const count = asCount(pair[1], what);
    if (previous !== undefined && compareStrings(previous, name) >= 0) throw decodeError(`${what}: names not strictly sorted`);
    if (count === 0) throw decodeError(`${what}: zero count`);
    previous = name;
    out.set(name, count);
  }
  return out;
}

/** `[[name, count], ...]` sorted by name. */
export function writeCountEntries(map: ReadonlyMap<string, number>): [string, number][] {
  return [...map.entries()].sort(([a], [b]) => compareStrings(a, b));
}

/** Pointwise max of two count maps (the merge of vector clocks and counter halves). */
export function mergeCounts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): Map<string, number> {
  const out = new Map(a);
  for (const [name, count] of b) if ((out.get(name) ?? 0) < count) out.set(name, count);
  return out;
}

/** Where count map `a` stands against `b` (missing entries are zero). */
export function compareCounts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): Ordering {
  let less = false;
  let greater = false;
  for (const [name, count] of a) {
    const other = b.get(name) ?? 0;
    if (count < other) less = true;
    else if (count > other) greater = true;
  }
  for (const [name, count] of b) if (!a.has(name) && count > 0) less = true;
  return combine(less, greater);
}

export function combine(less: boolean, greater: boolean): Ordering {
  if (less && greater) return 'concurrent';
  if (less) return 'lt';
  if (greater) return 'gt';
  return 'eq';
}

/** Combines per-part orderings into the ordering of the whole (product order). */
export function combineOrderings(parts: Iterable<Ordering>): Ordering {
  let less = false;
  let greater = false;
  for (const part of parts) {
    if (part === 'concurrent') return 'concurrent';
    if (part === 'lt') less = true;
    if (part === 'gt') greater = true;
  }
  return combine(less, greater);
}

/** Orders of a total order compared with a number. */
export function fromSign(sign: number): Ordering {
  return sign < 0 ? 'lt' : sign > 0 ? 'gt' : 'eq';
}

/**
 * Node's `Buffer.compare` where there is one (it takes any Uint8Array and beats a JS loop); the
 * library also runs inside function sandboxes, which have no `Buffer`.
 */
const nativeCompare: ((a: Uint8Array, b: Uint8Array) => number) | undefined = typeof Buffer === 'function' ? Buffer.compare : undefined;

/** Byte-wise equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  if (nativeCompare !== undefined) return nativeCompare(a, b) === 0;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Sign of (a - b) in byte order, a prefix first (the order of their hex: hex digits sort as bytes do). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  if (nativeCompare !== undefined) return nativeCompare(a, b);
  const length = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.byteLength - b.byteLength;
}

const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, '0'));

/** Lower-case hex of bytes (no `Buffer`: see {@link bytesEqual}). */
function hex(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.byteLength; i++) text += HEX[bytes[i]!];
  return text;
}
