/**
 * `counter`: the shared counter, measured. 1, 8 and 15 clients (calls in flight from one client
 * process) increment ONE hot counter key through a function for a fixed time per level (5 s;
 * 2 s with --quick), in the same run, level by level, system by system:
 *
 * - ours, `counter-increment` (examples/functions/counter-increment.ts): reads the `Counter`
 *   lattice at the key with `ctx.increment` (the executor is the writer, and the increments of
 *   concurrent calls go to the KVS in one write: executor/increments.ts), on a local
 *   cluster (bench/faas-cluster.ts: routing node, 1 storage node, 1 scheduler, 2 executors at the
 *   default isolation).
 * - ours, `naive-increment` (examples/functions/naive-increment.ts): `ctx.get` then `ctx.put` of
 *   value + 1 (a last-writer-wins register) on another key, the same cluster: the read-modify-write
 *   that loses updates under concurrency (that is the point of the row).
 * - peer: Restate (bench/restate-peer.ts, installed on demand), the virtual object
 *   `LatticeCounter/<key>/add(1)`: Restate's way of doing a counter, its exclusive handlers run one
 *   at a time per object key.
 *
 * Each (system, level) gets a fresh key. At the end of a level the key is read back (ours: every
 * replica, merged, `faas.kvs.getAll`; Restate: the object's shared `get` handler) and the lost
 * increments counted: calls that succeeded minus the counter's value.
 */
