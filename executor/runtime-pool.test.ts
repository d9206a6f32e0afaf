/**
 * The runtime pool with real sandbox processes (and, as the trusted baseline, real threads): results, warm contexts, user errors, and limits
 * (a synchronous loop, a promise that never settles, a heap hog, an oversized result): each gets
 * its typed error, the breaching worker is replaced, and the pool keeps serving. A platform
 * failure a function lets through keeps its code; a code a function sets itself does not count.
 * The stem pools (a second memory class refilled, a burst's target raised and decayed, an
 * owner's own stems), the keep-alive policies (adaptive unloads and prepares again in time,
 * fixed keeps; time scaled), and a cold start's stage timings.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Counter, ErrorCode, HybridClock, LatticeType, LfaasError, Lww } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { RuntimePool } from './runtime-pool.js';
import type { ColdStartStages, FunctionCode, FunctionHost, RuntimePoolOptions } from './runtime-pool.js';

const fn = (id: string, body: string, limits: Partial<Pick<FunctionCode, 'memoryMb' | 'timeoutMs'>> = {}): FunctionCode => ({
  id,
  code: `module.exports = ${body};`,
  memoryMb: limits.memoryMb ?? 64,
  timeoutMs: limits.timeoutMs ?? 2000,
  // One owner for every test function: a sandbox process serves them all, as a thread would.
  owner: 'tests',
});

const square = fn('square@1', '(x) => x * x');

describe.each(['process', 'none'] as const)('RuntimePool (isolation %s)', (isolation) => {
  let pool: RuntimePool | undefined;
  const newPool = (options: RuntimePoolOptions): RuntimePool => new RuntimePool({ isolation, ...options });
  /** Runtimes that ran the tests' code and hold it (stems, and an owner's runtimes with nothing loaded, wait beside them). */
  const working = (): number => pool!.runtimes().filter((runtime) => runtime.busy || runtime.functions.length > 0).length;
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('runs sync and async functions and keeps their contexts warm', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64 });
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
    pool = newPool({ prewarm: 1, memoryMb: 64 });
    await expect(pool.run(fn('boom@1', '() => { throw new TypeError("bad input"); }'), [])).rejects.toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('TypeError: bad input') });
    await expect(pool.run(fn('reject@1', 'async () => { throw "a string"; }'), [])).rejects.toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('a string') });
    await expect(pool.run(fn('nofn@1', '42'), [])).rejects.toMatchObject({ code: 'EXEC_USER_ERROR' });
    await expect(pool.run(fn('syntax@1', '(x) => {'), [])).rejects.toMatchObject({ code: 'EXEC_USER_ERROR' });
    expect(await pool.run(square, [3])).toBe(9);
  });

  it('ends a call that loops forever or never settles with EXEC_TIMEOUT, replaces the worker, keeps serving', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64 });
    await expect(pool.run(fn('spin@1', '() => { for (;;) {} }', { timeoutMs: 200 }), [])).rejects.toMatchObject({ code: 'EXEC_TIMEOUT' });
    await expect(pool.run(fn('hang@1', '() => new Promise(() => {})', { timeoutMs: 200 }), [])).rejects.toMatchObject({ code: 'EXEC_TIMEOUT' });
    // A loop at module evaluation is cut by the vm timeout inside the worker.
    await expect(pool.run(fn('spin-load@1', '(() => { for (;;) {} })()', { timeoutMs: 200 }), [])).rejects.toMatchObject({ code: 'EXEC_TIMEOUT' });
    expect(pool.counters.replaced).toBeGreaterThanOrEqual(2);
    expect(await pool.run(square, [4])).toBe(16);
  }, 20_000);

  it('ends a call that exhausts its memory with EXEC_OUT_OF_MEMORY, replaces the worker, keeps serving', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 32 });
    const hog = fn('hog@1', '() => { const keep = []; for (let i = 0; i < 1e8; i++) keep.push({ i, s: "x".repeat(64) + i }); return keep.length; }', { memoryMb: 32, timeoutMs: 20_000 });
    await expect(pool.run(hog, [])).rejects.toMatchObject({ code: 'EXEC_OUT_OF_MEMORY' });
    expect(pool.counters.outOfMemory).toBe(1);
    expect(await pool.run({ ...square, memoryMb: 32 }, [5])).toBe(25);
  }, 30_000);

  it('refuses an oversized result and unencodable arguments with EXEC_BAD_VALUE', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64, resultBytesMax: 1024 });
    await expect(pool.run(fn('big@1', '() => "x".repeat(4096)'), [])).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    await expect(pool.run(square, [new Map([[1, 2]])])).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    await expect(pool.run(fn('fnresult@1', '() => () => 1'), [])).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
    expect(await pool.run(square, [6])).toBe(36);
  });

  it('gives functions a ctx that reaches the KVS through the host: get, put (plain values as LWW), merge, delete', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64 });
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
    // ctx's own refusals, let through by the function, keep their code.
    await expect(pool.run(fn('badmerge@1', 'async (key, ctx) => ctx.merge(key, 5)'), ['x'], host)).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE', message: expect.stringContaining('merge takes a lattice') });
    // Without a host, the KVS is not there: the function sees a typed failure.
    await expect(pool.run(next, ['visits']), 'no host').rejects.toMatchObject({ code: 'KVS_NO_SERVERS', message: expect.stringContaining('no KVS') });
  });

  it('a platform failure the function lets through keeps its code and message; one the function makes up is EXEC_USER_ERROR', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64, resultBytesMax: 1024 });
    const host: FunctionHost = {
      get: async () => undefined,
      put: async (key) => {
        if (key === 'counter') throw new LfaasError(ErrorCode.KVS_LATTICE_MISMATCH, 'key "counter" holds lattice type Counter');
        if (key === 'slow') throw new LfaasError(ErrorCode.TRANSPORT_TIMEOUT, 'the storage node did not answer');
      },
      merge: async () => {},
      delete: async () => {},
      send: async () => {
        throw new LfaasError(ErrorCode.GONE, 'the receiver has finished');
      },
    };
    const run = (id: string, body: string, args: unknown[] = []): Promise<unknown> => pool!.run(fn(id, body), args, host);
    // Refused in the worker (a value over the limit, a bad key) and in the executor (through the host).
    await expect(run('too-big@1', 'async (n, ctx) => { await ctx.put("k", "x".repeat(n)); return "stored"; }', [4096])).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE', message: expect.stringContaining('exceeds the limit of 1024 bytes') });
    await expect(run('bad-key@1', 'async (n, ctx) => ctx.put("", n)', [1])).rejects.toMatchObject({ code: 'KVS_BAD_KEY' });
    await expect(run('mismatch@1', 'async (key, ctx) => { await ctx.put(key, 1); }', ['counter'])).rejects.toMatchObject({ code: 'KVS_LATTICE_MISMATCH', message: 'key "counter" holds lattice type Counter' });
    await expect(run('slow@1', '(key, ctx) => ctx.put(key, 1)', ['slow'])).rejects.toMatchObject({ code: 'TRANSPORT_TIMEOUT' });
    await expect(run('gone@1', 'async (x, ctx) => { await ctx.send("other", x); }', [1])).rejects.toMatchObject({ code: 'GONE' });
    // Caught and rethrown, the same object: its code, as it was raised (a changed .code or message does not count).
    await expect(run('rethrow@1', 'async (key, ctx) => { try { await ctx.put(key, 1); } catch (e) { await new Promise((r) => setTimeout(r, 5)); throw e; } }', ['counter'])).rejects.toMatchObject({ code: 'KVS_LATTICE_MISMATCH' });
    await expect(run('relabel@1', 'async (key, ctx) => { try { await ctx.put(key, 1); } catch (e) { e.code = "EXEC_TIMEOUT"; e.message = "relabelled"; throw e; } }', ['counter'])).rejects.toMatchObject({ code: 'KVS_LATTICE_MISMATCH', message: expect.stringContaining('holds lattice type Counter') });
    await expect(run('all@1', '(key, ctx) => Promise.all([ctx.put(key, 1), ctx.put(key, 2)])', ['counter'])).rejects.toMatchObject({ code: 'KVS_LATTICE_MISMATCH' });
    // Made up by the function: EXEC_USER_ERROR, whatever it carries.
    const forgeries = [
      'throw Object.assign(new Error("x"), { code: "EXEC_TIMEOUT" })',
      'throw { code: "GONE", message: "m" }',
      'throw { code: "KVS_BUSY", message: "m", name: "LfaasError" }',
      // A new error of the platform's own class (reached through one it was handed).
      'try { await ctx.put("", 1); } catch (e) { throw new e.constructor("EXEC_TIMEOUT", "forged"); }',
      // A copy of one it was handed.
      'try { await ctx.put("", 1); } catch (e) { throw { code: e.code, message: e.message }; }',
      // Text the worker reads to describe the error, itself throwing something typed-looking.
      'throw { get message() { throw { code: "GONE", message: "from a getter" }; } }',
      'throw new Proxy({}, { get() { throw { code: "GONE", message: "from a trap" }; }, getPrototypeOf() { throw { code: "GONE", message: "from a trap" }; } })',
      'throw { toString() { throw { code: "GONE", message: "m" }; } }',
    ];
    for (const [index, body] of forgeries.entries()) {
      await expect(run(`forged-${index}@1`, `async (x, ctx) => { ${body} }`), body).rejects.toMatchObject({ code: 'EXEC_USER_ERROR' });
    }
    // At module evaluation too.
    await expect(run('forged-load@1', '(() => { throw { code: "GONE", message: "at load" }; })()')).rejects.toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('at load') });
    await expect(run('forged-load-timeout@1', '(() => { throw Object.assign(new Error("Script execution timed out"), { code: "ERR_SCRIPT_EXECUTION_TIMEOUT" }); })()')).rejects.toMatchObject({ code: 'EXEC_USER_ERROR' });
    // A platform failure of an earlier call, kept and thrown in a later one, is the function's own.
    const keeper = fn('keeper@1', '(() => { let kept; return async (step, ctx) => { if (step === 1) { kept = await ctx.put("", 1).catch((e) => e); return kept.code; } throw kept; }; })()');
    expect(await pool.run(keeper, [1], host)).toBe('KVS_BAD_KEY');
    await expect(pool.run(keeper, [2], host)).rejects.toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('a key is a non-empty string') });
    // A huge message is cut.
    await expect(run('long-message@1', '() => { throw new Error("y".repeat(1e6)); }')).rejects.toSatisfy((error: LfaasError) => error.code === 'EXEC_USER_ERROR' && error.message.length < 20_000);
    expect(await pool.run(square, [3])).toBe(9);
  });

  it('queues calls beyond its workers and answers every one', async () => {
    pool = newPool({ prewarm: 2, memoryMb: 64, workersMax: 2 });
    const slow = fn('slow@1', 'async (x) => { await new Promise((r) => setTimeout(r, 20)); return x + 1; }');
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => pool!.run(slow, [i])));
    expect(results).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(working()).toBe(2);
  });

  it('keep-alive: a context unused for its keepAliveMs is dropped (the next call is cold), others stay warm', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64, sweepPeriodMs: 20 });
    // Long enough that the checks just below see it still warm on a loaded machine.
    const brief: FunctionCode = { ...fn('brief@1', '(x) => x + 1'), keepAliveMs: 1000 };
    expect(await pool.run(brief, [1])).toBe(2);
    // square has the default keep-alive (10 minutes), on the same (only) worker.
    expect(await pool.run(square, [2])).toBe(4);
    expect(pool.warmFunctions().sort()).toEqual(['brief@1', 'square@1']);
    await until(() => pool!.counters.unloaded > 0, 10_000);
    expect(pool.counters.unloaded).toBe(1);
    expect(pool.warmFunctions()).toEqual(['square@1']);
    // The worker gets the code again: a cold call, same result.
    const cold = pool.counters.cold;
    expect(await pool.run(brief, [2])).toBe(3);
    expect(pool.counters.cold).toBe(cold + 1);
    expect(working()).toBe(1);
  });

  it('warm stack: sequential calls keep going to the most recently used of the warm workers (last in, first out)', async () => {
    pool = newPool({ prewarm: 2, memoryMb: 64, workersMax: 2 });
    await pool.ready();
    // Its module state is per worker (a context per worker): the id tells which worker ran it.
    // With `true` it waits for a message before answering (the test sends it through the host).
    const whoami = fn('whoami@1', '(() => { const id = Math.random().toString(36).slice(2); return async (wait, ctx) => { if (wait) await ctx.recv({ timeoutMs: 10000 }); return id; }; })()');
    let release: ((payload: Uint8Array | undefined) => void) | undefined;
    const gate: FunctionHost = {
      get: async () => undefined,
      put: async () => {},
      merge: async () => {},
      delete: async () => {},
      recv: () => new Promise((resolve) => (release = resolve)),
    };
    // Two at once: both workers get a context of their own.
    const both = await Promise.all([pool.run(whoami, [false]), pool.run(whoami, [false])]);
    expect(new Set(both).size).toBe(2);
    // One at a time: always the same one (a FIFO queue or round robin would alternate).
    const first = await pool.run(whoami, [false]);
    expect(both).toContain(first);
    for (let i = 0; i < 6; i++) expect(await pool.run(whoami, [false])).toBe(first);
    // Both busy again; the other worker's call finishes last...
    const quick = pool.run(whoami, [false]);
    const held = pool.run(whoami, [true], gate);
    expect(await quick).toBe(first);
    await until(() => release !== undefined, 10_000);
    release!(undefined);
    const other = await held;
    expect(other).not.toBe(first);
    // ...so it is on top of the stack now.
    for (let i = 0; i < 6; i++) expect(await pool.run(whoami, [false])).toBe(other);
    expect(pool.counters.cold).toBe(2);
  });

  it('aborts ctx.signal at the timeout: the call fails EXEC_TIMEOUT, and a function that then settles keeps its worker', async () => {
    // A long grace: the worker is replaced only if the function ignores the abort.
    pool = newPool({ prewarm: 1, memoryMb: 64, abortGraceMs: 5000 });
    await pool.ready();
    const polite = fn('polite@1', 'async (x, ctx) => { if (!ctx.signal.aborted) await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true })); return "stopped"; }', { timeoutMs: 200 });
    await expect(pool.run(polite, [1])).rejects.toMatchObject({ code: 'EXEC_TIMEOUT' });
    expect(pool.counters.timeouts).toBe(1);
    // The worker is free again once the function returned after the abort (within the grace).
    await until(() => pool!.load === 0, 10_000);
    expect(pool.counters.replaced).toBe(0);
    expect(working()).toBe(1);
    // The same worker, still holding the function's context.
    expect(pool.warmFunctions()).toContain('polite@1');
    expect(await pool.run(square, [8])).toBe(64);
    expect(pool.counters.replaced).toBe(0);
  }, 20_000);

  it('prepare() specialises a runtime ahead of the call: the next call is warm', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64 });
    const prepared = fn('prepared@1', '(() => { let loads = 0; loads++; return (x) => [x * 3, loads]; })()');
    await pool.prepare(prepared);
    expect(pool.warmFunctions()).toEqual(['prepared@1']);
    // A prepare is not a call.
    expect(pool.counters).toMatchObject({ calls: 0, warm: 0, cold: 0 });
    expect(await pool.run(prepared, [2])).toEqual([6, 1]);
    expect(pool.counters).toMatchObject({ calls: 1, warm: 1, cold: 0 });
    // Preparing again, when it is warm already, changes nothing.
    await pool.prepare(prepared);
    expect(await pool.run(prepared, [3])).toEqual([9, 1]);
    expect(pool.counters).toMatchObject({ calls: 2, warm: 2, cold: 0 });
    // Code that does not load fails its prepare with the function's error.
    await expect(pool.prepare(fn('broken@1', '(x) => {'))).rejects.toMatchObject({ code: 'EXEC_USER_ERROR' });
  });

  it.skipIf(isolation === 'none')('concurrent prepares of one version start one runtime; a prepare never ends another owner\'s warm runtime', async () => {
    pool = newPool({ prewarm: 0, workersMax: 2, memoryMb: 64 });
    const owned = (id: string, owner: string): FunctionCode => ({ ...fn(id, '(x) => x'), owner });
    const a = owned('a@1', 'owner-a');
    await Promise.all([pool.prepare(a), pool.prepare(a), pool.prepare(a)]);
    expect(pool.owners().filter((owner) => owner === 'owner-a')).toHaveLength(1);
    const b = owned('b@1', 'owner-b');
    await pool.prepare(b);
    expect(pool.warmFunctions().sort()).toEqual(['a@1', 'b@1']);
    // The pool is full (2 runtimes): preparing a third owner's function is dropped, not paid for
    // with another owner's warm runtime.
    await pool.prepare(owned('c@1', 'owner-c'));
    expect(pool.warmFunctions().sort()).toEqual(['a@1', 'b@1']);
    // A call does make room (the least recently used idle runtime of another owner).
    expect(await pool.run(owned('c@1', 'owner-c'), [5])).toBe(5);
    expect(pool.warmFunctions()).toContain('c@1');
  }, 30_000);

  it('stem pools per memory class: a cold start in a second class makes it keep a stem, refilled when a call takes it', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64, workersMax: 6, stemRateDecayMs: 5000, sweepPeriodMs: 50 });
    await pool.ready();
    const stemsOf = (memoryMb: number): number => pool!.runtimes().filter((runtime) => runtime.memoryMb === memoryMb && runtime.owner === undefined && runtime.functions.length === 0 && !runtime.busy).length;
    const small = fn('small@1', '(x) => x + 1', { memoryMb: 32 });
    // No runtime of class 32: the first call waits for one started for it.
    expect(await pool.run(small, [1])).toBe(2);
    expect(pool.counters).toMatchObject({ stemMisses: 1, stemHits: 0 });
    expect(pool.stemTargets().find((target) => target.memoryMb === 32 && target.owner === undefined)?.target).toBeGreaterThanOrEqual(1);
    // Its cold start raised the class's target: a stem of class 32 is started, off the call's path.
    await until(() => stemsOf(32) >= 1 && pool!.runtimes().every((runtime) => runtime.ready), 10_000);
    expect(stemsOf(32)).toBeGreaterThanOrEqual(1);
    const refilled = pool.counters.stemsRefilled;
    expect(refilled).toBeGreaterThanOrEqual(1);
    // Two calls at once: one on the warm runtime, the other takes the stem (a hit)...
    expect(await Promise.all([pool.run(small, [2]), pool.run(small, [3])])).toEqual([3, 4]);
    expect(pool.counters.stemHits).toBe(1);
    // ...and the pool refills it.
    await until(() => pool!.counters.stemsRefilled > refilled && stemsOf(32) >= 1, 10_000);
    expect(stemsOf(32)).toBeGreaterThanOrEqual(1);
    // The class 64 keeps its floor: prewarm.
    expect(pool.stemTargets().find((target) => target.memoryMb === 64 && target.owner === undefined)?.target).toBeGreaterThanOrEqual(1);
  }, 20_000);

  it('a burst of cold starts raises the class\'s stem target (rate times start time); it decays back to the floor', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64, workersMax: 8, stemRateDecayMs: 300, sweepPeriodMs: 50 });
    await pool.ready();
    const targetOf64 = (): number => pool!.stemTargets().find((target) => target.memoryMb === 64 && target.owner === undefined)!.target;
    expect(targetOf64()).toBe(1);
    // Five owners' cold starts at once (at `none` five calls at once): one takes the stem, four wait for runtimes started for them.
    const burst = Array.from({ length: 5 }, (_, i): FunctionCode => ({ ...fn(`burst-${i}@1`, 'async (x) => { await new Promise((r) => setTimeout(r, 20)); return x; }'), owner: `burst-${i}` }));
    const raised: number[] = [];
    const calls = Promise.all(burst.map((f, i) => pool!.run(f, [i])));
    raised.push(targetOf64());
    expect(await calls).toEqual([0, 1, 2, 3, 4]);
    raised.push(targetOf64());
    expect(pool.counters.stemHits + pool.counters.stemMisses).toBe(5);
    expect(pool.counters.stemMisses).toBeGreaterThanOrEqual(4);
    expect(Math.max(...raised)).toBeGreaterThan(1);
    // No more cold starts: back to the floor once fewer than half a cold start is recent (0.3 s · ln 10 ≈ 0.7 s after the burst).
    await until(() => targetOf64() === 1, 5000);
    expect(targetOf64()).toBe(1);
    expect(pool.stemTargets().find((target) => target.memoryMb === 64 && target.owner === undefined)!.coldPerSecond).toBeLessThan(2);
  }, 20_000);

  it.skipIf(isolation === 'none')('an owner whose calls keep needing a fresh runtime gets stems bound to it, taken first', async () => {
    pool = newPool({ prewarm: 1, memoryMb: 64, workersMax: 6, stemRateDecayMs: 5000, sweepPeriodMs: 20 });
    await pool.ready();
    // Its realm stays 50 ms: its process ends soon after each call, and the next call needs a fresh runtime.
    const hot: FunctionCode = { ...fn('hot@1', '(x) => x * 2'), owner: 'hot', keepAliveMs: 50 };
    const ownStems = (): number => pool!.runtimes().filter((runtime) => runtime.owner === 'hot' && runtime.functions.length === 0 && !runtime.busy).length;
    expect(await pool.run(hot, [1])).toBe(2);
    // One cold start is not enough for an owner's pool: its process ends.
    await until(() => !pool!.owners().includes('hot'), 5000);
    expect(pool.stemTargets().some((target) => target.owner === 'hot')).toBe(false);
    // Wait for a class stem to take, then a second cold start of the owner.
    await until(() => pool!.runtimes().some((runtime) => runtime.owner === undefined && runtime.ready && runtime.functions.length === 0), 5000);
    expect(await pool.run(hot, [2])).toBe(4);
    expect(pool.stemTargets().find((target) => target.owner === 'hot')).toMatchObject({ memoryMb: 64, target: expect.any(Number) });
    expect(pool.stemTargets().find((target) => target.owner === 'hot')!.target).toBeGreaterThanOrEqual(1);
    // A runtime bound to the owner, with nothing loaded, waits for its next call.
    await until(() => ownStems() >= 1 && !pool!.warmFunctions().includes('hot@1'), 5000);
    expect(ownStems()).toBeGreaterThanOrEqual(1);
    const hits = pool.counters.stemHits;
    const cold = pool.counters.cold;
    expect(await pool.run(hot, [3])).toBe(6);
    expect(pool.counters.cold).toBe(cold + 1);
    expect(pool.counters.stemHits).toBe(hits + 1);
    // Another owner never gets it.
    expect(await pool.run({ ...fn('other@1', '(x) => -x'), owner: 'other' }, [1])).toBe(-1);
    expect(pool.runtimes().filter((runtime) => runtime.functions.includes('other@1')).every((runtime) => runtime.owner === 'other')).toBe(true);
  }, 20_000);

  it('keep-alive policies: adaptive unloads a regular function after its call and prepares it before the next (warm); fixed keeps it', async () => {
    // A minute lasts 100 ms: 1-minute bins of 100 ms, 4 idle times learn the histogram (slow enough
    // that a loaded machine's delays stay well inside a bin).
    pool = newPool({ prewarm: 1, memoryMb: 64, sweepPeriodMs: 20, keepAliveTimeScale: 600, adaptiveKeepAlive: { minSamples: 4 } });
    await pool.ready();
    const tick: FunctionCode = { ...fn('tick@1', '(x) => x + 1'), keepAlivePolicy: 'adaptive' };
    const tock: FunctionCode = { ...fn('tock@1', '(x) => x - 1'), keepAlivePolicy: 'fixed' };
    // Every 550 ms (5.5 minutes scaled: the middle of bin 5).
    const gapMs = 550;
    const t0 = Date.now();
    const at = async (i: number): Promise<void> => {
      const wait = t0 + i * gapMs - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    };
    for (let i = 0; i < 5; i++) {
      await at(i);
      expect(await pool.run(tick, [i])).toBe(i + 1);
      expect(await pool.run(tock, [i])).toBe(i - 1);
      // Learning (fewer than 4 idle times): no prewarm window, its range kept (240 bins).
      if (i < 4) expect(pool.keepAliveWindows().get('tick@1')).toMatchObject({ policy: 'adaptive', prewarmMs: 0, keepAliveMs: 240 * 100 });
    }
    // Learned: unloaded after its call, prepared again ~5 minutes (scaled) after it.
    const windows = pool.keepAliveWindows().get('tick@1')!;
    expect(windows.prewarmMs).toBeGreaterThan(300);
    expect(windows.prewarmMs).toBeLessThan(gapMs);
    expect(windows.prewarmMs + windows.keepAliveMs).toBeGreaterThan(gapMs);
    expect(pool.warmFunctions()).not.toContain('tick@1');
    expect(pool.warmFunctions()).toContain('tock@1');
    expect(pool.keepAliveWindows().get('tock@1')).toMatchObject({ policy: 'fixed', prewarmMs: 0, keepAliveMs: (15 * 60_000) / 600 });
    await until(() => pool!.warmFunctions().includes('tick@1'), gapMs);
    expect(pool.counters.prewarmed).toBe(1);
    await at(5);
    const warm = pool.counters.warm;
    expect(await pool.run(tick, [5])).toBe(6);
    expect(pool.counters.warm).toBe(warm + 1);
    // tock was never unloaded: every call after its first was warm.
    const tockWarm = pool.counters.warm;
    expect(await pool.run(tock, [5])).toBe(4);
    expect(pool.counters.warm).toBe(tockWarm + 1);
  }, 20_000);

  it('times a cold start in stages (runtime, evaluation, first call); a warm call reports none', async () => {
    const seen: ColdStartStages[] = [];
    pool = newPool({ prewarm: 1, memoryMb: 64, onColdStart: (stages) => seen.push(stages) });
    await pool.ready();
    // Evaluating the module takes 20 ms, a call 10 ms.
    const body = '(() => { const until = Date.now() + 20; while (Date.now() < until) {} return (x) => { const end = Date.now() + 10; while (Date.now() < end) {} return x; }; })()';
    const timed = fn('timed@1', body);
    expect(await pool.run(timed, [1])).toBe(1);
    expect(seen).toHaveLength(1);
    // A ready stem: no runtime creation.
    expect(seen[0]).toMatchObject({ functionId: 'timed@1', stem: true, runtimeMs: 0 });
    expect(seen[0]!.evaluateMs).toBeGreaterThanOrEqual(15);
    expect(seen[0]!.callMs).toBeGreaterThanOrEqual(8);
    expect(await pool.run(timed, [2])).toBe(2);
    expect(seen).toHaveLength(1);
    // A class with no runtime: one is started for the call.
    expect(await pool.run(fn('timed-32@1', body, { memoryMb: 32 }), [3])).toBe(3);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.stem).toBe(false);
    expect(seen[1]!.runtimeMs).toBeGreaterThan(0);
    expect(seen[1]!.evaluateMs).toBeGreaterThanOrEqual(15);
    expect(pool.coldStages()).toEqual(seen);
  });
});

/** Waits until `condition` holds, polling, for at most `timeoutMs` (then the assertions after it fail). */
async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}
