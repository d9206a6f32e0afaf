/**
 * `concurrency` (McGrath & Brenner's concurrency test): a no-op function with 1 to 15 calls in
 * flight, 10 s per level (2 s with --quick), executions per second per level; plus the DAG
 * `square(increment(x))` at 1, 4, 8 and 15 in flight, on our cluster at the default isolation
 * (sandbox processes; the level is in the rows). Peers in the same run, level by level: the same
 * cluster with `--isolation none` (the old thread runtime, a labelled baseline), the raw zeromq
 * echo (the physical limit of one round trip) and Restate's no-op handler and its handler that
 * calls two others. Client, clusters and peers share the 2 cores: each row gives the client's and
 * the servers' CPU use (the executors' with their sandbox processes).
 *
 * A cold first level (McGrath and Brenner's test began with no warm instance): before the warm-up,
 * for our cluster at each isolation level, a fresh cluster of the same shape whose scheduler pins
 * nothing (`--pin-executors 0`), warmed up on another function, and a function registered just
 * before the level, so its first call finds no runtime loaded for it; 1 call in flight for a level's time, with the cold starts it took
 * (the executors' counter) and its first call apart. Its rows are labelled as such (test
 * `noop call (cold first level)`); the warm rows are as before.
 *
 * Every row says its `security` (encrypted: ours as by default; plain: --insecure, and the peers) and
 * `isolation`. Also measured: the thread cluster with encryption off too (isolation and encryption both off,
 * bench/faas-systems.ts), at every level (with --quick at the DAG levels 1, 4, 8 and 15 only, to
 * keep the quick run short). The targets are on the default rows (encryption on, default isolation).
 */
