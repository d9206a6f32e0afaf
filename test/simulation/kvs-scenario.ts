/**
 * The KVS fault scenario of kvs.test.ts (here so that other runners can import it without
 * registering those tests): in the deterministic simulator, routing nodes, 3 storage nodes of 2 shards
 * (replication factor 2), clients writing GSet elements with random ack modes; message loss,
 * duplication, reordering, partitions, and storage nodes crashing and restarting from their disks.
 * After healing: every key's replicas (per the final ring) hold the same entry, and every element
 * whose PUT was acknowledged DURABLE or REPLICATED is in it. Membership is modelled: a rogue that
 * is no member sends the cluster's own messages throughout, and every one is refused (with
 * LFAAS_SIM_NO_AUTH=1 they are not, and the rogue joins the ring: the check fails).
 */
import { expect } from 'vitest';
import { Membership, entriesEqual } from '../../kvs/index.js';
import type { Shard } from '../../kvs/index.js';
import { Simulation } from '../simulator/simulation.js';
import { rogue } from '../simulator/rogue.js';
import { WorkloadClient, buildCluster, elementsOf, nodeName, routingName, shardName } from './kvs-cluster.js';
import type { ClusterShape } from './kvs-cluster.js';

const SHAPE: ClusterShape = { routing: 2, nodes: 3, shardsPerNode: 2, global: 2, local: 1 };

interface Outcome {
  readonly sim: Simulation;
  readonly clients: WorkloadClient[];
  /** Tiered runs: the most memory any shard held at any step beyond its committed-only entries' share (see below), and the data over the budget at the end. */
  readonly tier?: { readonly overBudget: number; readonly dataOverBudget: number; readonly diskReads: number };
}

/** The tiered variant: each shard's memory budget, and keys enough for a dataset many times larger. */
export interface TierOptions {
  readonly memoryBudgetBytes: number;
  readonly keys: number;
}

export function run(seed: number, faults: boolean, tiered?: TierOptions): Outcome {
  const sim = new Simulation({ seed, delayMs: { min: 1, max: 4 }, dropRate: faults ? 0.05 : 0, duplicateRate: faults ? 0.05 : 0, reorder: faults, authenticate: process.env['LFAAS_SIM_NO_AUTH'] !== '1' });
  buildCluster(sim, SHAPE, tiered === undefined ? {} : { memoryBudgetBytes: tiered.memoryBudgetBytes });
  const routing = Array.from({ length: SHAPE.routing }, (_, r) => sim.address(routingName(r)));
  // Membership modelled: a non-member sends the cluster's own messages to every node throughout.
  const everyone = [...routing, ...Array.from({ length: SHAPE.nodes }, (_, n) => [nodeName(n), ...Array.from({ length: SHAPE.shardsPerNode }, (_, s) => shardName(n, s))].map((id) => sim.address(id))).flat()];
  sim.add('rogue', () => rogue(sim.address('rogue'), everyone, 1000));
  const clients = [0, 1].map((c) => new WorkloadClient(sim.address(`c${c}`), routing, sim.random.fork(), tiered?.keys ?? 12, tiered === undefined ? 7 : 3, tiered === undefined ? 0 : 64));
  clients.forEach((client, c) => sim.add(`c${c}`, () => client));
  const nodeMachines = (n: number): string[] => [nodeName(n), ...Array.from({ length: SHAPE.shardsPerNode }, (_, s) => shardName(n, s))];
  // Tiered: after every 20 ms of virtual time, each live shard's memory is within its budget, or
  // holds only uncommitted entries (they cannot leave before their commit; an entry larger than
  // the whole budget is held while it is written).
  let overBudget = 0;
  const runFor = (ms: number): void => {
    if (tiered === undefined) return sim.runFor(ms);
    for (let elapsed = 0; elapsed < ms; elapsed += 20) {
      sim.runFor(Math.min(20, ms - elapsed));
      for (let n = 0; n < SHAPE.nodes; n++) {
        for (let s = 0; s < SHAPE.shardsPerNode; s++) {
          const shard = sim.machine<Shard>(shardName(n, s));
          if (shard !== undefined && !shard.tierConsistent()) overBudget = Math.max(overBudget, Number.MAX_SAFE_INTEGER);
          const memory = shard?.memory();
          if (memory !== undefined && memory.bytes > memory.budgetBytes && memory.bytes > memory.dirtyBytes) overBudget = Math.max(overBudget, memory.bytes - memory.budgetBytes);
        }
      }
    }
  };
  runFor(300);
  if (faults) {
    for (let round = 0; round < 10; round++) {
      const roll = sim.random.int(4);
      const n = sim.random.int(SHAPE.nodes);
      if (roll === 0) for (const id of nodeMachines(n)) sim.crash(id);
      else if (roll === 1) for (const id of nodeMachines(n)) sim.restart(id);
      else if (roll === 2) sim.partition(nodeMachines(n), [...Array.from({ length: SHAPE.nodes }, (_, m) => m).filter((m) => m !== n).flatMap(nodeMachines), routingName(0)]);
      else sim.heal();
      runFor(100 + sim.random.int(400));
    }
  } else runFor(2000);
  for (const client of clients) client.stopped = true;
  sim.heal();
  for (let n = 0; n < SHAPE.nodes; n++) for (const id of nodeMachines(n)) sim.restart(id);
  runFor(12_000);
  if (tiered === undefined) return { sim, clients };
  const shards = Array.from({ length: SHAPE.nodes }, (_, n) => Array.from({ length: SHAPE.shardsPerNode }, (_, s) => sim.machine<Shard>(shardName(n, s))!)).flat();
  const dataOverBudget = shards.reduce((sum, shard) => sum + shard.bytes, 0) / shards.length / tiered.memoryBudgetBytes;
  const diskReads = shards.reduce((sum, shard) => sum + shard.memory().diskReads, 0);
  return { sim, clients, tier: { overBudget, dataOverBudget, diskReads } };
}

