/**
 * Whose failure a failed call is, over real processes (issue 9, finding 5: errors that hide their
 * code). A platform failure a function lets through (a `ctx.put` of a value over the 8 MiB value
 * limit, a key of another lattice type, a message to a function the run lacks) reaches the caller
 * with its own code and message, sync, async (the stored result) and through a DAG's error
 * triggers; caught and rethrown, it keeps them. A code the function sets itself (an Error with a
 * `code`, a plain object shaped like a platform error, thrown while the module loads, or from a
 * getter the worker reads to describe the error) is EXEC_USER_ERROR: user code cannot answer with
 * a platform code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Counter, LatticeFaas } from '../client/index.js';
import { ErrorCode } from '../lattices/index.js';
import { DEFAULT_MAX_VALUE_BYTES, resultRecordOf } from '../protocol/index.js';
import { FaasCluster, eventually, isAlive } from './cluster.js';
import { code, rejection } from './wire-faults.js';

/** Over the value limit many times (issue 9's case): refused before any of it is encoded. */
const BIG_PUT = 'async (key, ctx) => { await ctx.put(key, "x".repeat(50 * 1024 * 1024)); return "stored"; }';
/** A 50 MiB string needs room in the function's heap. */
const ROOMY = { memoryMb: 256, timeoutMs: 10_000 } as const;
const LIMIT_TEXT = `exceeds the limit of ${DEFAULT_MAX_VALUE_BYTES} bytes`;

