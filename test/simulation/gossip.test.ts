/**
 * The simulator's proof: five gossiping lattice replicas under message loss, duplication,
 * reordering, partitions and crashes converge, after healing, to the merge of every update, over
 * hundreds of seeds (thousands with LFAAS_LONG=1). A failure names its seed.
 */
import { describe, expect, it } from 'vitest';
import { GossipReplica } from '../../kvs/index.js';
import { Counter, GSet, HybridClock, Lww, MapLattice } from '../../lattices/index.js';
import type { AnyLattice } from '../../lattices/index.js';
import { pb } from '../../protocol/index.js';
import type { Random } from '../../protocol/index.js';
import { forEachSeed, seedCount, Simulation } from '../simulator/simulation.js';

const IDS = ['r0', 'r1', 'r2', 'r3', 'r4'];
const KEYS = ['counter', 'register', 'set', 'nested'];

/** A random update to a random key, as the lattice that key holds. */
function randomUpdate(random: Random, writer: string, clock: HybridClock): [string, AnyLattice] {
  const key = random.pick(KEYS);
  switch (key) {
    case 'counter':
      return [key, random.chance(0.7) ? Counter.ZERO.increment(writer, 1 + random.int(3)) : Counter.ZERO.decrement(writer, 1)];
    case 'register':
      return [key, Lww.write(clock, `${writer}:${random.int(1000)}`)];
    case 'set':
      return [key, GSet.of(random.int(50))];
    default:
      return [key, MapLattice.of({ [`m${random.int(3)}`]: Counter.ZERO.increment(writer) })];
  }
}

interface World {
  sim: Simulation;
  /** The merge of every update any client made, per key. */
  expected: Map<string, AnyLattice>;
  /** Each replica's durable state (its "disk"), written on every merge. */
  disks: Map<string, Map<string, AnyLattice>>;
}

function build(seed: number, faults: boolean, gossips = true): World {
  const sim = new Simulation({
    seed,
    delayMs: { min: 1, max: 20 },
    dropRate: faults ? 0.2 : 0,
    duplicateRate: faults ? 0.1 : 0,
    reorder: faults,
  });
  const disks = new Map(IDS.map((id) => [id, new Map<string, AnyLattice>()]));
  for (const id of IDS) {
    sim.add(id, () => {
      const disk = disks.get(id)!;
      return new GossipReplica({
        id,
        address: sim.address(id),
        peers: gossips ? IDS.filter((p) => p !== id).map((p) => sim.address(p)) : [],
        gossipPeriodMs: 50,
        antiEntropyPeriodMs: 400,
        initial: disk,
        onMerge: (key, value) => disk.set(key, value),
      });
    });
  }
  return { sim, expected: new Map(), disks };
}

function put(world: World, replica: string, key: string, value: AnyLattice): void {
  world.sim.deliver(replica, { kind: 'message', envelope: pb.Envelope.create({ sender: 'client', kvsRequest: { kind: pb.RequestKind.PUT, tuples: [{ key, latticeType: value.type, payload: value.encode() }] } }) });
  const current = world.expected.get(key);
  world.expected.set(key, current === undefined ? value : (current.merge(value) as AnyLattice));
}

/** Every replica's value of every key, revealed, or the first difference from the expected merge. */
function divergence(world: World): string | undefined {
  for (const id of IDS) {
    const state = world.sim.machine<GossipReplica>(id)?.snapshot();
    if (state === undefined) return `${id} is down`;
    for (const [key, value] of world.expected) {
      const held = state.get(key);
      if (held === undefined) return `${id} lacks ${key}`;
      if (!held.equals(value)) return `${id} holds ${JSON.stringify(held.reveal())} for ${key}, expected ${JSON.stringify(value.reveal())}`;
    }
  }
  return undefined;
}

function scenario(seed: number, faults: boolean): World {
  const world = build(seed, faults);
  const { sim } = world;
  const random = sim.random.fork();
  const clocks = new Map(IDS.map((id) => [id, new HybridClock(`client-${id}`, () => sim.clock.now())]));
  // Client updates go to r0..r3; r4 may be wiped entirely and must catch up from the others.
  const writable = IDS.slice(0, 4);
  for (let round = 0; round < 40; round++) {
    const replica = random.pick(writable);
    if (sim.isUp(replica)) {
      const [key, value] = randomUpdate(random, replica, clocks.get(replica)!);
      put(world, replica, key, value);
    }
    if (faults) {
      const dice = random.next();
      if (dice < 0.05) sim.partition(IDS.slice(0, 2), IDS.slice(2));
      else if (dice < 0.1) sim.heal();
      else if (dice < 0.14) sim.crash(random.pick(IDS));
      else if (dice < 0.2) for (const id of IDS) sim.restart(id);
      else if (dice < 0.22) {
        sim.crash('r4');
        world.disks.get('r4')!.clear(); // a replacement machine with an empty disk
      }
    }
    sim.runFor(random.int(60));
  }
  sim.heal();
  for (const id of IDS) sim.restart(id);
  return world;
}

describe('simulation: gossiping lattice replicas', () => {
  it(`converge to the merge of every update under faults (${seedCount(300)} seeds)`, () => {
    const faults = { dropped: 0, duplicated: 0 };
    forEachSeed(seedCount(300), (seed) => {
      const world = scenario(seed, true);
      faults.dropped += world.sim.network.counters.dropped;
      faults.duplicated += world.sim.network.counters.duplicated;
      // Heal, then let gossip and anti-entropy run: bounded virtual time, checked as it goes.
      let problem: string | undefined = 'not checked';
      for (let t = 0; t < 30 && problem !== undefined; t++) {
        world.sim.runFor(500);
        problem = divergence(world);
      }
      expect(problem).toBeUndefined();
    });
    // The faults really happened.
    expect(faults.dropped).toBeGreaterThan(1000);
    expect(faults.duplicated).toBeGreaterThan(100);
  });

  it('converge quickly without faults', () => {
    forEachSeed(seedCount(50), (seed) => {
      const world = scenario(seed, false);
      world.sim.runFor(200);
      expect(divergence(world)).toBeUndefined();
    });
  });

  it('is deterministic: one seed, one trace', () => {
    const traces = [scenario(42, true), scenario(42, true), scenario(43, true)].map((w) => {
      w.sim.runFor(2000);
      return w.sim.trace;
    });
    expect(traces[0]).toBe(traces[1]);
    expect(traces[0]).not.toBe(traces[2]);
  });

  it('the checker is not vacuous: replicas that never gossip do not converge', () => {
    const world = build(7, false, false);
    const clock = new HybridClock('c', () => world.sim.clock.now());
    put(world, 'r0', 'register', Lww.write(clock, 'only on r0'));
    world.sim.runFor(5000);
    expect(divergence(world)).toMatch(/lacks register/);
  });
});
