/**
 * The Prometheus metrics of the scheduler and executor processes (built CLI, real processes,
 * scraped over http on 127.0.0.1): every series is served with its HELP and TYPE and the node's
 * address as its `node` label, and the counters move as the calls made say they must: calls and
 * DAG calls and async calls on the scheduler (only the calls that went through it: after a
 * function's first call the SDK sends the next ones straight to the executor, so those are
 * counted there), runs, schedules, pool calls (each a warm or a cold start), one pool timeout for the one
 * call that timed out, cache writes, misses and hits of a function that reads its own writes,
 * triggers of a DAG; every dispatched run completed once the calls are over, nothing in flight.
 * Per function, the executors count every run by outcome code and time it
 * (`lfaas_function_calls_total`, `lfaas_function_duration_seconds`). `--metrics-port -1` serves
 * none (its ready line says `metricsPort: null`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatticeFaas } from '../client/index.js';
import { ErrorCode } from '../lattices/index.js';
import { FaasCluster, eventually, metricValue, scrapeMetrics, startProcess, stopProcess } from './cluster.js';
import { code, rejection } from './wire-faults.js';
import type { RoleProcess } from './cluster.js';

const SCHEDULER_COUNTERS = [
  'lfaas_scheduler_calls_accepted_total',
  'lfaas_scheduler_dag_calls_total',
  'lfaas_scheduler_async_calls_total',
  'lfaas_scheduler_dispatched_total',
  'lfaas_scheduler_completed_total',
  'lfaas_scheduler_lost_total',
  'lfaas_scheduler_redispatched_total',
  'lfaas_scheduler_no_capacity_total',
  'lfaas_scheduler_registrations_total',
  'lfaas_scheduler_executors_lost_total',
  'lfaas_scheduler_executors_restarted_total',
  'lfaas_scheduler_retries_queued_total',
  'lfaas_scheduler_retries_dispatched_total',
  'lfaas_scheduler_retries_expired_total',
  'lfaas_scheduler_pins_sent_total',
  'lfaas_scheduler_pin_counts_received_total',
  'lfaas_scheduler_pin_counts_refused_total',
  'lfaas_scheduler_chain_prepares_total',
  'lfaas_scheduler_lease_renewals_total',
  'lfaas_scheduler_takeover_passes_total',
  'lfaas_scheduler_boots_expired_total',
  'lfaas_scheduler_boots_retired_total',
  'lfaas_scheduler_taken_over_total',
  'lfaas_scheduler_takeover_settled_total',
  'lfaas_scheduler_takeover_failed_total',
  'lfaas_scheduler_claims_lost_total',
  'lfaas_scheduler_orphans_adopted_total',
  'lfaas_scheduler_records_malformed_total',
  'lfaas_scheduler_index_rotations_total',
  'lfaas_scheduler_boots_rotations_total',
];
const SCHEDULER_GAUGES = ['lfaas_scheduler_runs_in_flight', 'lfaas_scheduler_executors', 'lfaas_scheduler_async_pending'];
const EXECUTOR_COUNTERS = [
  'lfaas_executor_schedules_total',
  'lfaas_executor_duplicate_schedules_total',
  'lfaas_executor_runs_total',
  'lfaas_executor_answered_total',
  'lfaas_executor_run_timeouts_total',
  'lfaas_executor_refused_total',
  'lfaas_executor_triggers_sent_total',
  'lfaas_executor_triggers_local_total',
  'lfaas_executor_early_triggers_total',
  'lfaas_executor_pool_calls_total',
  'lfaas_executor_pool_warm_starts_total',
  'lfaas_executor_pool_cold_starts_total',
  'lfaas_executor_pool_timeouts_total',
  'lfaas_executor_pool_out_of_memory_total',
  'lfaas_executor_pool_workers_replaced_total',
  'lfaas_executor_pool_unloaded_total',
  'lfaas_executor_pool_idle_ended_total',
  'lfaas_executor_cache_hits_total',
  'lfaas_executor_cache_misses_total',
  'lfaas_executor_cache_pushes_total',
  'lfaas_executor_cache_writes_total',
  'lfaas_executor_cache_evictions_total',
];
const EXECUTOR_GAUGES = [
  'lfaas_executor_runs_in_progress',
  'lfaas_executor_pool_workers',
  'lfaas_executor_pool_capacity',
  'lfaas_executor_pool_load',
  'lfaas_executor_warm_functions',
  'lfaas_executor_cache_bytes',
  'lfaas_executor_cache_keys',
  'lfaas_executor_mailboxes',
];

/** A scrape of one process, read as numbers. */
interface Scrape {
  readonly text: string;
  value(name: string): number;
}

