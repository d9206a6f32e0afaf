import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ErrorCode, PLAIN_WRITE_TYPES, latticeOfPlain, latticeTypeName } from './index.js';

describe('latticeOfPlain', () => {
  test.prop([fc.maxSafeInteger().map((n) => n % 1_000_000_000)])('a counter step reads back as itself', (step) => {
    expect(latticeOfPlain(step, 'counter', 'w').reveal()).toBe(step);
  });

  test.prop([fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.integer()))])('an lww value reads back as itself', (value) => {
    expect(latticeOfPlain(value, 'lww', 'w').reveal()).toEqual(value);
  });

  it('builds each type from its plain value', () => {
    expect(PLAIN_WRITE_TYPES.map((type) => latticeTypeName(latticeOfPlain(type === 'gset' ? [1, 2] : type === 'bool' ? true : type === 'lww' ? 'x' : 3, type, 'w').type))).toEqual(['Lww', 'Counter', 'GSet', 'Max', 'Min', 'Bool']);
    expect(latticeOfPlain(undefined, 'lww', 'w').reveal()).toBe(null);
  });

  it.each([
    ['counter', 1.5],
    ['counter', '3'],
    ['max', Number.NaN],
    ['min', Infinity],
    ['gset', 'a'],
    ['bool', 1],
  ] as const)('refuses %s %s with EXEC_BAD_VALUE', (type, value) => {
    expect(() => latticeOfPlain(value, type, 'w')).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE }));
  });
});
