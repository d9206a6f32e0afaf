/**
 * The socket-free face of the protocol folder: what may run inside a function sandbox, which must
 * not load the transport (ZeroMQ's native sockets) that `index.ts` brings with it. The user value
 * codec, the type of `ctx`, and the tensor checks (the inference process is bundled from it too).
 */
export { DEFAULT_MAX_VALUE_BYTES, MAX_USER_VALUE_DEPTH, decodeValue, encodeValue } from './values.js';
export type { ValueCodecOptions } from './values.js';
export type { CallSignal, FunctionContext, FunctionLogger } from './function-context.js';
export { checkTensor, checkTensorRecord } from './tensors.js';
export type { TensorType, TensorValue } from './tensors.js';
