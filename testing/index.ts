/**
 * `lattice-faas/testing`: test functions and DAGs without a cluster.
 *
 * - {@link createTestCluster}: the platform in the test's process (the real KVS, scheduler and
 *   executor machines on the in-memory network, the executors' real cache, consistency modes and
 *   runtime pool); functions are registered as the objects the test imports and called through
 *   the real client, so a call fails with the same typed error as deployed (EXEC_USER_ERROR,
 *   EXEC_TIMEOUT, EXEC_BAD_VALUE...).
 * - {@link createTestContext}: one function's `ctx` over a seeded in-memory KVS, to call the
 *   function directly.
 *
 * What neither reproduces: the sandbox (functions run in the test's realm, with its globals and
 * imports), memory limits, several processes. See docs/testing.md.
 *
 * @example
 * ```ts
 * import { createTestCluster } from 'lattice-faas/testing';
 * import square from './square.js';
 *
 * await using cluster = await createTestCluster();
 * const sq = await cluster.register('square', square);
 * expect(await cluster.call(sq, [7])).toBe(49);
 * ```
 */
export { createTestCluster, TestCluster } from './test-cluster.js';
export type { TestClusterOptions, TestRegisterOptions } from './test-cluster.js';
export { createTestContext } from './test-context.js';
export type { SentMessage, TestContext, TestContextOptions } from './test-context.js';
export { MemoryKvs } from './memory-kvs.js';
export type { FunctionLogRecord } from './in-process-runtime.js';
// What a test of functions needs beside the harness, from one import.
export { dag, ref } from '../client/index.js';
export type { CallFuture, CallOptions, Consistency, DagHandle, FunctionContext, FunctionHandle } from '../client/index.js';
