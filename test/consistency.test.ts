/**
 * Anomaly tests of the consistency modes in the style of Cloudburst's evaluation, over real
 * processes (a routing node, two storage nodes, a scheduler, two executors): concurrent writers
 * plus random DAG runs, then the histories are checked.
 *
 * - Read skew: writers keep overwriting eight keys; random DAGs (chains of 2-4 readers, a diamond)
 *   read random keys, sleeping a few ms between reads, and pass on what they read; the sink
 *   returns every read of the run. Skew = a key read twice in one run with different values.
 *   `repeatable-read` must show none; `lww` runs the same workload and reports its count.
 * - Causality: a writer function's call n writes a = n, then b = n, to a fresh pair of keys (in
 *   causal mode b's version depends on a's); reader DAGs read the latest pair's b first and its a
 *   in a later function. A violation = the run saw b = n but not a = n. `causal` must show none;
 *   `lww` (plain LWW values, the same writer in lww mode) reports its count. Storage has two
 *   replicas per key and writes are acknowledged by one, so a read that goes through to the other
 *   may miss a write for a gossip period, and one executor applies the KVS's pushes to its cache
 *   {@link PUSH_DELAY_MS} late (the executor's `--push-delay-ms` test hook): the lags that make the
 *   anomaly possible. lww must show it (else the test could not tell the modes apart).
 *
 * Making the anomalies possible: the functions of a run must run on different executors (on one
 * executor the pushes into its one cache are the only source of change). Placement prefers warm
 * executors, then the ones caching a call's `ref(key)` keys, then the parent's executor; every
 * function is warm on both, so each reader gets a `ref` to a "locator" key that only one executor
 * caches, chosen at random per function and run (and the client makes every call through the
 * scheduler, with no direct-dispatch leases, which would bypass placement). Which executor ran what is read back from the
 * executors' stderr (each function logs through `ctx.log`), and the test asserts that runs
 * crossed executors and that keys changed in the KVS while runs that re-read them were running.
 *
 * Parallel branches: the diamond's two branches read any of the run's keys, so both often read
 * first a key no upstream function read, on different executors. Neither is upstream of the other,
 * so no cut tells one where the other pinned it: the run's holder (one executor of the run) pins
 * every first read for all its functions, and repeatable read must still show no skew.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatticeFaas, ref } from '../client/index.js';
import type { Consistency, DagDefinition } from '../client/index.js';
import { HybridClock, Lww, MultiKeyCausal } from '../lattices/index.js';
import { seededRandom } from '../protocol/index.js';
import type { Random } from '../protocol/index.js';
import { FaasCluster, eventually, metricValue, scrapeMetrics, untilServing } from './cluster.js';

/** How late the second executor applies the KVS's pushes to its cache. */
const PUSH_DELAY_MS = 1500;

/** A reader: its parents' results, then (its locator, the keys to read, a pause before each read), then ctx. */
const READER = `module.exports = async (...args) => {
  const ctx = args.pop();
  const [, keys, pauseMs] = args.splice(args.length - 3, 3);
  ctx.log.info('consistency-read');
  const reads = {};
  for (const upstream of args) Object.assign(reads, upstream.reads);
  const mine = [];
  for (const key of keys) {
    if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const lattice = await ctx.getLattice(key);
    const revealed = lattice === undefined ? [] : lattice.reveal();
    // A causal value reveals its concurrent versions; an LWW register its one value.
    const values = Array.isArray(revealed) ? revealed : [revealed];
    mine.push([key, values.map((value) => value.seq)]);
  }
  reads[ctx.functionName] = mine;
  return { run: ctx.callId, reads };
};`;

/**
 * Writes a = n, then b = n (in causal mode: b's version depends on a's). `near`: a locator, passed
 * as `ref(key)` only to steer placement (the test sends the writes to the executor whose pushes are
 * not delayed, so the other one's cache lags them).
 */
const WRITER = `module.exports = async (a, b, n, near, ctx) => {
  await ctx.put(a, { seq: n });
  await ctx.put(b, { seq: n });
  return n;
};`;

/** Logs which locator it was called with, so the test learns which executor caches it. */
const PROBE = `module.exports = (locator, ctx) => { ctx.log.info({ probe: locator }, 'probe'); return locator; };`;

interface RunResult {
  readonly run: string;
  /** Function name -> its reads: [key, the seq of each concurrent value read]. */
  readonly reads: Readonly<Record<string, readonly (readonly [string, readonly number[]])[]>>;
}

