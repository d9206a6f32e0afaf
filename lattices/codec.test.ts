import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalKey, canonicalValue, MAX_VALUE_DEPTH, pack, unpack } from './codec.js';
import { ErrorCode } from './errors.js';
import { GSet } from './sets.js';
import { Lww } from './lww.js';
import { propertyRuns } from './testing.js';

const runs = propertyRuns(200);

/** The same plain value with every object's keys in reverse order. */
function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversedKeys);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversedKeys(v)]));
  }
  return value;
}

const plain = fc.jsonValue({ maxDepth: 4 }).filter((v) => !JSON.stringify(v).includes('__proto__'));

describe('canonicalKey and canonicalValue', () => {
  it('ignore object key order, and canonical values encode identically', () => {
    fc.assert(
      fc.property(plain, (value) => {
        const other = reversedKeys(value);
        expect(canonicalKey(other)).toBe(canonicalKey(value));
        expect(Buffer.from(pack(canonicalValue(other))).equals(Buffer.from(pack(canonicalValue(value))))).toBe(true);
        expect(canonicalKey(unpack(pack(canonicalValue(value))))).toBe(canonicalKey(value));
      }),
      { numRuns: runs },
    );
  });

  it('keep different values apart', () => {
    const values: unknown[] = [1, '1', 1n, true, 'T', null, 'z', undefined, [], {}, [1], { 0: 1 }, Uint8Array.of(1), 'x01', [null], ''];
    expect(new Set(values.map(canonicalKey)).size).toBe(values.length);
    expect(canonicalKey(-0)).toBe(canonicalKey(0));
  });

  it('return a fresh canonical copy (never an alias of the argument), with plain Uint8Array bytes', () => {
    const value = { a: [1, { b: 2, c: 'x' }], d: Uint8Array.of(1) };
    const copy = canonicalValue(value);
    expect(copy).toStrictEqual(value);
    expect(copy).not.toBe(value);
    expect(copy.a).not.toBe(value.a);
    expect(copy.d).not.toBe(value.d);
    expect(canonicalValue('text')).toBe('text');
    const sorted = canonicalValue({ b: 1, a: { d: 1, c: -0 } });
    expect(Object.keys(sorted)).toEqual(['a', 'b']);
    expect(Object.keys(sorted.a)).toEqual(['c', 'd']);
    expect(Object.is(sorted.a.c, 0)).toBe(true);
    expect(Object.is(canonicalValue([[-0]])[0]?.[0], 0)).toBe(true);
    const buffer = Buffer.from([1, 2]);
    const copied = canonicalValue(buffer);
    expect(Object.getPrototypeOf(copied)).toBe(Uint8Array.prototype);
    buffer[0] = 9;
    expect(copied[0]).toBe(1);
  });

  it('refuse what msgpack cannot carry back unchanged', () => {
    let deep: unknown = 1;
    for (let i = 0; i <= MAX_VALUE_DEPTH; i++) deep = [deep];
    const bad: unknown[] = [new Date(0), new Map(), new Set(), () => 1, Symbol('s'), 2n ** 64n, -(2n ** 63n) - 1n, deep, JSON.parse('{"__proto__":1}'), new (class X {})(), 'a\ud800', { '\udc00': 1 }, [['x', '\udbff']]];
    for (const value of bad) expect(() => canonicalValue(value)).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
    expect(() => Lww.at({ wallMs: 1, logical: 0 }, 'w', new Date(0))).toThrow(expect.objectContaining({ code: ErrorCode.LATTICE_DECODE }));
  });

  it('make lattices built from differently ordered objects identical', () => {
    const a = GSet.of({ a: 1, b: 2 });
    const b = GSet.of({ b: 2, a: 1 });
    expect(Buffer.from(a.encode()).equals(Buffer.from(b.encode()))).toBe(true);
    const x = Lww.at({ wallMs: 1, logical: 0 }, 'w', { y: 1, x: 2 });
    expect(Object.keys(x.reveal())).toEqual(['x', 'y']);
  });
});