import { Counter } from '../client/index.js';
import type { Lww } from '../client/index.js';
import { exampleFunctionPath } from '../cli/index.js';
import { startFaasBenchCluster } from './faas-cluster.js';
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop } from './harness/load.js';
import type { LoadResult } from './harness/load.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { withProcessCpu } from './harness/process-cpu.js';
import { publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { startRestate } from './restate-peer.js';

const LEVELS = [1, 8, 15] as const;
const OURS_COUNTER = 'lattice-faas counter-increment (Counter lattice)';
const OURS_NAIVE = 'lattice-faas naive-increment (read-modify-write)';
const RESTATE = 'restate virtual object (LatticeCounter.add)';
/** The issue's target: ours (Counter lattice) at 15 in flight over Restate's, increments per second. */
const TARGET_RATIO_AT_15 = 50;

interface CounterSystem {
  readonly system: string;
  readonly pids: readonly number[];
  /** One increment of the counter at `key`. */
  increment(key: string): Promise<unknown>;
  /** The counter's value at `key` now (0 if it was never written). */
  read(key: string): Promise<number>;
  /** Ours, Counter: how many writers its state holds (one per executor that incremented it). */
  stateEntries?(key: string): Promise<number>;
  /** Makes `key` ready for increments (ours, Counter: it must hold Counter.ZERO first). */
  prepare(key: string): Promise<void>;
  readonly failures: string[];
}

interface LevelResult {
  readonly load: LoadResult;
  readonly serverCores: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly value: number;
  readonly stateEntries: number | undefined;
}

async function runLevel(item: CounterSystem, key: string, inFlight: number, durationMs: number): Promise<LevelResult> {
  await item.prepare(key);
  let succeeded = 0;
  let failed = 0;
  const operation = (): Promise<unknown> =>
    item.increment(key).then(
      () => {
        succeeded++;
      },
      (error: unknown) => {
        failed++;
        if (item.failures.length < 3) item.failures.push(`${String((error as { code?: string }).code ?? 'error')}: ${String((error as Error).message).slice(0, 300)}`);
      },
    );
  const { result, cores } = await withProcessCpu(item.pids, () => closedLoop(operation, { inFlight, durationMs, maxOperations: 10_000_000 }));
  const value = await item.read(key);
  return { load: result, serverCores: cores, succeeded, failed, value, stateEntries: await item.stateEntries?.(key) };
}

export const counterBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const levelMs = options.quick ? 2000 : 5000;
  const warmUpMs = options.quick ? 500 : 1500;
  const run = Date.now().toString(36);
  const notes: string[] = [
    `setup: one client process keeps N calls in flight (N = ${LEVELS.join(', ')}), each call increments ONE hot key, for ${levelMs / 1000} s per level; levels in order, the systems one after another within a level (same machine conditions), each system warmed up ${warmUpMs / 1000} s at 8 in flight on a key of its own before each level; a fresh key per (system, level); everything (client, cluster, Restate) shares the 2 cores`,
    'ours: local cluster (bench/faas-cluster.ts: routing node, 1 storage node with 1 shard, 1 scheduler, 2 executors --workers 4 --prewarm 4, at the default isolation), functions deployed from examples/functions/ (bundled by esbuild, as `lfaas deploy` does); counter-increment is ctx.increment(key): the executor adds to its own entry of the Counter and merges { executor: total } into the KVS, the increments of the calls in flight on it together in one write (a group commit), and answers each call once its increment is in the KVS; naive-increment is ctx.get then ctx.put of value + 1 (an LWW register)',
    'lost = calls that succeeded - the counter\'s value read back right after the level (ours: every replica of the key, merged, faas.kvs.getAll; Restate: LatticeCounter/<key>/get, a shared handler); a failed call is not counted as an increment, so a failed call that did count shows as lost < 0',
    'Restate: the virtual object LatticeCounter, handler add(n) (exclusive: reads state `count`, adds n, sets it, returns the new value), called through the ingress POST /LatticeCounter/<key>/add; Restate serialises a virtual object\'s exclusive calls per key (one in flight per object key, the others queue at the server), so its counter is correct by construction and its rate on one hot key is bounded by one durable invocation after another; default durability, one node',
    'latencies (p50, p99) are per call, from the client, over all calls of the level; perSecond counts successful increment calls, keptPerSecond the increments the counter kept (its value over the level\'s time: below perSecond where updates were lost); stateEntries (ours, Counter): the writers its state holds at the end of the level (one per executor that incremented it: the state does not grow with the calls); serverCores: the CPU of the system\'s server processes and their descendants (ours: routing, storage node, scheduler, executors with their sandbox processes; Restate: restate-server and its Node deployment) over the level; clientCores: the client process\'s',
  ];

  const cluster = await startFaasBenchCluster({ executors: 2, workers: 4 });
  const restate = await startRestate((line) => notes.push(line)).catch((error: unknown) => {
    notes.push(`restate: could not start: ${(error as Error).message}`);
    return undefined;
  });
  if (restate === undefined) notes.push('RESTATE NOT AVAILABLE (see the restate notes above for how it failed): its rows are missing, ours ran alone; the ratio target is not measured');
  else notes.push(`restate version: ${restate.version}`);

  const rows: Row[] = [];
  try {
    const faas = cluster.faas;
    const counterFn = await faas.register<(key: string) => Promise<number>>('counter-increment', exampleFunctionPath('counter-increment'));
    const naiveFn = await faas.register<(key: string) => Promise<number>>('naive-increment', exampleFunctionPath('naive-increment'));
    const ourPids = cluster.processes.map((started) => started.child.pid).filter((pid): pid is number => typeof pid === 'number');
    notes.push(`ours: executors at isolation \`${cluster.isolation}\` (their ready line); counter-increment v${counterFn.version}, naive-increment v${naiveFn.version}`);
    const systems: CounterSystem[] = [
      {
        system: OURS_COUNTER,
        pids: ourPids,
        failures: [],
        increment: (key) => faas.call(counterFn, [key]),
        read: async (key) => Number((await faas.kvs.getAll<Counter>(key))?.reveal() ?? 0),
        stateEntries: async (key) => {
          const counter = await faas.kvs.getAll<Counter>(key);
          return counter === undefined ? 0 : counter.increments.size + counter.decrements.size;
        },
        prepare: async (key) => {
          await faas.kvs.put(key, Counter.ZERO, { ack: 'replicated' });
        },
      },
      {
        system: OURS_NAIVE,
        pids: ourPids,
        failures: [],
        increment: (key) => faas.call(naiveFn, [key]),
        read: async (key) => Number((await faas.kvs.getAll<Lww<number>>(key))?.reveal() ?? 0),
        prepare: async () => undefined,
      },
    ];
    if (restate !== undefined) {
      systems.push({ system: RESTATE, pids: restate.pids, failures: [], increment: (key) => restate.counterAdd(key, 1), read: (key) => restate.counterGet(key), prepare: async () => undefined });
    }

    for (const inFlight of LEVELS) {
      for (const item of systems) {
        const tag = item.system === OURS_COUNTER ? 'counter' : item.system === OURS_NAIVE ? 'naive' : 'restate';
        await runLevel(item, `bench:counter:${run}:${tag}:warm${inFlight}`, 8, warmUpMs);
        const level = await runLevel(item, `bench:counter:${run}:${tag}:c${inFlight}`, inFlight, levelMs);
        const summary = summarise(level.load.latenciesMs);
        rows.push({
          system: item.system,
          clients: inFlight,
          perSecond: (level.succeeded * 1000) / level.load.elapsedMs,
          keptPerSecond: (level.value * 1000) / level.load.elapsedMs,
          p50Ms: summary.p50Ms,
          p99Ms: summary.p99Ms,
          succeeded: level.succeeded,
          failed: level.failed,
          value: level.value,
          lost: level.succeeded - level.value,
          serverCores: level.serverCores,
          clientCores: level.load.cpuCores,
          ...(level.stateEntries === undefined ? {} : { stateEntries: level.stateEntries }),
        });
        if (!options.json) console.error(`counter: ${item.system} at ${inFlight} in flight: ${Math.round((level.succeeded * 1000) / level.load.elapsedMs)}/s, lost ${level.succeeded - level.value}, failed ${level.failed}`);
      }
    }
    for (const item of systems) if (item.failures.length > 0) notes.push(`FAILED CALLS: ${item.system}: first: ${item.failures.join(' | ')}`);
  } finally {
    await restate?.stop().catch((error: unknown) => notes.push(`restate: stop failed: ${(error as Error).message}`));
    await cluster.stop();
  }

  const row = (system: string, clients: number): Row | undefined => rows.find((candidate) => candidate['system'] === system && candidate['clients'] === clients);
  const ratios: Record<string, number> = {};
  for (const clients of LEVELS) {
    const ours = row(OURS_COUNTER, clients);
    const naive = row(OURS_NAIVE, clients);
    const peer = row(RESTATE, clients);
    if (ours !== undefined && peer !== undefined) ratios[`increments_per_second_ours_over_restate_at_${clients}`] = Number(ours['perSecond']) / Number(peer['perSecond']);
    if (naive !== undefined && peer !== undefined) ratios[`increments_per_second_naive_over_restate_at_${clients}`] = Number(naive['perSecond']) / Number(peer['perSecond']);
  }
  const ratioList = Object.entries(ratios).filter(([name]) => name.startsWith('increments_per_second_ours'));
  if (ratioList.length > 0) notes.push(`ours (Counter lattice) / Restate, increments per second: ${ratioList.map(([name, value]) => `${name.slice(name.lastIndexOf('_') + 1)} in flight ${value.toFixed(2)}x`).join(', ')}`);
  const targets: Target[] = [];
  const ratio15 = ratios['increments_per_second_ours_over_restate_at_15'];
  if (ratio15 !== undefined) {
    targets.push({ name: `ours (Counter lattice) increments/s at 15 in flight over Restate's (x)`, target: `>= ${TARGET_RATIO_AT_15}`, value: ratio15, met: ratio15 >= TARGET_RATIO_AT_15 });
  } else {
    notes.push(`target ">= ${TARGET_RATIO_AT_15}x Restate's increments per second at 15 in flight": NOT MEASURED (no Restate row)`);
  }
  const counterRows = rows.filter((candidate) => candidate['system'] === OURS_COUNTER);
  const lostOurs = counterRows.map((candidate) => Number(candidate['lost']));
  const worst = lostOurs.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a), 0);
  targets.push({ name: 'lost increments, ours (Counter lattice), worst level', target: '0 at every level', value: worst, met: counterRows.length === LEVELS.length && lostOurs.every((lost) => lost === 0) });
  const naiveLost = rows.filter((candidate) => candidate['system'] === OURS_NAIVE).map((candidate) => `${candidate['lost']} of ${candidate['succeeded']} at ${candidate['clients']}`);
  if (naiveLost.length > 0) notes.push(`naive-increment (read-modify-write) lost: ${naiveLost.join('; ')} (expected > 0 under concurrency: the last-writer-wins register overwrites concurrent updates)`);
  const restateLost = rows.filter((candidate) => candidate['system'] === RESTATE).map((candidate) => `${candidate['lost']} at ${candidate['clients']}`);
  if (restateLost.length > 0) notes.push(`Restate lost: ${restateLost.join('; ')} (expected 0: a virtual object's calls are serialised per key)`);
  notes.push(machineLoad.summary());

  await publish('counter', options, {
    rows,
    ratios,
    targets,
    notes,
    plot: {
      rows,
      spec: {
        title: 'counter: increments/s on one hot key by calls in flight (log scale)',
        width: 460,
        height: 280,
        mark: { type: 'line', point: { filled: true, size: 80 } },
        encoding: {
          x: { field: 'clients', type: 'quantitative', title: 'clients (calls in flight)', scale: { domain: [0, 16] }, axis: { values: [...LEVELS] } },
          y: { field: 'perSecond', type: 'quantitative', scale: { type: 'log' }, title: 'successful increments per second' },
          color: { field: 'system', type: 'nominal', legend: { orient: 'bottom', direction: 'vertical', labelLimit: 420 } },
        },
      },
    },
  });
};
