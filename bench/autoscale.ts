/**
 * `autoscale`: the storage tier under load steps, on real processes and at 64+ nodes in the
 * simulator, plotted the same way (throughput, p99, storage nodes over time, events).
 *
 * Processes: `lfaas up` with 1 storage node (1 shard, replication factor 1), fixed, then the same
 * with `--autoscale` (1 to 4 storage nodes), one after the other in the same run. Load: KVS
 * clients, each with 4 operations in flight, half GETs of written keys and half PUTs of fresh
 * GSet elements acknowledged REPLICATED; 1 client, a step to 8, back to 1, then none (so the
 * tier may shrink). A node's capacity (requests/s at full load) is what the fixed cluster served
 * during its step, measured first in the same run and given to the monitor
 * (--node-capacity-rps): the monitor adds nodes while their utilisation holds >= 0.7 and removes
 * idle ones. At the end every acknowledged element is read back: acknowledged writes lost must be
 * 0 through every node added and removed. On 2 cores shared by every process, a second node
 * does not add CPU: what the processes show is the mechanism (decision, node serving, keys moving,
 * departure) and its cost, not added capacity; the simulation, with a per-node capacity model,
 * shows the capacity.
 *
 * Simulation: bench/sim-elasticity.ts, a 10x ramp of load on a capacity-modelled cluster that
 * grows past 64 storage nodes and shrinks again.
 */
