/**
 * `concurrency` (McGrath & Brenner's concurrency test): a no-op function with 1 to 15 calls in
 * flight, 10 s per level (2 s with --quick), executions per second per level; plus the DAG
 * `square(increment(x))` at 1, 4, 8 and 15 in flight, on our cluster at the default isolation
 * (sandbox processes; the level is in the rows). Peers in the same run, level by level: the same
 * cluster with `--isolation none` (the old thread runtime, a labelled baseline), the raw zeromq
 * echo (the physical limit of one round trip) and Restate's no-op handler and its handler that
 * calls two others. Client, clusters and peers share the 2 cores: each row gives the client's and
 * the servers' CPU use (the executors' with their sandbox processes).
 */
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop } from './harness/load.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { publish } from './harness/report.js';
import type { PlotSpec, Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { REFERENCE, plotLabel } from './compose.js';
import { SANDBOX_SYSTEM, THREADS_SYSTEM, failureNotes, measure, startFaasSystems } from './faas-systems.js';

const LEVELS = Array.from({ length: 15 }, (_, i) => i + 1);
const DAG_LEVELS = new Set([1, 4, 8, 15]);
/** The servers' process trees are read this often during a level: sandbox processes started and ended within it count (all systems alike). */
const CPU_SAMPLE_MS = 100;

export const concurrencyBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const levelMs = options.quick ? 2000 : 10_000;
  const notes: string[] = [
    'local cluster: routing node, 1 storage node, 1 scheduler, 2 executors (--workers 4 as `lfaas up` starts them; --prewarm 4: 4 stems each, where `lfaas up` now starts 2) on 127.0.0.1; two such clusters run (default isolation, and --isolation none); the load generator is this process; everything shares the 2 cores',
    `server CPU (serverCores) is the scheduler's and the executors' with their descendants (sandbox processes, bubblewrap), read from /proc at the start and end of each level and every ${CPU_SAMPLE_MS} ms in between (a sandbox process started and ended within a level counts up to its last sample; the reads run in the load generator for every system alike); runtimesStarted and coldStarts (calls that loaded their function first) are the executors' pool counters over the level (their metrics endpoints, read around it); failed: calls that failed (perSecond counts them)`,
    `each level runs ${levelMs / 1000} s per system, systems alternating within the level`,
    `reference (original systems, this kind of machine): Cloudburst ${REFERENCE.cloudburst.noopPerSecond8.join('-')} calls/s (one function) and ${REFERENCE.cloudburst.composePerSecond8.join('-')} DAGs/s (two functions) at 8 in flight; Restate 1.7 ${REFERENCE.restate17.perSecond15.join('-')} calls/s at 15 in flight; raw echo ~37 k/s at 15 in flight`,
  ];
  const started = await startFaasSystems(notes);
  const rows: Row[] = [];
  try {
    const systems = started.systems.map((system) => ({ ...system, dag: system.test === 'square(increment(x))' }));
    for (const item of systems) await closedLoop(item.run, { inFlight: 4, durationMs: 1000, maxOperations: 2000 });
    for (const inFlight of LEVELS) {
      for (const item of systems) {
        if (item.dag && !DAG_LEVELS.has(inFlight)) continue;
        const { result: load, cores, failed, pool } = await measure(item, () => closedLoop(item.run, { inFlight, durationMs: levelMs, maxOperations: 10_000_000 }), { sampleEveryMs: CPU_SAMPLE_MS });
        const latency = summarise(load.latenciesMs);
        rows.push({ system: item.system, test: item.test, ...(item.isolation === undefined ? {} : { isolation: item.isolation }), inFlight, perSecond: load.perSecond, failed, p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, clientCores: load.cpuCores, serverCores: cores, ...(pool ?? {}) });
      }
    }
    notes.push(...failureNotes(systems));
  } finally {
    await started.stop();
  }
  const rate = (system: string, test: string, inFlight: number): number | undefined => {
    const row = rows.find((candidate) => candidate['system'] === system && candidate['test'] === test && candidate['inFlight'] === inFlight);
    return row === undefined ? undefined : Number(row['perSecond']);
  };
  const ratios: Record<string, number> = {};
  const targets: Target[] = [];
  const noop8 = rate(SANDBOX_SYSTEM, 'noop call', 8)!;
  const dag8 = rate(SANDBOX_SYSTEM, 'square(increment(x))', 8)!;
  ratios['noop_8inflight_ours_over_cloudburst_reference'] = noop8 / REFERENCE.cloudburst.noopPerSecond8[1];
  ratios['compose_8inflight_ours_over_cloudburst_reference'] = dag8 / REFERENCE.cloudburst.composePerSecond8[1];
  for (const inFlight of [1, 8, 15]) {
    const echoRate = rate('raw zeromq echo', 'round trip', inFlight);
    if (echoRate !== undefined) ratios[`noop_${inFlight}inflight_ours_over_raw_echo`] = rate(SANDBOX_SYSTEM, 'noop call', inFlight)! / echoRate;
    const restateNoop = rate('restate', 'noop call', inFlight);
    if (restateNoop !== undefined) ratios[`noop_${inFlight}inflight_ours_over_restate`] = rate(SANDBOX_SYSTEM, 'noop call', inFlight)! / restateNoop;
    const restateDag = rate('restate', 'square(increment(x))', inFlight);
    if (restateDag !== undefined) ratios[`compose_${inFlight}inflight_ours_over_restate`] = rate(SANDBOX_SYSTEM, 'square(increment(x))', inFlight)! / restateDag;
  }
  ratios['noop_rate8_sandbox_over_threads'] = noop8 / rate(THREADS_SYSTEM, 'noop call', 8)!;
  ratios['compose_rate8_sandbox_over_threads'] = dag8 / rate(THREADS_SYSTEM, 'square(increment(x))', 8)!;
  targets.push({ name: 'no-op calls/s at 8 in flight', target: '>= 6500', value: noop8, met: noop8 >= 6500 });
  targets.push({ name: 'compose DAGs/s at 8 in flight', target: '>= 4000', value: dag8, met: dag8 >= 4000 });
  for (const [name, ratio] of Object.entries(ratios).filter(([name]) => name.includes('restate'))) targets.push({ name: `${name} (x)`, target: '>= 10', value: ratio, met: ratio >= 10 });
  // The sandbox against the thread runtime it replaces (value: the measured ratio sandbox / threads, executions per second).
  for (const [test, ratio] of [['no-op calls/s', ratios['noop_rate8_sandbox_over_threads']!], ['f(g(x)) DAGs/s', ratios['compose_rate8_sandbox_over_threads']!]] as const) {
    targets.push({ name: `concurrency at 8 in flight >= 0.8x the thread runtime (${test})`, target: '>= 0.8 (x)', value: ratio, met: ratio >= 0.8 });
  }
  notes.push(machineLoad.summary());
  await publish('concurrency', options, {
    rows,
    ratios,
    targets,
    notes,
    plot: concurrencyPlot(rows),
  });
};

/** The plot of the concurrency rows: executions per second by calls in flight, a line per system and test. */
export function concurrencyPlot(rows: readonly Row[]): PlotSpec {
  return {
    rows: rows.map((row) => ({ ...row, series: `${plotLabel(row)}: ${row['test']}` })),
    spec: {
      title: 'concurrency: executions per second by calls in flight',
      width: 480,
      height: 280,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'inFlight', type: 'quantitative', title: 'calls in flight' },
        y: { field: 'perSecond', type: 'quantitative', scale: { type: 'log' }, title: 'executions / s (log)' },
        color: { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 520 } },
      },
    },
  };
}
