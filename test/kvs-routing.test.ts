/**
 * Several routing nodes as real processes: they agree on the ring (clients asking either get the
 * same replicas); storage nodes report to all of them; when one routing node is killed (-9), a
 * client given both addresses keeps working through the other, which alone detects a storage
 * node's failure and re-routes its keys.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { KvsClient } from '../client/index.js';
import { GSet } from '../lattices/index.js';
import { TestCluster, eventually, isAlive } from './cluster.js';

describe('several routing nodes (processes)', () => {
  const cluster = new TestCluster();
  const clients: KvsClient[] = [];
  afterAll(async () => {
    for (const client of clients) await client.close();
    await cluster.stop();
  }, 30_000);

  it('agree on the ring, and one surviving routing node keeps the cluster working', async () => {
    const [first, second] = await cluster.startRoutingGroup(2, { global: 2, failureTimeoutMs: 1000 });
    for (const id of ['node-a', 'node-b', 'node-c']) await cluster.startNode(id);
    const [firstAddress, secondAddress] = cluster.routingAddresses as [string, string];
    const viaFirst = await KvsClient.connect({ routing: [firstAddress] });
    const viaSecond = await KvsClient.connect({ routing: [secondAddress] });
    const viaBoth = await KvsClient.connect({ routing: [firstAddress, secondAddress], requestTimeoutMs: 300, retriesMax: 8 });
    clients.push(viaFirst, viaSecond, viaBoth);
    const keys = Array.from({ length: 30 }, (_, i) => `route-${i}`);
    // Both routing nodes list all three nodes, and give the same replicas for every key.
    expect(await eventually(async () => {
      const a = await fresh([firstAddress], keys);
      const b = await fresh([secondAddress], keys);
      return JSON.stringify(a) === JSON.stringify(b) && new Set(a.flat()).size === 3;
    }, 5000)).toBe(true);

    for (const key of keys) await viaFirst.put(key, GSet.of('one'), { ack: 'replicated' });
    for (const key of keys) expect((await viaSecond.getAll<GSet<string>>(key))?.reveal()).toEqual(['one']);

    // One routing node dies: the client that knows both keeps going, through the other.
    process.kill(first!.pid, 'SIGKILL');
    expect(await eventually(() => !isAlive(first!.pid), 3000)).toBe(true);
    for (const key of keys) await viaBoth.put(key, GSet.of('two'), { ack: 'replicated' });
    for (const key of keys) expect((await viaBoth.getAll<GSet<string>>(key))?.reveal()).toEqual(['one', 'two']);

    // A storage node dies: the surviving routing node alone detects it and re-routes its keys.
    const victim = cluster.nodes.get('node-c')!;
    const victimShard = (victim.ready['shards'] as string[])[0]!;
    process.kill(victim.pid, 'SIGKILL');
    expect(await eventually(async () => (await fresh([secondAddress], keys)).every((replicas) => replicas.length === 2 && !replicas.includes(victimShard)), 6000)).toBe(true);
    for (const key of keys) expect((await viaBoth.getAll<GSet<string>>(key))?.reveal()).toEqual(['one', 'two']);
    expect(isAlive(second!.pid)).toBe(true);
  }, 60_000);
});

/** The keys' replicas as a fresh client (no cached addresses) sees them through `routing`. */
async function fresh(routing: string[], keys: readonly string[]): Promise<string[][]> {
  const client = await KvsClient.connect({ routing });
  try {
    return await Promise.all(keys.map(async (key) => [...(await client.replicasOf(key))]));
  } finally {
    await client.close();
  }
}