interface Tally {
  mode: Consistency;
  workload: string;
  runs: number;
  crossRuns: number;
  /**
   * Chances for the anomaly. Read skew: (run, key) pairs read on both executors while the key was
   * being written. Causality: runs that read b on one executor and a on the other.
   */
  exposed: number;
  anomalies: number;
  failures: number;
}

const FNS = ['cs-f1', 'cs-f2', 'cs-f3', 'cs-f4'] as const;
const SHAPES: readonly DagDefinition[] = [
  { name: 'cs-chain2', functions: ['cs-f1', 'cs-f2'], edges: [['cs-f1', 'cs-f2']] },
  { name: 'cs-chain3', functions: ['cs-f1', 'cs-f2', 'cs-f3'], edges: [['cs-f1', 'cs-f2'], ['cs-f2', 'cs-f3']] },
  { name: 'cs-chain4', functions: ['cs-f1', 'cs-f2', 'cs-f3', 'cs-f4'], edges: [['cs-f1', 'cs-f2'], ['cs-f2', 'cs-f3'], ['cs-f3', 'cs-f4']] },
  { name: 'cs-diamond', functions: ['cs-f1', 'cs-f2', 'cs-f3', 'cs-f4'], edges: [['cs-f1', 'cs-f2'], ['cs-f1', 'cs-f3'], ['cs-f2', 'cs-f4'], ['cs-f3', 'cs-f4']] },
];
const CAUSAL_SHAPES: readonly DagDefinition[] = [
  { name: 'cz-chain2', functions: ['cs-f1', 'cs-f2'], edges: [['cs-f1', 'cs-f2']] },
  { name: 'cz-chain3', functions: ['cs-f1', 'cs-f2', 'cs-f3'], edges: [['cs-f1', 'cs-f2'], ['cs-f2', 'cs-f3']] },
];

const KEYS = 8;
const RUNS_PER_MODE = 150;
const CAUSAL_RUNS_PER_MODE = 300;
const READER_LOOPS = 2;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A random non-empty subset of `items` (in random order), at most `max` long. */
function subset<T>(random: Random, items: readonly T[], max: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  const count = Math.min(pool.length, 1 + random.int(max));
  for (let i = 0; i < count; i++) out.push(pool.splice(random.int(pool.length), 1)[0]!);
  return out;
}

