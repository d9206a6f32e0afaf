/**
 * Tensors as user values: what `ctx.infer(modelKey, feeds)` takes and gives back, shared by the
 * executor's inference service, the examples and the client.
 *
 * A tensor is a plain object `{ type, dims, data }` whose `data` holds the elements as
 * little-endian bytes. It is bytes rather than a `Float32Array` because the user value codec
 * (values.ts) carries `Uint8Array` and refuses other typed arrays: one codec for every value, and a
 * tensor crosses it unchanged.
 *
 * {@link checkTensor} is the one gate: the inference service runs it on every feed before it
 * reaches the runtime and on every output before it reaches the function, so a malformed tensor is
 * a typed EXEC_BAD_VALUE on either side, never a crash of the native runtime.
 *
 * @example
 * ```ts
 * const image = tensorFromFloat32([1, 3, 224, 224], pixels);   // pixels: a Float32Array
 * const outputs = await ctx.infer('models/squeezenet', { data: image });
 * const probabilities = float32OfTensor(checkTensor(outputs['probabilities'], 'probabilities'));
 * ```
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';

/** The element types a tensor may have, with their sizes in bytes. */
export const TENSOR_ELEMENT_BYTES = { float32: 4, int64: 8, int32: 4, uint8: 1 } as const;

/** An element type. */
export type TensorType = keyof typeof TENSOR_ELEMENT_BYTES;

/** A tensor as a user value: element type, shape, and the elements as little-endian bytes. */
export interface TensorValue {
  readonly type: TensorType;
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

/** The most dimensions a tensor may have (ONNX models in practice use at most 6). */
export const TENSOR_DIMS_MAX = 8;

/**
 * The most elements a tensor may have: 16 Mi (64 MiB of float32). A value is at most 8 MiB on the
 * wire anyway; this bounds what the inference process allocates for one output.
 */
export const TENSOR_ELEMENTS_MAX = 16 * 1024 * 1024;

/** The most tensors in one feed or result (a model's inputs or outputs). */
export const TENSORS_PER_CALL_MAX = 64;

function bad(path: string, problem: string): LfaasError {
  return new LfaasError(ErrorCode.EXEC_BAD_VALUE, `${path}: ${problem}`);
}

/** Whether `type` is an element type. */
export function isTensorType(type: unknown): type is TensorType {
  return typeof type === 'string' && Object.hasOwn(TENSOR_ELEMENT_BYTES, type);
}

/**
 * Checks that `value` is a well-formed tensor and resolves with a copy of its shape (the `data`
 * bytes are the caller's, not copied). Throws EXEC_BAD_VALUE naming `path` when it is not: not a
 * plain object, an unknown element type, dims that are not a list of at most
 * {@link TENSOR_DIMS_MAX} safe non-negative integers, more than {@link TENSOR_ELEMENTS_MAX}
 * elements, or data that is not a `Uint8Array` of exactly elements x element size bytes.
 *
 * @example
 * ```ts
 * checkTensor({ type: 'float32', dims: [2], data: new Uint8Array(8) }, 'x');   // ok
 * checkTensor({ type: 'float32', dims: [2], data: new Uint8Array(7) }, 'x');   // throws EXEC_BAD_VALUE
 * ```
 */
export function checkTensor(value: unknown, path: string): TensorValue {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(path, 'a tensor is an object { type, dims, data }');
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) throw bad(path, 'a tensor is a plain object { type, dims, data }');
  const { type, dims, data } = value as { type?: unknown; dims?: unknown; data?: unknown };
  if (!isTensorType(type)) throw bad(`${path}.type`, `${describe(type)} is not one of ${Object.keys(TENSOR_ELEMENT_BYTES).join(', ')}`);
  if (!Array.isArray(dims)) throw bad(`${path}.dims`, 'dims is a list of non-negative integers');
  if (dims.length > TENSOR_DIMS_MAX) throw bad(`${path}.dims`, `${dims.length} dimensions; at most ${TENSOR_DIMS_MAX}`);
  let elements = 1;
  const shape: number[] = [];
  for (let i = 0; i < dims.length; i++) {
    const dim: unknown = dims[i];
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) throw bad(`${path}.dims[${i}]`, `${describe(dim)} is not a safe non-negative integer`);
    shape.push(dim);
    elements *= dim;
    // Checked at each step so the product stays exact (both factors are bounded here).
    if (elements > TENSOR_ELEMENTS_MAX) throw bad(`${path}.dims`, `more than ${TENSOR_ELEMENTS_MAX} elements`);
  }
  if (!(data instanceof Uint8Array)) throw bad(`${path}.data`, `${describe(data)} is not a Uint8Array of little-endian elements`);
  const expected = elements * TENSOR_ELEMENT_BYTES[type];
  if (data.byteLength !== expected) throw bad(`${path}.data`, `${data.byteLength} bytes; ${shape.join('x') || 'a scalar'} of ${type} is ${expected}`);
  return { type, dims: shape, data };
}

/**
 * Checks a record of named tensors (a model's feeds or outputs): a plain object of at most
 * {@link TENSORS_PER_CALL_MAX} tensors, each by {@link checkTensor}. Throws EXEC_BAD_VALUE.
 */
export function checkTensorRecord(value: unknown, path: string): Record<string, TensorValue> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(path, 'a record of named tensors');
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) throw bad(path, 'a plain object of named tensors');
  const names = Object.keys(value);
  if (names.length > TENSORS_PER_CALL_MAX) throw bad(path, `${names.length} tensors; at most ${TENSORS_PER_CALL_MAX}`);
  const out: Record<string, TensorValue> = Object.create(null) as Record<string, TensorValue>;
  for (const name of names) {
    if (name.length === 0 || name.length > 256) throw bad(path, 'a tensor name is 1 to 256 characters');
    out[name] = checkTensor((value as Record<string, unknown>)[name], `${path}.${name}`);
  }
  return out;
}

/** The number of elements of a shape (1 for a scalar). */
export function tensorElements(dims: readonly number[]): number {
  return dims.reduce((product, dim) => product * dim, 1);
}

/**
 * A float32 tensor of shape `dims` holding `values` (copied into little-endian bytes).
 *
 * @example
 * ```ts
 * tensorFromFloat32([1, 2], new Float32Array([0.5, 1]));
 * ```
 */
export function tensorFromFloat32(dims: readonly number[], values: Float32Array): TensorValue {
  const data = new Uint8Array(values.length * 4);
  const view = new DataView(data.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return checkTensor({ type: 'float32', dims: [...dims], data }, 'tensor');
}

/** The elements of a float32 tensor, as a new `Float32Array` (throws EXEC_BAD_VALUE for another type). */
export function float32OfTensor(tensor: TensorValue): Float32Array {
  if (tensor.type !== 'float32') throw bad('tensor', `a ${tensor.type} tensor, not float32`);
  const view = new DataView(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
  const out = new Float32Array(tensor.data.byteLength / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 20 ? `${value.slice(0, 20)}...` : value);
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'no prototype'})`;
  return typeof value === 'number' ? String(value) : typeof value;
}
