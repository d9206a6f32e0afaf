/**
 * Executors: today the runtime pool (worker threads running user functions in cached `vm`
 * contexts, with time and memory limits). The cache, the user library `ctx`, DAG triggers and the
 * executor machine arrive with the rest of issue 4.
 */
export { RuntimePool } from './runtime-pool.js';
export type { FunctionCode, FunctionHost, RuntimePoolOptions } from './runtime-pool.js';
export type { FunctionContext } from './runtime-worker.js';
export { ExecutorCache } from './cache.js';
export type { CacheBackend, ExecutorCacheOptions } from './cache.js';
