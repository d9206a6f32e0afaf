/**
 * `isolation`: what isolating functions costs, measured on the runtime pool itself
 * (executor/runtime-pool.ts, in this process; no network) at the strongest level the machine
 * allows (detectIsolation()), and, as rows for comparison, at `process` and `none` (trusted
 * threads, the old runtime). p50 and p99 of:
 *
 * - (a) cold start: a call of a function of a never-seen owner on a pool with no stem (prewarm 0),
 *   until its result: spawn, ready, load, call. A fresh pool per sample (at `none` a pool reuses
 *   an idle thread for any function, so only a fresh pool spawns). n = 20 (10 with --quick).
 * - (b) stem to specialised: with a stem ready (prewarm 1, `await pool.ready()`), `pool.prepare()`
 *   of a new owner's function: binding the stem and loading the function's realm. The pool starts
 *   the taken stem's replacement 50 ms later (within or after the sample, as in an executor; the
 *   next sample waits for it); a second row measures the same on a pool that never starts one
 *   (workersMax 1, a fresh pool per sample). n = 30.
 * - (c) first call of a new function version in a warm process: the owner's process already has
 *   other functions loaded; `pool.run` of `name@<new version>`. n = 50.
 * - (d) warm call: a no-op already loaded, sequential calls, 2000 of them.
 * - (e) memory: the resident memory (VmRSS, summed over the sandbox processes: this process's
 *   descendants, read from /proc) of one idle stem, and per idle warm function: before and after
 *   loading 50 distinct functions of one owner into one process (workersMax 1), divided by 50.
 *   At `none` the runtimes are threads of this process: its own RSS is given instead.
 *
 * Levels alternate sample by sample (a, b, c) or in chunks (d), so that they see the same machine.
 */
import { readFileSync } from 'node:fs';
import { RuntimePool, detectIsolation, processTree } from '../executor/index.js';
import type { FunctionCode, IsolationLevel } from '../executor/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';

const MEMORY_MB = 64;
const TIMEOUT_MS = 5000;
/** Every wait on the pool is bounded by this. */
const WAIT_MS = 30_000;
/** Functions loaded into one process for (e). */
const MEMORY_FUNCTIONS = 50;
const MEASURES = {
  cold: 'cold start, new owner (spawn + load + call)',
  stem: 'stem -> specialised (prepare, new owner)',
  stemAlone: 'stem -> specialised, no replacement stem (workersMax 1)',
  version: 'first call of a new version in a warm process',
  warm: 'warm no-op call',
} as const;

