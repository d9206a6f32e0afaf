/**
 * Pins over real processes: registration pins a function on two executors (a sandbox process
 * specialised before any call), and the scheduler keeps the pin, so an executor that joins
 * after the registration, or replaces one killed with kill -9, is warm for it without a call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatticeFaas } from '../client/index.js';
import { FaasCluster, eventually, metricValue, scrapeMetrics, stopProcess } from './cluster.js';
import type { RoleProcess } from './cluster.js';

describe('pins reach executors that join later', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;

  const warm = async (executor: RoleProcess): Promise<number> => metricValue(await scrapeMetrics(executor), 'lfaas_executor_warm_functions') ?? 0;
  const calls = async (executor: RoleProcess): Promise<number> => metricValue(await scrapeMetrics(executor), 'lfaas_executor_runs_total') ?? 0;

  beforeAll(async () => {
    await cluster.startRouting();
    await cluster.startNode('node-0');
    await cluster.waitForRing();
    await cluster.startScheduler(1000);
    await cluster.startExecutor(4);
    await cluster.waitForExecutors();
    faas = await cluster.connect();
  }, 60_000);

  afterAll(async () => {
    await faas?.close();
    await cluster.stop();
  });

  it('an executor started after the registration is warm for the function, with no call', async () => {
    await faas.register('pinned-fn', { code: 'module.exports = (x) => x + 1;' }, { timeoutMs: 10_000 });
    const first = cluster.executors[0]!;
    expect(await eventually(async () => (await warm(first)) >= 1, 30_000), 'the first executor was never warm').toBe(true);
    const late = await cluster.startExecutor(4);
    await cluster.waitForExecutors();
    let seen = 0;
    expect(await eventually(async () => (seen = await warm(late)) >= 1, 30_000), `the late executor has ${seen} warm functions`).toBe(true);
    expect(await calls(late), 'warm by a pin, not by a call').toBe(0);
    expect(await faas.call('pinned-fn', [41])).toBe(42);
  }, 90_000);

  it('an executor killed with kill -9 is replaced by one that is warm for the function, with no call', async () => {
    const victim = cluster.executors[1]!;
    await stopProcess(victim, 'SIGKILL');
    cluster.executors.splice(1, 1);
    const replacement = await cluster.startExecutor(4);
    await cluster.waitForExecutors();
    let seen = 0;
    expect(await eventually(async () => (seen = await warm(replacement)) >= 1, 30_000), `the replacement has ${seen} warm functions`).toBe(true);
    expect(await calls(replacement)).toBe(0);
  }, 90_000);
});
