import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isLfaasError } from '../lattices/index.js';
import { decodeValue, encodeValue } from './values.js';
import { errorCodeFromWire, errorCodeToWire, wireErrorNames } from './errors-wire.js';

const runs = process.env['LFAAS_LONG'] === '1' ? 20_000 : 500;

describe('value codec', () => {
  it('round-trips JSON values, bigints and bytes', () => {
    const value = fc.oneof(fc.jsonValue(), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.uint8Array({ maxLength: 32 }));
    fc.assert(
      fc.property(fc.array(value, { maxLength: 4 }), (values) => {
        if (JSON.stringify(values, (_k, v: unknown) => (typeof v === 'bigint' ? 0 : v)).includes('"__proto__":')) {
          // Refused rather than silently renamed (msgpackr renames the key on decode).
          expect(() => encodeValue(values)).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE }));
          return;
        }
        const decoded = decodeValue(encodeValue(values)) as unknown[];
        // msgpack keeps -0 as 0 only for integers; compare through a normaliser that treats -0 as 0.
        expect(normalise(decoded)).toEqual(normalise(values));
      }),
      { numRuns: runs },
    );
  });

  it('random bytes decode to a value or an EXEC_BAD_VALUE error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => {
        try {
          decodeValue(bytes);
        } catch (error) {
          expect(isLfaasError(error) && error.code === ErrorCode.EXEC_BAD_VALUE).toBe(true);
        }
      }),
      { numRuns: runs * 4 },
    );
  });

  it('refuses a "__proto__" key (it would not survive decoding) but not a "__proto__" string', () => {
    expect(() => encodeValue(JSON.parse('{"a":[{"__proto__":1}]}'))).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE }));
    expect(decodeValue(encodeValue({ key: '__proto__' }))).toEqual({ key: '__proto__' });
  });

  it('refuses oversized values on both sides, and trailing bytes', () => {
    expect(() => encodeValue('x'.repeat(100), { maxBytes: 50 })).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE }));
    expect(() => decodeValue(new Uint8Array(100), { maxBytes: 50 })).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE }));
    const two = new Uint8Array([...encodeValue(1), ...encodeValue(2)]);
    expect(() => decodeValue(two)).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE }));
    expect(() => decodeValue(new Uint8Array())).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE }));
  });
});

describe('error codes on the wire', () => {
  it('the proto enum and the catalogue hold exactly the same codes', () => {
    expect(wireErrorNames().sort()).toEqual(Object.values(ErrorCode).sort());
  });

  it('every code round-trips through its wire number', () => {
    for (const code of Object.values(ErrorCode)) expect(errorCodeFromWire(errorCodeToWire(code))).toBe(code);
    expect(errorCodeFromWire(9999)).toBe(ErrorCode.INTERNAL);
  });
});

/** Buffers as plain byte arrays, -0 as 0, bigints as tagged strings: the differences msgpack may make. */
function normalise(value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Object.is(value, -0)) return 0;
  if (Array.isArray(value)) return value.map(normalise);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  return value;
}
