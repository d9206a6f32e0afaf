/**
 * onnxruntime-node, loaded from the ML folder (not a dependency of the project: it is ~290 MB, so
 * `lfaas ml install` puts it in `.lfaas/ml` on first use, cli/ml-install.ts). The types below are
 * the few parts of its API used here, written locally because the package is absent at compile
 * time; {@link loadOnnxRuntime} requires it from the folder, and {@link toOrtTensor} /
 * {@link fromOrtTensor} convert between its tensors and the platform's byte tensors.
 *
 * Used by the inference process (inference-process.ts) and by the benchmark's and tests' plain
 * runs, so that every run of a model goes through the same conversions and session options.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { checkTensor } from '../protocol/portable.js';
import type { TensorType, TensorValue } from '../protocol/portable.js';

/** An onnxruntime tensor (the parts used). */
export interface OrtTensor {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: ArrayBufferView;
}

/** An onnxruntime inference session (the parts used). */
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

/** Session options (the parts used). */
export interface OrtSessionOptions {
  readonly executionProviders?: readonly string[];
  readonly graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  readonly intraOpNumThreads?: number;
  readonly interOpNumThreads?: number;
  readonly logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  /** Session config entries (onnxruntime's `session.*` keys), as nested objects. */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** The onnxruntime-node module (the parts used). */
export interface OnnxRuntime {
  readonly InferenceSession: { create(model: Uint8Array, options?: OrtSessionOptions): Promise<OrtSession> };
  readonly Tensor: new (type: string, data: ArrayBufferView, dims: readonly number[]) => OrtTensor;
  readonly env: { logLevel?: string };
}

/**
 * The session options every run of a model uses here (the service's and the plain baselines').
 * Thread pools do not spin waiting for work: onnxruntime's default keeps its threads busy-waiting
 * after each run, which on a machine with few cores takes them from every other process (the
 * executor, the sandboxes, another executor's inference process).
 */
export const SESSION_OPTIONS: OrtSessionOptions = {
  executionProviders: ['cpu'],
  graphOptimizationLevel: 'all',
  logSeverityLevel: 3,
  extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
};

/** The ML packages and the versions installed: onnxruntime-node (native CPU binaries inside) and onnx-proto (ONNX graphs in JS). */
export const ML_PACKAGES = ['onnxruntime-node@1', 'onnx-proto@8'] as const;

/** Whether `name` is installed in the ML folder `mlDir`. */
export function mlPackageInstalled(mlDir: string, name: string): boolean {
  return existsSync(join(mlDir, 'node_modules', name, 'package.json'));
}

/**
 * Requires package `name` from the ML folder. Throws INTERNAL naming the install command when it
 * is not there.
 */
export function requireMlPackage<T>(mlDir: string, name: string): T {
  if (!mlPackageInstalled(mlDir, name)) throw new LfaasError(ErrorCode.INTERNAL, `${name} is not installed in ${mlDir}: run \`npx lfaas ml install\` (or set LFAAS_ML_DIR to a folder where it is)`);
  return createRequire(join(mlDir, 'package.json'))(name) as T;
}

/** onnxruntime-node from the ML folder. */
export function loadOnnxRuntime(mlDir: string): OnnxRuntime {
  // onnxruntime-node (1.31) has telemetry that tries HTTPS uploads; the platform talks to nothing
  // but its own nodes. Read by the native library when it loads, so set before the require.
  process.env['ORT_DISABLE_TELEMETRY'] = '1';
  return requireMlPackage<OnnxRuntime>(mlDir, 'onnxruntime-node');
}

const ORT_ARRAYS = {
  float32: (buffer: ArrayBuffer, offset: number, length: number) => new Float32Array(buffer, offset, length),
  int64: (buffer: ArrayBuffer, offset: number, length: number) => new BigInt64Array(buffer, offset, length),
  int32: (buffer: ArrayBuffer, offset: number, length: number) => new Int32Array(buffer, offset, length),
  uint8: (buffer: ArrayBuffer, offset: number, length: number) => new Uint8Array(buffer, offset, length),
} as const satisfies Record<TensorType, unknown>;

const ELEMENT_BYTES: Record<TensorType, number> = { float32: 4, int64: 8, int32: 4, uint8: 1 };

/**
 * An onnxruntime tensor over a checked byte tensor (little-endian, as this machine: x86 and arm64
 * are). The bytes are copied when they are not aligned to the element size.
 */
export function toOrtTensor(ort: OnnxRuntime, tensor: TensorValue): OrtTensor {
  const size = ELEMENT_BYTES[tensor.type];
  let bytes = tensor.data;
  // A copy, not Buffer's slice (a view at the same offset).
  if (bytes.byteOffset % size !== 0) bytes = new Uint8Array(bytes);
  return new ort.Tensor(tensor.type, ORT_ARRAYS[tensor.type](bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / size), tensor.dims);
}

/** A byte tensor with a copy of an onnxruntime tensor's elements; EXEC_BAD_VALUE for an element type the platform does not carry. */
export function fromOrtTensor(tensor: OrtTensor, path: string): TensorValue {
  const type = tensor.type;
  if (type !== 'float32' && type !== 'int64' && type !== 'int32' && type !== 'uint8') throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `${path}: the model gives a ${String(type)} tensor; only float32, int64, int32 and uint8 are carried`);
  const view = tensor.data;
  const data = new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
  return checkTensor({ type, dims: [...tensor.dims], data }, path);
}
