/**
 * The in-process cluster (test-cluster.ts) against the behaviour of a deployed one: functions and
 * DAGs through the real client, scheduler and executor machines, the consistency modes of the
 * executors' run scopes, and the typed errors of the runtime pool (thrown errors, timeouts,
 * results the platform cannot carry).
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { Counter, ErrorCode, GSet, Lww } from '../lattices/index.js';
import type { LfaasError } from '../lattices/index.js';
import { counterIncrement, increment, square } from '../examples/index.js';
import { createTestCluster, dag, ref } from './index.js';
import type { FunctionContext, TestCluster } from './index.js';

/** The typed error a promise rejects with (the test fails if it resolves). */
async function failure(promise: Promise<unknown>): Promise<LfaasError> {
  try {
    await promise;
  } catch (error) {
    return error as LfaasError;
  }
  throw new Error('expected a rejection');
}

describe('createTestCluster', () => {
  let cluster: TestCluster;
  beforeAll(async () => {
    cluster = await createTestCluster({ kvs: { shared: 'before', tags: GSet.of('a') } });
  });
  afterAll(async () => {
    await cluster.close();
  });

  it('registers and calls a function, typed by the function itself', async () => {
    const sq = await cluster.register('square', square, { timeoutMs: 1000 });
    expect(sq).toEqual({ name: 'square', version: expect.any(Number) });
    const result = await cluster.call(sq, [7]);
    expectTypeOf(result).toEqualTypeOf<number>();
    expect(result).toBe(49);
    // Again (the client may now call the executor directly), and by name.
    expect(await cluster.call(sq, [8])).toBe(64);
    expect(await cluster.call('square', [9])).toBe(81);
  });

  it('calls the square(increment(x)) DAG in every consistency mode', async () => {
    const inc = await cluster.register('increment', increment);
    const sq = await cluster.register('square', square);
    const handle = await cluster.registerDag(dag('sq-inc').fn(inc).fn(sq, ['increment']).build());
    for (const consistency of ['lww', 'repeatable-read', 'causal'] as const) {
      const result = await cluster.callDag(handle, { increment: [3] }, { consistency });
      expectTypeOf(result).toEqualTypeOf<number>();
      expect(result).toBe(16);
    }
    expect(await cluster.callDag('sq-inc', { increment: [4] }, { consistency: 'causal' })).toBe(25);
  });

  it('runs async calls of functions and DAGs, their results through the KVS', async () => {
    const sq = await cluster.register('square', square);
    const future = await cluster.callAsync(sq, [8]);
    expect(future.resultKey.length).toBeGreaterThan(0);
    expect(await future.result()).toBe(64);
    const inc = await cluster.register('increment', increment);
    await cluster.registerDag(dag('sq-inc-async').fn(inc).fn(sq, ['increment']).build());
    const dagFuture = await cluster.callDagAsync<{ increment: [number] }, number>('sq-inc-async', { increment: [5] });
    expect(await dagFuture.result()).toBe(36);
    // A failure lands in the KVS too, with its code.
    expect((await failure((await cluster.callAsync(sq, ['seven' as unknown as number])).result())).code).toBe(ErrorCode.EXEC_USER_ERROR);
  });

  it('repeatable read: two functions of a run read one version of a key written in between; lww reads the newer', async () => {
    const write = await cluster.register('write', async (key: string, value: string, ctx: FunctionContext) => {
      await ctx.put(key, value);
    });
    // The first function reads `shared`, then has it written by another call (on the same
    // executor: its cache holds the new value at once) before the second function reads it.
    const first = await cluster.register('first', async (ctx: FunctionContext) => {
      const seen = (await ctx.get('shared')) as string;
      await cluster.call(write, ['shared', `after-${ctx.callId}`], { consistency: 'lww' });
      return seen;
    });
    const second = await cluster.register('second', async (firstSaw: string, ctx: FunctionContext) => ({ firstSaw, secondSaw: (await ctx.get('shared')) as string }));
    const handle = await cluster.registerDag(dag('read-twice').fn(first).fn(second, ['first']).build());

    await cluster.call(write, ['shared', 'before']);
    const repeatable = await cluster.callDag(handle, { first: [], second: [] }, { consistency: 'repeatable-read' });
    expect(repeatable).toEqual({ firstSaw: 'before', secondSaw: 'before' });
    // The write did happen: the KVS holds it.
    expect((await cluster.kvs.get<Lww<string>>('shared'))?.reveal()).toMatch(/^after-/);

    await cluster.call(write, ['shared', 'before']);
    const lww = await cluster.callDag(handle, { first: [], second: [] }, { consistency: 'lww' });
    expect(lww.firstSaw).toBe('before');
    expect(lww.secondSaw).toMatch(/^after-/);
  });

  it('causal: a function reads what its parent wrote', async () => {
    const put = await cluster.register('causal-put', async (value: number, ctx: FunctionContext) => {
      await ctx.put('causal-key', value);
      return value;
    });
    const get = await cluster.register('causal-get', async (written: number, ctx: FunctionContext) => ({ written, read: await ctx.get('causal-key') }));
    const handle = await cluster.registerDag(dag('causal-pair').fn(put).fn(get, ['causal-put']).build());
    expect(await cluster.callDag(handle, { 'causal-put': [42] }, { consistency: 'causal' })).toEqual({ written: 42, read: 42 });
  });

  it('answers a thrown error as EXEC_USER_ERROR with its message', async () => {
    const boom = await cluster.register('boom', (reason: string) => {
      throw new RangeError(`boom: ${reason}`);
    });
    const error = await failure(cluster.call(boom, ['no luck']));
    expect(error.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(error.message).toContain('RangeError: boom: no luck');
    // A function's own TypeError, from the example's argument check.
    const sq = await cluster.register('square', square);
    expect((await failure(cluster.call(sq, ['7' as unknown as number]))).code).toBe(ErrorCode.EXEC_USER_ERROR);
  });

  it('stops a call at its timeout with EXEC_TIMEOUT and aborts its ctx.signal', async () => {
    let aborted = false;
    const slow = await cluster.register(
      'slow',
      (ctx: FunctionContext) =>
        new Promise<string>((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            resolve('too late');
          }),
        ),
      { timeoutMs: 100 },
    );
    const error = await failure(cluster.call(slow));
    expect(error.code).toBe(ErrorCode.EXEC_TIMEOUT);
    expect(aborted).toBe(true);
    // A promise that never settles, and a call's own shorter budget.
    const never = await cluster.register('never', () => new Promise(() => {}), { timeoutMs: 10_000 });
    expect((await failure(cluster.call(never, [], { timeoutMs: 100 }))).code).toBe(ErrorCode.EXEC_TIMEOUT);
  });

  it('refuses a result the platform cannot carry with EXEC_BAD_VALUE', async () => {
    const callback = await cluster.register('callback', () => ({ run: () => 1 }));
    const error = await failure(cluster.call(callback));
    expect(error.code).toBe(ErrorCode.EXEC_BAD_VALUE);
    const symbol = await cluster.register('symbol', () => Symbol('no'));
    expect((await failure(cluster.call(symbol))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    // And a value too large to put (a value is 8 MiB at most).
    const huge = await cluster.register('huge', async (ctx: FunctionContext) => ctx.put('huge', 'x'.repeat(9 * 1024 * 1024)));
    expect((await failure(cluster.call(huge))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
  });

  it('counts concurrent ctx.increment calls without losing one', async () => {
    const counter = await cluster.register('counter-increment', counterIncrement);
    const results = await Promise.all(Array.from({ length: 10 }, () => cluster.call(counter, ['hits'])));
    expect(Math.max(...results)).toBe(10);
    const stored = await cluster.kvs.get('hits');
    expect(stored).toBeInstanceOf(Counter);
    expect((stored as Counter).reveal()).toBe(10);
  });

  it('reads seeded keys, ref(key) arguments, and writes the KVS from the test', async () => {
    const tags = await cluster.register('tags', async (ctx: FunctionContext) => ctx.get('tags'));
    expect(await cluster.call(tags)).toEqual(['a']);
    // A ref(key) argument is the key's value, read by the executor before the call.
    const echo = await cluster.register('echo', (value: unknown) => value);
    expect(await cluster.call(echo, [ref('shared')])).toBeTypeOf('string');
    // An argument the platform cannot carry is refused before it leaves the client.
    expect((await failure(cluster.call(echo, [() => 1]))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    await cluster.kvs.put('tags', GSet.of('b'));
    expect(((await cluster.kvs.get<GSet<string>>('tags'))?.reveal() ?? []).sort()).toEqual(['a', 'b']);
  });

  it('keeps what functions log, with call id and function', async () => {
    const visit = await cluster.register('visit', (page: string, ctx: FunctionContext) => {
      console.log('visiting', page);
      ctx.log.info({ page }, 'visited');
      return ctx.callId;
    });
    const callId = await cluster.call(visit, ['home']);
    expect(cluster.logsOf(callId)).toEqual([
      { callId, functionName: 'visit', level: 'log', text: 'visiting home' },
      { callId, functionName: 'visit', level: 'info', text: 'visited', fields: { page: 'home' } },
    ]);
  });
});

describe('createTestCluster, more executors', () => {
  it('runs a repeatable-read DAG on two executors: its functions read one version of a key', async () => {
    await using cluster = await createTestCluster({ executors: 2, consistency: 'repeatable-read', kvs: { k: 1 } });
    const a = await cluster.register('a', async (ctx: FunctionContext) => (await ctx.get('k')) as number);
    const b = await cluster.register('b', async (fromA: number, ctx: FunctionContext) => [fromA, await ctx.get('k')]);
    const handle = await cluster.registerDag(dag('ab').fn(a).fn(b, ['a']).build());
    expect(await cluster.callDag(handle, { a: [] })).toEqual([1, 1]);
  });
});

describe('closing', () => {
  it('leaves no timer behind, and refuses calls after', async () => {
    const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    const before = timers();
    const cluster = await createTestCluster();
    const sq = await cluster.register('square', square);
    expect(await cluster.call(sq, [3])).toBe(9);
    await (await cluster.callAsync(sq, [4])).result();
    await cluster.close();
    await cluster.close();
    // Closing cancelled everything: what is left settles within a turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    expect(timers()).toBeLessThanOrEqual(before);
    expect(() => cluster.call(sq, [3])).toThrow(/closed/);
  });
});
