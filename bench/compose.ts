/**
 * `compose`: latency of a warm no-op call and of the DAG `square(increment(x))`, sequential
 * calls (2000 of each; 300 with --quick), p50 and p99, on a local cluster (routing node, one
 * storage node, one scheduler, two executors, each its own process) whose executors run functions
 * at the default isolation (sandbox processes; the level is in the rows). Peers in the same run,
 * measured in alternating rounds so that all see the same machine: the same cluster with
 * `--isolation none` (the old thread runtime, a labelled baseline), the raw zeromq echo (one
 * round trip: the physical limit of a call's network path) and Restate (installed on demand;
 * its no-op handler and a handler that calls two others). Server CPU includes the executors'
 * sandbox processes. Tracing's overhead in the same rounds: the same cluster with every role's
 * OpenTelemetry SDK on, sampling at 0.1 and at 1 (bench/tracing-systems.ts), against
 * `lattice-faas` (no SDK: tracing off); ratios `tracing_on*_over_off`.
 *
 * Every row says its `security` (encrypted: ours as by default; plain: --insecure, and the peers) and
 * `isolation`. Also measured: the thread cluster with encryption off too (isolation and encryption both off,
 * bench/faas-systems.ts) and the no-op call through the scheduler (a client with direct dispatch
 * off: no leases). The targets are on the default rows (encryption on, default isolation).
 */
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop } from './harness/load.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { latencyPlot, publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { PLAIN_THREADS_SYSTEM, SANDBOX_SYSTEM, THREADS_SYSTEM, VIA_SCHEDULER_SYSTEM, failureNotes, measure, startFaasSystems } from './faas-systems.js';
import type { MeasuredSystem } from './faas-systems.js';
import { startCountingReceiver, startTracedCluster } from './tracing-systems.js';
import type { FaasBenchCluster } from './faas-cluster.js';

/** The same cluster with every role tracing (OpenTelemetry SDK, OTLP export to a local receiver), at each sampling ratio. */
export const TRACED_SYSTEM = (sample: number): string => `lattice-faas (tracing on, sample ${sample})`;
const TRACE_SAMPLES = [0.1, 1] as const;

/** Published figures of the original systems on this kind of machine (issue 4). */
export const REFERENCE = {
  cloudburst: { noopP50Ms: [0.51, 0.72], composeP50Ms: [0.74, 1.06], composeP99Ms: [1.1, 1.6], noopPerSecond8: [2100, 2300], composePerSecond8: [1200, 1400] },
  restate17: { noopP50Ms: [4.3, 7.6], composeP50Ms: [10, 10], perSecond15: [600, 1000] },
  rawEcho: { p50Ms: [0.11, 0.19], perSecond15: [37_000, 37_000] },
} as const;

/** A row's system for a plot: ours says its isolation level. */
export function plotLabel(row: Row): string {
  if (row['system'] === SANDBOX_SYSTEM && row['isolation'] !== undefined) return `${SANDBOX_SYSTEM} [sandbox: ${row['isolation']}]`;
  if (row['system'] === THREADS_SYSTEM) return `${SANDBOX_SYSTEM} [threads: none]`;
  if (row['system'] === PLAIN_THREADS_SYSTEM) return `${SANDBOX_SYSTEM} [threads: none, --insecure]`;
  return String(row['system']);
}

interface Case extends MeasuredSystem {
  samples: number[];
  serverCores: number[];
  clientCores: number[];
  failed: number;
  runtimesStarted: number;
  coldStarts: number;
}

