/**
 * `coldstart`: the latency of one call in each state of its runtime, many samples each, with the
 * executor's split of a cold start by stage; a 3-function DAG called cold with prewarm on and
 * off; a function reading 10 `ref` keys of 64 KiB with prefetch on and off. Lanes (bench/lanes.ts):
 * one storage node, and per lane a scheduler and an executor of its own, started with the lane's
 * flags; every scheduler runs with --pin-executors 0 (registration prepares nothing: a function's
 * first call is cold).
 *
 * States of a single call (a function of its own owner, registered just before):
 * - cold: no runtime at all (lane `cold`: --prewarm 0 --stem-target-max 0): a sandbox process is
 *   started, the code read from the KVS and evaluated, then the call runs;
 * - stem: a stem cell waits (lane `on`: the default 2 stems, refilled between samples): it is
 *   bound to the owner and specialised (code read from the KVS, evaluated), then the call runs;
 * - warm: the function's runtime is loaded (the same function called again and again).
 * DAG a -> b -> c (each step `STEP_MS` of CPU work, a namespace of its own per sample): called
 * once cold in lane `on` (prewarm: b and c are specialised while a runs) and in lane `off`
 * (--no-dag-prewarm --no-prefetch: each trigger finds no runtime), against the same DAG warm.
 */
import type { LatticeFaas } from '../client/index.js';
import { HybridClock, Lww, dag, ref } from '../client/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { metricsDelta, startLanes } from './lanes.js';
import type { Lane } from './lanes.js';

const STEP_MS = 10;
const STAGES = ['code_fetch', 'runtime', 'evaluate', 'first_call'] as const;
const STAGE_SERIES = STAGES.map((stage) => `lfaas_executor_cold_start_seconds_total{stage="${stage}"}`);
const COLD = 'lfaas_executor_pool_cold_starts_total';
const WARM = 'lfaas_executor_pool_warm_starts_total';
const SPAWNED = 'lfaas_executor_pool_runtimes_started_total';
const PREFETCH_USED = 'lfaas_executor_prefetch_used_total';

const stepCode = (ms: number): string => `module.exports = (x) => { const end = Date.now() + ${ms}; while (Date.now() < end) {} return x + 1; };`;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Sample {
  readonly ms: number;
  readonly stages: Record<string, number>;
  readonly cold: number;
  readonly spawned: number;
}

/** One call measured, with the executor's counters around it (the only call in flight on that lane). */
async function measured(lane: Lane, call: () => Promise<unknown>): Promise<Sample> {
  const before = await lane.metrics();
  const started = performance.now();
  await call();
  const ms = performance.now() - started;
  const after = await lane.metrics();
  const delta = metricsDelta(after, before, [...STAGE_SERIES, COLD, WARM, SPAWNED]);
  return { ms, stages: Object.fromEntries(STAGES.map((stage, i) => [stage, (delta[STAGE_SERIES[i]!] ?? 0) * 1000])), cold: delta[COLD] ?? 0, spawned: delta[SPAWNED] ?? 0 };
}

function p50(values: readonly number[]): number {
  return summarise(values).p50Ms;
}

function stateRow(state: string, lane: string, samples: readonly Sample[], extra: Row = {}): Row {
  const summary = summarise(samples.map((sample) => sample.ms));
  const row: Row = { state, lane, samples: summary.count, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms };
  for (const stage of STAGES) row[`${stage}P50Ms`] = p50(samples.map((sample) => sample.stages[stage] ?? 0));
  row['coldStartsPerCall'] = samples.reduce((sum, sample) => sum + sample.cold, 0) / Math.max(1, samples.length);
  row['runtimesStartedPerCall'] = samples.reduce((sum, sample) => sum + sample.spawned, 0) / Math.max(1, samples.length);
  return { ...row, ...extra };
}

async function registerChain(faas: LatticeFaas, namespace: string, stepMs: number): Promise<string> {
  const options = { timeoutMs: 10_000, keepAliveMs: 5000 };
  const a = await faas.register(`${namespace}/a`, { code: stepCode(stepMs) }, options);
  const b = await faas.register(`${namespace}/b`, { code: stepCode(stepMs) }, options);
  const c = await faas.register(`${namespace}/c`, { code: stepCode(stepMs) }, options);
  const handle = await faas.registerDag(dag(`${namespace}-chain`).fn(a).fn(b, [a.name]).fn(c, [b.name]).build());
  return handle.name;
}

