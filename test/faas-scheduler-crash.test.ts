/**
 * A scheduler killed (SIGKILL, by pid) with async calls in flight, over real processes: a routing
 * node, a storage node, two schedulers and one executor of two workers, so most of a burst of
 * slow async calls waits for room in the accepting scheduler (only what a scheduler holds in
 * memory: lost with it, were it not for the execution records, their index and the lease).
 *
 * - The other scheduler takes them over once the dead one's lease has not changed for the lease
 *   timeout (3 s): every future resolves with its own right result, every result key holds it (read
 *   through the client), and the survivor's metrics count the runs it took over.
 * - A scheduler killed and started again at the same address (a new boot) takes its previous
 *   boot's calls over at once: again every call completes with its right result.
 *
 * Everything is torn down by pid.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatticeFaas } from '../client/index.js';
import type { CallFuture } from '../client/index.js';
import { decodeValue, resultRecordOf } from '../protocol/index.js';
import { freePorts } from '../cli/index.js';
import { FaasCluster, eventually, isAlive, metricValue, scrapeMetrics, startProcess } from './cluster.js';
import type { RoleProcess } from './cluster.js';

/** 400 ms of work, then twice its argument (with its tag). */
const SLOW_DOUBLE = 'module.exports = async (n, tag) => { await new Promise((resolve) => setTimeout(resolve, 400)); return { tag, value: n * 2 }; };';
const PLUS_ONE = 'module.exports = (doubled) => ({ tag: doubled.tag, value: doubled.value + 1 });';

describe('a scheduler killed with async calls in flight', () => {
  const cluster = new FaasCluster();
  let survivorPort = 0;
  let doomed: RoleProcess;
  let survivor: RoleProcess;
  const clients: LatticeFaas[] = [];

  const startScheduler = async (port = 0): Promise<RoleProcess> => {
    const scheduler = await startProcess(['scheduler', '--routing', cluster.routingAddresses.join(','), '--port', String(port), '--executor-timeout-ms', '1000', '--metrics-port', '0']);
    cluster.schedulers.push(scheduler);
    return scheduler;
  };

  const connect = async (scheduler: RoleProcess): Promise<LatticeFaas> => {
    const faas = await LatticeFaas.connect({ routing: cluster.routingAddresses, schedulers: [String(scheduler.ready['address'])] });
    clients.push(faas);
    return faas;
  };

  async function kill(role: RoleProcess): Promise<void> {
    process.kill(role.pid, 'SIGKILL');
    expect(await eventually(() => role.child.exitCode !== null || role.child.signalCode !== null, 5000), `process ${role.pid} did not die`).toBe(true);
    expect(isAlive(role.pid)).toBe(false);
  }

  /** A burst of async calls through `faas`: single calls and DAG calls, each accepted before the next. */
  async function burst(faas: LatticeFaas, tag: string, count: number): Promise<{ future: CallFuture<unknown>; expected: unknown }[]> {
    const calls: { future: CallFuture<unknown>; expected: unknown }[] = [];
    for (let n = 0; n < count; n++) {
      if (n % 4 === 3) calls.push({ future: await faas.callDagAsync('double-then-inc', { 'slow-double': [n, `${tag}-${n}`] }, { timeoutMs: 20_000 }), expected: { tag: `${tag}-${n}`, value: n * 2 + 1 } });
      else calls.push({ future: await faas.callAsync('slow-double', [n, `${tag}-${n}`], { timeoutMs: 20_000 }), expected: { tag: `${tag}-${n}`, value: n * 2 } });
    }
    return calls;
  }

  /** Every future resolves with its result, and every result key holds it (read through the client). */
  async function everyCallCompletes(faas: LatticeFaas, calls: readonly { future: CallFuture<unknown>; expected: unknown }[]): Promise<void> {
    const results = await Promise.all(calls.map(({ future }) => future.result({ timeoutMs: 25_000 })));
    expect(results).toEqual(calls.map(({ expected }) => expected));
    for (const { future, expected } of calls) {
      const stored = resultRecordOf(await faas.kvs.get(future.resultKey));
      expect(stored?.ok, future.callId).toBe(true);
      expect(stored?.ok === true ? decodeValue(stored.value) : stored, future.callId).toEqual(expected);
    }
  }

  const counter = async (role: RoleProcess, name: string): Promise<number> => metricValue(await scrapeMetrics(role), name) ?? 0;

  beforeAll(async () => {
    await cluster.startRouting({ global: 1 });
    await cluster.startNode('node-0');
    await cluster.waitForRing();
    survivorPort = (await freePorts(1))[0]!;
    doomed = await startScheduler();
    survivor = await startScheduler(survivorPort);
    // One executor of two workers: at most four calls placed on it at once, the rest wait for room.
    await cluster.startExecutor(2);
    await cluster.waitForExecutors();
    const faas = await connect(survivor);
    await faas.register('slow-double', { code: SLOW_DOUBLE }, { timeoutMs: 10_000 });
    await faas.register('plus-one', { code: PLUS_ONE }, { timeoutMs: 10_000 });
    await faas.registerDag({ name: 'double-then-inc', functions: ['slow-double', 'plus-one'], edges: [['slow-double', 'plus-one']] });
  }, 60_000);

  afterAll(async () => {
    for (const faas of clients) await faas.close().catch(() => undefined);
    await cluster.stop();
  }, 60_000);

  it('the surviving scheduler takes the dead one\'s accepted calls over: every call completes with its right result', async () => {
    const faas = await connect(doomed);
    const calls = await burst(faas, 'survivor', 12);
    // Most wait for room in the doomed scheduler (four runs fit on the executor at once).
    await kill(doomed);
    await everyCallCompletes(faas, calls);
    // Taken over, not finished by chance: the waiting ones existed only in the dead scheduler.
    expect(await counter(survivor, 'lfaas_scheduler_taken_over_total')).toBeGreaterThan(0);
    expect(await counter(survivor, 'lfaas_scheduler_boots_expired_total')).toBeGreaterThanOrEqual(1);
    expect(await counter(survivor, 'lfaas_scheduler_lease_renewals_total')).toBeGreaterThan(0);
  }, 45_000);

  it('a scheduler killed and started again at the same address takes its previous boot\'s calls over at once', async () => {
    const faas = await connect(survivor);
    const calls = await burst(faas, 'restart', 8);
    await kill(survivor);
    const restarted = await startScheduler(survivorPort);
    expect(restarted.ready['address']).toBe(survivor.ready['address']);
    expect(restarted.ready['boot']).not.toBe(survivor.ready['boot']);
    await everyCallCompletes(faas, calls);
    expect(await counter(restarted, 'lfaas_scheduler_taken_over_total')).toBeGreaterThan(0);
  }, 45_000);
});
