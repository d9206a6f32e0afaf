/**
 * Waits (bounded) until the routing nodes' ring spreads keys over every given shard: what a
 * launcher, a benchmark or a test waits for after starting storage nodes, instead of sleeping.
 */
import { KvsClient } from '../client/index.js';

export async function waitForRing(routing: readonly string[], shards: readonly string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; attempt < 400 && Date.now() < deadline; attempt++) {
    // A fresh client each time: a cached address must not hide a ring change.
    const client = await KvsClient.connect({ routing, requestTimeoutMs: 500 });
    try {
      const seen = new Set<string>();
      const replicas = await Promise.all(Array.from({ length: 64 }, (_, i) => client.replicasOf(`ring-probe-${i}`).catch(() => [] as readonly string[])));
      for (const list of replicas) for (const replica of list) seen.add(replica);
      if (shards.every((shard) => seen.has(shard))) return;
    } finally {
      await client.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the ring did not list every storage shard within ${timeoutMs} ms`);
}
