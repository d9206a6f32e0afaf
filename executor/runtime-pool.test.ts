/**
 * The runtime pool with real worker threads: results, warm contexts, user errors, and limits
 * (a synchronous loop, a promise that never settles, a heap hog, an oversized result): each gets
 * its typed error, the breaching worker is replaced, and the pool keeps serving.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Counter, HybridClock, LatticeType, Lww } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { RuntimePool } from './runtime-pool.js';
import type { FunctionCode, FunctionHost } from './runtime-pool.js';

const fn = (id: string, body: string, limits: Partial<Pick<FunctionCode, 'memoryMb' | 'timeoutMs'>> = {}): FunctionCode => ({
  id,
  code: `module.exports = ${body};`,
  memoryMb: limits.memoryMb ?? 64,
  timeoutMs: limits.timeoutMs ?? 2000,
});

const square = fn('square@1', '(x) => x * x');

describe('RuntimePool', () => {
  let pool: RuntimePool | undefined;
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('runs sync and async functions and keeps their contexts warm', async () => {
    pool = new RuntimePool({ prewarm: 1, memoryMb: 64 });
    await pool.ready();
    expect(await pool.run(square, [7])).toBe(49);
    expect(await pool.run(fn('greet@1', 'async (name) => { await new Promise((r) => setTimeout(r, 5)); return { hello: name }; }'), ['ada'])).toEqual({ hello: 'ada' });
    // Module state lives in the function's own context, kept between calls on a warm worker.
    const counter = fn('counter@1', '(() => { let n = 0; return () => ++n; })()');
    expect(await pool.run(counter, [])).toBe(1);
    expect(await pool.run(counter, [])).toBe(2);
    expect(pool.counters.warm).toBeGreaterThan(0);
    // An ESM-style default export works too.
    expect(await pool.run({ ...fn('default@1', ''), code: 'module.exports.default = (a, b) => a + b;' }, [2, 3])).toBe(5);
  });

  it('returns a function\'s own failure as EXEC_USER_ERROR, thrown non-Errors included', async () => {
    pool = new RuntimePool({ prewarm: 1, memoryMb: 64 });
    await expect(pool.run(fn('boom@1', '() => { throw new TypeError("bad input"); }'), [])).rejects.toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('TypeError: bad input') });
    await expect(pool.run(fn('reject@1', 'async () => { throw "a string"; }'), [])).rejects.toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('a string') });
    await expect(pool.run(fn('nofn@1', '42'), [])).rejects.toMatchObject({ code: 'EXEC_USER_ERROR' });
    await expect(pool.run(fn('syntax@1', '(x) => {'), [])).rejects.toMatchObject({ code: 'EXEC_USER_ERROR' });
    expect(await pool.run(square, [3])).toBe(9);
  });

  it('ends a call that loops forever or never settles with EXEC_TIMEOUT, replaces the worker, keeps serving', async () => {
    pool = new RuntimePool({ prewarm: 1, memoryMb: 64 });
    await expect(pool.run(fn('spin@1', '() => { for (;;) {} }', { timeoutMs: 200 }), [])).rejects.toMatchObject({ code: 'EXEC_TIMEOUT' });
    await expect(pool.run(fn('hang@1', '() => new Promise(() => {})', { timeoutMs: 200 }), [])).rejects.toMatchObject({ code: 'EXEC_TIMEOUT' });
    // A loop at module evaluation is cut by the vm timeout inside the worker.
    await expect(pool.run(fn('spin-load@1', '(() => { for (;;) {} })()', { timeoutMs: 200 }), [])).rejects.toMatchObject({ code: 'EXEC_TIMEOUT' });
    expect(pool.counters.replaced).toBeGreaterThanOrEqual(2);
    expect(await pool.run(square, [4])).toBe(16);
  }, 20_000);

  it('ends a call that exhausts its memory with EXEC_OUT_OF_MEMORY, replaces the worker, keeps serving', async () => {
    pool = new RuntimePool({ prewarm: 1, memoryMb: 32 });
    const hog = fn('hog@1', '() => { const keep = []; for (let i = 0; i < 1e8; i++) keep.push({ i, s: "x".repeat(64) + i }); return keep.length; }', { memoryMb: 32, timeoutMs: 20_000 });
    await expect(pool.run(hog, [])).rejects.toMatchObject({ code: 'EXEC_OUT_OF_MEMORY' });
    expect(pool.counters.outOfMemory).toBe(1);
    expect(await pool.run({ ...square, memoryMb: 32 }, [5])).toBe(25);
  }, 30_000);

  it('refuses an oversized result and unencodable arguments with EXEC_BAD_VALUE', async () => {
    pool = new RuntimePool({ prewarm: 1, memoryMb: 64, resultBytesMax: 1024 });
    await expect(pool.run(fn('big@1', '() => "x".repeat(4096)'), [])).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    await expect(pool.run(square, [new Map([[1, 2]])])).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    await expect(pool.run(fn('fnresult@1', '() => () => 1'), [])).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    expect(await pool.run(square, [6])).toBe(36);
  });

  it('gives functions a ctx that reaches the KVS through the host: get, put (plain values as LWW), merge, delete', async () => {
    pool = new RuntimePool({ prewarm: 1, memoryMb: 64 });
    const store = new Map<string, AnyLattice>();
    const clock = new HybridClock('host', () => Date.now());
    const host: FunctionHost = {
      get: async (key) => store.get(key),
      put: async (key, value) => {
        store.set(key, Lww.write(clock, value));
      },
      merge: async (key, value) => {
        const current = store.get(key);
        store.set(key, current === undefined ? value : (current.merge(value) as AnyLattice));
      },
      delete: async (key) => {
        store.delete(key);
      },
    };
    const next = fn('next@1', 'async (key, ctx) => { const n = (await ctx.get(key)) ?? 0; await ctx.put(key, { n: n.n === undefined ? 1 : n.n + 1 }); return (await ctx.get(key)).n; }');
    expect(await pool.run(next, ['visits'], host)).toBe(1);
    expect(await pool.run(next, ['visits'], host)).toBe(2);
    expect(store.get('visits')?.type).toBe(LatticeType.Lww);
    expect(store.get('visits')?.reveal()).toEqual({ n: 2 });
    const remove = fn('remove@1', 'async (key, ctx) => { await ctx.delete(key); return (await ctx.get(key)) === undefined; }');
    expect(await pool.run(remove, ['visits'], host)).toBe(true);
    expect(store.has('visits')).toBe(false);
    // A lattice read through ctx merges with one written by a host.
    store.set('count', Counter.ZERO.increment('a', 4));
    const reader = fn('reader@1', 'async (key, ctx) => { const lattice = await ctx.getLattice(key); return [lattice.type, lattice.reveal()]; }');
    expect(await pool.run(reader, ['count'], host)).toEqual([LatticeType.Counter, 4]);
    const many = fn('many@1', 'async (keys, ctx) => { const values = await ctx.getMany(keys); return keys.map((key) => values[key] ?? null); }');
    expect(await pool.run(many, [['count', 'missing']], host)).toEqual([4, null]);
    await expect(pool.run(fn('badmerge@1', 'async (key, ctx) => ctx.merge(key, 5)'), ['x'], host)).rejects.toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('merge takes a lattice') });
    // Without a host, the KVS is not there: the function sees a typed failure.
    await expect(pool.run(next, ['visits']), 'no host').rejects.toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('no KVS') });
  });

  it('queues calls beyond its workers and answers every one', async () => {
    pool = new RuntimePool({ prewarm: 2, memoryMb: 64, workersMax: 2 });
    const slow = fn('slow@1', 'async (x) => { await new Promise((r) => setTimeout(r, 20)); return x + 1; }');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => pool!.run(slow, [i])));
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(pool.size).toBe(2);
  });
});