describe('consistency modes under concurrent writers and random DAGs', () => {
  const cluster = new FaasCluster();
  const seed = Number(process.env['LFAAS_SEED'] ?? Date.now() % 1_000_000);
  const random = seededRandom(seed);
  const tallies: Tally[] = [];
  const savedLogLevel = process.env['LFAAS_FUNCTION_LOG_LEVEL'];
  let faas: LatticeFaas;
  /** Per executor (index in cluster.executors), the locator key only it caches. */
  const locators: string[] = [];

  beforeAll(async () => {
    // The functions' log lines tell which executor ran them.
    process.env['LFAAS_FUNCTION_LOG_LEVEL'] = 'info';
    // One executor applies the KVS's pushes late (a test hook): its cache lags as a far replica's
    // would, so a stale read is possible on this one machine (pushes otherwise land within ~1 ms).
    await cluster.startAll({ nodes: 2, global: 2, schedulers: 1, executors: 2, workers: 8, executorArgs: [[], ['--push-delay-ms', String(PUSH_DELAY_MS)]] });
    // Through the scheduler, every call: a client's direct-dispatch lease would send the next runs
    // of a DAG that once ran on one executor all to that executor, around placement.
    faas = await LatticeFaas.connect({ routing: cluster.routingAddresses, schedulers: cluster.schedulerAddresses, directCalls: false });
    await untilServing(faas, 'cs-ping');
    for (const name of FNS) await faas.register(name, { code: READER }, { timeoutMs: 10_000 });
    await faas.register('cs-writer', { code: WRITER }, { timeoutMs: 10_000 });
    await faas.register('cs-probe', { code: PROBE }, { timeoutMs: 10_000 });
    for (const shape of [...SHAPES, ...CAUSAL_SHAPES]) await faas.registerDag(shape);
    // Registration pins every function on both executors (a sandbox process each, started under
    // load in seconds; a pin lost to a start that failed is sent again every 5 s): placement
    // prefers warm executors, so until both are warm for all of them the runs would all go to one.
    const functionsRegistered = FNS.length + 3; // the readers, cs-ping, cs-writer, cs-probe
    let warm: (number | undefined)[] = [];
    const bothWarm = await eventually(async () => {
      warm = await Promise.all(cluster.executors.map(async (executor) => metricValue(await scrapeMetrics(executor), 'lfaas_executor_warm_functions')));
      return warm.every((count) => (count ?? 0) >= functionsRegistered);
    }, 45_000);
    expect(bothWarm, `warm functions per executor: ${warm.join(', ')} (of ${functionsRegistered})`).toBe(true);
    // Locators: fresh keys, each read once by a probe wherever it lands, until each executor holds one.
    const clock = new HybridClock('consistency-test', () => Date.now());
    for (let i = 0; i < 40 && locators.filter((locator) => locator !== undefined).length < 2; i++) {
      const key = `cs:locator:${i}`;
      await faas.kvs.put(key, Lww.write(clock, key), { ack: 'replicated' });
      expect(await faas.call('cs-probe', [ref(key)])).toBe(key);
      let where = -1;
      await eventually(() => (where = cluster.executors.findIndex((executor) => executor.stderr.some((line) => line.includes(`"probe":"${key}"`)))) >= 0, 3000);
      expect(where, `no executor logged probe ${key}`).toBeGreaterThanOrEqual(0);
      if (locators[where] === undefined) locators[where] = key;
    }
    expect(locators.filter((locator) => locator !== undefined), 'both executors hold a locator').toHaveLength(2);
    // The scheduler learns the cached keys from the heartbeats.
    await sleep(400);
  }, 90_000);

  afterAll(async () => {
    if (tallies.length > 0) {
      const rows = tallies.map((t) => `${t.workload.padEnd(10)} ${t.mode.padEnd(16)} ${String(t.runs).padStart(5)} ${String(t.crossRuns).padStart(6)} ${String(t.exposed).padStart(8)} ${String(t.failures).padStart(6)} ${String(t.anomalies).padStart(10)}`);
      console.log([`consistency anomalies (seed ${seed}; cross: runs on both executors; exposed: chances for the anomaly)`, `${'workload'.padEnd(10)} ${'mode'.padEnd(16)} ${'runs'.padStart(5)} ${'cross'.padStart(6)} ${'exposed'.padStart(8)} ${'failed'.padStart(6)} ${'anomalies'.padStart(10)}`, ...rows].join('\n'));
    }
    await faas?.close();
    await cluster.stop();
    if (savedLogLevel === undefined) delete process.env['LFAAS_FUNCTION_LOG_LEVEL'];
    else process.env['LFAAS_FUNCTION_LOG_LEVEL'] = savedLogLevel;
  }, 60_000);

  /** Where the runs went, for a failed placement precondition: each executor's log lines of reads, and its last stderr lines. */
  function placementDiagnosis(): string {
    return cluster.executors
      .map((executor, index) => `executor ${index} (pid ${executor.pid}): ${executor.stderr.filter((line) => line.includes('consistency-read')).length} read lines; last: ${executor.stderr.slice(-3).join(' | ').slice(0, 600)}`)
      .join('\n');
  }

  /** Run id -> function name -> the executor (index) that ran it, from the executors' log lines. */
  async function placements(runs: readonly string[], functionsPerRun: ReadonlyMap<string, number>): Promise<Map<string, Map<string, number>>> {
    const where = new Map<string, Map<string, number>>();
    const scan = (): boolean => {
      where.clear();
      cluster.executors.forEach((executor, index) => {
        for (const line of executor.stderr) {
          if (!line.includes('consistency-read')) continue;
          let entry: { callId?: string; fn?: string };
          try {
            entry = JSON.parse(line) as { callId?: string; fn?: string };
          } catch {
            continue;
          }
          if (entry.callId === undefined || entry.fn === undefined) continue;
          let fns = where.get(entry.callId);
          if (fns === undefined) where.set(entry.callId, (fns = new Map()));
          fns.set(entry.fn.replace(/@\d+$/, ''), index);
        }
      });
      return runs.every((run) => (where.get(run)?.size ?? 0) >= (functionsPerRun.get(run) ?? 0));
    };
    // The log lines are written asynchronously: wait (bounded) until every run's are in.
    await eventually(scan, 5000);
    return where;
  }

  /** READER_LOOPS loops calling `once` until `total` calls were made (each call bounded by its timeout). */
  async function readerLoops(total: number, once: () => Promise<void>): Promise<void> {
    let started = 0;
    await Promise.all(
      Array.from({ length: READER_LOOPS }, async () => {
        while (started < total) {
          started++;
          await once();
        }
      }),
    );
  }

  it.each<Consistency>(['repeatable-read', 'lww'])('read skew under %s', async (mode) => {
    const prefix = `skew:${mode}`;
    const keys = Array.from({ length: KEYS }, (_, i) => `${prefix}:k${i}`);
    const clock = new HybridClock(`writer-${mode}`, () => Date.now());
    /** Every write: key -> [acknowledged at ms]. */
    const writes = new Map<string, number[]>(keys.map((key) => [key, []]));
    let seq = 0;
    for (const key of keys) await faas.kvs.put(key, Lww.write(clock, { seq: ++seq }), { ack: 'replicated' });

    // Writers: two client loops overwriting random keys (bounded in count and time).
    let writing = true;
    const writersUntil = Date.now() + 30_000;
    const writers = Array.from({ length: 2 }, async (_, w) => {
      const own = random.fork();
      for (let i = 0; writing && i < 20_000 && Date.now() < writersUntil; i++) {
        const key = own.pick(keys);
        await faas.kvs.put(key, Lww.write(clock, { seq: ++seq, w }));
        writes.get(key)!.push(Date.now());
        if (i % 4 === 3) await sleep(1);
      }
    });

    const results: { result: RunResult; startMs: number; endMs: number; functions: number }[] = [];
    let failures = 0;
    try {
      await readerLoops(RUNS_PER_MODE, async () => {
        const shape = random.pick(SHAPES);
        // Up to three keys for the whole run, so that its functions re-read each other's keys.
        const hot = subset(random, keys, KEYS).slice(0, 3);
        const reads: Record<string, string[]> = {};
        const f1 = subset(random, hot, 3);
        reads['cs-f1'] = f1;
        if (shape.name === 'cs-diamond') {
          // Parallel branches: any of the run's keys, so both often read first a key f1 did not
          // read (see the header).
          reads['cs-f2'] = subset(random, hot, 2);
          reads['cs-f3'] = subset(random, hot, 2);
          reads['cs-f4'] = subset(random, hot, 3);
        } else for (const name of shape.functions.slice(1)) reads[name] = subset(random, hot, 2);
        const args: Record<string, unknown[]> = {};
        for (const name of shape.functions) args[name] = [ref(random.pick(locators)), reads[name]!, 3 + random.int(4)];
        const startMs = Date.now();
        try {
          const result = await faas.callDag<Record<string, unknown[]>, RunResult>(shape.name, args, { consistency: mode, timeoutMs: 10_000 });
          results.push({ result, startMs, endMs: Date.now(), functions: shape.functions.length });
        } catch (error) {
          failures++;
          console.error(`read-skew run (${mode}, ${shape.name}) failed: ${String(error)}`);
        }
      });
    } finally {
      writing = false;
      await Promise.all(writers);
    }

    const where = await placements(
      results.map((r) => r.result.run),
      new Map(results.map((r) => [r.result.run, r.functions])),
    );
    let anomalies = 0;
    let crossRuns = 0;
    let exposed = 0;
    for (const { result, startMs, endMs } of results) {
      const ran = where.get(result.run) ?? new Map<string, number>();
      if (new Set(ran.values()).size > 1) crossRuns++;
      /** key -> (seq values seen, executors that read it). */
      const seen = new Map<string, { values: Set<number>; executors: Set<number> }>();
      for (const [fn, list] of Object.entries(result.reads)) {
        for (const [key, values] of list) {
          let entry = seen.get(key);
          if (entry === undefined) seen.set(key, (entry = { values: new Set(), executors: new Set() }));
          for (const value of values) entry.values.add(value);
          const executor = ran.get(fn);
          if (executor !== undefined) entry.executors.add(executor);
        }
      }
      for (const [key, entry] of seen) {
        if (entry.values.size > 1) anomalies++;
        if (entry.executors.size > 1 && writes.get(key)!.some((at) => at >= startMs && at <= endMs)) exposed++;
      }
    }
    tallies.push({ mode, workload: 'read-skew', runs: results.length, crossRuns, exposed, anomalies, failures });
    expect(failures).toBe(0);
    expect(results.length).toBe(RUNS_PER_MODE);
    // The workload could show the anomaly: runs crossed executors, and keys they re-read on two
    // executors were written while they ran.
    expect(crossRuns, placementDiagnosis()).toBeGreaterThan(RUNS_PER_MODE / 4);
    expect(exposed).toBeGreaterThan(0);
    if (mode === 'repeatable-read') expect(anomalies).toBe(0);
  }, 60_000);

  it.each<Consistency>(['causal', 'lww'])('causality violations under %s', async (mode) => {
    const a = `cause:${mode}:a`;
    const b = `cause:${mode}:b`;
    // The writes go to the executor whose pushes are on time (placement follows the cached
    // locator): the delayed one learns them 1.5 s late, unless it wrote them itself.
    const delayed = cluster.executors.findIndex((executor) => executor.stderr.some((line) => line.includes('--push-delay-ms')));
    expect(delayed, 'the delayed executor said so at start').toBeGreaterThanOrEqual(0);
    const near = ref(locators[1 - delayed]!);
    await faas.call('cs-writer', [a, b, 0, near], { consistency: mode });

    // One writer loop (so a's seq grows in causal order), calling the writer function on
    // whichever executor it lands (bounded in count and time).
    let writing = true;
    let written = 0;
    const writersUntil = Date.now() + 30_000;
    let writerFailures = 0;
    const writer = (async () => {
      for (let n = 1; writing && n <= 20_000 && Date.now() < writersUntil; n++) {
        try {
          await faas.call('cs-writer', [a, b, n, near], { consistency: mode, timeoutMs: 10_000 });
          written = n;
        } catch (error) {
          writerFailures++;
          console.error(`writer (${mode}) failed: ${String(error)}`);
        }
      }
    })();

    const results: { result: RunResult; functions: number; last: string }[] = [];
    let failures = 0;
    try {
      await readerLoops(CAUSAL_RUNS_PER_MODE, async () => {
        const shape = random.pick(CAUSAL_SHAPES);
        const last = shape.functions[shape.functions.length - 1]!;
        // b in the first function, a in the last one, each as soon as it runs.
        const args: Record<string, unknown[]> = {};
        for (const name of shape.functions) args[name] = [ref(random.pick(locators)), name === 'cs-f1' ? [b] : name === last ? [a] : [], 0];
        try {
          const result = await faas.callDag<Record<string, unknown[]>, RunResult>(shape.name, args, { consistency: mode, timeoutMs: 10_000 });
          results.push({ result, functions: shape.functions.length, last });
        } catch (error) {
          failures++;
          console.error(`causal run (${mode}, ${shape.name}) failed: ${String(error)}`);
        }
      });
    } finally {
      writing = false;
      await writer;
    }

    const where = await placements(
      results.map((r) => r.result.run),
      new Map(results.map((r) => [r.result.run, r.functions])),
    );
    let anomalies = 0;
    let crossRuns = 0;
    let exposed = 0;
    const seenB = new Set<number>();
    for (const { result, last } of results) {
      const ran = where.get(result.run) ?? new Map<string, number>();
      if (new Set(ran.values()).size > 1) crossRuns++;
      // b read on one executor, a on the other.
      if (ran.has('cs-f1') && ran.has(last) && ran.get('cs-f1') !== ran.get(last)) exposed++;
      const all = Object.values(result.reads).flat();
      const nb = Math.max(-1, ...all.filter(([key]) => key === b).flatMap(([, values]) => values));
      const na = Math.max(-1, ...all.filter(([key]) => key === a).flatMap(([, values]) => values));
      seenB.add(nb);
      if (na < nb) anomalies++;
    }
    tallies.push({ mode, workload: 'causality', runs: results.length, crossRuns, exposed, anomalies, failures });
    expect(failures + writerFailures).toBe(0);
    expect(results.length).toBe(CAUSAL_RUNS_PER_MODE);
    // Enough runs crossed executors for the anomaly count to mean something. Placement follows the
    // executors' cache reports, which lag on a loaded machine: 71 of 300 crossed once at load 9
    // (with benchmarks beside the suite), 170-197 of 300 in a CI run; an eighth still exercises the path.
    expect(crossRuns, placementDiagnosis()).toBeGreaterThan(CAUSAL_RUNS_PER_MODE / 8);
    expect(exposed).toBeGreaterThan(0);
    // The writer made progress while the readers ran: they saw many different b's.
    expect(written).toBeGreaterThan(10);
    expect(seenB.size).toBeGreaterThan(10);
    // lww shows the anomaly (the late executor's cache holds an older a than the b read on the
    // other): the workload can tell the modes apart. causal must not.
    if (mode === 'lww') expect(anomalies, 'lww never read a stale a: the test could not tell causal from lww').toBeGreaterThan(0);
    if (mode === 'causal') {
      expect(anomalies).toBe(0);
      // What the writer left: b's versions depend on a's, a is at least as new as they need.
      const stored = await faas.kvs.getAll(b);
      expect(stored).toBeInstanceOf(MultiKeyCausal);
      const needA = (stored as MultiKeyCausal).dependencies().get(a);
      expect(needA, 'b depends on a').toBeDefined();
      const storedA = await faas.kvs.getAll(a);
      expect(storedA).toBeInstanceOf(MultiKeyCausal);
      expect(needA!.leq((storedA as MultiKeyCausal).clock)).toBe(true);
    }
  }, 60_000);
});