async function scrape(role: RoleProcess): Promise<Scrape> {
  const text = await scrapeMetrics(role);
  return {
    text,
    value(name) {
      const value = metricValue(text, name);
      if (value === undefined) throw new Error(`process ${role.pid} serves no ${name}`);
      return value;
    },
  };
}

describe('scheduler and executor metrics over real processes', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;

  /** The scheduler's scrape. */
  const schedulerScrape = (): Promise<Scrape> => scrape(cluster.schedulers[0]!);
  /** `name` summed over every executor's scrape. */
  async function executorsSum(name: string): Promise<number> {
    const scrapes = await Promise.all(cluster.executors.map((executor) => scrape(executor)));
    return scrapes.reduce((sum, one) => sum + one.value(name), 0);
  }

  beforeAll(async () => {
    // startAll waits on the scheduler's executors gauge (FaasCluster.waitForExecutors).
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 2, workers: 2 });
    faas = await cluster.connect();
  }, 60_000);

  afterAll(async () => {
    await faas?.close();
    await cluster.stop();
  }, 60_000);

  it('serves every series with HELP, TYPE and the node label, and the executors gauge counts both executors', async () => {
    const scheduler = cluster.schedulers[0]!;
    expect(scheduler.ready['metricsPort']).toEqual(expect.any(Number));
    const text = (await schedulerScrape()).text;
    for (const name of SCHEDULER_COUNTERS) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} counter`);
      expect(text).toContain(`${name}{node="${String(scheduler.ready['address'])}"} `);
    }
    for (const name of SCHEDULER_GAUGES) {
      expect(text).toContain(`# HELP ${name} `);
      expect(text).toContain(`# TYPE ${name} gauge`);
    }
    expect(metricValue(text, 'lfaas_scheduler_executors')).toBe(2);
    // The boot's lease is renewed from its start (one write a period), and nothing was taken over.
    expect(metricValue(text, 'lfaas_scheduler_lease_renewals_total')).toBeGreaterThan(0);
    expect(metricValue(text, 'lfaas_scheduler_taken_over_total')).toBe(0);
    expect(text).toContain('process_cpu_user_seconds_total');

    for (const executor of cluster.executors) {
      const executorText = await scrapeMetrics(executor);
      for (const name of EXECUTOR_COUNTERS) {
        expect(executorText).toContain(`# TYPE ${name} counter`);
        expect(executorText).toContain(`${name}{node="${String(executor.ready['address'])}"} `);
      }
      for (const name of EXECUTOR_GAUGES) {
        expect(executorText).toContain(`# HELP ${name} `);
        expect(executorText).toContain(`# TYPE ${name} gauge`);
      }
      expect(metricValue(executorText, 'lfaas_executor_pool_capacity')).toBe(2);
      expect(metricValue(executorText, 'lfaas_executor_pool_workers')).toBeGreaterThanOrEqual(1);
    }
  });

  it('counts calls, runs, warm and cold starts, a timeout, cache traffic and DAG triggers as they happen', async () => {
    const before = await schedulerScrape();
    const executorsBefore = Object.fromEntries(await Promise.all(EXECUTOR_COUNTERS.map(async (name) => [name, await executorsSum(name)] as const)));
    const sdkBefore = { ...faas.counters };

    await faas.register('add', code('(a, b) => a + b'));
    await faas.register('boom', code('() => { throw new Error("boom"); }'));
    await faas.register('sleepy', code('() => new Promise(() => {})'), { timeoutMs: 300 });
    await faas.register('own-writes', code('async (key, ctx) => { await ctx.put(key, "mine"); const first = await ctx.get(key); const second = await ctx.get(key); return [first, second]; }'));
    await faas.register('inc', code('(x) => x + 1'));
    await faas.register('double', code('(y) => y * 2'));
    await faas.registerDag({ name: 'inc-double', functions: ['inc', 'double'], edges: [['inc', 'double']] });
    let calls = 0;

    for (let n = 0; n < 5; n++) {
      expect(await faas.call('add', [n, 10])).toBe(n + 10);
      calls++;
    }
    expect((await rejection(faas.call('boom'))).code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect((await rejection(faas.call('sleepy'))).code).toBe(ErrorCode.EXEC_TIMEOUT);
    calls += 2;
    for (let n = 0; n < 2; n++) {
      expect(await faas.call('own-writes', ['metrics/own'])).toEqual(['mine', 'mine']);
      calls++;
    }
    expect(await faas.callDag('inc-double', { inc: [3] })).toBe(8);
    calls++;
    const future = await faas.callAsync('add', [20, 22]);
    expect(await future.result({ timeoutMs: 20_000 })).toBe(42);
    calls++;

    // A sync call refused SCHED_NO_CAPACITY (nothing dispatched; a loaded machine) is sent again: not a dispatch.
    const viaScheduler = faas.counters.viaScheduler - sdkBefore.viaScheduler - (faas.counters.capacityRetries - sdkBefore.capacityRetries);
    const direct = faas.counters.direct - sdkBefore.direct;
    // Direct dispatch took over after the first call of add and of own-writes.
    expect(direct).toBeGreaterThanOrEqual(1);

    // Every dispatched run completes (from the executors' heartbeats): nothing left in flight.
    let after = await schedulerScrape();
    const settled = await eventually(async () => {
      after = await schedulerScrape();
      return after.value('lfaas_scheduler_runs_in_flight') === 0 && after.value('lfaas_scheduler_completed_total') === after.value('lfaas_scheduler_dispatched_total');
    }, 10_000);
    expect(settled, `runs in flight ${after.value('lfaas_scheduler_runs_in_flight')}, completed ${after.value('lfaas_scheduler_completed_total')} of ${after.value('lfaas_scheduler_dispatched_total')}`).toBe(true);
    const delta = (name: string): number => after.value(name) - before.value(name);

    // The scheduler saw the sync calls that went through it, plus the async one.
    expect(delta('lfaas_scheduler_calls_accepted_total') + delta('lfaas_scheduler_dag_calls_total')).toBeGreaterThanOrEqual(viaScheduler + 1);
    expect(delta('lfaas_scheduler_dag_calls_total')).toBeGreaterThanOrEqual(1);
    expect(delta('lfaas_scheduler_async_calls_total')).toBeGreaterThanOrEqual(1);
    expect(delta('lfaas_scheduler_dispatched_total')).toBeGreaterThanOrEqual(viaScheduler + 1);
    expect(delta('lfaas_scheduler_registrations_total')).toBeGreaterThanOrEqual(6);
    // Direct calls never reach the scheduler: it saw fewer calls than were made.
    expect(delta('lfaas_scheduler_calls_accepted_total') + delta('lfaas_scheduler_dag_calls_total')).toBeLessThan(calls);
    expect(after.value('lfaas_scheduler_lost_total')).toBe(0);
    expect(after.value('lfaas_scheduler_executors_lost_total')).toBe(0);
    expect(after.value('lfaas_scheduler_executors')).toBe(2);

    const executorDelta = async (name: string): Promise<number> => (await executorsSum(name)) - executorsBefore[name]!;
    // Every call ran on an executor (a DAG run counts once on each executor it spans).
    expect(await executorDelta('lfaas_executor_runs_total')).toBeGreaterThanOrEqual(calls);
    expect(await executorDelta('lfaas_executor_schedules_total')).toBeGreaterThanOrEqual(direct + delta('lfaas_scheduler_dispatched_total'));
    // Each run answered once, from its sink's executor (errors and the timeout included).
    expect(await executorDelta('lfaas_executor_answered_total')).toBe(calls);
    const poolCalls = await executorDelta('lfaas_executor_pool_calls_total');
    expect(poolCalls).toBeGreaterThanOrEqual(calls + 1);
    // Every pool call started warm or cold; registering pins (prepares) a function on the
    // executors, so its calls mostly start warm.
    expect((await executorDelta('lfaas_executor_pool_warm_starts_total')) + (await executorDelta('lfaas_executor_pool_cold_starts_total'))).toBe(poolCalls);
    expect(await executorDelta('lfaas_executor_pool_warm_starts_total')).toBeGreaterThanOrEqual(1);
    // Exactly one call timed out, and nothing ran out of memory.
    expect(await executorDelta('lfaas_executor_pool_timeouts_total')).toBe(1);
    expect(await executorDelta('lfaas_executor_pool_out_of_memory_total')).toBe(0);
    // The DAG's inc triggered double.
    expect((await executorDelta('lfaas_executor_triggers_sent_total')) + (await executorDelta('lfaas_executor_triggers_local_total'))).toBeGreaterThanOrEqual(1);
    // own-writes wrote its key, read it back from the KVS once (its own write alone was cached), then from the cache.
    expect(await executorDelta('lfaas_executor_cache_writes_total')).toBeGreaterThanOrEqual(2);
    expect(await executorDelta('lfaas_executor_cache_misses_total')).toBeGreaterThanOrEqual(1);
    expect(await executorDelta('lfaas_executor_cache_hits_total')).toBeGreaterThanOrEqual(1);
    expect(await executorsSum('lfaas_executor_cache_keys')).toBeGreaterThanOrEqual(1);
    expect(await executorsSum('lfaas_executor_cache_bytes')).toBeGreaterThan(0);
    expect(await executorsSum('lfaas_executor_warm_functions')).toBeGreaterThanOrEqual(1);
    expect(await eventually(async () => (await executorsSum('lfaas_executor_runs_in_progress')) === 0, 10_000)).toBe(true);

    // Per function, on the executors (docs/observability-metrics.md): every run by outcome code, direct ones included.
    const executorTexts = await Promise.all(cluster.executors.map((executor) => scrapeMetrics(executor)));
    const perFunction = (name: string, labels: Record<string, string>): number => executorTexts.reduce((sum, text) => sum + (metricValue(text, name, labels) ?? 0), 0);
    expect(perFunction('lfaas_function_calls_total', { function: 'add', owner: 'admin', code: 'OK' })).toBe(6);
    expect(perFunction('lfaas_function_calls_total', { function: 'boom', code: 'EXEC_USER_ERROR' })).toBe(1);
    expect(perFunction('lfaas_function_calls_total', { function: 'sleepy', code: 'EXEC_TIMEOUT' })).toBe(1);
    expect(perFunction('lfaas_function_duration_seconds_count', { function: 'add' })).toBe(6);
  });

  it('--metrics-port -1 serves no metrics', async () => {
    const scheduler = await startProcess(['scheduler', '--routing', cluster.routingAddresses.join(','), '--metrics-port', '-1']);
    try {
      expect(scheduler.ready['metricsPort']).toBeNull();
      await expect(scrapeMetrics(scheduler)).rejects.toThrow(/serves no metrics/);
    } finally {
      await stopProcess(scheduler);
    }
  });
});
