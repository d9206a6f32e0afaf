/**
 * Elasticity in the deterministic simulator (the scenarios: elasticity-scenario.ts), with the
 * capacity model on (each shard serves a bounded number of messages per virtual second, so load
 * queues and overload drops in virtual time) and the real MonitorNode deciding:
 * - a load ramping 10x and back grows the cluster from 3 storage nodes to 24 or more, and the
 *   cluster shrinks again once the load is back;
 * - under Zipf 1.5 reads the hottest keys get a higher replication factor at the routing nodes,
 *   and the default again once the workload moved to other keys;
 * - throughout, under faults (loss, duplication, reordering; nodes crashing and partitioned): no
 *   write acknowledged DURABLE or REPLICATED is lost, replicas converge after healing, and (in the
 *   fault scenario, where the monitor adds and removes nodes meanwhile) no key acknowledged
 *   REPLICATED stays unreadable longer than the failure timeout.
 * LFAAS_LONG=1 runs 20 times the seeds; LFAAS_SEED=<n> reruns one.
 */
import { describe, expect, it } from 'vitest';
import { forEachSeed, seedCount } from '../simulator/simulation.js';
import { checkInvariants, faultScenario, hotKeyScenario, rampScenario } from './elasticity-scenario.js';
import type { RampOptions } from './elasticity-scenario.js';

/** The routing nodes' failure timeout (their default, the run's too). */
const FAILURE_TIMEOUT_MS = 2000;

const LONG = process.env['LFAAS_LONG'] === '1';

/** The ramp of the test: 3 nodes of 60 messages/s at half load, 10x for 35 s, back for 90 s. */
const ramp = (seed: number): RampOptions => ({
  seed,
  nodes: 3,
  perSecond: 60,
  baseUtilisation: 0.5,
  factor: 10,
  phasesMs: [8000, 12_000, 35_000, 10_000, 90_000],
  maxNodes: 40,
  policy: { graceMs: 2000, downSustainMs: 2000 },
  antiEntropyPeriodMs: 3000,
  networkFaults: true,
  // In the long mode, nodes also crash and are partitioned now and then (a second a round).
  ...(LONG ? { faultEveryMs: 1000 } : {}),
});

describe('elasticity simulation', () => {
  it('a load ramping 10x and back grows the cluster from 3 to 24+ storage nodes and shrinks it again, losing no acknowledged write', async () => {
    await forEachSeed(seedCount(1), (seed) => {
      const options = ramp(seed);
      const { run, client } = rampScenario(options);
      const nodes = run.samples.map((sample) => sample.nodes);
      const peak = Math.max(...nodes);
      const peakAt = nodes.indexOf(peak);
      const end = nodes.at(-1)!;
      const rampStartMs = options.phasesMs[0];
      expect(nodes[0], 'nodes at first').toBe(3);
      expect(peak, `the most nodes: ${peak}`).toBeGreaterThanOrEqual(24);
      // Shrinks again once the load is back: by a third of the peak at least, and only by removals.
      expect(end, `nodes at the end: ${end} (peak ${peak})`).toBeLessThanOrEqual(Math.floor((peak * 2) / 3));
      const done = (action: string): { atMs: number; reason: string }[] => run.records.history.filter(({ event }) => event.kind === 'done' && event.action === action).map(({ atMs, event }) => ({ atMs, reason: event.reason }));
      const adds = done('add');
      const removes = done('remove');
      // Every node added was added for the load (or to replace a failed one), none before the ramp.
      expect(adds.every(({ reason }) => reason.includes('utilisation') || reason.includes('fewer than the minimum')), adds.map(({ reason }) => reason).join('; ')).toBe(true);
      expect(adds.filter(({ reason }) => reason.includes('utilisation')).every(({ atMs }) => atMs >= rampStartMs)).toBe(true);
      // Every node fewer is a removal the monitor decided (a departure can leave the ring before
      // the provider reports it done, at the very end of the run).
      const decidedRemovals = run.records.history.filter(({ atMs, event }) => event.kind === 'decided' && event.action === 'remove' && atMs >= peakAt * 1000).length;
      expect(decidedRemovals, 'removals decided after the peak').toBeGreaterThanOrEqual(peak - end);
      expect(removes.filter(({ atMs }) => atMs >= peakAt * 1000).length, 'removals done after the peak').toBeGreaterThanOrEqual(peak - end - 1);
      expect(run.provider.counters.removesFailed + run.provider.counters.addsFailed).toBe(0);
      // It grew to serve the load: over the last 10 s of the peak, most of it was answered (5%
      // loss each way fails about a tenth of the operations whatever the capacity).
      const peakEnd = (options.phasesMs[0] + options.phasesMs[1] + options.phasesMs[2]) / 1000;
      const served = run.samples.slice(peakEnd - 10, peakEnd);
      const offered = options.nodes * options.perSecond * options.baseUtilisation * options.factor;
      expect(served.reduce((sum, sample) => sum + sample.ok, 0) / served.length, `operations answered per second late in the peak (${offered} offered)`).toBeGreaterThan(0.75 * offered);
      checkInvariants(run, [client]);
    });
  }, seedCount(1) * 180_000);

  it('replicates Zipf 1.5 hot keys on more nodes, and lowers them again once the load moved to other keys', async () => {
    await forEachSeed(seedCount(2), (seed) => {
      const outcome = hotKeyScenario(seed, { networkFaults: true });
      const raised = outcome.run.cluster.shape.nodes;
      for (const key of outcome.firstHot) expect(outcome.beforeShift.get(key), `${key} before the shift`).toBe(raised);
      for (const key of outcome.secondHot) expect(outcome.beforeShift.get(key), `${key} before the shift`).toBe(outcome.defaultGlobal);
      for (const key of outcome.firstHot) expect(outcome.atEnd.get(key), `${key} at the end`).toBe(outcome.defaultGlobal);
      expect(outcome.atEnd.get(outcome.secondHot[0]!), `${outcome.secondHot[0]} at the end`).toBe(raised);
      checkInvariants(outcome.run, [outcome.client]);
    });
  }, seedCount(2) * 90_000);

  it('under faults, while the monitor adds and removes nodes: no acknowledged write lost, replicas converge, no key unreadable longer than the failure timeout', async () => {
    let added = 0;
    let removed = 0;
    await forEachSeed(
      seedCount(200),
      (seed) => {
        const outcome = faultScenario(seed, true);
        checkInvariants(outcome.run, [outcome.writer]);
        expect(outcome.writer.replicatedAtMs.size, 'keys acknowledged REPLICATED').toBeGreaterThan(8);
        expect(outcome.reader.counters.reads).toBeGreaterThan(150);
        expect(outcome.reader.longest.ms, `${outcome.reader.longest.key} unreadable for ${Math.round(outcome.reader.longest.ms)} ms until ${Math.round(outcome.reader.longest.endedAtMs)} ms`).toBeLessThanOrEqual(FAILURE_TIMEOUT_MS);
        added += outcome.run.provider.counters.added;
        removed += outcome.run.provider.counters.removed;
      },
      5000,
    );
    // The monitor did act under the faults (nodes added, and removed once the load fell).
    expect(added).toBeGreaterThan(0);
    expect(removed).toBeGreaterThan(0);
  }, seedCount(200) * 1000);

  it('is deterministic: one seed, one trace', () => {
    expect(faultScenario(42, true).run.sim.trace).toBe(faultScenario(42, true).run.sim.trace);
  });
});
