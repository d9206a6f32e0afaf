/**
 * Testing functions without a cluster: a vitest file to copy into your project. In your project
 * the imports are `lattice-faas/testing` and `lattice-faas/client` (here, inside the repository,
 * their sources); the functions are this folder's modules, imported as they are.
 *
 * - `createTestCluster()` runs the platform in the test's process (KVS, scheduler, executors with
 *   their cache and consistency modes) and calls the functions as `LatticeFaas` does: a DAG, an
 *   async call, a typed error, concurrent counters.
 * - `createTestContext()` is one function's `ctx` over a seeded in-memory KVS, to call the
 *   function directly: a unit test.
 *
 * `npx vitest run examples/functions/functions.test.ts`; docs/testing.md says more.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// In your project: from 'lattice-faas/testing'.
import { createTestCluster, createTestContext, dag } from '../../testing/index.js';
import type { TestCluster } from '../../testing/index.js';
// In your project: from 'lattice-faas/client'.
import { Counter, ErrorCode, isLfaasError } from '../../client/index.js';
import counterIncrement from './counter-increment.js';
import increment from './increment.js';
import readKey from './read-key.js';
import square from './square.js';

describe('square and increment on a test cluster', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await createTestCluster();
  });
  afterAll(async () => {
    await cluster.close();
  });

  it('squares', async () => {
    const sq = await cluster.register('square', square, { timeoutMs: 1000 });
    expect(await cluster.call(sq, [7])).toBe(49);
  });

  it('runs the DAG square(increment(x))', async () => {
    const inc = await cluster.register('increment', increment);
    const sq = await cluster.register('square', square);
    const composed = await cluster.registerDag(dag('square-of-increment').fn(inc).fn(sq, ['increment']).build());
    expect(await cluster.callDag(composed, { increment: [3] })).toBe(16);
    expect(await cluster.callDag(composed, { increment: [3] }, { consistency: 'causal' })).toBe(16);
  });

  it('calls asynchronously', async () => {
    const sq = await cluster.register('square', square);
    const future = await cluster.callAsync(sq, [8]);
    expect(await future.result()).toBe(64);
  });

  it('fails as deployed: a thrown error is EXEC_USER_ERROR with its message', async () => {
    const sq = await cluster.register('square', square);
    const call = cluster.call(sq, ['seven' as unknown as number]);
    await expect(call).rejects.toSatisfy((error) => isLfaasError(error) && error.code === ErrorCode.EXEC_USER_ERROR);
    await expect(call).rejects.toThrow(/square takes a number/);
  });

  it('loses no increment of concurrent calls', async () => {
    const counter = await cluster.register('counter-increment', counterIncrement);
    await Promise.all(Array.from({ length: 20 }, () => cluster.call(counter, ['visits'])));
    expect(((await cluster.kvs.get('visits')) as Counter).reveal()).toBe(20);
  });
});

describe('one function with a test context', () => {
  it('increments a counter', async () => {
    const ctx = createTestContext({ kvs: { visits: Counter.ZERO.increment('earlier', 3) } });
    expect(await counterIncrement('visits', ctx)).toBe(4);
    expect(await counterIncrement('visits', ctx)).toBe(5);
  });

  it("reads its owner's keys only", async () => {
    const ctx = createTestContext({ functionName: 'alice/read-key', kvs: { 'alice/note': 'mine', 'bob/note': 'theirs' } });
    expect(await readKey('alice/note', ctx)).toBe('mine');
    expect(await readKey('bob/note', ctx)).toBe(ErrorCode.UNAUTHORISED);
  });
});
