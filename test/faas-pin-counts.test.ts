/**
 * Pinning in proportion to the call rate, over real processes: three executors, a scheduler and a
 * monitor (`lfaas monitor`, its pin rate lowered to 5 calls/s per executor). Registration pins a
 * function on two executors; called at tens of calls a second, its rate (measured by the
 * executors, leased calls included) makes the monitor raise its pin count to all three, the
 * scheduler prepares it on the third, which is warm with no call of its own and then takes calls
 * (placement prefers warm executors); once the calls stop, the count goes back to the default.
 * Both decisions are in the event log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatticeFaas } from '../client/index.js';
import { FaasCluster, eventually, metricValue, scrapeMetrics, startProcess, stopProcess } from './cluster.js';
import type { RoleProcess } from './cluster.js';

describe('a hot function is pinned on more executors, and back once cool', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;
  let monitor: RoleProcess | undefined;

  const warm = async (executor: RoleProcess): Promise<number> => metricValue(await scrapeMetrics(executor), 'lfaas_executor_warm_functions') ?? 0;
  const runs = async (executor: RoleProcess): Promise<number> => metricValue(await scrapeMetrics(executor), 'lfaas_executor_runs_total') ?? 0;
  const pinEvents = async (): Promise<{ kind: string; action?: string; node?: string; reason: string }[]> => {
    const stored = (await faas.kvs.get('lfaas/events').catch(() => undefined))?.reveal();
    return Array.isArray(stored) ? (stored as { kind: string; action?: string; node?: string; reason: string }[]).filter((event) => event.action === 'pin') : [];
  };

  beforeAll(async () => {
    await cluster.startRouting({ global: 1 });
    await cluster.startNode('node-0');
    await cluster.waitForRing();
    await cluster.startScheduler(1000);
    await Promise.all([0, 1, 2].map(() => cluster.startExecutor(2)));
    await cluster.waitForExecutors();
    monitor = await startProcess(['monitor', '--routing', cluster.routingAddresses.join(','), '--schedulers', cluster.schedulerAddresses.join(','), '--period-ms', '500', '--pin-rate', '5', '--pin-cool-ms', '2000']);
    faas = await cluster.connect();
  }, 60_000);

  afterAll(async () => {
    await faas?.close();
    if (monitor !== undefined) await stopProcess(monitor);
    await cluster.stop();
  });

  it('its pin count follows its call rate: warm on every executor while hot, the default again once cool', async () => {
    await faas.register('pin-hot', { code: 'module.exports = (x) => x + 1;' }, { timeoutMs: 10_000 });
    // Registration: two of the three executors warm, the third not.
    let counts: number[] = [];
    expect(await eventually(async () => (counts = await Promise.all(cluster.executors.map(warm))).filter((count) => count >= 1).length === 2, 20_000), `warm per executor: ${counts.join(', ')}`).toBe(true);
    const third = cluster.executors[counts.findIndex((count) => count === 0)]!;
    expect(await runs(third)).toBe(0);

    // Hot: a few callers in a loop (tens of calls a second, far above 2 x 5).
    let calling = true;
    const callers = Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; calling && i < 100_000; i++) await faas.call('pin-hot', [i]);
      }),
    );
    try {
      expect(await eventually(async () => (await pinEvents()).some((event) => event.node === 'pin-hot' && /^3 executors \(was 2\)/.test(event.reason)), 20_000), JSON.stringify(await pinEvents())).toBe(true);
      expect(await eventually(async () => (await warm(third)) >= 1, 15_000), 'the third executor is warm for it (pinned)').toBe(true);
      // The added pin takes calls: placement prefers executors where the function is warm.
      expect(await eventually(async () => (await runs(third)) > 0, 15_000), 'the third executor ran some of its calls').toBe(true);
    } finally {
      calling = false;
      await callers;
    }

    // Cool: no calls; after 2 s low (and the grace period) the count is back to the default.
    expect(await eventually(async () => (await pinEvents()).some((event) => event.node === 'pin-hot' && /^2 executors \(was 3\)/.test(event.reason)), 20_000), JSON.stringify(await pinEvents())).toBe(true);
  }, 90_000);
});
