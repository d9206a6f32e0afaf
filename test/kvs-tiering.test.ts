/**
 * Tiering as real processes: a storage node whose one shard has a 1 MiB memory budget takes
 * 50 MiB of values (acknowledged DURABLE), is killed with kill -9, restarts on its data folder
 * (loading nothing into memory up front), and serves every key with its exact value; its memory
 * tier stays within the budget throughout (the shard's own gauge, scraped over HTTP), and the
 * reads came from disk.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KvsClient } from '../client/index.js';
import { GSet } from '../lattices/index.js';
import { TestCluster, isAlive, metricValue, scrapeMetrics } from './cluster.js';

const BUDGET_MB = 1;
const VALUE_BYTES = 16 * 1024;
const KEYS = 3200; // 3,200 x 16 KiB = 50 MiB

/** The value of key i: its own text, padded to VALUE_BYTES (every key's is different). */
const valueOf = (i: number): string => `value-${i}-`.padEnd(VALUE_BYTES, String.fromCharCode(97 + (i % 26)));

describe('tiering (real processes)', () => {
  let cluster: TestCluster | undefined;
  let client: KvsClient | undefined;
  afterEach(async () => {
    await client?.close();
    client = undefined;
    await cluster?.stop();
    cluster = undefined;
  });

  it('a shard with a 1 MiB budget holding 50 MiB serves every key correctly after kill -9 and a restart', async () => {
    cluster = new TestCluster();
    await cluster.startRouting({ global: 1 });
    const args = ['--shard-memory-mb', String(BUDGET_MB)];
    const node = await cluster.startNode('node-t', 1, 'off', args);
    await cluster.waitForRing();
    client = await KvsClient.connect({ routing: [cluster.routingAddress], requestTimeoutMs: 5000, retriesMax: 20 });

    const budget = BUDGET_MB * 1024 * 1024;
    let memoryMax = 0;
    const sample = async (): Promise<void> => {
      const memory = metricValue(await scrapeMetrics(cluster!.nodes.get('node-t')!), 'lfaas_kvs_memory_bytes') ?? Infinity;
      memoryMax = Math.max(memoryMax, memory);
    };
    // 16 writers of DURABLE PUTs; the shard refuses writes (KVS_BUSY) while the disk is behind,
    // and the client retries them.
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = next++; i < KEYS; i = next++) {
          await client!.put(`t/${i}`, GSet.of(valueOf(i)), { ack: 'durable' });
          if (i % 400 === 0) await sample();
        }
      }),
    );
    await sample();
    const before = await scrapeMetrics(node);
    expect(metricValue(before, 'lfaas_kvs_memory_budget_bytes')).toBe(budget);
    expect(metricValue(before, 'lfaas_kvs_evictions_total')).toBeGreaterThan(KEYS / 2);

    process.kill(node.pid, 'SIGKILL');
    expect(await new Promise((resolve) => setTimeout(() => resolve(isAlive(node.pid)), 200))).toBe(false);
    const restarted = await cluster.startNode('node-t', 1, 'off', args);
    expect(Number(restarted.ready['keys'])).toBe(KEYS);
    await cluster.waitForRing();

    // Every key, with its exact value, in a shuffled order (no help from disk order).
    const order = Array.from({ length: KEYS }, (_, i) => (i * 7919) % KEYS);
    let wrong = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let n = done++; n < KEYS; n = done++) {
          const i = order[n]!;
          const value = await client!.get<GSet<string>>(`t/${i}`);
          const elements = value?.reveal() ?? [];
          if (elements.length !== 1 || elements[0] !== valueOf(i)) wrong++;
          if (n % 400 === 0) await sample();
        }
      }),
    );
    expect(wrong).toBe(0);
    await sample();
    const after = await scrapeMetrics(restarted);
    expect(metricValue(after, 'lfaas_kvs_disk_reads_total')).toBeGreaterThanOrEqual(KEYS - 64);
    expect(metricValue(after, 'lfaas_kvs_disk_corrupt_total')).toBe(0);
    expect(memoryMax).toBeLessThanOrEqual(budget);
  }, 120_000);
});
