/**
 * Cancelling calls in the runtime pool with real sandbox processes (and threads): the call's
 * signal aborts `ctx.signal` and the call fails EXEC_CANCELLED at once; a function that then
 * returns keeps its runtime, one that does not (a loop) has its runtime replaced after the grace,
 * and a call cancelled while it waits for a runtime leaves the queue without running.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { encodeValue, decodeValue } from '../protocol/index.js';
import { RuntimePool } from './runtime-pool.js';
import type { FunctionCode } from './runtime-pool.js';

const fn = (id: string, body: string): FunctionCode => ({ id, code: `module.exports = ${body};`, memoryMb: 64, timeoutMs: 20_000, owner: 'tests' });
const invocation = { runId: 'run', functionName: 'f' };

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe.each(['process', 'none'] as const)('cancelling in the RuntimePool (isolation %s)', (isolation) => {
  let pool: RuntimePool | undefined;
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('aborts ctx.signal: EXEC_CANCELLED at once; a function that returns keeps its runtime, a loop loses it', async () => {
    pool = new RuntimePool({ isolation, prewarm: 1, memoryMb: 64, workersMax: 1, abortGraceMs: 300 });
    await pool.ready();
    const polite = fn('polite@1', '(() => { let stopped = 0; return async (mode, ctx) => { if (mode === "count") return stopped; await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true })); stopped++; return "stopped"; }; })()');
    const controller = new AbortController();
    const running = pool.runEncoded(polite, encodeValue(['wait']), undefined, invocation, controller.signal);
    await until(() => pool!.load > 0 && pool!.warmFunctions().includes('polite@1'), 10_000);
    controller.abort();
    await expect(running).rejects.toMatchObject({ code: 'EXEC_CANCELLED' });
    // Its function saw the abort and returned: the same runtime (the count lives in its realm).
    expect(decodeValue(await pool.runEncoded(polite, encodeValue(['count'])))).toBe(1);
    expect(pool.counters.replaced).toBe(0);

    const loop = fn('loop@1', '() => { for (;;) {} }');
    const stop = new AbortController();
    const looping = pool.runEncoded(loop, encodeValue([]), undefined, invocation, stop.signal);
    // Loaded (a cancel during the load ends the call before it runs, and keeps the runtime): now it loops.
    await until(() => pool!.warmFunctions().includes('loop@1'), 10_000);
    stop.abort();
    await expect(looping).rejects.toMatchObject({ code: 'EXEC_CANCELLED' });
    await until(() => pool!.counters.replaced === 1, 10_000);
    expect(decodeValue(await pool.runEncoded(fn('square@1', '(x) => x * x'), encodeValue([6])))).toBe(36);
  }, 60_000);

  it('a call cancelled while it waits for a runtime leaves the queue and never runs', async () => {
    pool = new RuntimePool({ isolation, prewarm: 1, memoryMb: 64, workersMax: 1 });
    await pool.ready();
    const counted = fn('counted@1', '(() => { let runs = 0; return async (mode) => { if (mode === "count") return runs; runs++; await new Promise((resolve) => setTimeout(resolve, 300)); return runs; }; })()');
    const first = pool.runEncoded(counted, encodeValue(['run']));
    const controller = new AbortController();
    const queued = pool.runEncoded(counted, encodeValue(['run']), undefined, invocation, controller.signal);
    controller.abort();
    await expect(queued).rejects.toMatchObject({ code: 'EXEC_CANCELLED' });
    expect(decodeValue(await first)).toBe(1);
    expect(decodeValue(await pool.runEncoded(counted, encodeValue(['count'])))).toBe(1);
    // Already aborted: refused before it is queued.
    await expect(pool.runEncoded(counted, encodeValue(['run']), undefined, invocation, AbortSignal.abort())).rejects.toMatchObject({ code: 'EXEC_CANCELLED' });
  }, 60_000);
});
