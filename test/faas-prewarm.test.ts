/**
 * Prewarm along the DAG and prefetch, over real processes (one executor, so every function of a
 * run is placed on it and its counters tell the whole story):
 * - a DAG a -> b -> c whose runtimes have all gone cold (a 1 s keep-alive): when the run is
 *   scheduled, b and c are prepared while a runs, so their triggers find warm runtimes: one cold
 *   start (a), two warm ones; with prewarm off (a second executor started with
 *   --no-dag-prewarm), the same DAG costs three cold starts;
 * - a function called with `ref(key)` arguments and declaring `reads`: the keys are read into
 *   the executor's cache when the run is scheduled, and the run's reads of them are counted as
 *   prefetched keys used; a `reads` prefix is learnt from the keys the function read before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatticeFaas } from '../client/index.js';
import { HybridClock, Lww, dag, ref } from '../client/index.js';
import { FaasCluster, eventually, metricValue, scrapeMetrics, stopProcess } from './cluster.js';
import type { RoleProcess } from './cluster.js';

const SLOW_STEP = 'module.exports = async (x) => { await new Promise((resolve) => setTimeout(resolve, 400)); return x + 1; };';

async function counters(executor: RoleProcess): Promise<Record<string, number>> {
  const text = await scrapeMetrics(executor);
  const read = (name: string): number => metricValue(text, name) ?? 0;
  return {
    cold: read('lfaas_executor_pool_cold_starts_total'),
    warm: read('lfaas_executor_pool_warm_starts_total'),
    prewarms: read('lfaas_executor_prewarms_total'),
    warms: read('lfaas_executor_warms_total'),
    prefetched: read('lfaas_executor_prefetched_keys_total'),
    prefetchUsed: read('lfaas_executor_prefetch_used_total'),
    hits: read('lfaas_executor_cache_hits_total'),
    warmFunctions: read('lfaas_executor_warm_functions'),
  };
}

function delta(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(after).map(([name, value]) => [name, value - (before[name] ?? 0)]));
}

describe('prewarm along the DAG, and prefetch', () => {
  const cluster = new FaasCluster();
  const clock = new HybridClock('prewarm-test', () => Date.now());
  const put = (key: string, value: unknown): Promise<void> => faas.kvs.put(key, Lww.write(clock, value), { ack: 'replicated' });
  let faas: LatticeFaas;

  beforeAll(async () => {
    await cluster.startRouting();
    await cluster.startNode('node-0');
    await cluster.waitForRing();
    await cluster.startScheduler(2000);
    await cluster.startExecutor(4);
    await cluster.waitForExecutors();
    faas = await cluster.connect();
  }, 60_000);

  afterAll(async () => {
    await faas?.close();
    await cluster.stop();
  });

  /** Registers a -> b -> c under `prefix`, waits until registration's pins have loaded and then the 1 s keep-alive has unloaded them. */
  async function coldChain(prefix: string, executor: RoleProcess): Promise<string> {
    const options = { timeoutMs: 10_000, keepAliveMs: 1000 };
    const a = await faas.register(`${prefix}a`, { code: SLOW_STEP }, options);
    const b = await faas.register(`${prefix}b`, { code: SLOW_STEP }, options);
    const c = await faas.register(`${prefix}c`, { code: SLOW_STEP }, options);
    const chain = await faas.registerDag(dag(`${prefix}chain`).fn(a).fn(b, [a.name]).fn(c, [b.name]).build());
    // Registration pins them (a runtime specialised ahead of calls); the keep-alive then unloads them.
    await eventually(async () => ((await counters(executor))["warmFunctions"] ?? 0) >= 3, 20_000);
    expect(await eventually(async () => (await counters(executor))["warmFunctions"] === 0, 20_000), 'the pinned runtimes never went cold').toBe(true);
    return chain.name;
  }

  it('a cold DAG run prepares its downstream functions while the first one runs: one cold start, two warm', async () => {
    const executor = cluster.executors[0]!;
    const chain = await coldChain('pw-', executor);
    const before = await counters(executor);
    expect(await faas.callDag(chain, { 'pw-a': [1] } as never)).toBe(4);
    const seen = delta(await counters(executor), before);
    expect(seen['prewarms'], JSON.stringify(seen)).toBe(2);
    expect(seen['warms'], JSON.stringify(seen)).toBe(2);
    expect(seen['cold'], JSON.stringify(seen)).toBe(1);
    expect(seen['warm'], JSON.stringify(seen)).toBe(2);
  }, 90_000);

  it('without prewarm the same cold DAG costs three cold starts', async () => {
    // The first executor goes; one that does not prewarm takes its place.
    await stopProcess(cluster.executors[0]!);
    cluster.executors.splice(0, 1);
    const executor = await cluster.startExecutor(4, ['--no-dag-prewarm']);
    await cluster.waitForExecutors();
    const chain = await coldChain('np-', executor);
    const before = await counters(executor);
    expect(await faas.callDag(chain, { 'np-a': [1] } as never)).toBe(4);
    const seen = delta(await counters(executor), before);
    expect(seen['prewarms'], JSON.stringify(seen)).toBe(0);
    expect(seen['cold'], JSON.stringify(seen)).toBe(3);
    expect(seen['warm'], JSON.stringify(seen)).toBe(0);
  }, 90_000);

  it('prefetches ref arguments and declared reads when the run is scheduled, and the run reads them from the cache', async () => {
    const executor = cluster.executors[0]!;
    for (let i = 0; i < 4; i++) await put(`pf/blob-${i}`, 'x'.repeat(1000 + i));
    await put('pf/config', { scale: 3 });
    const sum = await faas.register(
      'pf-sum',
      { code: "module.exports = async (...args) => { const ctx = args.pop(); const config = await ctx.get('pf/config'); return args.reduce((total, blob) => total + blob.length, 0) * config.scale; };" },
      { timeoutMs: 10_000, reads: ['pf/config'] },
    );
    const before = await counters(executor);
    const result = await faas.call(sum, [ref('pf/blob-0'), ref('pf/blob-1'), ref('pf/blob-2'), ref('pf/blob-3')] as never);
    expect(result).toBe((1000 + 1001 + 1002 + 1003) * 3);
    const seen = delta(await counters(executor), before);
    // 4 refs and the declared key: read into the cache when the run was scheduled, then read by the run.
    expect(seen['prefetched'], JSON.stringify(seen)).toBe(5);
    expect(seen['prefetchUsed'], JSON.stringify(seen)).toBe(5);
  }, 60_000);

  it('a reads prefix prefetches the keys under it that the function read before', async () => {
    const executor = cluster.executors[0]!;
    await put('pfx/user/ann', 1);
    await put('pfx/user/bob', 2);
    const users = await faas.register(
      'pfx-users',
      { code: "module.exports = async (ctx) => (await ctx.get('pfx/user/ann')) + (await ctx.get('pfx/user/bob'));" },
      { timeoutMs: 10_000, reads: ['pfx/user/*'] },
    );
    expect(await faas.call(users, [])).toBe(3);
    const before = await counters(executor);
    expect(await faas.call(users, [])).toBe(3);
    const seen = delta(await counters(executor), before);
    expect(seen['prefetched'], JSON.stringify(seen)).toBe(2);
    expect(seen['prefetchUsed'], JSON.stringify(seen)).toBe(2);
  }, 60_000);
});
