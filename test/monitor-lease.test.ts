/**
 * `lfaas monitor` processes against a real cluster: any number may run and one acts at a time,
 * through the lease in the KVS. Two monitors start; exactly one takes the lease (its event is in
 * the log); killed with kill -9, the other takes the lease once it expires.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatticeFaas } from '../client/index.js';
import { FaasCluster, eventually, metricValue, scrapeMetrics, startProcess, stopProcess } from './cluster.js';
import type { RoleProcess } from './cluster.js';

describe('monitors: one acts at a time, by a lease in the KVS', () => {
  const cluster = new FaasCluster();
  const monitors: RoleProcess[] = [];
  let faas: LatticeFaas;

  const leaseEvents = async (): Promise<string[]> => {
    const stored = (await faas.kvs.get('lfaas/events').catch(() => undefined))?.reveal();
    return Array.isArray(stored) ? (stored as { kind: string; monitor: string }[]).filter((event) => event.kind === 'lease').map((event) => event.monitor) : [];
  };

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 1, workers: 2 });
    faas = await cluster.connect();
  }, 60_000);

  afterAll(async () => {
    for (const monitor of monitors) await stopProcess(monitor).catch(() => undefined);
    await faas?.close();
    await cluster.stop();
  });

  it('two monitors: one takes the lease; killed, the other takes it over', async () => {
    const args = ['monitor', '--routing', cluster.routingAddresses.join(','), '--schedulers', cluster.schedulerAddresses.join(','), '--period-ms', '200'];
    monitors.push(await startProcess(args), await startProcess(args));
    expect(await eventually(async () => (await leaseEvents()).length >= 1, 10_000), 'a monitor took the lease').toBe(true);
    // Still one holder a while later: the other renews nothing.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const holders = await leaseEvents();
    expect(new Set(holders).size, `lease events: ${holders.join(', ')}`).toBe(1);
    const first = holders[0]!;
    // Each monitor's name carries its pid: kill -9 the holder.
    const holder = monitors.find((monitor) => first.includes(`-${monitor.pid}-`))!;
    expect(holder, `${first} among ${monitors.map((monitor) => monitor.pid).join(', ')}`).toBeDefined();
    holder.child.kill('SIGKILL');
    // The lease lasts 3 periods (600 ms): the other takes it after that.
    expect(await eventually(async () => (await leaseEvents()).some((name) => name !== first), 10_000), 'the other monitor took the lease').toBe(true);
    // Its events are counted in its metrics: the lease it took, and its decisions (it has no
    // provider: each fails, and that is counted too).
    const other = monitors.find((monitor) => monitor !== holder)!;
    expect(metricValue(await scrapeMetrics(other), 'lfaas_monitor_events_total', { kind: 'lease' })).toBe(1);
  }, 60_000);
});