export function check({ sim, clients }: Outcome): void {
  const routing = sim.machine<import('../../kvs/index.js').RoutingNode>(routingName(0))!;
  const membership = new Membership({ global: 1, local: 1 });
  membership.merge(routing.membership.toWire());
  const ring = membership.ring();
  expect(ring.nodeCount).toBe(SHAPE.nodes);
  // The rogue's messages were refused (counted), and the ring above holds no rogue node.
  expect(sim.unauthorised).toBeGreaterThan(0);
  const shards = new Map<string, Shard>();
  for (let n = 0; n < SHAPE.nodes; n++) for (let s = 0; s < SHAPE.shardsPerNode; s++) shards.set(sim.address(shardName(n, s)), sim.machine<Shard>(shardName(n, s))!);
  const deleted = new Set(clients.flatMap((client) => [...client.deleteKeys]));
  expect(deleted.size).toBeGreaterThan(0);
  for (const key of deleted) {
    // PUTs and DELETEs mixed: the replicas agree on one entry (a value or a tombstone).
    const entries = ring.replicasOf(key).map((address) => shards.get(address)!.entry(key));
    for (const entry of entries) {
      expect(entry === undefined, `${key}: held by some replicas only`).toBe(entries[0] === undefined);
      if (entry !== undefined) expect(entriesEqual(entry, entries[0]!), `${key}: replicas disagree`).toBe(true);
    }
  }
  // The incrementally kept anti-entropy digests equal a full recomputation on every shard.
  for (const shard of shards.values()) expect(shard.digestsConsistent(), `${shard.address}: digests drifted`).toBe(true);
  const keys = new Set(clients.flatMap((client) => [...client.acknowledged.sent.keys()].filter((key) => key.startsWith('k'))));
  for (const key of keys) {
    const replicas = ring.replicasOf(key);
    expect(replicas.length).toBe(SHAPE.global * SHAPE.local);
    const values = replicas.map((address) => elementsOf(shards.get(address)!.entry(key)?.value));
    const sent = new Set(clients.flatMap((client) => [...(client.acknowledged.sent.get(key) ?? [])]));
    const safe = clients.flatMap((client) => [...(client.acknowledged.safe.get(key) ?? [])]);
    for (const value of values) {
      // Converged: every replica holds the same set.
      expect([...value].sort()).toEqual([...values[0]!].sort());
      // Nothing acknowledged as safe is lost; nothing was invented.
      for (const element of safe) expect(value.has(element), `${key}: acknowledged ${element} lost`).toBe(true);
      for (const element of value) expect(sent.has(element)).toBe(true);
    }
  }
}

