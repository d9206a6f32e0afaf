import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isLfaasError } from '../lattices/index.js';
import { illFormedValueArbitrary, propertyRuns } from '../lattices/testing.js';
import { userValueArbitrary } from './testing.js';
import { DEFAULT_MAX_VALUE_BYTES, MAX_USER_VALUE_DEPTH, decodeValue, encodeValue } from './values.js';

function expectBadValue(run: () => unknown, messagePart?: string): void {
  expect(run).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE, ...(messagePart === undefined ? {} : { message: expect.stringContaining(messagePart) }) }));
}

/** The one documented change: -0 arrives as 0. Bytes are compared as plain arrays (a Buffer arrives). */
function normalise(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (value instanceof Date) return value;
  if (Array.isArray(value)) return Array.from(value, normalise);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, normalise(child)]));
  return value;
}

describe('value codec', () => {
  it('round-trips JSON values, bigints, bytes, dates and undefined, nested', () => {
    fc.assert(
      fc.property(userValueArbitrary, (value) => {
        const decoded = decodeValue(encodeValue(value));
        expect(normalise(decoded)).toEqual(normalise(value));
        // Types survive, not just shapes: a bigint stays a bigint, a number a number.
        expect(typeof decoded).toBe(typeof value);
      }),
      { numRuns: propertyRuns(500) },
    );
  });

  it('round-trips the edges of the numeric ranges', () => {
    const edges = [0, 1, -1, 2 ** 31, 2 ** 32, -(2 ** 31) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, Number.MAX_VALUE, Number.MIN_VALUE, 0.1, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    for (const edge of edges) expect(decodeValue(encodeValue(edge))).toBe(edge);
    for (const edge of [0n, -1n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n]) expect(decodeValue(encodeValue(edge))).toBe(edge);
    expect(decodeValue(encodeValue(-0))).toBe(0);
    expect(decodeValue(encodeValue(new Date(-1)))).toEqual(new Date(-1));
  });

  it('refuses what it cannot carry faithfully, naming where it is', () => {
    const refused: ReadonlyArray<readonly [unknown, string]> = [
      [{ a: new Map([[1, 2]]) }, 'value.a: a Map'],
      [[new Set([1])], 'value[0]: a Set'],
      [{ f: () => 1 }, 'value.f: a function'],
      [Symbol('s'), 'value: a symbol'],
      [new Float64Array(2), 'a Float64Array'],
      [new ArrayBuffer(2), 'an ArrayBuffer'],
      [{ e: new Error('x') }, 'value.e: an instance of Error'],
      [/x/, 'an instance of RegExp'],
      [2n ** 64n, 'outside the 64-bit range'],
      [-(2n ** 63n) - 1n, 'outside the 64-bit range'],
      [{ s: 'a\ud800' }, 'value.s: a string with a lone surrogate'],
      [{ ['b\udc00']: 1 }, 'lone surrogate'],
      [JSON.parse('{"a":[{"__proto__":1}]}'), 'value.a[0]: a "__proto__" key'],
    ];
    for (const [value, message] of refused) expectBadValue(() => encodeValue(value), message);
    // A "__proto__" string value is fine; only the key is refused.
    expect(decodeValue(encodeValue({ key: '__proto__' }))).toEqual({ key: '__proto__' });
  });

  it('refuses strings that are not well-formed Unicode at any depth, as values or keys', () => {
    fc.assert(
      fc.property(illFormedValueArbitrary, (value) => expectBadValue(() => encodeValue(value), 'lone surrogate')),
      { numRuns: propertyRuns(200) },
    );
  });

  it('refuses bytes whose strings are not well-formed UTF-8, or whose map keys are not strings, instead of changing them', () => {
    const text = (bytes: number[]): number[] => (bytes.length < 32 ? [0xa0 | bytes.length, ...bytes] : [0xd9, bytes.length, ...bytes]);
    const illFormed: ReadonlyArray<readonly [string, number[]]> = [
      ['a lone surrogate (as msgpackr writes one)', text([0x61, 0xed, 0xa0, 0x80])],
      ['a lone surrogate at the end of a long string (the TextDecoder path)', text([...new Array<number>(80).fill(0x78), 0xed, 0xa0, 0x80])],
      ['an invalid byte', text([0x61, 0xff])],
      ['an overlong encoding', text([0xc0, 0x80])],
      ['a code point past U+10FFFF', text([0xf4, 0x90, 0x80, 0x80])],
      ['a sequence cut short', text([0xe2, 0x82])],
      ['in an object key', [0x81, ...text([0xed, 0xb0, 0x80]), 0x01]],
      ['in an array', [0x92, 0x01, ...text([0x80])]],
    ];
    for (const [what, bytes] of illFormed) {
      expect(() => decodeValue(Uint8Array.from(bytes)), what).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE, message: expect.stringContaining('not well-formed UTF-8') }));
    }
    // {1: 2} with an integer key: msgpackr would make it the string "1".
    expectBadValue(() => decodeValue(Uint8Array.of(0x81, 0x01, 0x02)), 'not a string');
    // Well-formed multi-byte strings are fine, short and long.
    for (const value of ['é\u{1F600}\ufffd', 'é'.repeat(100), { 'clé': ['\u{10FFFF}'] }]) expect(decodeValue(encodeValue(value))).toEqual(value);
  });

  it('refuses cycles and nesting beyond the depth limit, and accepts nesting up to it', () => {
    const cycle: Record<string, unknown> = {};
    cycle['self'] = cycle;
    expectBadValue(() => encodeValue(cycle), 'nested deeper');
    const nest = (depth: number): unknown => {
      let value: unknown = 1;
      for (let i = 0; i < depth; i++) value = [value];
      return value;
    };
    expect(decodeValue(encodeValue(nest(MAX_USER_VALUE_DEPTH)))).toEqual(nest(MAX_USER_VALUE_DEPTH));
    expectBadValue(() => encodeValue(nest(MAX_USER_VALUE_DEPTH + 1)), 'nested deeper');
    // Bytes from a peer nested too deeply are refused as well (msgpack 0x91 = a one-element array).
    expectBadValue(() => decodeValue(new Uint8Array([...new Array<number>(MAX_USER_VALUE_DEPTH + 1).fill(0x91), 0x01])), 'nested deeper');
    expectBadValue(() => decodeValue(new Uint8Array(100_000).fill(0x91)));
  });

  it('refuses oversized values on both sides, stating the limit, before packing a huge value', () => {
    expectBadValue(() => encodeValue('x'.repeat(100), { maxBytes: 50 }), 'limit of 50 bytes');
    expectBadValue(() => decodeValue(new Uint8Array(100), { maxBytes: 50 }), 'limit of 50 bytes');
    // 10 million references to one 1 KiB string: ~10 GB encoded (packing it would exhaust the
    // test's memory). Refused by the walk's estimate first.
    const huge = new Array<string>(10_000_000).fill('y'.repeat(1024));
    expectBadValue(() => encodeValue(huge), `limit of ${DEFAULT_MAX_VALUE_BYTES} bytes`);
    const exactly = encodeValue('z'.repeat(40));
    expect(decodeValue(exactly, { maxBytes: exactly.byteLength })).toBe('z'.repeat(40));
  });

  it('refuses empty input and trailing bytes', () => {
    expectBadValue(() => decodeValue(new Uint8Array()), 'no bytes');
    expectBadValue(() => decodeValue(new Uint8Array([...encodeValue(1), ...encodeValue(2)])), '2 values');
  });

  it('refuses decoded values outside the accepted set (msgpackr extensions from a peer)', () => {
    // ext 0x74 (typed array) and a map with an array key.
    expectBadValue(() => decodeValue(new Uint8Array([0xd4, 0x74, 0x00])));
    expectBadValue(() => decodeValue(new Uint8Array([0x81, 0x91, 0x01, 0x02])));
  });

  it('gives decoded bytes their own memory', () => {
    const frame = new Uint8Array(encodeValue({ b: new Uint8Array([1, 2, 3]) }));
    const decoded = decodeValue(frame) as { b: Uint8Array };
    frame.fill(0);
    expect(Array.from(decoded.b)).toEqual([1, 2, 3]);
  });

  it('random bytes decode to an accepted value or an EXEC_BAD_VALUE error, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), (bytes) => {
        let value: unknown;
        try {
          value = decodeValue(bytes);
        } catch (error) {
          expect(isLfaasError(error) && error.code === ErrorCode.EXEC_BAD_VALUE, String(error)).toBe(true);
          return;
        }
        // Whatever decoded is a value the codec accepts: it encodes again and decodes to the same.
        expect(normalise(decodeValue(encodeValue(value)))).toEqual(normalise(value));
      }),
      { numRuns: propertyRuns(2000) },
    );
  });
});
