/**
 * The demo `npm start` runs against the local cluster: several clients increment one shared
 * counter at once, first as a `Counter` lattice (every increment kept), then as a naive
 * read-modify-write of an LWW register (concurrent updates overwrite each other). Then every
 * replica of both keys is read back, and the lost updates printed.
 */
import { KvsClient } from '../client/index.js';
import { Counter, HybridClock, Lww } from '../lattices/index.js';

const CLIENTS = 4;
const INCREMENTS = 25;

export async function runDemo(routing: readonly string[]): Promise<boolean> {
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => KvsClient.connect({ routing })));
  const run = `${Date.now().toString(36)}`;
  const counterKey = `demo:${run}:counter`;
  const naiveKey = `demo:${run}:naive`;
  try {
    console.log(`\ndemo: ${CLIENTS} clients x ${INCREMENTS} increments of one shared counter, concurrently, each write acknowledged 'replicated'`);
    await Promise.all(
      clients.map(async (client, c) => {
        // A PN-counter keeps one count per writer and merges by maximum: each client writes its own
        // running count, so concurrent writers never overwrite each other.
        let mine = Counter.ZERO;
        for (let step = 0; step < INCREMENTS; step++) {
          mine = mine.increment(`client-${c}-${run}`);
          await client.put(counterKey, mine, { ack: 'replicated' });
        }
      }),
    );
    const clocks = clients.map((_, c) => new HybridClock(`client-${c}-${run}`, () => Date.now()));
    await clients[0]!.put(naiveKey, Lww.write(clocks[0]!, 0), { ack: 'replicated' });
    await Promise.all(
      clients.map(async (client, c) => {
        for (let step = 0; step < INCREMENTS; step++) {
          const current = ((await client.get<Lww<number>>(naiveKey))?.reveal() as number | undefined) ?? 0;
          await client.put(naiveKey, Lww.write(clocks[c]!, current + 1), { ack: 'replicated' });
        }
      }),
    );
    const expected = CLIENTS * INCREMENTS;
    const replicas = await clients[0]!.replicasOf(counterKey);
    const counter = (await clients[0]!.getAll<Counter>(counterKey))?.reveal();
    const naive = (await clients[0]!.getAll<Lww<number>>(naiveKey))?.reveal() as number | undefined;
    console.log(`\n  key                     value   expected  lost updates   (merged over ${replicas.length} replicas)`);
    console.log(`  Counter lattice         ${String(counter).padEnd(7)} ${String(expected).padEnd(9)} ${expected - Number(counter)}`);
    console.log(`  naive LWW read-modify   ${String(naive).padEnd(7)} ${String(expected).padEnd(9)} ${expected - Number(naive)}`);
    const ok = counter === expected;
    console.log(ok ? `\nthe Counter kept all ${expected} increments; the LWW read-modify-write lost ${expected - Number(naive)} concurrent updates.` : '\nthe Counter lost increments: this is a bug');
    return ok;
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
}
