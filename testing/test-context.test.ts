/**
 * `createTestContext` (test-context.ts): the platform's own `ctx` for one function over a seeded
 * in-memory KVS, with the same key checks, codecs, counters and consistency modes as deployed.
 */
import { describe, expect, it } from 'vitest';
import { Counter, ErrorCode, GSet, Lww } from '../lattices/index.js';
import type { LfaasError } from '../lattices/index.js';
import { counterIncrement } from '../examples/index.js';
import { createTestContext } from './index.js';
import type { FunctionContext } from './index.js';

async function failure(promise: Promise<unknown>): Promise<LfaasError> {
  try {
    await promise;
  } catch (error) {
    return error as LfaasError;
  }
  throw new Error('expected a rejection');
}

/** A page visit: a hit counted by read-modify-write, the page added to a set, a log line. */
async function visit(page: string, ctx: FunctionContext): Promise<number> {
  const hits = ((await ctx.get('hits')) as number | undefined) ?? 0;
  await ctx.put('hits', hits + 1);
  await ctx.merge('visitors', GSet.of(page));
  ctx.log.info({ page }, 'visited');
  return hits + 1;
}

describe('createTestContext', () => {
  it('runs a function over the seeded KVS and keeps its logs', async () => {
    const ctx = createTestContext({ kvs: { hits: 3, visitors: GSet.of('about') } });
    expect(await visit('home', ctx)).toBe(4);
    expect(await ctx.get('hits')).toBe(4);
    expect(((await ctx.get('visitors')) as string[]).sort()).toEqual(['about', 'home']);
    // The KVS itself holds lattices: the plain write is an LWW register.
    expect(await ctx.kvs.get('hits')).toBeInstanceOf(Lww);
    expect(ctx.logs).toEqual([{ callId: 'test-call', functionName: 'test', level: 'info', text: 'visited', fields: { page: 'home' } }]);
    ctx.close();
  });

  it('counts with ctx.increment into a Counter', async () => {
    using ctx = createTestContext();
    expect(await counterIncrement('count', ctx)).toBe(1);
    expect(await counterIncrement('count', ctx)).toBe(2);
    expect(await ctx.increment('count', 5)).toBe(7);
    const stored = await ctx.kvs.get('count');
    expect(stored).toBeInstanceOf(Counter);
    expect((stored as Counter).reveal()).toBe(7);
    // A key of another lattice is refused.
    await ctx.put('plain', 1);
    expect((await failure(ctx.increment('plain'))).code).toBe(ErrorCode.KVS_LATTICE_MISMATCH);
  });

  it('repeatable read pins the first version read; lww sees a write made meanwhile', async () => {
    const repeatable = createTestContext({ consistency: 'repeatable-read', kvs: { k: 'first' } });
    const lww = createTestContext({ kvs: { k: 'first' } });
    for (const ctx of [repeatable, lww]) {
      expect(await ctx.get('k')).toBe('first');
      // Another writer: straight into the KVS, which pushes it to the context's cache.
      await ctx.kvs.put('k', Lww.write(new (await import('../lattices/index.js')).HybridClock('other', () => Date.now() + 1000), 'second'));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await repeatable.get('k')).toBe('first');
    expect(await lww.get('k')).toBe('second');
  });

  it('checks keys and values as an executor does', async () => {
    const ctx = createTestContext({ functionName: 'alice/f' });
    expect((await failure(ctx.get('bob/secret'))).code).toBe(ErrorCode.UNAUTHORISED);
    expect((await failure(ctx.get('lfaas/functions/x'))).code).toBe(ErrorCode.KVS_BAD_KEY);
    expect((await failure(ctx.put('alice/k', { run: () => 1 }))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect((await failure(ctx.get(''))).code).toBe(ErrorCode.KVS_BAD_KEY);
    await ctx.put('alice/k', { n: 1 });
    expect(await ctx.get('alice/k')).toEqual({ n: 1 });
  });

  it('records sent messages, receives delivered ones, and says infer is not available', async () => {
    const ctx = createTestContext();
    await ctx.send('other', { hello: 'world' });
    expect(ctx.sent).toEqual([{ target: 'other', message: { hello: 'world' } }]);
    ctx.deliver('ping');
    expect(await ctx.recv({ timeoutMs: 1000 })).toBe('ping');
    expect(await ctx.recv({ timeoutMs: 1 })).toBeUndefined();
    const error = await failure(ctx.infer('model', {}));
    expect(error.code).toBe(ErrorCode.SCHED_NO_CAPACITY);
    expect(error.message).toContain('not available in the test context');
    const inferring = createTestContext({ infer: async (modelKey) => ({ model: { type: 'float32', dims: [1], data: new Uint8Array(4) } as never, [modelKey]: 1 as never }) });
    expect(Object.keys(await inferring.infer('m', {}))).toContain('model');
  });

  it('aborts ctx.signal on abort(), and ends the call on close()', async () => {
    const ctx = createTestContext();
    expect(ctx.signal.aborted).toBe(false);
    ctx.abort();
    expect(ctx.signal.aborted).toBe(true);
    ctx.close();
    expect((await failure(ctx.get('k'))).code).toBe(ErrorCode.GONE);
  });
});
