/**
 * The function sandbox's limits and isolation, on the strongest isolation level this machine
 * allows (bwrap where bubblewrap works): a function that loops, hogs memory, returns too much,
 * logs too much, recurses without end, piles up timers or leaves work behind gets its typed error
 * (or is cut off), its runtime is replaced where it must be, and a well-behaved call of another
 * owner running at the same time, in its own process, is unaffected. Nothing one function does
 * (its globals, the shared intrinsics) reaches another; a process never serves two owners; and
 * the executor (this test process) never dies.
 *
 * No assertion here is about time: timeouts are limits under test, and waits are polls.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RuntimePool, detectIsolation } from '../executor/index.js';
import type { FunctionCode, FunctionHost } from '../executor/index.js';
import { LOG_BYTES_MAX, LOG_RECORDS_MAX, TIMERS_MAX } from '../sandbox/index.js';

const TEST_TIMEOUT_MS = 30_000;
const { level, reason } = await detectIsolation();

const fn = (id: string, owner: string, body: string, timeoutMs = 2000): FunctionCode => ({ id, owner, code: `module.exports = ${body};`, memoryMb: 64, timeoutMs });

/** The well-behaved function of another owner that runs while each limit is broken. */
const bystander = fn('bystander@1', 'bystander', 'async (x) => { await new Promise((resolve) => setTimeout(resolve, 20)); return { doubled: x * 2 }; }');

type Outcome = { readonly value: unknown } | { readonly error: { readonly code?: string; readonly message?: string } };

let pool: RuntimePool;

/**
 * Runs `bad` while the bystander is called again and again on the same pool (a different owner,
 * so a different process): every bystander call must return its right result. Resolves with how
 * `bad` settled.
 */
async function alongside(bad: Promise<unknown>): Promise<Outcome> {
  let settled = false;
  const outcome = bad.then(
    (value): Outcome => ({ value }),
    (error: { code?: string; message?: string }): Outcome => ({ error }),
  );
  void outcome.then(() => (settled = true));
  let calls = 0;
  do {
    const x = calls++;
    expect(await pool.run(bystander, [x]), `bystander call ${x}`).toEqual({ doubled: x * 2 });
  } while (!settled);
  return outcome;
}

const errorOf = (outcome: Outcome): { readonly code?: string; readonly message?: string } => {
  if ('value' in outcome) throw new Error(`expected a failure, the call returned ${JSON.stringify(outcome.value)}`);
  return outcome.error;
};

/** Polls until `condition` holds, for at most `timeoutMs` (the assertion after it then fails). */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await sleep(10);
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const noHost: FunctionHost = { get: async () => undefined, put: async () => {}, merge: async () => {}, delete: async () => {} };

