/**
 * Subscriptions across real processes: a subscriber (what an executor cache will be) registers
 * keys; writes through another client are pushed to it, deletes too; after a node joins and keys
 * move, pushes keep coming from the keys' new replicas. Plus the Prometheus endpoint of a node.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KvsClient } from '../client/index.js';
import { Counter } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { TestCluster, eventually } from './cluster.js';

const KEYS = Array.from({ length: 24 }, (_, i) => `sub-${i}`);

describe('KVS subscriptions and metrics (processes)', () => {
  let cluster: TestCluster | undefined;
  const clients: KvsClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close();
    await cluster?.stop();
    cluster = undefined;
  });

  it('pushes every new merged value to a subscriber, deletes too, and keeps pushing after keys move to a new node', async () => {
    cluster = new TestCluster();
    await cluster.startRouting({ global: 2, failureTimeoutMs: 1000 });
    await cluster.startNode('node-a');
    await cluster.startNode('node-b');
    const writer = await KvsClient.connect({ routing: [cluster.routingAddress] });
    const subscriber = await KvsClient.connect({ routing: [cluster.routingAddress] });
    clients.push(writer, subscriber);
    await cluster.waitForRing();

    const seen = new Map<string, AnyLattice | undefined>();
    const subscription = subscriber.subscribe(KEYS, (key, value) => seen.set(key, value), 3000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const counters = new Map(KEYS.map((key) => [key, Counter.ZERO]));
    const bump = async (times: number): Promise<void> => {
      for (let step = 0; step < times; step++) {
        await Promise.all(
          KEYS.map((key) => {
            const next = counters.get(key)!.increment('writer');
            counters.set(key, next);
            return writer.put(key, next);
          }),
        );
      }
    };
    await bump(3);
    const caughtUp = (expected: number): boolean => KEYS.every((key) => seen.get(key)?.reveal() === expected);
    expect(await eventually(() => caughtUp(3), 3000), JSON.stringify([...seen].map(([k, v]) => [k, v?.reveal()]))).toBe(true);

    await writer.delete(KEYS[0]!, { ack: 'replicated' });
    expect(await eventually(() => seen.has(KEYS[0]!) && seen.get(KEYS[0]!) === undefined, 3000)).toBe(true);
    counters.set(KEYS[0]!, Counter.ZERO);
    seen.delete(KEYS[0]!);

    // A new node: some keys move to it; their subscriptions follow and pushes continue.
    await cluster.startNode('node-c');
    const shard = cluster.shardsOf('node-c')[0]!;
    expect(await eventually(async () => (await Promise.all(KEYS.map((key) => writer.replicasOf(key)))).some((replicas) => replicas.includes(shard)), 5000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await bump(2);
    const moved = (await Promise.all(KEYS.map(async (key) => ((await subscriber.replicasOf(key)).includes(shard) ? key : undefined)))).filter((key) => key !== undefined);
    expect(moved.length).toBeGreaterThan(0);
    const expected = (key: string): number => counters.get(key)!.reveal();
    expect(await eventually(() => KEYS.every((key) => seen.get(key)?.reveal() === expected(key)), 5000), JSON.stringify([...seen].map(([k, v]) => [k, v?.reveal()]))).toBe(true);

    // After close, no more pushes reach the callback.
    subscription.close();
    const before = seen.get(KEYS[1]!)?.reveal();
    await bump(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(seen.get(KEYS[1]!)?.reveal()).toBe(before);
  }, 60_000);

  it('serves Prometheus metrics of every shard (shards in worker threads)', async () => {
    cluster = new TestCluster();
    await cluster.startRouting({ global: 1 });
    const node = await cluster.startNode('node-a', 2, 'on');
    const client = await KvsClient.connect({ routing: [cluster.routingAddress] });
    clients.push(client);
    await cluster.waitForRing();
    for (let i = 0; i < 20; i++) await client.put(`m-${i}`, Counter.ZERO.increment('w', i + 1));
    for (let i = 0; i < 20; i++) await client.get(`m-${i}`);
    const url = `http://127.0.0.1:${String(node.ready['metricsPort'])}/metrics`;
    const total = (text: string, name: string, label = ''): number =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) && line.includes(label))
        .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    expect(
      await eventually(async () => {
        const text = await (await fetch(url)).text();
        return total(text, 'lfaas_kvs_requests_total', 'kind="put"') >= 20 && total(text, 'lfaas_kvs_requests_total', 'kind="get"') >= 20 && total(text, 'lfaas_kvs_keys') === 20;
      }, 3000),
    ).toBe(true);
    const text = await (await fetch(url)).text();
    expect(text).toContain('shard="0"');
    expect(text).toContain('shard="1"');
    expect(text).toContain('lfaas_kvs_request_duration_seconds_bucket');
  }, 30_000);
});
