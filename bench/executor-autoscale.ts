/**
 * `executor-autoscale` (the experiment of the Cloudburst paper's autoscaling figure): a step in
 * load on one function, and the cluster's answer. Two clusters of the same starting size run one
 * after the other in the same run: `lfaas up` with one executor (fixed), and `lfaas up
 * --autoscale` starting from one executor (at most 4). The function waits 20 ms (I/O-like work:
 * an executor's 4 runtime slots bound its throughput, not the 2 cores). Load: 2 calls in flight,
 * then a step to 24, then 2 again. Per second: completed calls, p99, executors the scheduler
 * knows; per phase: throughput, p50 and p99; the time from the step to the first second whose p99
 * is back under the objective (100 ms), and to the first executor added.
 */
import { rmSync } from 'node:fs';
import { LatticeFaas } from '../client/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { waitForExit } from './harness/child-process.js';
import { monitorEventsOf, startUp } from './harness/lfaas-up.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { publish } from './harness/report.js';
import type { PlotSpec, Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';

const OBJECTIVE_MS = 100;
const FIXED = 'fixed: 1 executor';
const AUTO = 'autoscale: 1 to 4 executors';

interface Sample {
  readonly endMs: number;
  readonly latencyMs: number;
  readonly ok: boolean;
}

interface Phase {
  readonly name: string;
  readonly inFlight: number;
  readonly durationMs: number;
}

async function executorsKnown(metrics: string): Promise<number> {
  try {
    const text = await (await fetch(metrics)).text();
    // Not lfaas_scheduler_executors_lost_total and the like: the gauge itself.
    const line = text.split('\n').find((candidate) => /^lfaas_scheduler_executors[{ ]/.test(candidate));
    return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
  } catch {
    return 0;
  }
}

/** Runs the phases on one cluster; every call's end and latency, and the executor count each 500 ms. */
async function runPhases(system: string, phases: readonly Phase[], extra: readonly string[]): Promise<{ samples: Sample[]; executors: { atMs: number; count: number }[]; phaseStarts: number[]; startMs: number; notes: string[] }> {
  const up = await startUp(['--nodes', '1', '--replication', '1', '--shards', '1', '--executors', '1', ...extra]);
  const clients: LatticeFaas[] = [];
  const samples: Sample[] = [];
  const executors: { atMs: number; count: number }[] = [];
  const notes: string[] = [];
  try {
    for (let i = 0; i < 4; i++) clients.push(await LatticeFaas.connect({ routing: [up.routing], schedulers: up.schedulers, token: up.token, capacityRetries: 20 }));
    await clients[0]!.register('step-work', { code: 'module.exports = async () => { await new Promise((resolve) => setTimeout(resolve, 20)); return 1; };' }, { timeoutMs: 10_000 });
    for (let i = 0; i < 20; i++) await clients[0]!.call('step-work', []);
    const startMs = performance.now();
    let sampling = true;
    const sampler = (async () => {
      for (let i = 0; sampling && i < 100_000; i++) {
        executors.push({ atMs: performance.now() - startMs, count: await executorsKnown(up.metrics) });
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    const phaseStarts: number[] = [];
    for (const phase of phases) {
      phaseStarts.push(performance.now() - startMs);
      const until = performance.now() + phase.durationMs;
      await Promise.all(
        Array.from({ length: phase.inFlight }, async (_, n) => {
          const client = clients[n % clients.length]!;
          for (let i = 0; performance.now() < until && i < 1_000_000; i++) {
            const began = performance.now();
            const ok = await client.call('step-work', []).then(
              () => true,
              () => false,
            );
            const end = performance.now();
            samples.push({ endMs: end - startMs, latencyMs: end - began, ok });
          }
        }),
      );
    }
    sampling = false;
    await sampler;
    const described = monitorEventsOf(up).map(
      (event) =>
        `${((event.atMs - Date.now() + (performance.now() - startMs)) / 1000).toFixed(1)} s: ${event.kind}${event.action === undefined ? '' : ` ${event.action} ${event.role}`} (${event.reason})`
    );
    notes.push(`${system}: ${described.length === 0 ? 'no monitor events' : `monitor events (s from the start of the load): ${described.join('; ')}`}`);
    return { samples, executors, phaseStarts, startMs, notes };
  } finally {
    for (const client of clients) await client.close().catch(() => undefined);
    up.child.kill('SIGTERM');
    await waitForExit(up.child, 30_000);
    rmSync(up.data, { recursive: true, force: true });
  }
}

export const executorAutoscaleBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const scale = options.quick ? 0.5 : 1;
  const phases: Phase[] = [
    { name: 'before (2 in flight)', inFlight: 2, durationMs: 5000 * scale },
    { name: 'step (24 in flight)', inFlight: 24, durationMs: 24_000 * scale },
    { name: 'after (2 in flight)', inFlight: 2, durationMs: 16_000 * scale },
  ];
  const autoscaleArgs = ['--autoscale', '--min-executors', '1', '--max-executors', '4', '--scale-up-after-ms', '1000', '--scale-down-after-ms', '5000', '--scale-grace-ms', '2000', '--monitor-period-ms', '500'];
  const notes: string[] = [
    'two clusters, one after the other: lfaas up with 1 storage node and 1 executor (--workers 4), and the same with --autoscale (executors 1 to 4; a scale-up after utilisation >= 0.7 held 1 s, a scale-down after <= 0.2 held 5 s, 2 s grace after each action, the monitor looking every 500 ms)',
    `the function waits 20 ms; load: ${phases.map((phase) => `${phase.name} for ${phase.durationMs / 1000} s`).join(', ')}; the SDK retries calls refused SCHED_NO_CAPACITY after the hint (20 times at most)`,
    `objective: p99 of each second <= ${OBJECTIVE_MS} ms; time to recover: from the step to the first second back under it, staying under it for the next second too`,
    'Cloudburst (VLDB 2020) runs this experiment with its own monitor; its figure is not reproduced here (no numbers to quote beside ours)',
  ];
  const rows: Row[] = [];
  const timeline: Row[] = [];
  const ratios: Record<string, number> = {};
  const targets: Target[] = [];
  const recovery: Record<string, number | undefined> = {};
  for (const [system, extra] of [
    [FIXED, []],
    [AUTO, autoscaleArgs],
  ] as const) {
    const run = await runPhases(system, phases, extra);
    notes.push(...run.notes);
    phases.forEach((phase, i) => {
      const from = run.phaseStarts[i]!;
      const to = run.phaseStarts[i + 1] ?? Number.POSITIVE_INFINITY;
      const inPhase = run.samples.filter((sample) => sample.endMs >= from && sample.endMs < to);
      const latency = summarise(inPhase.map((sample) => sample.latencyMs));
      const spanS = (Math.min(to, Math.max(...run.samples.map((sample) => sample.endMs))) - from) / 1000;
      const most = Math.max(0, ...run.executors.filter((point) => point.atMs >= from && point.atMs < to).map((point) => point.count));
      rows.push({ system, phase: phase.name, calls: inPhase.length, failed: inPhase.filter((sample) => !sample.ok).length, perSecond: Math.round(inPhase.length / spanS), p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, executorsMost: most });
    });
    // Per second: throughput, p99, executors.
    const seconds = Math.ceil(Math.max(...run.samples.map((sample) => sample.endMs)) / 1000);
    const stepStart = run.phaseStarts[1]!;
    let recovered: number | undefined;
    let under = 0;
    for (let second = 0; second < seconds; second++) {
      const inSecond = run.samples.filter((sample) => sample.endMs >= second * 1000 && sample.endMs < (second + 1) * 1000);
      const p99 = summarise(inSecond.map((sample) => sample.latencyMs)).p99Ms;
      const count = run.executors.filter((point) => point.atMs < (second + 1) * 1000).at(-1)?.count ?? 0;
      timeline.push({ system, second, perSecond: inSecond.length, p99Ms: p99, executors: count });
      if ((second + 1) * 1000 > stepStart + 1000 && second * 1000 < run.phaseStarts[2]!) {
        under = p99 <= OBJECTIVE_MS ? under + 1 : 0;
        if (under === 2 && recovered === undefined) recovered = (second - 1) * 1000 - stepStart;
      }
    }
    recovery[system] = recovered;
    const firstAdded = run.executors.find((point) => point.atMs > stepStart && point.count > 1);
    if (system === AUTO) notes.push(`autoscale: first executor added ${firstAdded === undefined ? 'never' : `${((firstAdded.atMs - stepStart) / 1000).toFixed(1)} s after the step`}; p99 back under ${OBJECTIVE_MS} ms ${recovered === undefined ? 'never during the step' : `${(Math.max(0, recovered) / 1000).toFixed(1)} s after the step`}`);
    if (system === FIXED) notes.push(`fixed: p99 back under ${OBJECTIVE_MS} ms ${recovered === undefined ? 'never during the step' : `${(Math.max(0, recovered) / 1000).toFixed(1)} s after the step`}`);
  }
  const stepRow = (system: string): Row => rows.find((row) => row['system'] === system && String(row['phase']).startsWith('step'))!;
  ratios['step_throughput_autoscale_over_fixed'] = Number(stepRow(AUTO)['perSecond']) / Number(stepRow(FIXED)['perSecond']);
  ratios['step_p99_fixed_over_autoscale'] = Number(stepRow(FIXED)['p99Ms']) / Number(stepRow(AUTO)['p99Ms']);
  const recoveredMs = recovery[AUTO];
  targets.push({ name: `autoscale: p99 back under ${OBJECTIVE_MS} ms during the step (s after it)`, target: 'recovers', value: recoveredMs === undefined ? -1 : Math.max(0, recoveredMs) / 1000, met: recoveredMs !== undefined });
  notes.push(machineLoad.summary());
  await publish('executor-autoscale', options, { rows, ratios, targets, notes, plot: autoscalePlot(timeline) });
};

/** Throughput and executors per second, a line per cluster. */
function autoscalePlot(timeline: readonly Row[]): PlotSpec {
  return {
    rows: timeline,
    spec: {
      title: 'executor-autoscale: a load step (2 -> 24 -> 2 calls in flight)',
      vconcat: [
        { width: 480, height: 160, mark: { type: 'line', point: true }, encoding: { x: { field: 'second', type: 'quantitative', title: 's' }, y: { field: 'perSecond', type: 'quantitative', title: 'calls / s' }, color: { field: 'system', type: 'nominal', title: null } } },
        { width: 480, height: 120, mark: { type: 'line', point: true }, encoding: { x: { field: 'second', type: 'quantitative', title: 's' }, y: { field: 'p99Ms', type: 'quantitative', title: 'p99 ms (per second)' }, color: { field: 'system', type: 'nominal', title: null } } },
        { width: 480, height: 100, mark: { type: 'line', interpolate: 'step-after' }, encoding: { x: { field: 'second', type: 'quantitative', title: 's' }, y: { field: 'executors', type: 'quantitative', title: 'executors' }, color: { field: 'system', type: 'nominal', title: null } } },
      ],
    },
  };
}