describe(`sandbox limits and isolation (isolation ${level}: ${reason})`, () => {
  beforeAll(async () => {
    // What functions log goes to this process's log: silenced (over a thousand lines here).
    pool = new RuntimePool({ isolation: level, prewarm: 1, memoryMb: 64, resultBytesMax: 1024, workersMax: 8, functionLogLevel: 'silent' });
    await pool.ready();
    // The bystander's process, bound and warm before any limit is broken.
    expect(await pool.run(bystander, [0])).toEqual({ doubled: 0 });
    await pool.ready();
  }, TEST_TIMEOUT_MS);
  afterAll(async () => {
    await pool?.close();
  });

  it('runs on a sandboxing level (not the trusted threads)', () => {
    expect(level).not.toBe('none');
  });

  it('CPU: `while (true) {}` is stopped at its timeout (EXEC_TIMEOUT); the process is replaced and the next call of the same function works', async () => {
    await pool.ready();
    const spin = fn('spin@1', 'cpu', '(mode) => { if (mode === "spin") { while (true) {} } return "ok:" + mode; }', 500);
    const replaced = pool.counters.replaced;
    expect(errorOf(await alongside(pool.run(spin, ['spin'])))).toMatchObject({ code: 'EXEC_TIMEOUT' });
    await until(() => pool.counters.replaced > replaced);
    expect(pool.counters.replaced).toBeGreaterThan(replaced);
    expect(await pool.run(spin, ['again'])).toBe('ok:again');
  }, TEST_TIMEOUT_MS);

  it('CPU: a loop at module evaluation time is EXEC_TIMEOUT', async () => {
    await pool.ready();
    const replaced = pool.counters.replaced;
    const spinLoad = fn('spin-load@1', 'cpu-load', '(() => { while (true) {} })()', 500);
    expect(errorOf(await alongside(pool.run(spinLoad, [])))).toMatchObject({ code: 'EXEC_TIMEOUT' });
    await until(() => pool.counters.replaced > replaced);
    expect(pool.counters.replaced).toBeGreaterThan(replaced);
    // The owner is served again (a fresh process).
    expect(await pool.run(fn('after-spin-load@1', 'cpu-load', '() => "served"'), [])).toBe('served');
  }, TEST_TIMEOUT_MS);

  it('memory: a heap hog (arrays of objects growing) is EXEC_OUT_OF_MEMORY', async () => {
    await pool.ready();
    const oom = pool.counters.outOfMemory;
    // A long timeout: the limit under test is memory (near its heap limit V8 collects for a while
    // before it gives up; on a loaded machine that took more than 2 s).
    const hog = fn('heap-hog@1', 'heap-hog', '() => { const keep = []; for (let i = 0; ; i++) keep.push({ i, s: "x".repeat(64) + i, a: [i, i + 1, i + 2] }); }', 15_000);
    expect(errorOf(await alongside(pool.run(hog, []))), 'heap hog').toMatchObject({ code: 'EXEC_OUT_OF_MEMORY' });
    expect(pool.counters.outOfMemory).toBe(oom + 1);
    expect(await pool.run(fn('after-heap-hog@1', 'heap-hog', '() => "served"'), [])).toBe('served');
  }, TEST_TIMEOUT_MS);

  it('memory: an ArrayBuffer hog (16 MiB Uint8Arrays, filled and kept, up to 1 GiB) with memoryMb 64 is EXEC_OUT_OF_MEMORY (resident memory is read)', async () => {
    await pool.ready();
    const oom = pool.counters.outOfMemory;
    const hog = fn('buffer-hog@1', 'buffer-hog', '() => { const keep = []; for (let i = 0; i < 64; i++) { const chunk = new Uint8Array(16 * 1024 * 1024); chunk.fill(i + 1); keep.push(chunk); } return keep.length; }', 15_000);
    expect(errorOf(await alongside(pool.run(hog, []))), 'buffer hog').toMatchObject({ code: 'EXEC_OUT_OF_MEMORY' });
    expect(pool.counters.outOfMemory).toBe(oom + 1);
    expect(await pool.run(fn('after-buffer-hog@1', 'buffer-hog', '() => "served"'), [])).toBe('served');
  }, TEST_TIMEOUT_MS);

  it('memory: one `new Uint8Array(2 ** 31)`, filled, is a typed error (EXEC_OUT_OF_MEMORY, or EXEC_USER_ERROR RangeError); the pool keeps serving', async () => {
    await pool.ready();
    const huge = fn('huge-array@1', 'huge-array', '() => { const a = new Uint8Array(2 ** 31); a.fill(7); return a[a.length - 1]; }', 15_000);
    const error = errorOf(await alongside(pool.run(huge, [])));
    if (error.code === 'EXEC_USER_ERROR') expect(error.message).toMatch(/RangeError/);
    else expect(error).toMatchObject({ code: 'EXEC_OUT_OF_MEMORY' });
    expect(await pool.run(fn('after-huge-array@1', 'huge-array', '() => "served"'), [])).toBe('served');
  }, TEST_TIMEOUT_MS);

  it('result size: a result larger than resultBytesMax (1024) is EXEC_BAD_VALUE; one within it is returned', async () => {
    await pool.ready();
    const big = fn('big-result@1', 'results', '(n) => "x".repeat(n)');
    expect(errorOf(await alongside(pool.run(big, [4096])))).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    expect(errorOf(await alongside(pool.run(fn('big-bytes@1', 'results', '() => new Uint8Array(2048)'), [])))).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    expect(await pool.run(big, [100])).toBe('x'.repeat(100));
  }, TEST_TIMEOUT_MS);

  it(`log volume: more than LOG_RECORDS_MAX (${LOG_RECORDS_MAX}) records or LOG_BYTES_MAX characters is EXEC_LIMIT, even when caught; a normal amount works and is counted`, async () => {
    await pool.ready();
    const logs = pool.counters.logRecords;
    const normal = fn('log-normal@1', 'logs', '(n, ctx) => { for (let i = 0; i < n; i++) console.log("line", i); ctx.log.info({ step: 1 }, "via ctx"); return "logged"; }');
    expect(await alongside(pool.run(normal, [20], noHost))).toEqual({ value: 'logged' });
    expect(pool.counters.logRecords).toBe(logs + 21);

    const cases: ReadonlyArray<readonly [string, string]> = [
      ['console.log', `() => { for (let i = 0; i <= ${LOG_RECORDS_MAX}; i++) console.log(i); return "done"; }`],
      ['console.log, caught', `() => { try { for (let i = 0; i <= ${LOG_RECORDS_MAX}; i++) console.log(i); } catch {} return "swallowed"; }`],
      ['console.log, caught each time and logging on', `() => { for (let i = 0; i <= ${LOG_RECORDS_MAX} + 10; i++) { try { console.warn(i); } catch {} } return "swallowed"; }`],
      ['ctx.log, caught', `(x, ctx) => { try { for (let i = 0; i <= ${LOG_RECORDS_MAX}; i++) ctx.log.info("n", i); } catch {} return "swallowed"; }`],
      ['characters, caught', `() => { const line = "y".repeat(16000); try { for (let i = 0; i < ${Math.ceil(LOG_BYTES_MAX / 16000) + 2}; i++) console.log(line); } catch {} return "swallowed"; }`],
    ];
    for (const [index, [what, body]] of cases.entries()) {
      const before = pool.counters.logRecords;
      expect(errorOf(await alongside(pool.run(fn(`log-flood-${index}@1`, 'logs', body), [1], noHost))), what).toMatchObject({ code: 'EXEC_LIMIT' });
      // The executor never got more than the limit's worth of records.
      expect(pool.counters.logRecords - before, what).toBeLessThanOrEqual(LOG_RECORDS_MAX);
    }
    // The runtime serves on: the normal amount works again.
    expect(await pool.run(normal, [3], noHost)).toBe('logged');
  }, TEST_TIMEOUT_MS);

  it('recursion depth: unbounded recursion is EXEC_LIMIT; the same runtime then still serves', async () => {
    await pool.ready();
    const counter = fn('depth-counter@1', 'depth', '(() => { let n = 0; return () => ++n; })()');
    expect(await pool.run(counter, [])).toBe(1);
    const replaced = pool.counters.replaced;
    const deep = fn('deep@1', 'depth', '(() => { const down = (n) => down(n + 1) + 1; return () => down(0); })()');
    expect(errorOf(await alongside(pool.run(deep, [])))).toMatchObject({ code: 'EXEC_LIMIT' });
    const deepAsync = fn('deep-async@1', 'depth', '(() => { const down = (n) => down(n + 1) + 1; return async () => { await null; return down(0); }; })()');
    expect(errorOf(await alongside(pool.run(deepAsync, [])))).toMatchObject({ code: 'EXEC_LIMIT' });
    // The same process and realm: the counter goes on.
    expect(await pool.run(counter, [])).toBe(2);
    expect(pool.counters.replaced).toBe(replaced);
  }, TEST_TIMEOUT_MS);

  it(`pending timers: more than TIMERS_MAX (${TIMERS_MAX}) pending is EXEC_LIMIT, even if caught; TIMERS_MAX itself is fine`, async () => {
    await pool.ready();
    const atLimit = fn('timers-at-limit@1', 'timers', `() => { for (let i = 0; i < ${TIMERS_MAX}; i++) setTimeout(() => {}, 60000); return "set"; }`);
    expect(await alongside(pool.run(atLimit, []))).toEqual({ value: 'set' });
    const cases: ReadonlyArray<readonly [string, string]> = [
      ['setTimeout', `() => { for (let i = 0; i <= ${TIMERS_MAX}; i++) setTimeout(() => {}, 60000); return "set"; }`],
      ['setTimeout, caught', `() => { try { for (let i = 0; i <= ${TIMERS_MAX}; i++) setTimeout(() => {}, 60000); } catch {} return "swallowed"; }`],
      ['setInterval, caught', `() => { try { for (let i = 0; i <= ${TIMERS_MAX}; i++) setInterval(() => {}, 60000); } catch {} return "swallowed"; }`],
      ['async, caught', `async () => { await null; try { for (let i = 0; i <= ${TIMERS_MAX}; i++) setTimeout(() => {}, 60000); } catch {} return "swallowed"; }`],
    ];
    for (const [index, [what, body]] of cases.entries()) {
      expect(errorOf(await alongside(pool.run(fn(`timers-${index}@1`, 'timers', body), []))), what).toMatchObject({ code: 'EXEC_LIMIT' });
    }
    // The limit is per call: the next call may set TIMERS_MAX again.
    expect(await pool.run(atLimit, [])).toBe('set');
  }, TEST_TIMEOUT_MS);

  it('left-behind work is cancelled: an interval and a timeout chain calling ctx.put stop at return, and never reach a later call', async () => {
    await pool.ready();
    let puts = 0;
    const host: FunctionHost = { ...noHost, put: async () => void puts++ };
    const leaver = fn(
      'leaver@1',
      'leavers',
      `async (mode, ctx) => {
        if (mode === 'leave') {
          setInterval(() => { ctx.put('tick', 1).catch(() => {}); }, 5);
          const chain = () => { ctx.put('chain', 1).catch(() => {}); setTimeout(chain, 5); };
          setTimeout(chain, 5);
          await new Promise((resolve) => setTimeout(resolve, 100));
          return 'left';
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
        return 'waited';
      }`,
    );
    expect(await alongside(pool.run(leaver, ['leave'], host))).toEqual({ value: 'left' });
    const atReturn = puts;
    // The interval (due at 5 ms) fired before the 100 ms timer: the work was running.
    expect(atReturn).toBeGreaterThan(0);
    await sleep(300);
    expect(puts, 'puts after the call returned').toBe(atReturn);
    // A later call of the same function (same process, same realm): the old interval and chain do not put through its host.
    let laterPuts = 0;
    const laterHost: FunctionHost = { ...noHost, put: async () => void laterPuts++ };
    expect(await pool.run(leaver, ['wait'], laterHost)).toBe('waited');
    expect(laterPuts, 'puts during the later call').toBe(0);
    expect(puts).toBe(atReturn);
  }, TEST_TIMEOUT_MS);

  it('left-behind work is cancelled: a microtask loop started before returning 1 synchronously ends EXEC_TIMEOUT (it never becomes idle); the process is replaced; the next call works', async () => {
    await pool.ready();
    const replaced = pool.counters.replaced;
    const spinner = fn('microtask-loop@1', 'microtasks', '(mode) => { if (mode === "spin") { const spin = () => Promise.resolve().then(spin); spin(); } return 1; }', 500);
    expect(errorOf(await alongside(pool.run(spinner, ['spin'])))).toMatchObject({ code: 'EXEC_TIMEOUT' });
    await until(() => pool.counters.replaced > replaced);
    expect(pool.counters.replaced).toBeGreaterThan(replaced);
    expect(await pool.run(spinner, ['calm'])).toBe(1);
  }, TEST_TIMEOUT_MS);

  it('left-behind work is cancelled: a `setTimeout` of a busy loop set before returning is cleared at return; the runtime stays idle and is not replaced', async () => {
    await pool.ready();
    const replaced = pool.counters.replaced;
    const armer = fn('armer@1', 'armers', '(mode) => { if (mode === "arm") { const spin = () => { for (;;) {} }; setTimeout(spin); setTimeout(spin, 1); setInterval(spin, 1); } return mode; }', 1000);
    expect(await alongside(pool.run(armer, ['arm']))).toEqual({ value: 'arm' });
    for (let i = 0; i < 5; i++) expect(await pool.run(armer, [`calm-${i}`])).toBe(`calm-${i}`);
    // Armed again and again: each time cleared.
    for (let i = 0; i < 3; i++) expect(await pool.run(armer, ['arm'])).toBe('arm');
    expect(await pool.run(armer, ['calm'])).toBe('calm');
    expect(pool.counters.replaced).toBe(replaced);
  }, TEST_TIMEOUT_MS);

  it('no leaks between functions: a global of function A is seen by neither B of the same owner nor C of another owner', async () => {
    await pool.ready();
    const setter = fn('global-setter@1', 'alice', '(mode) => { if (mode === "set") { globalThis.x = 1; globalThis.secret = "alice"; } return [typeof globalThis.x, typeof x]; }');
    const reader = '() => [typeof globalThis.x, typeof globalThis.secret, Object.keys(globalThis).filter((k) => k === "x" || k === "secret").length]';
    expect(await alongside(pool.run(setter, ['set']))).toEqual({ value: ['number', 'number'] });
    // A itself, warm: its global is still there (its own realm).
    expect(await pool.run(setter, ['read'])).toEqual(['number', 'number']);
    expect(await pool.run(fn('global-reader-b@1', 'alice', reader), [])).toEqual(['undefined', 'undefined', 0]);
    expect(await pool.run(fn('global-reader-c@1', 'carol', reader), [])).toEqual(['undefined', 'undefined', 0]);
  }, TEST_TIMEOUT_MS);

  it('no leaks between functions: shared intrinsics and globals cannot be changed (`Object.prototype.x = 1` throws), and nobody sees a change, this process included', async () => {
    await pool.ready();
    const attempts = [
      'Object.prototype.x = 1',
      'Object.defineProperty(Object.prototype, "x", { value: 1 })',
      'Object.setPrototypeOf(Object.prototype, { x: 1 })',
      'Array.prototype.push = function () { return 0; }',
      'Function.prototype.call = function () { return 0; }',
      'Promise.prototype.then = function () { return 0; }',
      'JSON.parse = () => 0',
      'Date.now = () => 0',
      'Math.random = () => 4',
      'console.log = () => {}',
      'setTimeout.x = 1',
      'TextEncoder.prototype.encode = () => 0',
    ];
    for (const [index, attempt] of attempts.entries()) {
      const outcome = await alongside(pool.run(fn(`pollute-${index}@1`, 'alice', `() => { ${attempt}; return "changed"; }`), []));
      expect(errorOf(outcome), attempt).toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringMatching(/TypeError/) });
    }
    const probe = `() => [
      ({}).x === undefined,
      [1].push(2) === 2,
      typeof Function.prototype.call === 'function' && Math.max.call(null, 1, 2) === 2,
      JSON.parse('7') === 7,
      Date.now() > 0,
      Math.random() < 1,
      new TextEncoder().encode('a').length === 1,
    ]`;
    const fine = [true, true, true, true, true, true, true];
    expect(await pool.run(fn('probe-a@1', 'alice', probe), [])).toEqual(fine);
    expect(await pool.run(fn('probe-c@1', 'carol', probe), [])).toEqual(fine);
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>)['x']).toBeUndefined();
  }, TEST_TIMEOUT_MS);

  it('no leaks between functions: a module-level variable persists across warm calls of A, not into B', async () => {
    await pool.ready();
    const body = '(() => { let n = 0; return () => ++n; })()';
    const a = fn('module-state-a@1', 'alice', body);
    const b = fn('module-state-b@1', 'alice', body);
    expect(await alongside(pool.run(a, []))).toEqual({ value: 1 });
    expect(await pool.run(a, [])).toBe(2);
    expect(await pool.run(a, [])).toBe(3);
    expect(await pool.run(b, [])).toBe(1);
    expect(await pool.run(a, [])).toBe(4);
    expect(await pool.run(b, [])).toBe(2);
  }, TEST_TIMEOUT_MS);

  it('functions of two owners run in different processes: two bound owners in pool.owners()', async () => {
    await pool.ready();
    // Both have run above; run both again, at once.
    const who = '() => "here"';
    expect(await Promise.all([pool.run(fn('who-a@1', 'alice', who), []), pool.run(fn('who-c@1', 'carol', who), [])])).toEqual(['here', 'here']);
    const owners = pool.owners();
    expect(owners.filter((owner) => owner === 'alice')).toHaveLength(1);
    expect(owners.filter((owner) => owner === 'carol')).toHaveLength(1);
    expect(owners.indexOf('alice')).not.toBe(owners.indexOf('carol'));
  }, TEST_TIMEOUT_MS);

  it('a process never serves two owners: with workersMax 1, owner B gets a new process and owner A\'s realm is gone', async () => {
    const single = new RuntimePool({ isolation: level, prewarm: 1, memoryMb: 64, workersMax: 1, functionLogLevel: 'silent' });
    try {
      await single.ready();
      const counterA = fn('single-a@1', 'alice', '(() => { let n = 0; return () => ++n; })()');
      const counterB = fn('single-b@1', 'bob', '(() => { let n = 0; return () => ++n; })()');
      expect(await single.run(counterA, [])).toBe(1);
      expect(await single.run(counterA, [])).toBe(2);
      expect(single.owners()).toEqual(['alice']);
      const spawned = single.counters.spawned;
      expect(await single.run(counterB, [])).toBe(1);
      expect(single.counters.spawned).toBe(spawned + 1);
      expect(single.owners()).toEqual(['bob']);
      // A again: a new process, a new realm (its module state starts over).
      const cold = single.counters.cold;
      expect(await single.run(counterA, [])).toBe(1);
      expect(single.counters.spawned).toBe(spawned + 2);
      expect(single.counters.cold).toBe(cold + 1);
      expect(single.owners()).toEqual(['alice']);
    } finally {
      await single.close();
    }
  }, TEST_TIMEOUT_MS);

  it('the executor never dies: after all of the above, this process is alive and a final call works', async () => {
    expect(process.kill(process.pid, 0)).toBe(true);
    await pool.ready();
    expect(await pool.run(bystander, [21])).toEqual({ doubled: 42 });
    expect(await pool.run(fn('final@1', 'final', '(a, b) => a + b'), [2, 3])).toBe(5);
    // No runtime broke the protocol on the way.
    expect(pool.counters.protocolBroken).toBe(0);
  }, TEST_TIMEOUT_MS);
});
