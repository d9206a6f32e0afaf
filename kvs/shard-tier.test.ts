/**
 * Tiering, the shard driven directly over a real store (MemoryStore: the simulator's disk, the
 * same conformance suite as lmdb): memory never exceeds the budget whatever the data size; every
 * key reads back right, from memory or disk, and after a restart that loads nothing; uncommitted
 * writes never leave memory; gossip, anti-entropy digests, hand-off, subscriptions and tombstone
 * collection work for keys that are only on disk; and (a property) a tiered shard answers and
 * digests exactly as an all-in-memory one through any sequence of writes, deletes and commits.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Counter, GSet, decodeLattice } from '../lattices/index.js';
import { envelopeWith, pb } from '../protocol/index.js';
import type { Effect, Envelope, PbTypes } from '../protocol/index.js';
import { RECORD_OVERHEAD_BYTES } from './shard-tier.js';
import { Shard } from './shard.js';
import type { ShardOptions } from './shard-settings.js';
import { MemoryStore } from './store.js';

const ADDRESS = 'tcp://127.0.0.1:7001';
const OTHER = 'tcp://127.0.0.1:7101';
const CLIENT = 'tcp://127.0.0.1:9000';
const RING: PbTypes.IRingUpdate = { epoch: 1, nodes: [{ id: 'n1', tier: 1, address: 'tcp://127.0.0.1:7000', shardAddresses: [ADDRESS], virtualNodes: 8, incarnation: 1 }], defaultGlobal: 1, defaultLocal: 1 };
const TWO_NODES: PbTypes.IRingUpdate = {
  ...RING,
  epoch: 2,
  nodes: [...RING.nodes!, { id: 'n2', tier: 1, address: 'tcp://127.0.0.1:7100', shardAddresses: [OTHER], virtualNodes: 8, incarnation: 1 }],
};

let nextId = 1;
const message = (body: PbTypes.IEnvelope, sender = CLIENT): { kind: 'message'; envelope: Envelope } => ({
  kind: 'message',
  envelope: envelopeWith(body, { requestId: nextId++, replyTo: sender, sender }),
});
const counter = (amount: number): Counter => Counter.ZERO.increment('w', amount);
const put = (key: string, amount: number, ack: number = pb.AckMode.ACK_LOCAL) =>
  message({ kvsRequest: { kind: pb.RequestKind.PUT, ack, tuples: [{ key, latticeType: counter(amount).type, payload: counter(amount).encode() }] } });
/** A PUT of a `size`-character string into a GSet (so sets grow as they merge). */
const putBig = (key: string, size: number) => {
  const value = GSet.of(`${size}:`.padEnd(size, 'x'));
  return message({ kvsRequest: { kind: pb.RequestKind.PUT, ack: pb.AckMode.ACK_LOCAL, tuples: [{ key, latticeType: value.type, payload: value.encode() }] } });
};
const del = (key: string) => message({ kvsRequest: { kind: pb.RequestKind.DELETE, tuples: [{ key }] } });
const get = (keys: readonly string[]) => message({ kvsRequest: { kind: pb.RequestKind.GET, tuples: keys.map((key) => ({ key })) } });
const sends = (effects: readonly Effect[], to?: string) =>
  effects.filter((effect): effect is Extract<Effect, { kind: 'send' }> => effect.kind === 'send' && (to === undefined || effect.to === to)).map((effect) => effect.envelope);

/**
 * A shard over a MemoryStore whose commits wait until `commit()` (or happen at once with
 * `autoCommit`): persist effects go to the store, `persisted` inputs come back.
 */
class Harness {
  readonly pending: (() => void)[] = [];
  store: MemoryStore;
  shard!: Shard;
  nowMs = 1_000;

  constructor(
    private readonly options: Partial<ShardOptions>,
    readonly autoCommit = true,
  ) {
    this.store = new MemoryStore((_delay, callback) => this.pending.push(callback));
    this.boot();
  }

  boot(): void {
    this.shard = new Shard({ nodeId: 'n1', shardIndex: 0, address: ADDRESS, initialRing: RING, disk: this.store, ...this.options });
    this.run({ kind: 'start' });
  }

  /** A restart: the committed data only, nothing loaded into memory up front. */
  restart(): void {
    this.store = this.store.reopen();
    this.pending.length = 0;
    this.boot();
  }

  run(input: Parameters<Shard['handle']>[0]): Effect[] {
    const effects = [...this.shard.handle(input, this.nowMs++)];
    const out: Effect[] = [];
    for (const effect of effects) {
      if (effect.kind !== 'persist') {
        out.push(effect);
        continue;
      }
      this.store.commit(effect.writes, effect.sync, (error) => {
        out.push(...this.run({ kind: 'persisted', token: effect.token, ...(error === undefined ? {} : { error }) }));
      });
    }
    if (this.autoCommit) this.commit();
    return out;
  }

  commit(): void {
    for (let i = 0; i < 10_000 && this.pending.length > 0; i++) this.pending.shift()!();
  }