export const composeBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const calls = options.quick ? 300 : 2000;
  const rounds = options.quick ? 1 : 2;
  // Steady state: the JIT and the machine settle over seconds of calls (measured: p50 0.54 ms after 1 s, 0.34 ms after 10 s).
  const warmUpMs = options.quick ? 1000 : 5000;
  const notes: string[] = [
    'local cluster: routing node, 1 storage node (1 shard), 1 scheduler, 2 executors (--workers 4 as lfaas up starts them; --prewarm 4: 4 stems each, where lfaas up now starts 2), all on 127.0.0.1 sharing the 2 cores with the client; three such clusters run (default isolation; --isolation none; --isolation none with every role --insecure)',
    'a call: client -> scheduler -> executor -> runtime (a sandbox process over a pipe; at isolation none a worker thread) -> executor -> client for the first call of each 1 s lease, then client -> executor -> runtime -> executor -> client (direct dispatch); compose adds the trigger from increment to square (local when both run on one executor)',
    'server CPU (serverCores) is the scheduler\'s and the executors\' with their descendants (sandbox processes, bubblewrap), read from /proc at the start and end of each measurement; runtimesStarted and coldStarts (calls that loaded their function first) are the executors\' pool counters over the measured calls (their metrics endpoints, read around each measurement); failed: calls that failed (their latency is in the samples too)',
    `systems are measured in ${rounds} alternating round(s) (the machine conditions are shared), each system warmed up with calls for ${warmUpMs / 1000} s before each of its rounds (its processes were idle during the other systems' rounds, and the first seconds of calls after idling measured up to 1.6x slower); the machine load average is in machine.loadAverage`,
    `reference (original systems, this kind of machine): Cloudburst noop p50 ${REFERENCE.cloudburst.noopP50Ms.join('-')} ms, f(g(x)) p50 ${REFERENCE.cloudburst.composeP50Ms.join('-')} ms, p99 ${REFERENCE.cloudburst.composeP99Ms.join('-')} ms; Restate 1.7 noop p50 ${REFERENCE.restate17.noopP50Ms.join('-')} ms, f(g(x)) ~10 ms`,
  ];
  const started = await startFaasSystems(notes, { viaScheduler: true });
  const rows: Row[] = [];
  // Tracing's overhead: the same cluster with the SDK on in every role, at each sampling ratio
  // (bench/tracing-systems.ts); `lattice-faas` itself has no SDK (tracing off, the default).
  const receiver = await startCountingReceiver();
  const traced: FaasBenchCluster[] = [];
  try {
    const tracedSystems: MeasuredSystem[] = [];
    let y = 0;
    for (const sample of TRACE_SAMPLES) {
      const cluster = await startTracedCluster(receiver, sample);
      traced.push(cluster);
      const pids = [cluster.schedulerPid, ...cluster.executorPids];
      for (const [test, call] of [['noop call', () => cluster.faas.call(cluster.noop, [y++])], ['square(increment(x))', () => cluster.faas.callDag(cluster.compose, { 'bench/increment': [y++ % 1000] })]] as const) {
        const failures = { count: 0, messages: [] as string[] };
        const run = (): Promise<unknown> =>
          call().catch((error: unknown) => {
            failures.count++;
            if (failures.messages.length < 3) failures.messages.push(String((error as Error).message).slice(0, 300));
          });
        tracedSystems.push({ system: TRACED_SYSTEM(sample), test, run, failures, pids, isolation: cluster.isolation, security: cluster.security, poolCounters: () => cluster.poolCounters() });
      }
    }
    notes.push(`tracing: ${TRACE_SAMPLES.map(TRACED_SYSTEM).join(' and ')} are the lattice-faas cluster with every role exporting spans (OTLP/HTTP JSON, batched every 1 s) to a counting receiver on 127.0.0.1, sampling with ParentBased(TraceIdRatio) at that ratio; the bench client registers no SDK, so each call's trace starts at the scheduler (or the executor, for direct calls); lattice-faas itself is tracing off (no SDK)`);
    const cases: Case[] = [...started.systems, ...tracedSystems].map((system) => ({ ...system, samples: [], serverCores: [], clientCores: [], failed: 0, runtimesStarted: 0, coldStarts: 0 }));
    // Warm-up: JIT, sockets, runtimes.
    for (const item of cases) await closedLoop(item.run, { inFlight: 1, durationMs: 2000, maxOperations: 200 });
    for (let round = 0; round < rounds; round++) {
      for (const item of cases) {
        await closedLoop(item.run, { inFlight: 1, durationMs: warmUpMs, maxOperations: 100_000 });
        const { result, cores, failed, pool } = await measure(item, () => closedLoop(item.run, { inFlight: 1, durationMs: 120_000, maxOperations: Math.ceil(calls / rounds) }));
        item.samples.push(...result.latenciesMs);
        item.serverCores.push(cores);
        item.clientCores.push(result.cpuCores);
        item.failed += failed;
        item.runtimesStarted += pool?.runtimesStarted ?? 0;
        item.coldStarts += pool?.coldStarts ?? 0;
      }
    }
    for (const item of cases) {
      const summary = summarise(item.samples);
      const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
      const pool = item.poolCounters === undefined ? {} : { runtimesStarted: item.runtimesStarted, coldStarts: item.coldStarts };
      rows.push({ system: item.system, test: item.test, isolation: item.isolation ?? 'n/a', security: item.security, calls: summary.count, failed: item.failed, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, meanMs: summary.meanMs, serverCores: mean(item.serverCores), clientCores: mean(item.clientCores), ...pool });
    }
    notes.push(...failureNotes(cases), ...started.afterNotes());
  } finally {
    await Promise.all(traced.map((cluster) => cluster.stop()));
    await started.stop();
    // After the roles stopped (they flush on stop).
    notes.push(`tracing: the OTLP receiver got ${receiver.counts.requests} export requests, ${(receiver.counts.bytes / 1e6).toFixed(2)} MB`);
    await receiver.stop();
  }
  const value = (system: string, test: string, field: string): number | undefined => {
    const row = rows.find((candidate) => candidate['system'] === system && candidate['test'] === test);
    return row === undefined ? undefined : Number(row[field]);
  };
  const ratios: Record<string, number> = {};
  const targets: Target[] = [];
  const noopP50 = value(SANDBOX_SYSTEM, 'noop call', 'p50Ms')!;
  const composeP50 = value(SANDBOX_SYSTEM, 'square(increment(x))', 'p50Ms')!;
  const composeP99 = value(SANDBOX_SYSTEM, 'square(increment(x))', 'p99Ms')!;
  const threadsNoopP50 = value(THREADS_SYSTEM, 'noop call', 'p50Ms')!;
  const threadsComposeP50 = value(THREADS_SYSTEM, 'square(increment(x))', 'p50Ms')!;
  const echoP50 = value('raw zeromq echo', 'round trip', 'p50Ms')!;
  ratios['noop_p50_ours_over_raw_echo'] = noopP50 / echoP50;
  ratios['compose_p50_ours_over_raw_echo'] = composeP50 / echoP50;
  ratios['noop_p50_cloudburst_reference_over_ours'] = REFERENCE.cloudburst.noopP50Ms[0] / noopP50;
  ratios['compose_p50_cloudburst_reference_over_ours'] = REFERENCE.cloudburst.composeP50Ms[0] / composeP50;
  ratios['compose_p99_cloudburst_reference_over_ours'] = REFERENCE.cloudburst.composeP99Ms[0] / composeP99;
  ratios['noop_p50_sandbox_over_threads'] = noopP50 / threadsNoopP50;
  ratios['compose_p50_sandbox_over_threads'] = composeP50 / threadsComposeP50;
  targets.push({ name: 'warm no-op call p50 (ms)', target: '<= 0.35', value: noopP50, met: noopP50 <= 0.35 });
  targets.push({ name: 'compose p50 (ms)', target: '<= 0.5', value: composeP50, met: composeP50 <= 0.5 });
  targets.push({ name: 'compose p99 (ms)', target: '<= 1.5', value: composeP99, met: composeP99 <= 1.5 });
  // Issue 17: a call that takes no lease (client -> scheduler -> executor -> client).
  const viaSchedulerP50 = value(VIA_SCHEDULER_SYSTEM, 'noop call', 'p50Ms');
  if (viaSchedulerP50 !== undefined) {
    ratios['noop_p50_via_scheduler_over_direct'] = viaSchedulerP50 / noopP50;
    // Failed calls' latencies are in the samples too: a p50 of failures meets nothing.
    const viaSchedulerFailed = value(VIA_SCHEDULER_SYSTEM, 'noop call', 'failed') ?? 0;
    targets.push({ name: 'warm no-op call through the scheduler (no direct dispatch) p50 (ms)', target: '<= 0.6', value: viaSchedulerP50, met: viaSchedulerP50 <= 0.6 && viaSchedulerFailed === 0 });
  }
  // Isolation and encryption both off, against the default.
  const plainNoopP50 = value(PLAIN_THREADS_SYSTEM, 'noop call', 'p50Ms');
  const plainComposeP50 = value(PLAIN_THREADS_SYSTEM, 'square(increment(x))', 'p50Ms');
  if (plainNoopP50 !== undefined) ratios['noop_p50_ours_over_isolation_and_encryption_off'] = noopP50 / plainNoopP50;
  if (plainComposeP50 !== undefined) ratios['compose_p50_ours_over_isolation_and_encryption_off'] = composeP50 / plainComposeP50;
  if (plainNoopP50 !== undefined) ratios['noop_p50_threads_over_threads_encryption_off'] = threadsNoopP50 / plainNoopP50;
  const restateNoopP50 = value('restate', 'noop call', 'p50Ms');
  if (restateNoopP50 !== undefined) {
    const restateNoopP99 = value('restate', 'noop call', 'p99Ms')!;
    const restateComposeP50 = value('restate', 'square(increment(x))', 'p50Ms')!;
    const restateComposeP99 = value('restate', 'square(increment(x))', 'p99Ms')!;
    ratios['noop_p50_restate_over_ours'] = restateNoopP50 / noopP50;
    ratios['noop_p99_restate_over_ours'] = restateNoopP99 / value(SANDBOX_SYSTEM, 'noop call', 'p99Ms')!;
    ratios['compose_p50_restate_over_ours'] = restateComposeP50 / composeP50;
    ratios['compose_p99_restate_over_ours'] = restateComposeP99 / composeP99;
    const restatePeer: Record<string, { name: string; value: number }> = {
      noop_p50_restate_over_ours: { name: 'Restate no-op p50 (ms)', value: restateNoopP50 },
      noop_p99_restate_over_ours: { name: 'Restate no-op p99 (ms)', value: restateNoopP99 },
      compose_p50_restate_over_ours: { name: 'Restate f(g(x)) p50 (ms)', value: restateComposeP50 },
      compose_p99_restate_over_ours: { name: 'Restate f(g(x)) p99 (ms)', value: restateComposeP99 },
    };
    for (const [name, ratio] of Object.entries(ratios).filter(([name]) => name.includes('restate'))) {
      const peer = restatePeer[name];
      targets.push({ name: `${name} (x)`, target: '>= 10', value: ratio, met: ratio >= 10, ...(peer === undefined ? {} : { peer }) });
    }
  }
  // The sandbox against the thread runtime it replaces (value: the measured ratio sandbox / threads).
  const noopRatio = ratios['noop_p50_sandbox_over_threads'];
  const composeRatio = ratios['compose_p50_sandbox_over_threads'];
  // Tracing on (the SDK in every role) over off (no SDK), the same run; no targets: measured and reported.
  for (const sample of TRACE_SAMPLES) {
    const suffix = sample === 1 ? '_sample1' : '';
    const noopOn = value(TRACED_SYSTEM(sample), 'noop call', 'p50Ms');
    const composeOn = value(TRACED_SYSTEM(sample), 'square(increment(x))', 'p50Ms');
    if (noopOn !== undefined) ratios[`tracing_on${suffix}_p50_over_off`] = noopOn / noopP50;
    if (composeOn !== undefined) ratios[`tracing_on${suffix}_compose_p50_over_off`] = composeOn / composeP50;
  }
  targets.push({ name: 'warm no-op p50 <= 1.2x the thread runtime', target: '<= 1.2 (x)', value: noopRatio, met: noopRatio <= 1.2, peer: { name: 'thread runtime no-op p50 (ms)', value: threadsNoopP50 } });
  targets.push({ name: 'f(g(x)) p50 <= 1.2x the thread runtime', target: '<= 1.2 (x)', value: composeRatio, met: composeRatio <= 1.2, peer: { name: 'thread runtime f(g(x)) p50 (ms)', value: threadsComposeP50 } });
  notes.push(machineLoad.summary());
  await publish('compose', options, {
    rows,
    ratios,
    targets,
    notes,
    plot: latencyPlot('compose: sequential call latency (ms, log scale)', rows, plotLabel, 280),
  });
};
