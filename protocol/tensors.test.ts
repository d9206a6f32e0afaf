import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { propertyRuns } from '../lattices/testing.js';
import { TENSOR_DIMS_MAX, TENSOR_ELEMENTS_MAX, TENSOR_ELEMENT_BYTES, checkTensor, checkTensorRecord, float32OfTensor, tensorElements, tensorFromFloat32 } from './tensors.js';
import type { TensorType } from './tensors.js';
import { decodeValue, encodeValue } from './values.js';

const types = Object.keys(TENSOR_ELEMENT_BYTES) as TensorType[];
/** A well-formed tensor: small dims, data of exactly the right length. */
const tensorArbitrary = fc
  .record({ type: fc.constantFrom(...types), dims: fc.array(fc.nat({ max: 6 }), { maxLength: 4 }) })
  .chain(({ type, dims }) => fc.uint8Array({ minLength: tensorElements(dims) * TENSOR_ELEMENT_BYTES[type], maxLength: tensorElements(dims) * TENSOR_ELEMENT_BYTES[type] }).map((data) => ({ type, dims, data })));

const expectBad = (run: () => unknown, part?: string): void => {
  expect(run).toThrow(expect.objectContaining({ code: ErrorCode.EXEC_BAD_VALUE, ...(part === undefined ? {} : { message: expect.stringContaining(part) }) }));
};

describe('checkTensor', () => {
  it('accepts every well-formed tensor, and it round-trips through the value codec unchanged', () => {
    fc.assert(
      fc.property(tensorArbitrary, (tensor) => {
        const checked = checkTensor(tensor, 'x');
        expect(checked).toEqual(tensor);
        const back = checkTensor(decodeValue(encodeValue(tensor)), 'x');
        expect(back.type).toBe(tensor.type);
        expect(back.dims).toEqual(tensor.dims);
        expect(Array.from(back.data)).toEqual(Array.from(tensor.data));
      }),
      { numRuns: propertyRuns(300) },
    );
  });

  it('refuses data one byte too long or too short', () => {
    fc.assert(
      fc.property(tensorArbitrary, fc.constantFrom(-1, 1), (tensor, delta) => {
        fc.pre(tensor.data.byteLength + delta >= 0);
        expectBad(() => checkTensor({ ...tensor, data: new Uint8Array(tensor.data.byteLength + delta) }, 'x'), 'x.data');
      }),
      { numRuns: propertyRuns(200) },
    );
  });

  it('refuses malformed dims, types, data and shapes, naming the path', () => {
    const ok = { type: 'float32', dims: [2], data: new Uint8Array(8) };
    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [null, 'feeds.a'],
      [[1, 2], 'feeds.a'],
      [new Map(), 'plain object'],
      [{ ...ok, type: 'float64' }, 'feeds.a.type'],
      [{ ...ok, type: undefined }, 'feeds.a.type'],
      [{ ...ok, dims: 2 }, 'feeds.a.dims'],
      [{ ...ok, dims: [-2] }, 'feeds.a.dims[0]'],
      [{ ...ok, dims: [1.5] }, 'feeds.a.dims[0]'],
      [{ ...ok, dims: [Number.NaN] }, 'feeds.a.dims[0]'],
      [{ ...ok, dims: ['2'] }, 'feeds.a.dims[0]'],
      [{ ...ok, dims: [2 ** 53] }, 'feeds.a.dims'],
      [{ ...ok, dims: new Array(TENSOR_DIMS_MAX + 1).fill(1) }, 'dimensions'],
      [{ ...ok, dims: [TENSOR_ELEMENTS_MAX, 2] }, 'elements'],
      [{ ...ok, dims: [65536, 65536, 65536] }, 'elements'],
      [{ ...ok, data: new Float32Array(2) }, 'feeds.a.data'],
      [{ ...ok, data: [0, 0, 0, 0, 0, 0, 0, 0] }, 'feeds.a.data'],
      [{ ...ok, data: new Uint8Array(7) }, '7 bytes'],
    ];
    for (const [value, part] of cases) expectBad(() => checkTensor(value, 'feeds.a'), part);
    // A zero-size tensor and a scalar are well formed.
    expect(checkTensor({ type: 'int64', dims: [0, 5], data: new Uint8Array(0) }, 'x').dims).toEqual([0, 5]);
    expect(checkTensor({ type: 'uint8', dims: [], data: new Uint8Array(1) }, 'x').dims).toEqual([]);
  });

  it('never throws anything but EXEC_BAD_VALUE on arbitrary input', () => {
    fc.assert(
      fc.property(fc.anything({ withTypedArray: true, withMap: true, withSet: true, withNullPrototype: true }), (value) => {
        try {
          checkTensor(value, 'x');
        } catch (error) {
          expect((error as { code?: string }).code).toBe(ErrorCode.EXEC_BAD_VALUE);
        }
      }),
      { numRuns: propertyRuns(300) },
    );
  });

  it('checks records of tensors, and float32 conversions round-trip', () => {
    expect(Object.keys(checkTensorRecord({ a: tensorFromFloat32([1], new Float32Array([1])) }, 'feeds'))).toEqual(['a']);
    expectBad(() => checkTensorRecord({ a: { type: 'float32', dims: [1], data: new Uint8Array(3) } }, 'feeds'), 'feeds.a.data');
    expectBad(() => checkTensorRecord([], 'feeds'), 'feeds');
    expectBad(() => checkTensorRecord(Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`t${i}`, tensorFromFloat32([0], new Float32Array(0))])), 'feeds'), 'at most');
    fc.assert(
      fc.property(fc.float32Array({ maxLength: 64 }), (values) => {
        const back = float32OfTensor(tensorFromFloat32([values.length], values));
        expect(Array.from(back).map((v) => (Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : v))).toEqual(Array.from(values).map((v) => (Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : v)));
      }),
      { numRuns: propertyRuns(200) },
    );
    expectBad(() => float32OfTensor({ type: 'int32', dims: [1], data: new Uint8Array(4) }), 'int32');
  });
});