describe('platform error codes through a function', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;

  const pids = (): number[] => [cluster.routing!.pid, ...[...cluster.nodes.values()].map((node) => node.pid), ...cluster.schedulers.map((s) => s.pid), ...cluster.executors.map((e) => e.pid)];

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 2, workers: 4 });
    faas = await cluster.connect();
    await faas.register('echo', code('(x) => x'));
    const served = await eventually(async () => {
      try {
        return (await faas.call('echo', [1], { timeoutMs: 3000 })) === 1;
      } catch {
        return false;
      }
    }, 15_000);
    expect(served).toBe(true);
    // A key holding a Counter: a plain put on it is KVS_LATTICE_MISMATCH, raised by the executor.
    await faas.kvs.put('errors:counter', Counter.ZERO.increment('test', 1), { ack: 'replicated' });
  }, 60_000);

  afterAll(async () => {
    await faas?.close();
    await cluster.stop();
  }, 60_000);

  it('a 50 MiB ctx.put: EXEC_BAD_VALUE with the limit in its message, sync and async (the stored result)', async () => {
    await faas.register('big-put', code(BIG_PUT), ROOMY);
    const error = await rejection(faas.call('big-put', ['errors:big'], { timeoutMs: 20_000 }));
    expect(error.code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(error.message).toContain(LIMIT_TEXT);
    const future = await faas.callAsync('big-put', ['errors:big'], { timeoutMs: 20_000 });
    const stored = await rejection(future.result({ timeoutMs: 20_000 }));
    expect(stored.code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(stored.message).toContain(LIMIT_TEXT);
    expect(resultRecordOf(await faas.kvs.get(future.resultKey))).toMatchObject({ ok: false, code: ErrorCode.EXEC_BAD_VALUE });
    // Nothing was written.
    expect(await faas.kvs.get('errors:big')).toBeUndefined();
  });

  it('a platform failure raised by the executor (not the worker) keeps its code too: KVS_LATTICE_MISMATCH, KVS_BAD_KEY', async () => {
    await faas.register('plain-put', code('async (key, ctx) => { await ctx.put(key, 1); return "stored"; }'));
    const mismatch = await rejection(faas.call('plain-put', ['errors:counter']));
    expect(mismatch.code).toBe(ErrorCode.KVS_LATTICE_MISMATCH);
    expect((await rejection(faas.call('plain-put', ['']))).code).toBe(ErrorCode.KVS_BAD_KEY);
  });

  it('a code the function sets itself is EXEC_USER_ERROR: an Error with a code, a plain object, at load, from a getter', async () => {
    await faas.register('forged-timeout', code('() => { throw Object.assign(new Error("x"), { code: "EXEC_TIMEOUT" }); }'));
    await faas.register('forged-gone', code('() => { throw { code: "GONE", message: "m" }; }'));
    await faas.register('forged-at-load', { code: 'throw { code: "GONE", message: "thrown at load" };' });
    await faas.register('forged-in-getter', code('() => { throw { get message() { throw { code: "KVS_BUSY", message: "from a getter" }; } }; }'));
    await faas.register('forged-copy', code('async (key, ctx) => { try { await ctx.put(key, 1); } catch (e) { throw { code: e.code, message: e.message }; } }'));
    const timeout = await rejection(faas.call('forged-timeout'));
    expect(timeout.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(timeout.message).toContain('Error: x');
    const gone = await rejection(faas.call('forged-gone'));
    expect(gone.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(gone.message).toContain('m');
    const atLoad = await rejection(faas.call('forged-at-load'));
    expect(atLoad.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(atLoad.message).toContain('thrown at load');
    expect((await rejection(faas.call('forged-in-getter'))).code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect((await rejection(faas.call('forged-copy', ['errors:counter']))).code).toBe(ErrorCode.EXEC_USER_ERROR);
    // Async too.
    const future = await faas.callAsync('forged-gone', []);
    expect((await rejection(future.result({ timeoutMs: 20_000 }))).code).toBe(ErrorCode.EXEC_USER_ERROR);
  });

  it('a platform failure caught and rethrown (the same object) keeps its code, even relabelled', async () => {
    await faas.register('rethrow', code('async (key, ctx) => { try { await ctx.put(key, "x".repeat(50 * 1024 * 1024)); } catch (e) { await new Promise((r) => setTimeout(r, 10)); throw e; } }'), ROOMY);
    await faas.register('relabel', code('async (key, ctx) => { try { await ctx.put(key, 1); } catch (e) { e.code = "EXEC_TIMEOUT"; e.message = "relabelled"; throw e; } }'));
    const rethrown = await rejection(faas.call('rethrow', ['errors:big'], { timeoutMs: 20_000 }));
    expect(rethrown.code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(rethrown.message).toContain(LIMIT_TEXT);
    const relabelled = await rejection(faas.call('relabel', ['errors:counter']));
    expect(relabelled.code).toBe(ErrorCode.KVS_LATTICE_MISMATCH);
    expect(relabelled.message).not.toContain('relabelled');
  });

  it('through a 2-function DAG: the upstream platform failure reaches the DAG caller with its code (sync and async); a forged one is EXEC_USER_ERROR', async () => {
    await faas.register('dag-big-put', code(BIG_PUT), ROOMY);
    await faas.register('dag-rethrow', code('async (key, ctx) => { try { await ctx.put(key, "x".repeat(50 * 1024 * 1024)); } catch (e) { throw e; } }'), ROOMY);
    await faas.register('dag-forged', code('() => { throw { code: "EXEC_TIMEOUT", message: "forged upstream" }; }'));
    await faas.register('dag-send-nowhere', code('async (x, ctx) => { await ctx.send("nobody", x); return x; }'));
    await faas.register('dag-mismatch-sink', code('async (key, ctx) => { await ctx.put(key, 1); return key; }'));
    await faas.registerDag({ name: 'big-then-echo', functions: ['dag-big-put', 'echo'], edges: [['dag-big-put', 'echo']] });
    await faas.registerDag({ name: 'rethrow-then-echo', functions: ['dag-rethrow', 'echo'], edges: [['dag-rethrow', 'echo']] });
    await faas.registerDag({ name: 'forged-then-echo', functions: ['dag-forged', 'echo'], edges: [['dag-forged', 'echo']] });
    await faas.registerDag({ name: 'send-then-echo', functions: ['dag-send-nowhere', 'echo'], edges: [['dag-send-nowhere', 'echo']] });
    await faas.registerDag({ name: 'echo-then-mismatch', functions: ['echo', 'dag-mismatch-sink'], edges: [['echo', 'dag-mismatch-sink']] });
    // A call budget of 30 s: a typed answer proves the error travelled, not a deadline.
    const budget = { timeoutMs: 30_000 };
    const upstream = await rejection(faas.callDag('big-then-echo', { 'dag-big-put': ['errors:dag'] }, budget));
    expect(upstream.code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(upstream.message).toContain(LIMIT_TEXT);
    expect((await rejection(faas.callDag('rethrow-then-echo', { 'dag-rethrow': ['errors:dag'] }, budget))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect((await rejection(faas.callDag('send-then-echo', { 'dag-send-nowhere': [1] }, budget))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect((await rejection(faas.callDag('echo-then-mismatch', { echo: ['errors:counter'] }, budget))).code).toBe(ErrorCode.KVS_LATTICE_MISMATCH);
    const forged = await rejection(faas.callDag('forged-then-echo', {}, budget));
    expect(forged.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(forged.message).toContain('forged upstream');
    // Async: the stored result carries the upstream code.
    const future = await faas.callDagAsync('big-then-echo', { 'dag-big-put': ['errors:dag'] }, budget);
    const stored = await rejection(future.result({ timeoutMs: 30_000 }));
    expect(stored.code).toBe(ErrorCode.EXEC_BAD_VALUE);
    expect(resultRecordOf(await faas.kvs.get(future.resultKey))).toMatchObject({ ok: false, code: ErrorCode.EXEC_BAD_VALUE });
  });

  it('every process is still alive and serving', async () => {
    expect(await faas.call('echo', [7])).toBe(7);
    expect(pids()).toHaveLength(5);
    for (const pid of pids()) expect(isAlive(pid), `process ${pid}`).toBe(true);
  });
});
