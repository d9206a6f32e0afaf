/**
 * The socket-free face of the protocol folder: what may run inside a function sandbox, which must
 * not load the transport (ZeroMQ's native sockets) that `index.ts` brings with it. The user value
 * codec and the type of `ctx`.
 */
export { DEFAULT_MAX_VALUE_BYTES, MAX_USER_VALUE_DEPTH, decodeValue, encodeValue } from './values.js';
export type { ValueCodecOptions } from './values.js';
export type { CallSignal, FunctionContext, FunctionLogger } from './function-context.js';
export type { TensorValue } from './tensors.js';