  values(keys: readonly string[]): (number | string)[] {
    const answer = sends(this.run(get(keys)), CLIENT)[0]?.kvsResponse?.tuples ?? [];
    return answer.map((tuple) => (tuple.error ? `error ${tuple.error.code}` : (decodeLattice(tuple.payload!).reveal() as number)));
  }
}

const keyOf = (i: number): string => `key-${String(i).padStart(5, '0')}`;

describe('tiering: a shard with a memory budget over its disk', () => {
  it('keeps memory within its budget while holding many times more, and reads every key back', () => {
    const budget = 8 * 1024;
    const h = new Harness({ memoryBudgetBytes: budget });
    for (let i = 0; i < 2000; i++) {
      h.run(put(keyOf(i), i + 1));
      expect(h.shard.memory().bytes).toBeLessThanOrEqual(budget);
    }
    expect(h.shard.keyCount).toBe(2000);
    // Far more data than memory: most keys are on disk only.
    expect(h.shard.bytes).toBeGreaterThan(4 * budget);
    expect(h.shard.memory().keys).toBeLessThan(2000 / 4);
    for (let i = 0; i < 2000; i += 97) expect(h.values([keyOf(i)])).toEqual([i + 1]);
    expect(h.shard.memory().diskReads).toBeGreaterThan(0);
    expect(h.shard.memory().evictions).toBeGreaterThan(0);
    expect(h.shard.memory().bytes).toBeLessThanOrEqual(budget);
    // A key on disk merges like one in memory (a counter keeps each writer's largest count).
    h.run(put(keyOf(3), 100));
    h.run(put(keyOf(4), 2));
    expect(h.values([keyOf(3), keyOf(4)])).toEqual([100, 5]);
  });

  it('after a restart that loads nothing, knows its keys and bytes and serves every key', () => {
    const h = new Harness({ memoryBudgetBytes: 8 * 1024 });
    for (let i = 0; i < 500; i++) h.run(put(keyOf(i), i + 1));
    const bytes = h.shard.bytes;
    h.restart();
    expect(h.shard.memory().keys).toBe(0);
    expect(h.shard.keyCount).toBe(500);
    expect(h.shard.bytes).toBe(bytes);
    expect(h.values(Array.from({ length: 500 }, (_, i) => keyOf(i)))).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(h.shard.memory().bytes).toBeLessThanOrEqual(8 * 1024);
    expect(h.shard.digestsConsistent()).toBe(true);
  });

  it('never evicts an uncommitted write, and refuses writes (KVS_BUSY) once they fill half the budget', () => {
    const budget = 4 * 1024;
    const h = new Harness({ memoryBudgetBytes: budget }, false);
    const answers: (number | undefined)[] = [];
    for (let i = 0; i < 200; i++) {
      const tuple = sends(h.run(put(keyOf(i), i + 1)), CLIENT)[0]?.kvsResponse?.tuples?.[0];
      answers.push(tuple?.error?.code ?? 0);
    }
    const accepted = answers.filter((code) => code === 0).length;
    expect(accepted).toBeGreaterThan(0);
    expect(answers.slice(accepted).every((code) => code === pb.ErrorCode.KVS_BUSY)).toBe(true);
    // Nothing committed yet: every accepted write is in memory and reads back (not the disk's nothing).
    expect(h.values(Array.from({ length: accepted }, (_, i) => keyOf(i)))).toEqual(Array.from({ length: accepted }, (_, i) => i + 1));
    expect(h.shard.memory().dirtyBytes).toBeLessThanOrEqual(budget / 2 + 200);
    // Once the disk catches up, the writes are accepted again and memory falls within the budget.
    h.commit();
    expect(h.shard.memory().dirtyBytes).toBe(0);
    expect(h.shard.memory().bytes).toBeLessThanOrEqual(budget);
    expect(sends(h.run(put(keyOf(199), 1)), CLIENT)[0]?.kvsResponse?.tuples?.[0]?.error ?? null).toBeNull();
  });

  it('a write committed with an error stays in memory and is written again', () => {
    const h = new Harness({ memoryBudgetBytes: 1024 });
    let fail = true;
    const commit = h.store.commit.bind(h.store);
    h.store.commit = (writes, sync, done) => (fail ? done(new Error('disk full')) : commit(writes, sync, done));
    h.run(put('precious', 42));
    for (let i = 0; i < 50; i++) h.run(put(keyOf(i), 1));
    expect(h.values(['precious'])).toEqual([42]);
    fail = false;
    h.run({ kind: 'timer', timer: 'gossip' });
    h.restart();
    expect(h.values(['precious'])).toEqual([42]);
  });

  it('collects tombstones that are only on disk, after a restart', () => {
    const h = new Harness({ memoryBudgetBytes: 2048, tombstoneGraceMs: 1000 });
    for (let i = 0; i < 100; i++) h.run(put(keyOf(i), 1));
    for (let i = 0; i < 10; i++) h.run(del(keyOf(i)));
    h.restart();
    expect(h.shard.keyCount).toBe(100);
    h.nowMs += 5000;
    h.run({ kind: 'timer', timer: 'anti-entropy' });
    expect(h.shard.counters.tombstonesCollected).toBe(10);
    expect(h.shard.keyCount).toBe(90);
    expect(h.store.size).toBe(90);
  });

  it('hands off keys that are only on disk when the ring moves them, and answers subscriptions and digests from disk', () => {
    const h = new Harness({ memoryBudgetBytes: 2048 });
    for (let i = 0; i < 300; i++) h.run(put(keyOf(i), i + 1));
    // A subscription's answer carries current values, read from disk.
    const answer = sends(h.run(message({ subscribe: { subscriber: CLIENT, keys: [keyOf(0), keyOf(1)], leaseMs: 10_000 } })), CLIENT)[0];
    expect(answer?.kvsResponse?.tuples?.map((tuple) => decodeLattice(tuple.payload!).reveal())).toEqual([1, 2]);
    h.run({ kind: 'message', envelope: envelopeWith({ ringUpdate: { ...TWO_NODES, defaultGlobal: 1 } }, { sender: 'tcp://127.0.0.1:7000' }) });
    const effects = h.run({ kind: 'timer', timer: 'anti-entropy' });
    const handedOff = sends(effects, OTHER).flatMap((envelope) => envelope.kvsRequest?.tuples ?? []);
    // Some keys now belong to n2 alone: they are sent, with their values read from disk.
    expect(handedOff.length).toBeGreaterThan(50);
    expect(handedOff.length).toBeLessThan(300);
    for (const tuple of handedOff) expect(decodeLattice(tuple.payload!).reveal()).toBe(Number(tuple.key!.slice(4)) + 1);
    expect(h.shard.digestsConsistent()).toBe(true);
  });

  it('answers and digests exactly as an all-in-memory shard, whatever the writes, deletes and commits (property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('put' as const), key: fc.integer({ min: 0, max: 60 }), amount: fc.integer({ min: 1, max: 1000 }) }),
      fc.record({ kind: fc.constant('delete' as const), key: fc.integer({ min: 0, max: 60 }) }),
      // Values larger than the whole budget too (a read of one evicts even itself).
      fc.record({ kind: fc.constant('big' as const), key: fc.integer({ min: 0, max: 5 }), size: fc.integer({ min: 100, max: 5000 }) }),
      fc.record({ kind: fc.constant('commit' as const) }),
      fc.record({ kind: fc.constant('restart' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), fc.integer({ min: 1, max: 8 }), (ops, kib) => {
        const tiered = new Harness({ memoryBudgetBytes: kib * 512 }, false);
        const plain = new Shard({ nodeId: 'n1', shardIndex: 0, address: ADDRESS, initialRing: TWO_NODES });
        tiered.run({ kind: 'message', envelope: envelopeWith({ ringUpdate: TWO_NODES }, { sender: 'tcp://127.0.0.1:7000' }) });
        let now = 5_000;
        for (const step of ops) {
          if (step.kind === 'commit') tiered.commit();
          else if (step.kind === 'restart') {
            tiered.commit();
            tiered.restart();
            tiered.run({ kind: 'message', envelope: envelopeWith({ ringUpdate: TWO_NODES }, { sender: 'tcp://127.0.0.1:7000' }) });
          } else {
            const input = step.kind === 'put' ? put(keyOf(step.key), step.amount) : step.kind === 'big' ? putBig(`big-${step.key}`, step.size) : del(keyOf(step.key));
            const answer = sends(tiered.run(input), CLIENT)[0]?.kvsResponse?.tuples?.[0];
            // A refusal (the disk is behind) changes nothing: the in-memory shard skips it too.
            if (answer?.error?.code === pb.ErrorCode.KVS_BUSY) continue;
            plain.handle(input, now++);
          }
          const memory = tiered.shard.memory();
          // Within the budget, or only entries that cannot leave yet (uncommitted ones).
          if (memory.bytes > memory.budgetBytes) expect(memory.bytes).toBe(memory.dirtyBytes);
          expect(tiered.shard.tierConsistent()).toBe(true);
        }
        const keys = [...Array.from({ length: 61 }, (_, i) => keyOf(i)), ...Array.from({ length: 6 }, (_, i) => `big-${i}`)];
        const plainAnswer = sends(plain.handle(get(keys), now++), CLIENT)[0]?.kvsResponse?.tuples ?? [];
        expect(tiered.values(keys)).toEqual(plainAnswer.map((tuple) => (tuple.error ? `error ${tuple.error.code}` : (decodeLattice(tuple.payload!).reveal() as number | string))));
        expect(tiered.shard.keyCount).toBe(plain.keyCount);
        expect(tiered.shard.digestsConsistent()).toBe(true);
        expect(tiered.shard.tierConsistent()).toBe(true);
      }),
      { numRuns: 150 },
    );
  });
});
