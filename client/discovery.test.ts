/**
 * Discovery (discovery.ts) against a real routing node machine on the in-memory network: an
 * announcer's service is listed, a follower keeps a list current in place as schedulers come and
 * go, and stops once its Rpc is closed; with nothing announced, discovery gives up typed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { RoutingNode } from '../kvs/index.js';
import { MemoryNetwork, Rpc, runMachine, seededRandom, systemClock } from '../protocol/index.js';
import type { MachineShell } from '../protocol/index.js';
import { ServiceAnnouncer, ServiceFollower, askServices, discoverSchedulers } from './discovery.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited >= timeoutMs) throw new Error(`condition not met in ${timeoutMs} ms`);
    await sleep(20);
  }
}

describe('discovery through a routing node', () => {
  const stops: (() => unknown)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  const cluster = () => {
    const network = new MemoryNetwork({ clock: systemClock, random: seededRandom(7) });
    const routing: MachineShell = runMachine(new RoutingNode({ address: 'mem://routing', checkPeriodMs: 50 }), network.endpoint('routing'), systemClock);
    stops.push(() => routing.stop());
    return network;
  };

  it('lists announced schedulers, follows them as they come and go, and stops with its Rpc', async () => {
    const network = cluster();
    const client = new Rpc(network.endpoint('client'), systemClock);
    stops.push(() => client.close());
    await expect(discoverSchedulers(client, ['mem://routing'], Date.now() + 300)).rejects.toMatchObject({ code: ErrorCode.SCHED_NO_CAPACITY });

    const first = new ServiceAnnouncer(network.endpoint('s1'), ['mem://routing'], 'scheduler', 'mem://s1', 50);
    stops.push(() => first.stop());
    const list = await discoverSchedulers(client, ['mem://routing'], Date.now() + 5000);
    expect(list).toEqual(['mem://s1']);

    const follower = new ServiceFollower(client, ['mem://routing'], list, 'schedulers', 50);
    stops.push(() => follower.stop());
    const second = new ServiceAnnouncer(network.endpoint('s2'), ['mem://routing'], 'scheduler', 'mem://s2', 50);
    await until(() => list.length === 2);
    expect(list).toEqual(['mem://s1', 'mem://s2']);
    // A departure is unlisted at once; the follower sees it at its next round.
    second.stop();
    await until(() => list.length === 1);
    expect(list).toEqual(['mem://s1']);
    expect((await askServices(client, ['mem://routing'])).monitors).toEqual([]);

    await client.close();
    const rounds = follower.counters.rounds;
    await sleep(300);
    expect(follower.counters.rounds).toBeLessThanOrEqual(rounds + 1);
    await expect(askServices(client, ['mem://routing'])).rejects.toMatchObject({ code: ErrorCode.TRANSPORT_CLOSED });
  });
});
