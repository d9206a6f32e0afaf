/**
 * The public SDK: the lattice library and error catalogue, and the KVS client. Calls and DAGs
 * (issue 4) join it.
 */
export * from '../lattices/index.js';
export { KvsClient } from './kvs-client.js';
export type { KvsClientOptions, WriteOptions, AckMode, Subscription } from './kvs-client.js';
export { bundleFunction, BUNDLE_BYTES_MAX } from './bundle.js';
export type { BundledFunction } from './bundle.js';