import { startFaasBenchCluster } from './faas-cluster.js';
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop } from './harness/load.js';
import type { LoadResult } from './harness/load.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { publish } from './harness/report.js';
import type { PlotSpec, Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { REFERENCE, plotLabel } from './compose.js';
import { PLAIN_THREADS_SYSTEM, SANDBOX_SYSTEM, THREADS_SYSTEM, failureNotes, measure, startFaasSystems } from './faas-systems.js';
import type { MeasuredSystem } from './faas-systems.js';

const LEVELS = Array.from({ length: 15 }, (_, i) => i + 1);
const DAG_LEVELS = new Set([1, 4, 8, 15]);
/** The servers' process trees are read this often during a level: sandbox processes started and ended within it count (all systems alike). */
const CPU_SAMPLE_MS = 100;
/** The test label of the cold first level's rows (kept apart from the warm `noop call` rows). */
export const COLD_LEVEL_TEST = 'noop call (cold first level)';

/**
 * The cold first level of one of our systems: a fresh cluster like the measured one (2 executors,
 * --workers 4 --prewarm 4, the same isolation) with `--pin-executors 0`, a function registered
 * just before, 1 call in flight for `levelMs`; the first call is timed apart, with the executors'
 * counters read around it (was it cold?). Stops the cluster (by pid) before it returns.
 */
async function coldFirstLevel(system: string, isolation: 'none' | undefined, levelMs: number, notes: string[]): Promise<Row> {
  const cluster = await startFaasBenchCluster({ executors: 2, workers: 4, schedulerArgs: ['--pin-executors', '0'], ...(isolation === undefined ? {} : { isolation }) });
  try {
    // A new cluster's processes are cold too (JIT, connections, first code paths): they get the
    // warm-up the measured systems get (1 s at 4 in flight), on another function (`noop`), so that
    // only the measured function is cold; then the stems are refilled (1 s).
    await closedLoop(() => cluster.faas.call(cluster.noop, [0]).catch(() => undefined), { inFlight: 4, durationMs: 1000, maxOperations: 2000 });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const fresh = await cluster.faas.register<(x: number) => number, 'noop-fresh'>('noop-fresh', { code: 'module.exports = (x) => x;' });
    let x = 0;
    const failures = { count: 0, messages: [] as string[] };
    const run = (): Promise<unknown> =>
      cluster.faas.call(fresh, [x++]).catch((error: unknown) => {
        failures.count++;
        if (failures.messages.length < 3) failures.messages.push(`${String((error as { code?: string }).code ?? 'error')}: ${String((error as Error).message).slice(0, 300)}`);
      });
    const item: MeasuredSystem = { system, test: 'noop call', run, pids: [cluster.schedulerPid, ...cluster.executorPids], isolation: cluster.isolation, security: cluster.security, poolCounters: cluster.poolCounters, failures };
    let first = { ms: Number.NaN, cold: Number.NaN };
    let rest = { operations: 0, elapsedMs: Number.NaN };
    const load = async (): Promise<LoadResult> => {
      const cpuStart = process.cpuUsage();
      const wallStart = performance.now();
      const before = await cluster.poolCounters();
      const t0 = performance.now();
      await run();
      const firstMs = performance.now() - t0;
      const after = await cluster.poolCounters();
      first = { ms: firstMs, cold: after.coldStarts - before.coldStarts };
      const after1 = await closedLoop(run, { inFlight: 1, durationMs: Math.max(0, levelMs - firstMs), maxOperations: 10_000_000 });
      rest = { operations: after1.operations, elapsedMs: after1.elapsedMs };
      const cpu = process.cpuUsage(cpuStart);
      const elapsedMs = firstMs + after1.elapsedMs;
      const operations = after1.operations + 1;
      return { operations, elapsedMs, perSecond: (operations * 1000) / elapsedMs, latenciesMs: [firstMs, ...after1.latenciesMs], cpuCores: (cpu.user + cpu.system) / 1000 / (performance.now() - wallStart) };
    };
    const { result, cores, failed, pool } = await measure(item, load, { sampleEveryMs: CPU_SAMPLE_MS });
    const latency = summarise(result.latenciesMs);
    if (failures.count > 0) notes.push(`FAILED CALLS: ${system} ${COLD_LEVEL_TEST}: ${failures.count}, first: ${failures.messages.join(' | ')}`);
    if (!(first.cold >= 1)) notes.push(`WARNING: ${system} ${COLD_LEVEL_TEST}: its first call started no runtime cold (cold starts ${first.cold}): the level was not cold`);
    return {
      system,
      test: COLD_LEVEL_TEST,
      isolation: cluster.isolation,
      security: cluster.security,
      inFlight: 1,
      perSecond: result.perSecond,
      failed,
      p50Ms: latency.p50Ms,
      p99Ms: latency.p99Ms,
      clientCores: result.cpuCores,
      serverCores: cores,
      ...(pool ?? {}),
      firstCallMs: first.ms,
      firstCallCold: first.cold,
      perSecondAfterFirstCall: (rest.operations * 1000) / rest.elapsedMs,
      maxMs: latency.maxMs,
    };
  } finally {
    await cluster.stop();
  }
}

export const concurrencyBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const levelMs = options.quick ? 2000 : 10_000;
  const notes: string[] = [
    'local cluster: routing node, 1 storage node, 1 scheduler, 2 executors (--workers 4 as `lfaas up` starts them; --prewarm 4: 4 stems each, where `lfaas up` now starts 2) on 127.0.0.1; three such clusters run (default isolation; --isolation none; --isolation none with every role --insecure); the load generator is this process; everything shares the 2 cores',
    `server CPU (serverCores) is the scheduler's and the executors' with their descendants (sandbox processes, bubblewrap), read from /proc at the start and end of each level and every ${CPU_SAMPLE_MS} ms in between (a sandbox process started and ended within a level counts up to its last sample; the reads run in the load generator for every system alike); runtimesStarted and coldStarts (calls that loaded their function first) are the executors' pool counters over the level (their metrics endpoints, read around it); failed: calls that failed (perSecond counts them)`,
    `each level runs ${levelMs / 1000} s per system, systems alternating within the level`,
    `cold first level (rows \`${COLD_LEVEL_TEST}\`, McGrath and Brenner's test began with no warm instance): before the warm-up, for each of our two clusters, a fresh cluster of the same shape (2 executors, --workers 4 --prewarm 4, the same isolation) whose scheduler runs with --pin-executors 0 (a registration prepares nothing) is started while the measured systems stand idle, warmed up as they were (1 s at 4 calls in flight) but on another function (\`noop\`, so that the new processes are not cold themselves), left 1 s for its stems to refill, a fresh function registered, and 1 call in flight kept for ${levelMs / 1000} s; firstCallMs is its first call (through the scheduler, as every first call is; firstCallCold: the executors' cold-start counter around it), perSecondAfterFirstCall the level's rate without it, coldStarts the cold starts over the level (a call placed on the other executor loads the function there too); the fresh cluster is then stopped. One cold start costs the level its firstCallMs less a warm call's time: a rate below the warm level 1's beyond that (perSecondAfterFirstCall below it too) is the fresh cluster's, not the cold start's (seen in trials: the sandbox cluster's cold level ran at ~0.76x the warm level 1 with one cold start of 13-27 ms in a level of 2-10 s). The warm levels below are as before (a 1 s warm-up at 4 in flight, then 1 to 15 in flight)`,
    `reference (original systems, this kind of machine): Cloudburst ${REFERENCE.cloudburst.noopPerSecond8.join('-')} calls/s (one function) and ${REFERENCE.cloudburst.composePerSecond8.join('-')} DAGs/s (two functions) at 8 in flight; Restate 1.7 ${REFERENCE.restate17.perSecond15.join('-')} calls/s at 15 in flight; raw echo ~37 k/s at 15 in flight`,
  ];
  const started = await startFaasSystems(notes);
  const rows: Row[] = [];
  try {
    const systems = started.systems.map((system) => ({ ...system, dag: system.test === 'square(increment(x))' }));
    // The cold first level, before any warm-up, while the measured systems stand idle.
    rows.push(await coldFirstLevel(SANDBOX_SYSTEM, undefined, levelMs, notes));
    if (systems.some((item) => item.system === THREADS_SYSTEM)) rows.push(await coldFirstLevel(THREADS_SYSTEM, 'none', levelMs, notes));
    for (const item of systems) await closedLoop(item.run, { inFlight: 4, durationMs: 1000, maxOperations: 2000 });
    for (const inFlight of LEVELS) {
      for (const item of systems) {
        if (item.dag && !DAG_LEVELS.has(inFlight)) continue;
        if (options.quick && item.system === PLAIN_THREADS_SYSTEM && !DAG_LEVELS.has(inFlight)) continue;
        const { result: load, cores, failed, pool } = await measure(item, () => closedLoop(item.run, { inFlight, durationMs: levelMs, maxOperations: 10_000_000 }), { sampleEveryMs: CPU_SAMPLE_MS });
        const latency = summarise(load.latenciesMs);
        rows.push({ system: item.system, test: item.test, isolation: item.isolation ?? 'n/a', security: item.security, inFlight, perSecond: load.perSecond, failed, p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, clientCores: load.cpuCores, serverCores: cores, ...(pool ?? {}) });
      }
    }
    notes.push(...failureNotes(systems), ...started.afterNotes());
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
  // The cold first level against the warm first level (1 in flight) of the same system.
  for (const [system, key] of [[SANDBOX_SYSTEM, 'sandbox'], [THREADS_SYSTEM, 'threads']] as const) {
    const cold = rows.find((row) => row['system'] === system && row['test'] === COLD_LEVEL_TEST);
    const warm = rows.find((row) => row['system'] === system && row['test'] === 'noop call' && row['inFlight'] === 1);
    if (cold === undefined || warm === undefined) continue;
    ratios[`noop_1inflight_cold_level_over_warm_level_rate_${key}`] = Number(cold['perSecond']) / Number(warm['perSecond']);
    ratios[`noop_1inflight_cold_level_after_first_call_over_warm_level_rate_${key}`] = Number(cold['perSecondAfterFirstCall']) / Number(warm['perSecond']);
    ratios[`noop_1inflight_cold_level_over_warm_level_p99_${key}`] = Number(cold['p99Ms']) / Number(warm['p99Ms']);
    ratios[`noop_cold_first_call_over_warm_level1_p50_${key}`] = Number(cold['firstCallMs']) / Number(warm['p50Ms']);
  }
  targets.push({ name: 'no-op calls/s at 8 in flight', target: '>= 6500', value: noop8, met: noop8 >= 6500 });
  targets.push({ name: 'compose DAGs/s at 8 in flight', target: '>= 4000', value: dag8, met: dag8 >= 4000 });
  for (const [name, ratio] of Object.entries(ratios).filter(([name]) => name.includes('restate'))) {
    // noop_8inflight_ours_over_restate -> Restate's own rate at that level.
    const match = /^(noop|compose)_(\d+)inflight_ours_over_restate$/.exec(name);
    const peerRate = match === null ? undefined : rate('restate', match[1] === 'noop' ? 'noop call' : 'square(increment(x))', Number(match[2]));
    const peer = peerRate === undefined ? {} : { peer: { name: `Restate ${match![1] === 'noop' ? 'no-op calls' : 'f(g(x))'}/s at ${match![2]} in flight`, value: peerRate } };
    targets.push({ name: `${name} (x)`, target: '>= 10', value: ratio, met: ratio >= 10, ...peer });
  }
  // The sandbox against the thread runtime it replaces (value: the measured ratio sandbox / threads, executions per second).
  for (const [test, ratio, threadsTest] of [['no-op calls/s', ratios['noop_rate8_sandbox_over_threads']!, 'noop call'], ['f(g(x)) DAGs/s', ratios['compose_rate8_sandbox_over_threads']!, 'square(increment(x))']] as const) {
    targets.push({ name: `concurrency at 8 in flight >= 0.8x the thread runtime (${test})`, target: '>= 0.8 (x)', value: ratio, met: ratio >= 0.8, peer: { name: `thread runtime ${test} at 8 in flight`, value: rate(THREADS_SYSTEM, threadsTest, 8)! } });
  }
  // Isolation and encryption both off, against the default (no targets: measured and reported).
  const plainNoop8 = rate(PLAIN_THREADS_SYSTEM, 'noop call', 8);
  const plainDag8 = rate(PLAIN_THREADS_SYSTEM, 'square(increment(x))', 8);
  if (plainNoop8 !== undefined) ratios['noop_rate8_ours_over_isolation_and_encryption_off'] = noop8 / plainNoop8;
  if (plainDag8 !== undefined) ratios['compose_rate8_ours_over_isolation_and_encryption_off'] = dag8 / plainDag8;
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
