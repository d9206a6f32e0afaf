/**
 * The systems the `compose` and `concurrency` benchmarks measure side by side: our local cluster
 * (bench/faas-cluster.ts: a no-op call and the DAG `square(increment(x))`) with its executors at
 * the default isolation (the strongest the machine allows: sandbox processes), the same cluster
 * with `--isolation none` (the old trusted worker-thread runtime, a labelled baseline:
 * {@link THREADS_SYSTEM}), the raw zeromq echo (one round trip: the physical limit of a call's
 * network path) and Restate (installed on demand; its no-op handler and a handler that calls two
 * others). A peer that cannot start is left out, with a note saying why. Our clusters run secure
 * (encrypted) as by default, but one: {@link PLAIN_THREADS_SYSTEM}, isolation none AND
 * encryption off (`--insecure`), the labelled floor of both costs. With `viaScheduler`, also
 * {@link VIA_SCHEDULER_SYSTEM}: the default cluster called by a second client with direct dispatch
 * off, so that every call goes through the scheduler.
 */
import { rawClient, startServer } from './echo-peer.js';
import { LatticeFaas } from '../client/index.js';
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
  /** 'encrypted': every connection encrypted and authenticated (ours by default: TLS-PSK on node:net, CURVE on ZeroMQ); 'plain': no transport security (ours with --insecure, the peers on loopback). */
  readonly security: 'encrypted' | 'plain';
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
/** The same cluster with `--isolation none` and every role `--insecure`: isolation and CURVE both off. */
export const PLAIN_THREADS_SYSTEM = 'lattice-faas (threads, isolation none, --insecure)';
/** The default cluster, called by a client with direct dispatch off: every call client -> scheduler -> executor. */
export const VIA_SCHEDULER_SYSTEM = 'lattice-faas (through the scheduler, no direct dispatch)';

export interface FaasSystems {
  readonly systems: MeasuredSystem[];
  /** Notes to add once the measurements are done (what the through-scheduler client's counters say). */
  afterNotes(): string[];
  stop(): Promise<void>;
}

export async function startFaasSystems(notes: string[], options: { viaScheduler?: boolean } = {}): Promise<FaasSystems> {
  const cluster = await startFaasBenchCluster({ executors: 2, workers: 4 });
  const started: { stop(): Promise<void> }[] = [cluster];
  const stopStarted = async (): Promise<void> => {
    for (const item of started.reverse()) await item.stop();
  };
  const orStop = async <T>(start: Promise<T>): Promise<T> => {
    try {
      return await start;
    } catch (error) {
      await stopStarted();
      throw error;
    }
  };
  const threads = await orStop(startFaasBenchCluster({ executors: 2, workers: 4, isolation: 'none' }));
  started.push(threads);
  const plainThreads = await orStop(startFaasBenchCluster({ executors: 2, workers: 4, isolation: 'none', insecure: true }));
  started.push(plainThreads);
  if (threads.isolation !== 'none') notes.push(`WARNING: the thread baseline's executors report isolation ${threads.isolation}, not none`);
  if (plainThreads.isolation !== 'none') notes.push(`WARNING: the plain thread baseline's executors report isolation ${plainThreads.isolation}, not none`);
  notes.push(`${SANDBOX_SYSTEM}: executors at the default isolation, which here is \`${cluster.isolation}\` (their ready line); ${THREADS_SYSTEM}: a second, identical cluster whose executors run with \`--isolation ${threads.isolation}\` (the old worker-thread + node:vm runtime), measured in the same alternating rounds`);
  notes.push(`security (rows' \`security\`): our clusters run secure as by default (encrypted: TLS-PSK on every connection with the default node:net transport, CURVE with LFAAS_TRANSPORT=zmq), but ${PLAIN_THREADS_SYSTEM}: a third, identical cluster whose executors run with \`--isolation ${plainThreads.isolation}\` and whose roles all run with --insecure (plain), i.e. isolation and encryption both off; the raw echo and Restate are plain (loopback, no TLS); targets are on the ${SANDBOX_SYSTEM} rows (encrypted, default isolation)`);
  const viaScheduler = options.viaScheduler === true ? await orStop(LatticeFaas.connect({ routing: [cluster.routingAddress], schedulers: [cluster.schedulerAddress], directCalls: false, ...(cluster.token === undefined ? {} : { token: cluster.token }) })) : undefined;
  if (viaScheduler !== undefined) {
    started.push({ stop: () => viaScheduler.close() });
    notes.push(`${VIA_SCHEDULER_SYSTEM}: the ${SANDBOX_SYSTEM} cluster called by a second client connected with \`directCalls: false\` (client option): it takes no lease, so every call goes client -> scheduler -> executor -> runtime -> executor -> client, as the first call of each lease does for the others`);
  }
  const echo = await orStop(startServer('raw'));
  const restate = await startRestate((line) => notes.push(`restate: ${line}`));
  if (restate === undefined) notes.push('Restate could not be started (see above): its rows are missing');
  const echoClient = await rawClient(echo.address);
  let x = 0;
  const ours = (system: string, of: typeof cluster, client: LatticeFaas = of.faas): MeasuredSystem[] => {
    const common = { pids: [of.schedulerPid, ...of.executorPids], isolation: of.isolation, security: of.security, poolCounters: of.poolCounters };
    return [
      { system, test: 'noop call', ...counted(() => client.call(of.noop, [x++])), ...common },
      { system, test: 'square(increment(x))', ...counted(() => client.callDag(of.compose, { 'bench/increment': [x++ % 1000] })), ...common },
    ];
  };
  const systems: MeasuredSystem[] = [
    ...ours(SANDBOX_SYSTEM, cluster),
    ...ours(THREADS_SYSTEM, threads),
    ...ours(PLAIN_THREADS_SYSTEM, plainThreads),
    // Through the scheduler: the no-op only (its target is on the no-op's p50).
    ...(viaScheduler === undefined ? [] : ours(VIA_SCHEDULER_SYSTEM, cluster, viaScheduler).slice(0, 1)),
    { system: 'raw zeromq echo', test: 'round trip', ...counted(() => echoClient.roundTrip()), pids: [echo.child.pid!], security: 'plain' },
  ];
  if (restate !== undefined) {
    systems.push({ system: 'restate', test: 'noop call', ...counted(() => restate.noop(x++)), pids: restate.pids, security: 'plain' });
    systems.push({ system: 'restate', test: 'square(increment(x))', ...counted(() => restate.compose(x++ % 1000)), pids: restate.pids, security: 'plain' });
    notes.push(`restate version: ${restate.version}`);
  }
  return {
    systems,
    afterNotes: () =>
      viaScheduler === undefined
        ? []
        : [`${VIA_SCHEDULER_SYSTEM}: its client sent ${viaScheduler.counters.viaScheduler} calls through the scheduler and ${viaScheduler.counters.direct} direct (${viaScheduler.counters.leases} leases taken)`],
    stop: async () => {
      await echoClient.close();
      await restate?.stop();
      echo.child.kill('SIGTERM');
      await stopStarted();
    },
  };
}