import { rmSync } from 'node:fs';
import { KvsClient } from '../client/index.js';
import { GSet } from '../lattices/index.js';
import type { MonitorEvent } from '../monitor/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { waitForExit } from './harness/child-process.js';
import { monitorEventsOf, startUp } from './harness/lfaas-up.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { publish } from './harness/report.js';
import type { PlotSpec, Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { simulateAutoscale } from './sim-elasticity.js';

const KEYS = 500;
const PER_CLIENT = 4;
const FIXED = 'processes, fixed: 1 storage node';
const AUTO = 'processes, autoscale: 1 to 4 storage nodes';

interface Phase {
  readonly name: string;
  readonly clients: number;
  readonly durationMs: number;
}

interface Sample {
  readonly endMs: number;
  readonly latencyMs: number;
}

interface Run {
  readonly samples: Sample[];
  readonly phaseStarts: number[];
  /** Event times relative to the start of the load. */
  readonly events: (MonitorEvent & { readonly atS: number })[];
  readonly acknowledged: number;
  readonly lost: number;
  readonly failed: number;
}

/** Runs the phases against one `lfaas up`; every operation's end and latency, the monitor's events, the lost-write check. */
async function runPhases(phases: readonly Phase[], extra: readonly string[]): Promise<Run> {
  const up = await startUp(['--nodes', '1', '--replication', '1', '--shards', '1', '--executors', '1', ...extra]);
  const clients: KvsClient[] = [];
  try {
    const most = Math.max(...phases.map((phase) => phase.clients));
    for (let i = 0; i < most; i++) clients.push(await KvsClient.connect({ routing: [up.routing], token: up.token, requestTimeoutMs: 3000, retriesMax: 10 }));
    const acknowledged = new Map<string, Set<string>>();
    for (let k = 0; k < KEYS; k++) {
      await clients[0]!.put(`a/${k}`, GSet.of(`seed-${k}`), { ack: 'replicated' });
      acknowledged.set(`a/${k}`, new Set([`seed-${k}`]));
    }
    const samples: Sample[] = [];
    const phaseStarts: number[] = [];
    const startMs = performance.now();
    const wallStart = Date.now();
    let sequence = 0;
    let failed = 0;
    for (const phase of phases) {
      phaseStarts.push(performance.now() - startMs);
      const until = performance.now() + phase.durationMs;
      if (phase.clients === 0) {
        await new Promise((resolve) => setTimeout(resolve, phase.durationMs));
        continue;
      }
      await Promise.all(
        Array.from({ length: phase.clients * PER_CLIENT }, async (_, n) => {
          const client = clients[n % phase.clients]!;
          for (let i = 0; performance.now() < until && i < 10_000_000; i++) {
            const number = sequence++;
            const key = `a/${number % KEYS}`;
            const began = performance.now();
            try {
              if (number % 2 === 0) await client.get(key);
              else {
                const element = `e-${number}`;
                await client.put(key, GSet.of(element), { ack: 'replicated' });
                acknowledged.get(key)!.add(element);
              }
            } catch {
              failed++;
              continue;
            }
            const end = performance.now();
            samples.push({ endMs: end - startMs, latencyMs: end - began });
          }
        }),
      );
    }
    // Every acknowledged element, read back after every node came and went.
    let lost = 0;
    let count = 0;
    for (const [key, elements] of acknowledged) {
      const held = new Set((await clients[0]!.get<GSet<string>>(key))?.reveal() ?? []);
      for (const element of elements) {
        count++;
        if (!held.has(element)) lost++;
      }
    }
    const events = monitorEventsOf(up).map((event) => ({ ...event, atS: (event.atMs - wallStart) / 1000 }));
    return { samples, phaseStarts, events, acknowledged: count, lost, failed };
  } finally {
    for (const client of clients) await client.close().catch(() => undefined);
    up.child.kill('SIGTERM');
    await waitForExit(up.child, 30_000);
    rmSync(up.data, { recursive: true, force: true });
  }
}

/** Storage nodes at second `s` by the monitor's done events (starting from 1). */
function nodesAt(run: Run, s: number): number {
  let nodes = 1;
  for (const event of run.events) {
    if (event.atS > s || event.kind !== 'done' || event.role !== 'storage') continue;
    if (event.action === 'add') nodes++;
    if (event.action === 'remove') nodes--;
  }
  return nodes;
}

export const autoscaleBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const scale = options.quick ? 0.5 : 1;
  const phases: Phase[] = [
    { name: 'before (1 client)', clients: 1, durationMs: 6000 * scale },
    { name: 'step (8 clients)', clients: 8, durationMs: 24_000 * scale },
    { name: 'after (1 client)', clients: 1, durationMs: 10_000 * scale },
    { name: 'idle (no client)', clients: 0, durationMs: 20_000 * scale },
  ];
  const rows: Row[] = [];
  const timeline: Row[] = [];
  const notes: string[] = [
    `processes: lfaas up (1 routing node, 1 storage node x 1 shard, replication factor 1, 1 scheduler, 1 executor), fixed, then with --autoscale (storage 1 to 4; executors kept at 1); ${KEYS} keys; each client ${PER_CLIENT} operations in flight, half GETs, half PUTs of a fresh GSet element acknowledged REPLICATED; load: ${phases.map((phase) => `${phase.name} ${phase.durationMs / 1000} s`).join(', ')}`,
  ];
  const runs = new Map<string, Run>();
  let capacityRps = 0;
  for (const system of [FIXED, AUTO]) {
    const extra =
      system === FIXED
        ? []
        : ['--autoscale', '--min-nodes', '1', '--max-nodes', '4', '--min-executors', '1', '--max-executors', '1', '--node-capacity-rps', String(capacityRps), '--scale-up-after-ms', '2000', '--scale-down-after-ms', String(8000 * scale), '--scale-grace-ms', '4000', '--monitor-period-ms', '500'];
    const run = await runPhases(phases, extra);
    runs.set(system, run);
    const last = run.samples.reduce((most, sample) => Math.max(most, sample.endMs), run.phaseStarts.at(-1)! + phases.at(-1)!.durationMs);
    phases.forEach((phase, i) => {
      const from = run.phaseStarts[i]!;
      const to = run.phaseStarts[i + 1] ?? last;
      const inPhase = run.samples.filter((sample) => sample.endMs >= from && sample.endMs < to);
      const latency = summarise(inPhase.map((sample) => sample.latencyMs));
      const nodesMost = Math.max(...Array.from({ length: Math.ceil((to - from) / 1000) + 1 }, (_, s) => nodesAt(run, from / 1000 + s)));
      rows.push({ system, phase: phase.name, operations: inPhase.length, perSecond: Math.round((inPhase.length * 1000) / Math.max(1, to - from)), p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, nodesMost });
    });
    for (let second = 0; second * 1000 < last; second++) {
      const inSecond = run.samples.filter((sample) => sample.endMs >= second * 1000 && sample.endMs < (second + 1) * 1000);
      timeline.push({ system, second, perSecond: inSecond.length, p99Ms: summarise(inSecond.map((sample) => sample.latencyMs)).p99Ms, nodes: nodesAt(run, second + 1) });
    }
    if (system === FIXED) {
      capacityRps = Number(rows.find((row) => row['system'] === FIXED && String(row['phase']).startsWith('step'))!['perSecond']);
      notes.push(`one node's capacity, measured: ${capacityRps} requests/s (the fixed cluster's step throughput), given to the autoscaling monitor`);
    } else {
      const described = run.events.filter((event) => event.kind !== 'lease').map((event) => `${event.atS.toFixed(1)} s ${event.kind} ${event.action ?? ''} ${event.role ?? ''} ${event.node ?? ''} (${event.reason})`);
      notes.push(`autoscale events (s from the start of the load): ${described.join('; ') || 'none'}`);
    }
    notes.push(`${system}: ${run.acknowledged} acknowledged elements read back, ${run.lost} lost; ${run.failed} operations failed (not acknowledged)`);
  }
  const auto = runs.get(AUTO)!;
  const stepS = auto.phaseStarts[1]! / 1000;
  const firstAdd = auto.events.find((event) => event.kind === 'done' && event.role === 'storage' && event.action === 'add' && event.atS >= stepS);
  const decided = auto.events.find((event) => event.kind === 'decided' && event.role === 'storage' && event.action === 'add' && event.atS >= stepS);

  // The same scenario in the simulator, at 64+ nodes.
  const simulated = simulateAutoscale({ quick: options.quick });
  for (const point of simulated.timeline) timeline.push({ system: `simulation: ${simulated.startNodes} to ${simulated.peakNodes} storage nodes`, second: point.second, perSecond: point.perSecond, p99Ms: point.p99Ms, nodes: point.nodes });
  rows.push(...simulated.rows.map((row) => ({ system: 'simulation', ...row })));
  notes.push(...simulated.notes);

  const stepRow = (system: string): Row => rows.find((row) => row['system'] === system && String(row['phase']).startsWith('step'))!;
  const ratios: Record<string, number> = {
    step_throughput_autoscale_over_fixed: Number(stepRow(AUTO)['perSecond']) / Number(stepRow(FIXED)['perSecond']),
    step_p99_autoscale_over_fixed: Number(stepRow(AUTO)['p99Ms']) / Number(stepRow(FIXED)['p99Ms']),
    simulation_peak_over_start_nodes: simulated.peakNodes / simulated.startNodes,
  };
  const toServingS = firstAdd === undefined ? -1 : firstAdd.atS - stepS;
  notes.push(`processes, autoscale: overload (the step) to the decision ${decided === undefined ? 'never' : `${(decided.atS - stepS).toFixed(1)} s`}, to the new node serving ${firstAdd === undefined ? 'never' : `${toServingS.toFixed(1)} s`}`);
  notes.push(machineLoad.summary());
  const lost = [...runs.values()].reduce((sum, run) => sum + run.lost, 0) + simulated.lostWrites;
  const targets: Target[] = [
    { name: 'acknowledged writes lost (processes, both clusters, and simulation)', target: '0', value: lost, met: lost === 0 },
    { name: 'processes: a storage node added under the step (s from overload to serving)', target: 'added', value: toServingS, met: firstAdd !== undefined },
    { name: `simulation: storage nodes at the peak of the ramp`, target: '>= 64', value: simulated.peakNodes, met: simulated.peakNodes >= 64 },
  ];
  await publish('autoscale', options, { rows, ratios, targets, notes, plot: autoscalePlot(timeline) });
};

/** Throughput, p99 and storage nodes per second, a line per system (processes and simulation side by side). */
function autoscalePlot(timeline: readonly Row[]): PlotSpec {
  const panel = (field: string, title: string, height: number, step = false) => ({
    width: 300,
    height,
    mark: step ? { type: 'line', interpolate: 'step-after' } : { type: 'line' },
    encoding: { x: { field: 'second', type: 'quantitative', title: 's' }, y: { field, type: 'quantitative', title }, color: { field: 'system', type: 'nominal', title: null } },
  });
  const column = (filter: string) => ({
    transform: [{ filter }],
    vconcat: [panel('perSecond', 'operations / s', 140), panel('p99Ms', 'p99 ms (per second)', 110), panel('nodes', 'storage nodes', 90, true)],
  });
  return {
    rows: timeline,
    spec: {
      title: 'autoscale: load steps on the storage tier (left: processes; right: simulation)',
      hconcat: [column("indexof(datum.system, 'processes') === 0"), column("indexof(datum.system, 'simulation') === 0")],
    },
  };
}
