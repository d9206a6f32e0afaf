/**
 * `concurrency` (McGrath & Brenner's concurrency test): a no-op function with 1 to 15 calls in
 * flight, 10 s per level (2 s with --quick), executions per second per level; plus the DAG
 * `square(increment(x))` at 1, 4, 8 and 15 in flight. Peers in the same run, level by level: the
 * raw zeromq echo (the physical limit of one round trip) and Restate's no-op handler and its
 * handler that calls two others. Client, cluster and peers share the 2 cores: each row gives the
 * client's and the servers' CPU use.
 */
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop } from './harness/load.js';
import type { LoadResult } from './harness/load.js';
import { withProcessCpu } from './harness/process-cpu.js';
import { publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { REFERENCE } from './compose.js';
import { startFaasSystems } from './faas-systems.js';

const LEVELS = Array.from({ length: 15 }, (_, i) => i + 1);
const DAG_LEVELS = new Set([1, 4, 8, 15]);

export const concurrencyBenchmark: Benchmark = async (options) => {
  const levelMs = options.quick ? 2000 : 10_000;
  const notes: string[] = [
    'local cluster: routing node, 1 storage node, 1 scheduler, 2 executors (4 runtime workers each, as `lfaas up` starts them) on 127.0.0.1; the load generator is this process; everything shares the 2 cores',
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
        const { result, cores } = await withProcessCpu(item.pids, () => closedLoop(item.run, { inFlight, durationMs: levelMs, maxOperations: 10_000_000 }));
        const load = result as LoadResult;
        const latency = summarise(load.latenciesMs);
        rows.push({ system: item.system, test: item.test, inFlight, perSecond: load.perSecond, p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, clientCores: load.cpuCores, serverCores: cores });
      }
    }
  } finally {
    await started.stop();
  }
  const rate = (system: string, test: string, inFlight: number): number | undefined => {
    const row = rows.find((candidate) => candidate['system'] === system && candidate['test'] === test && candidate['inFlight'] === inFlight);
    return row === undefined ? undefined : Number(row['perSecond']);
  };
  const ratios: Record<string, number> = {};
  const targets: Target[] = [];
  const noop8 = rate('lattice-faas', 'noop call', 8)!;
  const dag8 = rate('lattice-faas', 'square(increment(x))', 8)!;
  ratios['noop_8inflight_ours_over_cloudburst_reference'] = noop8 / REFERENCE.cloudburst.noopPerSecond8[1];
  ratios['compose_8inflight_ours_over_cloudburst_reference'] = dag8 / REFERENCE.cloudburst.composePerSecond8[1];
  for (const inFlight of [1, 8, 15]) {
    const echoRate = rate('raw zeromq echo', 'round trip', inFlight);
    if (echoRate !== undefined) ratios[`noop_${inFlight}inflight_ours_over_raw_echo`] = rate('lattice-faas', 'noop call', inFlight)! / echoRate;
    const restateNoop = rate('restate', 'noop call', inFlight);
    if (restateNoop !== undefined) ratios[`noop_${inFlight}inflight_ours_over_restate`] = rate('lattice-faas', 'noop call', inFlight)! / restateNoop;
    const restateDag = rate('restate', 'square(increment(x))', inFlight);
    if (restateDag !== undefined) ratios[`compose_${inFlight}inflight_ours_over_restate`] = rate('lattice-faas', 'square(increment(x))', inFlight)! / restateDag;
  }
  targets.push({ name: 'no-op calls/s at 8 in flight', target: '>= 6500', value: noop8, met: noop8 >= 6500 });
  targets.push({ name: 'compose DAGs/s at 8 in flight', target: '>= 4000', value: dag8, met: dag8 >= 4000 });
  for (const [name, ratio] of Object.entries(ratios).filter(([name]) => name.includes('restate'))) targets.push({ name: `${name} (x)`, target: '>= 10', value: ratio, met: ratio >= 10 });
  await publish('concurrency', options, {
    rows,
    ratios,
    targets,
    notes,
    plot: {
      rows: rows.map((row) => ({ ...row, series: `${row['system']}: ${row['test']}` })),
      spec: {
        title: 'concurrency: executions per second by calls in flight',
        width: 480,
        height: 280,
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'inFlight', type: 'quantitative', title: 'calls in flight' },
          y: { field: 'perSecond', type: 'quantitative', scale: { type: 'log' }, title: 'executions / s (log)' },
          color: { field: 'series', type: 'nominal', title: null },
        },
      },
    },
  });
};
