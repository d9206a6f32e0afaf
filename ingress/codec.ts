/**
 * Bodies in and out: JSON by default, msgpack when the request says so (`Content-Type:` /
 * `Accept: application/msgpack`), each read under a byte limit and checked before it reaches the
 * cluster.
 *
 * - A body is read as a stream and cut off at the limit (413, PROTO_TOO_LARGE), whatever its
 *   `Content-Length` says; a declared length over the limit is refused before a byte is read.
 * - JSON: malformed text is 400 PROTO_MALFORMED; nesting deeper than the depth limit, a
 *   non-finite number (`1e999` parses to Infinity) and a `__proto__` key are 400 EXEC_BAD_VALUE.
 * - msgpack: decoded by the user value codec (protocol/values.ts), which refuses anything that
 *   would not round-trip (EXEC_BAD_VALUE), then the same depth check.
 * - Answers: msgpack carries every user value as is; JSON carries bytes as `{"$base64": "..."}`,
 *   a bigint as a number when it is a safe integer (else its decimal string), a `Date` as its ISO
 *   text and `undefined` as `null` (docs/http.md).
 */
import { ErrorCode } from '../lattices/index.js';
import { decodeValue, encodeValue } from '../protocol/index.js';
import { HttpError } from './errors.js';

export const JSON_TYPE = 'application/json';
export const MSGPACK_TYPE = 'application/msgpack';
/** A lattice in the KVS's own encoding (the lattice codec's msgpack bytes): any lattice type, read and written as is. */
export const LATTICE_TYPE = 'application/vnd.lfaas.lattice';

const MSGPACK_TYPES = new Set([MSGPACK_TYPE, 'application/x-msgpack', 'application/vnd.msgpack']);

/** The media type of a `Content-Type` or one entry of `Accept`, lower-case, parameters dropped. */
function mediaType(header: string | null | undefined): string {
  return (header ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

export type BodyFormat = 'json' | 'msgpack' | 'lattice';

/** What a request body is, by its `Content-Type` (none or JSON: JSON; anything else: 415). */
export function requestFormat(contentType: string | null | undefined, allowLattice = false): BodyFormat {
  const type = mediaType(contentType);
  // curl -d sends form-urlencoded unless told otherwise: its body is read as JSON, as a user typing it means.
  if (type === '' || type === JSON_TYPE || type.endsWith('+json') || type === 'text/plain' || type === 'application/x-www-form-urlencoded') return 'json';
  if (MSGPACK_TYPES.has(type)) return 'msgpack';
  if (allowLattice && type === LATTICE_TYPE) return 'lattice';
  throw new HttpError(415, ErrorCode.PROTO_MALFORMED, `Content-Type ${JSON.stringify(type.slice(0, 100))} is not supported: send ${JSON_TYPE} or ${MSGPACK_TYPE}${allowLattice ? ` or ${LATTICE_TYPE}` : ''}`);
}

/** What an answer should be, by the request's `Accept` (msgpack or the lattice encoding only when listed before JSON). */
export function answerFormat(accept: string | null | undefined, allowLattice = false): BodyFormat {
  for (const entry of (accept ?? '').split(',')) {
    const type = mediaType(entry);
    if (type === JSON_TYPE || type === '*/*' || type === 'application/*') return 'json';
    if (MSGPACK_TYPES.has(type)) return 'msgpack';
    if (allowLattice && type === LATTICE_TYPE) return 'lattice';
  }
  return 'json';
}

/**
 * The body of `request`, at most `limitBytes`; 413 beyond. An empty body is an empty array.
 */
export async function readBody(request: Request, limitBytes: number): Promise<Uint8Array> {
  const declared = request.headers.get('content-length');
  if (declared !== null && (!/^\d{1,15}$/.test(declared.trim()) || Number(declared) > limitBytes)) {
    throw new HttpError(413, ErrorCode.PROTO_TOO_LARGE, `the body is larger than ${limitBytes} bytes (Content-Length ${declared.slice(0, 20)})`);
  }
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limitBytes) {
      await reader.cancel().catch(() => {});
      throw new HttpError(413, ErrorCode.PROTO_TOO_LARGE, `the body is larger than ${limitBytes} bytes`);
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

const badValue = (message: string): HttpError => new HttpError(400, ErrorCode.EXEC_BAD_VALUE, message);

/**
 * Checks a decoded JSON or msgpack value: nesting at most `depthMax` (walked with an explicit
 * stack, so a hostile depth cannot overflow ours), finite numbers, no `__proto__` key.
 */
export function checkValue(value: unknown, depthMax: number): void {
  const stack: [unknown, number][] = [[value, 0]];
  // Bounded by the body's size: each entry is at least one byte of it.
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item === 'number' && !Number.isFinite(item)) throw badValue('a number is out of range (not finite)');
    if (typeof item !== 'object' || item === null || item instanceof Uint8Array) continue;
    if (depth >= depthMax) throw badValue(`the value is nested deeper than ${depthMax} levels`);
    if (Array.isArray(item)) {
      for (const child of item) stack.push([child, depth + 1]);
      continue;
    }
    for (const key of Object.keys(item)) {
      if (key === '__proto__') throw badValue('a "__proto__" key is not accepted');
      stack.push([(item as Record<string, unknown>)[key], depth + 1]);
    }
  }
}

/** Parses a body of `format` (JSON or msgpack) and checks it; an empty body is `undefined`. */
export function parseBody(bytes: Uint8Array, format: 'json' | 'msgpack', depthMax: number): unknown {
  if (bytes.byteLength === 0) return undefined;
  let value: unknown;
  if (format === 'msgpack') {
    value = decodeValue(bytes);
  } else {
    const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    try {
      // A reviver would see `__proto__` keys as own properties too; checkValue refuses them.
      value = JSON.parse(text);
    } catch (error) {
      throw new HttpError(400, ErrorCode.PROTO_MALFORMED, `the body is not valid JSON: ${(error as Error).message.slice(0, 200)}`);
    }
  }
  checkValue(value, depthMax);
  return value;
}

/** JSON's form of a user value (see the file comment); depth bounded by the value codec's own bound. */
export function toJsonValue(value: unknown, depth = 0): unknown {
  if (depth > 600) throw badValue('the value is nested too deep for JSON');
  if (value === undefined) return null;
  if (typeof value === 'bigint') return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return Object.fromEntries([...value].map(([key, item]) => [String(key), toJsonValue(item, depth + 1)]));
  if (value instanceof Set) return [...value].map((item) => toJsonValue(item, depth + 1));
  if (Array.isArray(value)) return value.map((item) => toJsonValue(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = toJsonValue(item, depth + 1);
  return out;
}

/** The bytes and content type of an answer carrying `value` in `format` (JSON or msgpack). */
export function encodeAnswer(value: unknown, format: BodyFormat): { body: Uint8Array | string; contentType: string } {
  if (format === 'msgpack') return { body: encodeValue(value), contentType: MSGPACK_TYPE };
  return { body: JSON.stringify(toJsonValue(value)), contentType: `${JSON_TYPE}; charset=utf-8` };
}
