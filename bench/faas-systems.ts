/**
 * The systems the `compose` and `concurrency` benchmarks measure side by side: our local cluster
 * (bench/faas-cluster.ts: a no-op call and the DAG `square(increment(x))`) with its executors at
 * the default isolation (the strongest the machine allows: sandbox processes), the same cluster
 * with `--isolation none` (the old trusted worker-thread runtime, a labelled baseline:
 * {@link THREADS_SYSTEM}), the raw zeromq echo (one round trip: the physical limit of a call's
 * network path) and Restate (installed on demand; its no-op handler and a handler that calls two
 * others). A peer that cannot start is left out, with a note saying why.
 */
import { rawClient, startServer } from './echo-peer.js';
import { startFaasBenchCluster } from './faas-cluster.js';
import type { PoolCounters } from './faas-cluster.js';
import type { LoadResult } from './harness/load.js';
import { withProcessCpu } from './harness/process-cpu.js';
import { startRestate } from './restate-peer.js';

export interface MeasuredSystem {
  readonly system: string;
  readonly test: 'noop call' | 'square(increment(x))' | 'round trip';
  readonly run: () => Promise<unknown>;
  /** The server processes, for their CPU use (their descendants, sandbox processes, count too). */
  readonly pids: readonly number[];
  /** Our systems: the isolation level the executors report in their ready lines. */
  readonly isolation?: string;
  /** Our systems: the executors' runtime pool counters (summed). */
  readonly poolCounters?: () => Promise<PoolCounters>;
  /** Calls of `run` that failed: counted, not thrown (the load goes on), the first messages kept. */
  readonly failures: { count: number; readonly messages: string[] };
}

/** What one measurement of a system gives: the load's result, the servers' cores, the calls that failed, what the pool did. */
export interface Measurement {
  readonly result: LoadResult;
  /** Cores the system's processes and their descendants used. */
  readonly cores: number;
  readonly failed: number;
  /** Our systems: runtimes started and cold starts (calls that loaded their function) during the measurement. */
  readonly pool?: { readonly runtimesStarted: number; readonly coldStarts: number };
}

/** Runs `load` on `system`, with the CPU of its processes (see withProcessCpu for `cpu`), its failed calls and (ours) its pool's counters read around it. */
export async function measure(system: MeasuredSystem, load: () => Promise<LoadResult>, cpu: { sampleEveryMs?: number } = {}): Promise<Measurement> {
  const countersBefore = await system.poolCounters?.();
  const failedBefore = system.failures.count;
  const { result, cores } = await withProcessCpu(system.pids, load, cpu);
  const failed = system.failures.count - failedBefore;
  const countersAfter = await system.poolCounters?.();
  if (countersBefore === undefined || countersAfter === undefined) return { result, cores, failed };
  return { result, cores, failed, pool: { runtimesStarted: countersAfter.runtimesStarted - countersBefore.runtimesStarted, coldStarts: countersAfter.coldStarts - countersBefore.coldStarts } };
}

/** Notes on the calls that failed, per system (none: no note). */
export function failureNotes(systems: readonly MeasuredSystem[]): string[] {
  return systems.filter((item) => item.failures.count > 0).map((item) => `FAILED CALLS: ${item.system} ${item.test}: ${item.failures.count} over the run (warm-ups included), first: ${item.failures.messages.join(' | ')}`);
}

/** Wraps a system's call so that a failure is counted and the load goes on. */
function counted(run: () => Promise<unknown>): Pick<MeasuredSystem, 'run' | 'failures'> {
  const failures = { count: 0, messages: [] as string[] };
  return {
    failures,
    run: () =>
      run().catch((error: unknown) => {
        failures.count++;
        if (failures.messages.length < 3) failures.messages.push(`${String((error as { code?: string }).code ?? 'error')}: ${String((error as Error).message).slice(0, 300)}`);
      }),
  };
}

/** Our cluster at the default isolation (sandbox processes). */
export const SANDBOX_SYSTEM = 'lattice-faas';
/** The same cluster with `--isolation none`: the old trusted thread runtime, as a baseline. */
export const THREADS_SYSTEM = 'lattice-faas (threads, isolation none)';

export async function startFaasSystems(notes: string[]): Promise<{ systems: MeasuredSystem[]; stop(): Promise<void> }> {
  const cluster = await startFaasBenchCluster({ executors: 2, workers: 4 });
  const threads = await startFaasBenchCluster({ executors: 2, workers: 4, isolation: 'none' }).catch(async (error: unknown) => {
    await cluster.stop();
    throw error;
  });
  if (threads.isolation !== 'none') notes.push(`WARNING: the thread baseline's executors report isolation ${threads.isolation}, not none`);
  notes.push(`${SANDBOX_SYSTEM}: executors at the default isolation, which here is \`${cluster.isolation}\` (their ready line); ${THREADS_SYSTEM}: a second, identical cluster whose executors run with \`--isolation ${threads.isolation}\` (the old worker-thread + node:vm runtime), measured in the same alternating rounds`);
  const echo = await startServer('raw').catch(async (error: unknown) => {
    await threads.stop();
    await cluster.stop();
    throw error;
  });
  const restate = await startRestate((line) => notes.push(`restate: ${line}`));
  if (restate === undefined) notes.push('Restate could not be started (see above): its rows are missing');
  const echoClient = await rawClient(echo.address);
  const faasPids = [cluster.schedulerPid, ...cluster.executorPids];
  const threadPids = [threads.schedulerPid, ...threads.executorPids];
  let x = 0;
  const systems: MeasuredSystem[] = [
    { system: SANDBOX_SYSTEM, test: 'noop call', ...counted(() => cluster.faas.call(cluster.noop, [x++])), pids: faasPids, isolation: cluster.isolation, poolCounters: cluster.poolCounters },
    { system: SANDBOX_SYSTEM, test: 'square(increment(x))', ...counted(() => cluster.faas.callDag(cluster.compose, { increment: [x++ % 1000] })), pids: faasPids, isolation: cluster.isolation, poolCounters: cluster.poolCounters },
    { system: THREADS_SYSTEM, test: 'noop call', ...counted(() => threads.faas.call(threads.noop, [x++])), pids: threadPids, isolation: threads.isolation, poolCounters: threads.poolCounters },
    { system: THREADS_SYSTEM, test: 'square(increment(x))', ...counted(() => threads.faas.callDag(threads.compose, { increment: [x++ % 1000] })), pids: threadPids, isolation: threads.isolation, poolCounters: threads.poolCounters },
    { system: 'raw zeromq echo', test: 'round trip', ...counted(() => echoClient.roundTrip()), pids: [echo.child.pid!] },
  ];
  if (restate !== undefined) {
    systems.push({ system: 'restate', test: 'noop call', ...counted(() => restate.noop(x++)), pids: restate.pids });
    systems.push({ system: 'restate', test: 'square(increment(x))', ...counted(() => restate.compose(x++ % 1000)), pids: restate.pids });
    notes.push(`restate version: ${restate.version}`);
  }
  return {
    systems,
    stop: async () => {
      await echoClient.close();
      await restate?.stop();
      echo.child.kill('SIGTERM');
      await threads.stop();
      await cluster.stop();
    },
  };
}
