/**
 * Admission over real processes: an executor reports its real load (running and queued calls per
 * runtime slot, not clamped at 1); a sync call that finds every executor saturated (2 calls per
 * slot) is refused at once with SCHED_NO_CAPACITY and a retry-after hint carried as a field of the
 * error, nothing runs (by the scheduler from the executors' reports, or by the executor from its own
 * queue); the SDK waits for the hint and sends the call again, a bounded number of times. A
 * function's concurrency limit is never exceeded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatticeFaas } from '../client/index.js';
import { LatticeFaas as Client } from '../client/index.js';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { FaasCluster, metricValue, scrapeMetrics } from './cluster.js';

describe('admission: saturated executors are refused with a retry-after hint, and the SDK honours it', () => {
  const cluster = new FaasCluster();
  const clients: LatticeFaas[] = [];

  async function client(capacityRetries: number): Promise<LatticeFaas> {
    const made = await Client.connect({ routing: cluster.routingAddresses, schedulers: cluster.schedulerAddresses, directCalls: false, capacityRetries });
    clients.push(made);
    return made;
  }

  beforeAll(async () => {
    // One executor with four runtime slots: eight calls (four running, four queued) saturate it.
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 1, workers: 4 });
    const admin = await client(0);
    await admin.register('admission-slow', { code: 'module.exports = async (n) => { await new Promise((resolve) => setTimeout(resolve, 150)); return n; };' }, { timeoutMs: 5000 });
    expect(await admin.call('admission-slow', [0])).toBe(0);
  }, 90_000);

  afterAll(async () => {
    for (const made of clients) await made.close();
    await cluster.stop();
  });

  it('without retries: beyond 2 calls per slot, calls are refused at once, typed, with a retry-after hint; the admitted ones all answer', async () => {
    const impatient = await client(0);
    // The executor reports its load every 100 ms: let the report after the warm-up call say idle.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const outcomes = await Promise.all(
      Array.from({ length: 30 }, (_, n) =>
        impatient.call('admission-slow', [n]).then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        ),
      ),
    );
    const refused = outcomes.filter((outcome): outcome is { error: LfaasError } => 'error' in outcome);
    const answered = outcomes.filter((outcome): outcome is { value: number } => 'value' in outcome);
    expect(refused.length, JSON.stringify(outcomes)).toBeGreaterThan(0);
    expect(answered.length, JSON.stringify(refused.map(({ error }) => error.message))).toBeGreaterThanOrEqual(1);
    for (const { error } of refused) {
      expect(error).toBeInstanceOf(LfaasError);
      expect(error.code).toBe(ErrorCode.SCHED_NO_CAPACITY);
      expect(error.retryAfterMs, error.message).toBeGreaterThanOrEqual(100);
      expect(error.retryAfterMs).toBeLessThanOrEqual(2000);
    }
    // The admitted calls ran (each returns its own argument); the refused ones never did.
    for (const { value } of answered) expect(value).toBeGreaterThanOrEqual(0);
    // Refused where the load was known: by the scheduler (its view, a heartbeat old) or by the
    // executor (its own queue, exactly); each refusal counted there.
    const atScheduler = metricValue(await scrapeMetrics(cluster.schedulers[0]!), 'lfaas_scheduler_no_capacity_total') ?? 0;
    const atExecutor = metricValue(await scrapeMetrics(cluster.executors[0]!), 'lfaas_executor_refused_total') ?? 0;
    expect(atScheduler + atExecutor).toBeGreaterThanOrEqual(refused.length);
  }, 30_000);

  it('with retries: every call answers, after waiting for the hints', async () => {
    const patient = await client(20);
    const results = await Promise.all(Array.from({ length: 16 }, (_, n) => patient.call('admission-slow', [n])));
    expect(results).toEqual(Array.from({ length: 16 }, (_, n) => n));
    expect(patient.counters.capacityRetries).toBeGreaterThan(0);
  }, 30_000);

  it('a function\'s concurrency limit: never more of its calls at once than the limit, where an unlimited one runs on every slot', async () => {
    const patient = await client(100);
    const timed = 'module.exports = async () => { const start = Date.now(); await new Promise((resolve) => setTimeout(resolve, 120)); return [start, Date.now()]; };';
    await patient.register('admission-limited', { code: timed }, { timeoutMs: 5000, concurrency: 2 });
    await patient.register('admission-free', { code: timed }, { timeoutMs: 5000 });
    const mostAtOnce = (intervals: readonly (readonly [number, number])[]): number => {
      let most = 0;
      for (const [start] of intervals) most = Math.max(most, intervals.filter(([s, e]) => s <= start && start < e).length);
      return most;
    };
    // Runtimes are bound to an owner (here, each function) and taken over from another only once
    // idle for a second: the unlimited function goes first, after a pause.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const free = (await Promise.all(Array.from({ length: 12 }, () => patient.call('admission-free', [])))) as [number, number][];
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const limited = (await Promise.all(Array.from({ length: 12 }, () => patient.call('admission-limited', [])))) as [number, number][];
    expect(mostAtOnce(limited), JSON.stringify(limited)).toBeLessThanOrEqual(2);
    expect(mostAtOnce(free), JSON.stringify(free)).toBeGreaterThan(2);
  }, 60_000);
});
