/**
 * The KVS under faults, in the deterministic simulator (the scenario: kvs-scenario.ts): routing
 * nodes, 3 storage nodes of 2 shards (replication factor 2), clients writing GSet elements with
 * random ack modes; message loss, duplication, reordering, partitions, and storage nodes crashing
 * and restarting from their disks. After healing: every key's replicas (per the final ring) hold
 * the same entry, and every element whose PUT was acknowledged DURABLE or REPLICATED is in it.
 */
import { describe, expect, it } from 'vitest';
import { forEachSeed, seedCount } from '../simulator/simulation.js';
import { check, run } from './kvs-scenario.js';

describe('KVS simulation', () => {
  it('converges and loses no acknowledged write without faults', async () => {
    await forEachSeed(seedCount(5), (seed) => {
      const outcome = run(seed, false);
      check(outcome);
      const acknowledged = outcome.clients.reduce((sum, client) => sum + client.acknowledged.successes, 0);
      expect(acknowledged).toBeGreaterThan(300);
    });
  });

  it('converges and loses no acknowledged write under loss, duplication, reordering, partitions and crashes', async () => {
    await forEachSeed(seedCount(200), (seed) => check(run(seed, true)), 1000);
  }, seedCount(200) * 500);

  it('with a memory budget and a dataset 8x larger, under the same faults: nothing acknowledged lost, replicas converge, memory within the budget', async () => {
    const tiered = { memoryBudgetBytes: 1024, keys: 1500 };
    await forEachSeed(seedCount(100), (seed) => {
      const outcome = run(seed, true, tiered);
      check(outcome);
      expect(outcome.tier!.overBudget).toBe(0);
      expect(outcome.tier!.dataOverBudget).toBeGreaterThanOrEqual(8);
      expect(outcome.tier!.diskReads).toBeGreaterThan(0);
    }, 1000);
  }, seedCount(100) * 2000);

  it('is deterministic: one seed, one trace', () => {
    expect(run(42, true).sim.trace).toBe(run(42, true).sim.trace);
  });
});