/** Bounds a wait on the pool. */
async function bounded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${WAIT_MS} ms`)), WAIT_MS)))]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits (bounded) until the pool has a stem waiting and every runtime is ready: the pool starts a
 * taken stem's replacement a little later (50 ms), so `ready()` alone may come before it exists.
 * At `none` threads are shared by all and there is no replacement to wait for.
 */
async function stemReady(pool: RuntimePool, level: IsolationLevel): Promise<void> {
  const deadline = performance.now() + WAIT_MS;
  while (level !== 'none' && !pool.owners().includes(undefined)) {
    if (performance.now() > deadline) throw new Error(`${level}: no stem was started in ${WAIT_MS} ms`);
    await sleep(10);
  }
  await bounded(pool.ready(), `${level}: a stem`);
}

/** VmRSS of a process in bytes; 0 where /proc cannot be read. */
function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return match === null ? 0 : Number(match[1]) * 1024;
  } catch {
    return 0;
  }
}

/** The resident memory of this process's descendants (the sandbox processes and bubblewrap's), and how many there are. */
function descendantsRss(): { bytes: number; processes: number } {
  const descendants = processTree(process.pid).filter((pid) => pid !== process.pid);
  return { bytes: descendants.reduce((sum, pid) => sum + rssBytes(pid), 0), processes: descendants.length };
}

const MiB = 1024 * 1024;

/** Unique names over the run: each owner and function here is new to every pool. */
let serial = 0;
const fresh = (prefix: string): string => `${prefix}${++serial}`;

function fn(owner: string, name: string, version: number, body = '(x) => x'): FunctionCode {
  return { id: `${name}@${version}`, code: `module.exports = ${body};`, memoryMb: MEMORY_MB, timeoutMs: TIMEOUT_MS, owner };
}

class Samples {
  readonly ms = new Map<IsolationLevel, number[]>();
  readonly failures = new Map<IsolationLevel, number>();
  readonly errors: string[] = [];

  constructor(readonly measure: string) {}

  /** Times one sample of `level`; a failure is counted (and its first messages kept), not thrown. */
  async time(level: IsolationLevel, work: () => Promise<unknown>): Promise<void> {
    const t0 = performance.now();
    try {
      await work();
      const list = this.ms.get(level) ?? [];
      list.push(performance.now() - t0);
      this.ms.set(level, list);
    } catch (error) {
      this.failures.set(level, (this.failures.get(level) ?? 0) + 1);
      if (this.errors.length < 3) this.errors.push(`${this.measure} at ${level}: ${(error as Error).message}`);
    }
  }

  rows(levels: readonly IsolationLevel[]): Row[] {
    return levels.map((level) => {
      const summary = summarise(this.ms.get(level) ?? []);
      return { level, measure: this.measure, n: summary.count, failures: this.failures.get(level) ?? 0, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, meanMs: summary.meanMs, minMs: summary.minMs, maxMs: summary.maxMs };
    });
  }
}

export const isolationBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const detected = await detectIsolation();
  const strongest = detected.level;
  const levels = [...new Set<IsolationLevel>([strongest, 'process', 'none'])];
  const n = {
    cold: options.quick ? 10 : 20,
    stem: options.quick ? 15 : 30,
    version: options.quick ? 25 : 50,
    warm: options.quick ? 500 : 2000,
  };
  const notes: string[] = [
    `strongest isolation level this machine allows: ${strongest} (${detected.reason}); measured at ${levels.join(', ')} (none: trusted threads, the old runtime, for comparison only)`,
    `the runtime pool in the benchmark process (no executor, no network); functions of ${MEMORY_MB} MB, timeout ${TIMEOUT_MS} ms; levels alternate sample by sample (warm calls: in chunks), so they share the machine conditions; the machine load average is in machine.loadAverage`,
    `${MEASURES.cold}: a fresh pool per sample with prewarm 0 (at none, a pool's idle thread serves any function, so only a fresh pool starts one), one unmeasured sample per level first; n = ${n.cold}`,
    `${MEASURES.stem}: one pool per level (prewarm 1), each sample once the replacement of the previous sample's stem is there and ready (the pool starts it 50 ms after a stem is taken, off the path of the call that took it); at none the stem is an unspecialised thread and prepare only creates the realm; n = ${n.stem}`,
    `${MEASURES.stemAlone}: the same on a fresh pool per sample that may hold one runtime, so no replacement stem is ever started; n = ${n.stem}`,
    `${MEASURES.version}: one pool per level (prewarm 1, at most 2 runtimes); the owner's process has other@1 and fn@1 loaded and called, and the replacement stem is ready; then fn@2, fn@3, ... (distinct code) are each called once; n = ${n.version}`,
    `${MEASURES.warm}: the no-op fn@1 of that process, 200 unmeasured calls, then ${n.warm} sequential calls in 4 chunks alternating between levels`,
    `memory: VmRSS summed over this process's descendants (each sandbox process: at bwrap, bubblewrap + its namespace init + node), after 500 ms of idling; at none the runtimes are threads inside this process, so its own RSS (client, heap, JIT included: indicative only) is given instead`,
  ];
  const rows: Row[] = [];

  // (e) memory, first: no other pool's process may be alive while it is read.
  const memory = new Map<IsolationLevel, { stemMiB: number; perFunctionMiB: number; processes: number }>();
  for (const level of levels) {
    const read = (): { bytes: number; processes: number } => (level === 'none' ? { bytes: rssBytes(process.pid), processes: 0 } : descendantsRss());
    const baseline = read();
    const pool = new RuntimePool({ isolation: level, prewarm: 1, workersMax: 1, memoryMb: MEMORY_MB });
    try {
      await bounded(pool.ready(), `${level}: a stem`);
      await sleep(500);
      const stem = read();
      const owner = fresh('memory-owner-');
      // Each loaded by its first call (so its code has run once): then idle and warm.
      for (let k = 0; k < MEMORY_FUNCTIONS; k++) await bounded(pool.run(fn(owner, fresh('mem'), 1, `(x) => x + ${k}`), [k]), `${level}: loading a function`);
      await sleep(500);
      const loaded = read();
      const stemBytes = level === 'none' ? stem.bytes - baseline.bytes : stem.bytes;
      memory.set(level, { stemMiB: stemBytes / MiB, perFunctionMiB: (loaded.bytes - stem.bytes) / MEMORY_FUNCTIONS / MiB, processes: loaded.processes });
      rows.push({ level, measure: level === 'none' ? 'RSS of one idle stem (this process grew by)' : 'RSS of one idle stem (its processes)', n: 1, processes: stem.processes, rssMiB: stemBytes / MiB });
      rows.push({ level, measure: `RSS per idle warm function (${MEMORY_FUNCTIONS} in one runtime)`, n: MEMORY_FUNCTIONS, processes: loaded.processes, rssMiB: (loaded.bytes - stem.bytes) / MEMORY_FUNCTIONS / MiB, rssBeforeMiB: stem.bytes / MiB, rssAfterMiB: loaded.bytes / MiB });
      if (pool.counters.spawned !== 1) notes.push(`WARNING: memory at ${level}: the pool started ${pool.counters.spawned} runtimes, not 1`);
    } finally {
      await pool.close();
    }
  }

  // (a) cold start: a fresh pool per sample, prewarm 0.
  const cold = new Samples(MEASURES.cold);
  for (let i = -1; i < n.cold; i++) {
    for (const level of levels) {
      const pool = new RuntimePool({ isolation: level, prewarm: 0, workersMax: 2, memoryMb: MEMORY_MB });
      try {
        const call = fn(fresh('cold-owner-'), fresh('cold'), 1);
        if (i < 0) await bounded(pool.run(call, [i]), `${level}: a cold start`).catch(() => undefined);
        else await cold.time(level, () => bounded(pool.run(call, [i]), `${level}: a cold start`));
      } finally {
        await pool.close();
      }
    }
  }
  rows.push(...cold.rows(levels));

  // (b) stem -> specialised, one pool per level (prewarm 1), and (b') on a pool that may hold one runtime.
  const stem = new Samples(MEASURES.stem);
  const stemAlone = new Samples(MEASURES.stemAlone);
  const stemPools = new Map(levels.map((level) => [level, new RuntimePool({ isolation: level, prewarm: 1, workersMax: n.stem + 4, memoryMb: MEMORY_MB })] as const));
  try {
    for (let i = 0; i < n.stem; i++) {
      for (const level of levels) {
        const pool = stemPools.get(level)!;
        await stemReady(pool, level);
        await sleep(20);
        await stem.time(level, () => bounded(pool.prepare(fn(fresh('stem-owner-'), fresh('stem'), 1)), `${level}: prepare`));
      }
      for (const level of levels) {
        const pool = new RuntimePool({ isolation: level, prewarm: 1, workersMax: 1, memoryMb: MEMORY_MB });
        try {
          await bounded(pool.ready(), `${level}: a stem`);
          await sleep(20);
          await stemAlone.time(level, () => bounded(pool.prepare(fn(fresh('stem-owner-'), fresh('stem'), 1)), `${level}: prepare`));
          if (pool.counters.spawned !== 1) notes.push(`WARNING: ${MEASURES.stemAlone} at ${level}: the pool started ${pool.counters.spawned} runtimes`);
        } finally {
          await pool.close();
        }
      }
    }
    for (const level of levels) {
      const pool = stemPools.get(level)!;
      // Each prepare bound the stem it found (a process per owner): one runtime per sample, plus the stem waiting (threads: one shared).
      notes.push(`${MEASURES.stem} at ${level}: ${pool.counters.spawned} runtimes started for ${n.stem} samples, ${pool.size} in the pool at the end`);
    }
  } finally {
    await Promise.all([...stemPools.values()].map((pool) => pool.close()));
  }
  rows.push(...stem.rows(levels), ...stemAlone.rows(levels));

  // (c) new versions in a warm process, then (d) warm calls, one pool per level.
  const version = new Samples(MEASURES.version);
  const warm = new Samples(MEASURES.warm);
  const warmPools = new Map(levels.map((level) => [level, { pool: new RuntimePool({ isolation: level, prewarm: 1, workersMax: 2, memoryMb: MEMORY_MB }), owner: fresh('warm-owner-'), name: fresh('fn') }] as const));
  try {
    const spawnedBefore = new Map<IsolationLevel, number>();
    for (const [level, { pool, owner, name }] of warmPools) {
      await bounded(pool.run(fn(owner, fresh('other'), 1, '(x) => x * 2'), [1]), `${level}: other@1`);
      for (let k = 0; k < 20; k++) await bounded(pool.run(fn(owner, name, 1), [k]), `${level}: ${name}@1`);
      await stemReady(pool, level);
      await sleep(100);
      spawnedBefore.set(level, pool.counters.spawned);
    }
    const coldBefore = new Map([...warmPools].map(([level, { pool }]) => [level, pool.counters.cold]));
    for (let v = 2; v < 2 + n.version; v++) {
      for (const [level, { pool, owner, name }] of warmPools) {
        await version.time(level, () => bounded(pool.run(fn(owner, name, v, `(x) => x + ${v}`), [v]), `${level}: ${name}@${v}`));
      }
    }
    for (const [level, { pool }] of warmPools) {
      const spawned = pool.counters.spawned - spawnedBefore.get(level)!;
      const coldCalls = pool.counters.cold - coldBefore.get(level)!;
      notes.push(`${MEASURES.version} at ${level}: ${coldCalls} cold calls (loads), ${spawned} runtimes started meanwhile (0 expected: every version ran in the warm one)`);
    }
    for (const { pool, owner, name } of warmPools.values()) for (let k = 0; k < 200; k++) await bounded(pool.run(fn(owner, name, 1), [k]), 'warm-up');
    const chunk = Math.ceil(n.warm / 4);
    for (let round = 0; round < 4; round++) {
      for (const [level, { pool, owner, name }] of warmPools) {
        const call = fn(owner, name, 1);
        const deadline = performance.now() + 60_000;
        for (let k = 0; k < chunk && performance.now() < deadline; k++) await warm.time(level, () => pool.run(call, [k]));
      }
    }
  } finally {
    await Promise.all([...warmPools.values()].map(({ pool }) => pool.close()));
  }
  rows.push(...version.rows(levels), ...warm.rows(levels));
  for (const samples of [cold, stem, stemAlone, version, warm]) for (const error of samples.errors) notes.push(`FAILURE: ${error}`);

  const p50 = (measure: string, level: IsolationLevel): number => Number(rows.find((row) => row['measure'] === measure && row['level'] === level)?.['p50Ms'] ?? Number.NaN);
  const ratios: Record<string, number> = {};
  const pairs: Array<[IsolationLevel, IsolationLevel]> = strongest === 'process' ? [['process', 'none']] : [[strongest, 'process'], [strongest, 'none'], ['process', 'none']];
  for (const [key, measure] of [['cold_start', MEASURES.cold], ['specialise', MEASURES.stem], ['new_version', MEASURES.version], ['warm_call', MEASURES.warm]] as const) {
    for (const [over, under] of pairs) ratios[`${key}_p50_${over}_over_${under}`] = p50(measure, over) / p50(measure, under);
  }
  for (const [over, under] of pairs) {
    const a = memory.get(over);
    const b = memory.get(under);
    if (a !== undefined && b !== undefined && under !== 'none') ratios[`stem_rss_${over}_over_${under}`] = a.stemMiB / b.stemMiB;
  }
  const specialise = p50(MEASURES.stem, strongest);
  const newVersion = p50(MEASURES.version, strongest);
  const targets: Target[] = [
    { name: `specialise a stem <= 5 ms p50 (at ${strongest}, ms)`, target: '<= 5', value: specialise, met: specialise <= 5 },
    { name: `new function version in a warm process <= 10 ms p50 (at ${strongest}, ms)`, target: '<= 10', value: newVersion, met: newVersion <= 10 },
  ];

  notes.push(machineLoad.summary());
  await publish('isolation', options, {
    rows,
    ratios,
    targets,
    notes,
    plot: {
      rows: rows.flatMap((row): Row[] =>
        row['p50Ms'] !== undefined
          ? [
              { kind: 'latency', level: row['level']!, measure: row['measure']!, quantile: 'p50', ms: row['p50Ms'] },
              { kind: 'latency', level: row['level']!, measure: row['measure']!, quantile: 'p99', ms: row['p99Ms']! },
            ]
          : [{ kind: 'memory', level: row['level']!, measure: row['measure']!, mib: row['rssMiB']! }],
      ),
      spec: {
        title: 'isolation: the cost of each level',
        vconcat: [
          {
            title: 'latency (ms, log scale)',
            width: 420,
            height: 200,
            transform: [{ filter: "datum.kind === 'latency'" }],
            mark: { type: 'point', filled: true, size: 80 },
            encoding: {
              y: { field: 'measure', type: 'nominal', title: null, axis: { labelLimit: 440 } },
              x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'ms' },
              color: { field: 'level', type: 'nominal' },
              shape: { field: 'quantile', type: 'nominal' },
            },
          },
          {
            title: 'resident memory (MiB, log scale)',
            width: 420,
            height: 110,
            transform: [{ filter: "datum.kind === 'memory' && datum.mib > 0" }],
            mark: { type: 'point', filled: true, size: 80 },
            encoding: {
              y: { field: 'measure', type: 'nominal', title: null, axis: { labelLimit: 440 } },
              x: { field: 'mib', type: 'quantitative', scale: { type: 'log' }, title: 'MiB' },
              color: { field: 'level', type: 'nominal' },
            },
          },
        ],
      },
    },
  });
};
