/**
 * The executor cache over a real KVS cluster (routing + 2 storage nodes) through the SDK's client:
 * read-through, merge-on-write (read your writes), freshness by subscription (a write elsewhere
 * reaches the cache without a read), deletes evict, the byte bound holds and evicted keys are
 * unsubscribed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvsClient } from '../client/index.js';
import { CounterIncrements, ExecutorCache, RunScope, RuntimePool } from '../executor/index.js';
import { Counter, GSet, Lww, HybridClock } from '../lattices/index.js';
import { TestCluster, eventually } from './cluster.js';

describe('ExecutorCache over the KVS', () => {
  const cluster = new TestCluster();
  let writer: KvsClient;
  let backend: KvsClient;
  beforeAll(async () => {
    await cluster.startRouting({ global: 2 });
    await cluster.startNode('node-a');
    await cluster.startNode('node-b');
    writer = await KvsClient.connect({ routing: [cluster.routingAddress] });
    backend = await KvsClient.connect({ routing: [cluster.routingAddress] });
    await cluster.waitForRing();
  }, 60_000);
  afterAll(async () => {
    await writer.close();
    await backend.close();
    await cluster.stop();
  }, 30_000);

  it('reads through, merges on write, and stays fresh by subscription', async () => {
    const cache = new ExecutorCache(backend, { leaseMs: 3000 });
    try {
      let count = Counter.ZERO.increment('writer', 2);
      await writer.put('cache:count', count, { ack: 'replicated' });
      expect((await cache.get('cache:count'))?.reveal()).toBe(2);
      expect((await cache.get('cache:count'))?.reveal()).toBe(2);
      expect(cache.counters).toMatchObject({ misses: 1, hits: 1 });
      // A write elsewhere reaches the cache by push, with no read.
      count = count.increment('writer', 3);
      await writer.put('cache:count', count);
      expect(await eventually(() => cache.counters.pushes > 0 && cache.keys().includes('cache:count') && cache.peek('cache:count')?.reveal() === 5, 3000)).toBe(true);
      // Merge-on-write: this executor reads its own write at once, and the KVS has it.
      await cache.merge('cache:count', Counter.ZERO.increment('executor', 10), 'replicated');
      expect((await cache.get('cache:count'))?.reveal()).toBe(15);
      expect((await writer.getAll<Counter>('cache:count'))?.reveal()).toBe(15);
      await expect(cache.merge('cache:count', GSet.of('x'))).rejects.toMatchObject({ code: 'KVS_LATTICE_MISMATCH' });
      // A delete elsewhere evicts the cached value. (Acknowledged `replicated`, so that the read
      // through that follows finds the tombstone on whichever replica it asks; a `local` delete
      // reaches the other replica by gossip, and a read in between could still see the value.)
      await writer.delete('cache:count', { ack: 'replicated' });
      expect(await eventually(() => !cache.keys().includes('cache:count'), 3000)).toBe(true);
      expect(await cache.get('cache:count')).toBeUndefined();
    } finally {
      cache.close();
    }
  }, 30_000);

  it('is the host of functions run in the runtime pool: their ctx writes reach the KVS', async () => {
    const cache = new ExecutorCache(backend, { leaseMs: 3000 });
    const pool = new RuntimePool({ prewarm: 1, memoryMb: 64 });
    try {
      const visit = { id: 'visit@1', code: 'module.exports = async (page, ctx) => { const seen = (await ctx.get(page)) ?? 0; await ctx.put(page, seen + 1); return seen + 1; };', memoryMb: 64, timeoutMs: 5000 };
      // The host an executor gives a call in the lww mode: reads and writes through its cache.
      const host = new RunScope({ cache, clock: new HybridClock('executor', () => Date.now()), self: 'executor', writerId: 'executor', causalWaitMs: 1000, fetchPinned: async () => undefined, readUncached: (key) => backend.get(key) }, 'run-1', 'lww');
      for (let i = 1; i <= 3; i++) expect(await pool.run(visit, ['cache:page'], host)).toBe(i);
      expect(await eventually(async () => (await writer.getAll<Lww<number>>('cache:page'))?.reveal() === 3, 3000)).toBe(true);
      // A write elsewhere is what the next call sees (pushed into the cache).
      await writer.put('cache:page', Lww.write(new HybridClock('elsewhere', () => Date.now() + 1000), 100), { ack: 'replicated' });
      expect(await eventually(() => cache.peek('cache:page')?.reveal() === 100, 3000)).toBe(true);
      // Its write follows what it read, though that came from a clock a second ahead.
      expect(await pool.run(visit, ['cache:page'], host)).toBe(101);
      expect(await eventually(async () => (await writer.getAll<Lww<number>>('cache:page'))?.reveal() === 101, 3000)).toBe(true);
    } finally {
      await pool.close();
      cache.close();
    }
  }, 30_000);

  it('remembers a key read absent (a hit next time, no KVS read) until a write elsewhere is pushed to it', async () => {
    const cache = new ExecutorCache(backend, { leaseMs: 3000 });
    try {
      expect(await cache.get('cache:absent')).toBeUndefined();
      expect(await cache.get('cache:absent')).toBeUndefined();
      expect(cache.counters).toMatchObject({ misses: 1, absentHits: 1 });
      expect(cache.absentCount).toBe(1);
      expect(cache.keys()).not.toContain('cache:absent');
      // A write elsewhere reaches it by push: held from then on, with no read.
      await writer.put('cache:absent', Counter.ZERO.increment('writer', 7), { ack: 'replicated' });
      expect(await eventually(() => cache.peek('cache:absent')?.reveal() === 7, 3000)).toBe(true);
      expect(await cache.get('cache:absent')).toBeInstanceOf(Counter);
      expect(cache.counters.misses).toBe(1);
      expect(cache.absentCount).toBe(0);
      expect(cache.subscriptionCount).toBe(1);
      // A key read absent and then written here is held, whole.
      expect(await cache.get('cache:absent-then-merged')).toBeUndefined();
      await cache.merge('cache:absent-then-merged', GSet.of('x'), 'replicated');
      expect((await cache.get('cache:absent-then-merged'))?.reveal()).toEqual(['x']);
      expect(cache.absentCount).toBe(0);
    } finally {
      cache.close();
    }
  }, 30_000);

  it('holds at most its byte bound, evicting (and unsubscribing) the least recently used', async () => {
    const cache = new ExecutorCache(backend, { bytesMax: 4096, leaseMs: 3000 });
    try {
      const clock = new HybridClock('writer', () => Date.now());
      await Promise.all(Array.from({ length: 20 }, (_, i) => writer.put(`cache:big-${i}`, Lww.write(clock, 'x'.repeat(500)), { ack: 'replicated' })));
      for (let i = 0; i < 20; i++) expect((await cache.get(`cache:big-${i}`))?.reveal()).toBe('x'.repeat(500));
      expect(cache.bytes).toBeLessThanOrEqual(4096);
      expect(cache.keys().length).toBeLessThan(20);
      expect(cache.counters.evictions).toBeGreaterThan(0);
      expect(cache.subscriptionCount).toBe(cache.keys().length);
      // The most recent keys are the ones kept.
      expect(cache.keys()).toContain('cache:big-19');
    } finally {
      cache.close();
    }
  }, 30_000);
  it('increments a Counter from two executors at once without losing any, in fewer writes than increments', async () => {
    const caches = [new ExecutorCache(backend, { leaseMs: 3000 }), new ExecutorCache(writer, { leaseMs: 3000 })];
    const counters = caches.map((cache, index) => new CounterIncrements(cache, `executor-${index}`));
    try {
      // 2 executors x 200 increments, 50 in flight each; one in ten takes 3 away instead.
      const amounts = Array.from({ length: 200 }, (_, index) => (index % 10 === 9 ? -3 : 1));
      const expected = 2 * amounts.reduce((sum, amount) => sum + amount, 0);
      await Promise.all(
        counters.map(async (counter) => {
          for (let at = 0; at < amounts.length; at += 50) await Promise.all(amounts.slice(at, at + 50).map((amount) => counter.add('cache:hot', amount)));
        }),
      );
      for (const counter of counters) {
        expect(counter.counters.increments).toBe(200);
        // Concurrent calls shared writes (the group commit).
        expect(counter.counters.writes).toBeLessThan(200);
        expect(counter.counters.failures).toBe(0);
      }
      const merged = await writer.getAll<Counter>('cache:hot');
      expect(merged?.reveal()).toBe(expected);
      // One writer entry per executor, not one per call.
      expect(merged?.increments.size).toBe(2);
      // A retried increment (same name) is not added twice; its answer is the value held.
      const before = await counters[0]!.add('cache:retry', 5, 'run-1\u0000f\u00000');
      expect(before).toBe(5);
      expect(await counters[0]!.add('cache:retry', 5, 'run-1\u0000f\u00000')).toBe(5);
      expect(counters[0]!.counters.retriesSkipped).toBe(1);
      expect((await writer.getAll<Counter>('cache:retry'))?.reveal()).toBe(5);
      // Bad amounts and a key of another type are refused, typed, and add nothing.
      await expect(counters[0]!.add('cache:retry', 1.5)).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
      await expect(counters[0]!.add('cache:retry', 2 ** 40)).rejects.toMatchObject({ code: 'EXEC_BAD_VALUE' });
      await writer.put('cache:not-counter', GSet.of('x'), { ack: 'replicated' });
      await expect(counters[1]!.add('cache:not-counter', 1)).rejects.toMatchObject({ code: 'KVS_LATTICE_MISMATCH' });
      expect((await writer.getAll<Counter>('cache:retry'))?.reveal()).toBe(5);
    } finally {
      for (const cache of caches) cache.close();
    }
  }, 30_000);
});