export const coldstartBenchmark: Benchmark = async (options) => {
  const singles = options.quick ? 8 : 30;
  const warmCalls = options.quick ? 100 : 500;
  const dagRounds = options.quick ? 5 : 15;
  const prefetchRounds = options.quick ? 8 : 25;
  // Time for a lane's stems to be refilled, and the previous sample's processes to settle.
  const settleMs = 700;
  const started = await startLanes(
    [
      { name: 'on', executorArgs: ['--prewarm', '2', '--metrics-port', '0'] },
      { name: 'off', executorArgs: ['--prewarm', '2', '--no-dag-prewarm', '--no-prefetch', '--metrics-port', '0'] },
      { name: 'cold', executorArgs: ['--prewarm', '0', '--stem-target-max', '0', '--metrics-port', '0'] },
    ],
    { workers: 8, schedulerArgs: ['--pin-executors', '0'] },
  );
  const [on, off, cold] = started.lanes as [Lane, Lane, Lane];
  const rows: Row[] = [];
  try {
    const faas = on.faas;
    // Warm: one function called again and again.
    const warmFn = await faas.register('cs-warm', { code: 'module.exports = (x) => x;' }, { timeoutMs: 10_000 });
    for (let i = 0; i < 200; i++) await on.faas.call(warmFn, [i]);
    const warm: Sample[] = [];
    for (let i = 0; i < warmCalls; i++) {
      const t = performance.now();
      await on.faas.call(warmFn, [i]);
      warm.push({ ms: performance.now() - t, stages: {}, cold: 0, spawned: 0 });
    }
    // Stem and cold: a fresh function (its own owner) per sample, alternating lanes.
    const stem: Sample[] = [];
    const none: Sample[] = [];
    for (let i = 0; i < singles; i++) {
      for (const [lane, into, tag] of [[on, stem, 'stem'], [cold, none, 'cold']] as const) {
        const fn = await faas.register(`cs-${tag}-${i}`, { code: 'module.exports = (x) => x;' }, { timeoutMs: 10_000, keepAliveMs: 2000 });
        await sleep(settleMs);
        into.push(await measured(lane, () => lane.faas.call(fn, [i])));
      }
    }
    rows.push(stateRow('cold (no runtime)', cold.name, none), stateRow('stem cell', on.name, stem), stateRow('warm', on.name, warm));

    // DAG: cold with prewarm on and off, and warm.
    const clock = new HybridClock('coldstart-bench', () => Date.now());
    const dagCold: Record<'on' | 'off', Sample[]> = { on: [], off: [] };
    for (let round = 0; round < dagRounds; round++) {
      for (const lane of [on, off]) {
        const name = await registerChain(faas, `csd${lane.name}${round}`, STEP_MS);
        await sleep(settleMs);
        dagCold[lane.name as 'on' | 'off'].push(await measured(lane, () => lane.faas.callDag(name, { [`csd${lane.name}${round}/a`]: [1] } as never)));
      }
    }
    const warmDagName = await registerChain(faas, 'cswarm', STEP_MS);
    for (let i = 0; i < 30; i++) await on.faas.callDag(warmDagName, { 'cswarm/a': [1] } as never);
    const dagWarm: Sample[] = [];
    for (let i = 0; i < dagRounds * 4; i++) dagWarm.push(await measured(on, () => on.faas.callDag(warmDagName, { 'cswarm/a': [1] } as never)));
    rows.push(
      stateRow(`DAG a->b->c (${STEP_MS} ms steps) cold, prewarm on`, on.name, dagCold.on),
      stateRow(`DAG a->b->c (${STEP_MS} ms steps) cold, prewarm off`, off.name, dagCold.off),
      stateRow(`DAG a->b->c (${STEP_MS} ms steps) warm`, on.name, dagWarm),
    );

    // Prefetch: a warm function reading 10 ref keys of 64 KiB, fresh keys per call (not cached).
    const sum = await faas.register('cs-sum10', { code: "module.exports = (...args) => args.filter((a) => typeof a === 'string').reduce((n, s) => n + s.length, 0);" }, { timeoutMs: 10_000 });
    const blob = 'x'.repeat(64 * 1024);
    const writeKeys = async (prefix: string): Promise<string[]> => {
      const keys = Array.from({ length: 10 }, (_, k) => `${prefix}/${k}`);
      await Promise.all(keys.map((key) => faas.kvs.put(key, Lww.write(clock, blob), { ack: 'replicated' })));
      return keys;
    };
    for (const lane of [on, off]) for (let i = 0; i < 5; i++) await lane.faas.call(sum, (await writeKeys(`cs-pf-warmup/${lane.name}/${i}`)).map((key) => ref(key)) as never);
    const prefetch: Record<'on' | 'off', Sample[]> = { on: [], off: [] };
    let used = 0;
    for (let round = 0; round < prefetchRounds; round++) {
      for (const lane of [on, off]) {
        const keys = await writeKeys(`cs-pf/${lane.name}/${round}`);
        const before = lane === on ? (await on.metrics()).get(PREFETCH_USED) ?? 0 : 0;
        prefetch[lane.name as 'on' | 'off'].push(await measured(lane, () => lane.faas.call(sum, keys.map((key) => ref(key)) as never)));
        if (lane === on) used += ((await on.metrics()).get(PREFETCH_USED) ?? 0) - before;
      }
    }
    rows.push(
      stateRow('10 refs x 64 KiB, prefetch on', on.name, prefetch.on, { prefetchedKeysUsedPerCall: used / prefetchRounds }),
      stateRow('10 refs x 64 KiB, prefetch off', off.name, prefetch.off),
    );

    const p = (samples: readonly Sample[]): number => p50(samples.map((sample) => sample.ms));
    // From the stem handed the function to its first result: the pool's evaluate and first-call stages.
    const stemToResult = p50(stem.map((sample) => (sample.stages['evaluate'] ?? 0) + (sample.stages['first_call'] ?? 0)));
    const ratios = {
      stem_to_first_result_p50_ms: stemToResult,
      cold_over_warm: p(none) / p(warm),
      stem_over_warm: p(stem) / p(warm),
      dag_cold_prewarm_over_warm: p(dagCold.on) / p(dagWarm),
      dag_cold_no_prewarm_over_warm: p(dagCold.off) / p(dagWarm),
      dag_cold_prewarm_over_no_prewarm: p(dagCold.on) / p(dagCold.off),
      prefetch_on_over_off: p(prefetch.on) / p(prefetch.off),
    };
    const targets: Target[] = [
      { name: 'stem cell to first result, p50 (ms: the stem handed the function until its first result; the call end to end is the stem row\'s p50)', target: '<= 5', value: stemToResult, met: stemToResult <= 5 },
      { name: `cold 3-function DAG with prewarm / warm DAG (p50, ${STEP_MS} ms steps)`, target: '<= 1.5', value: ratios.dag_cold_prewarm_over_warm, met: ratios.dag_cold_prewarm_over_warm <= 1.5 },
    ];
    const notes = [
      `lanes: one storage node (1 shard) shared; per lane a scheduler (--pin-executors 0) and an executor (--workers 8) at isolation ${started.isolation}: on (--prewarm 2), off (--prewarm 2 --no-dag-prewarm --no-prefetch), cold (--prewarm 0 --stem-target-max 0); all processes on 127.0.0.1 sharing the 2 cores with the client`,
      `each cold, stem and DAG sample registers fresh functions (their own owner, so no sandbox process of an earlier sample serves them), waits ${settleMs} ms (stems refilled), and makes one call; the first call of a function goes through the scheduler; stage times are the executor's counters (lfaas_executor_cold_start_seconds_total{stage}) read around the one call: code_fetch (the function's record read from the KVS), runtime (a sandbox process started until ready; 0 when a stem was taken), evaluate (the bundle evaluated in the runtime), first_call (the call itself in the new realm)`,
      `the DAG's steps each do ${STEP_MS} ms of CPU work; prewarm overlaps b's and c's specialisation with a's run; the root's cold start cannot be hidden`,
      'prefetch: the function is warm and the 10 keys are new (not in the cache) at each call; with prefetch the executor reads all 10 when the run is scheduled, at once; without, the run reads them one after the other',
      'seed papers: McGrath and Brenner (ICDCSW 2017) keep containers 15 minutes and measure cold starts of seconds (Windows containers); "Serverless performance on a budget" and van Eyk and Iosup argue for stem-cell pools and prewarming along workflows; Cloudburst (VLDB 2020) reports no cold starts (its executors keep every function loaded)',
    ];
    await publish('coldstart', options, {
      rows,
      ratios,
      targets,
      notes,
      plot: {
        rows: rows.map((row) => ({ state: row['state']!, p50Ms: row['p50Ms']!, p99Ms: row['p99Ms']! })),
        spec: {
          title: 'coldstart: one call per runtime state, DAG prewarm and prefetch (p50 bar, p99 tick)',
          width: 460,
          height: 300,
          layer: [
            { mark: 'bar', encoding: { y: { field: 'state', type: 'nominal', sort: null, title: null }, x: { field: 'p50Ms', type: 'quantitative', title: 'latency (ms, log)', scale: { type: 'log' } } } },
            { mark: { type: 'tick', color: 'black' }, encoding: { y: { field: 'state', type: 'nominal', sort: null }, x: { field: 'p99Ms', type: 'quantitative' } } },
          ],
        },
      },
    });
  } finally {
    await started.stop();
  }
};
