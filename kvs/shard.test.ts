/**
 * The shard machine driven directly (inputs in, effects out): overload answers KVS_BUSY and
 * changes nothing, tombstones are collected after their grace period (from memory and from disk),
 * a durable ack waits for its synced commit, a disk failure fails the waiting tuples.
 */
import { describe, expect, it } from 'vitest';
import { Counter, GSet } from '../lattices/index.js';
import { envelopeWith, pb } from '../protocol/index.js';
import type { Effect, Envelope, PbTypes } from '../protocol/index.js';
import { Shard } from './shard.js';

const ADDRESS = 'tcp://127.0.0.1:7001';
const CLIENT = 'tcp://127.0.0.1:9000';
const RING: PbTypes.IRingUpdate = { epoch: 1, nodes: [{ id: 'n1', tier: 1, address: 'tcp://127.0.0.1:7000', shardAddresses: [ADDRESS], virtualNodes: 8, incarnation: 1 }], defaultGlobal: 1, defaultLocal: 1 };

let nextId = 1;
function request(body: PbTypes.IEnvelope): { kind: 'message'; envelope: Envelope } {
  return { kind: 'message', envelope: envelopeWith(body, { requestId: nextId++, replyTo: CLIENT, sender: CLIENT }) };
}
const put = (key: string, ack: number, amount = 1): { kind: 'message'; envelope: Envelope } => {
  const value = Counter.ZERO.increment('w', amount);
  return request({ kvsRequest: { kind: pb.RequestKind.PUT, ack, tuples: [{ key, latticeType: value.type, payload: value.encode() }] } });
};
const replies = (effects: readonly Effect[]): PbTypes.IEnvelope[] =>
  effects.filter((effect): effect is Extract<Effect, { kind: 'send' }> => effect.kind === 'send' && effect.to === CLIENT).map((effect) => effect.envelope);
const persists = (effects: readonly Effect[]): Extract<Effect, { kind: 'persist' }>[] => effects.filter((effect): effect is Extract<Effect, { kind: 'persist' }> => effect.kind === 'persist');

describe('Shard', () => {
  it('answers KVS_BUSY once too many requests wait for the disk, and changes nothing', () => {
    const shard = new Shard({ nodeId: 'n1', shardIndex: 0, address: ADDRESS, initialRing: RING, pendingRequestsMax: 1 });
    shard.handle({ kind: 'start' }, 0);
    const first = shard.handle(put('a', pb.AckMode.ACK_DURABLE), 1);
    expect(replies(first)).toEqual([]);
    const [commit] = persists(first);
    expect(commit?.sync).toBe(true);
    const second = replies(shard.handle(put('b', pb.AckMode.ACK_DURABLE), 2));
    expect(second[0]?.errorReply?.error?.code).toBe(pb.ErrorCode.KVS_BUSY);
    expect(shard.entry('b')).toBeUndefined();
    // LOCAL writes do not wait, so they are not refused.
    expect(replies(shard.handle(put('c', pb.AckMode.ACK_LOCAL), 3))[0]?.kvsResponse?.tuples?.[0]?.error ?? null).toBeNull();
    // The synced commit releases the first request.
    const done = replies(shard.handle({ kind: 'persisted', token: commit!.token }, 4));
    expect(done[0]?.kvsResponse?.tuples?.[0]?.key).toBe('a');
    expect(done[0]?.kvsResponse?.tuples?.[0]?.error ?? null).toBeNull();
    expect(replies(shard.handle(put('b', pb.AckMode.ACK_DURABLE), 5))).toEqual([]);
  });

  it('answers KVS_BUSY to writes while too many disk batches are uncommitted, even LOCAL ones', () => {
    const shard = new Shard({ nodeId: 'n1', shardIndex: 0, address: ADDRESS, initialRing: RING, persistBacklogMax: 3 });
    const tokens = [1, 2, 3].flatMap((n) => persists(shard.handle(put(`k${n}`, pb.AckMode.ACK_LOCAL), n)).map((p) => p.token));
    expect(tokens).toHaveLength(3);
    expect(replies(shard.handle(put('k4', pb.AckMode.ACK_LOCAL), 4))[0]?.errorReply?.error?.code).toBe(pb.ErrorCode.KVS_BUSY);
    expect(shard.entry('k4')).toBeUndefined();
    // Reads still work; once the disk catches up, writes are taken again.
    expect(replies(shard.handle(request({ kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: 'k1' }] } }), 5))[0]?.kvsResponse?.tuples?.[0]?.payload?.length).toBeGreaterThan(0);
    shard.handle({ kind: 'persisted', token: tokens[0]! }, 6);
    expect(replies(shard.handle(put('k4', pb.AckMode.ACK_LOCAL), 7))[0]?.kvsResponse?.tuples?.[0]?.error ?? null).toBeNull();
  });

  it('fails the waiting tuples when the disk fails the batch', () => {
    const shard = new Shard({ nodeId: 'n1', shardIndex: 0, address: ADDRESS, initialRing: RING });
    const [commit] = persists(shard.handle(put('a', pb.AckMode.ACK_DURABLE), 1));
    const done = replies(shard.handle({ kind: 'persisted', token: commit!.token, error: new Error('disk full') }, 2));
    expect(done[0]?.kvsResponse?.tuples?.[0]?.error?.code).toBe(pb.ErrorCode.INTERNAL);
  });

  it('collects a tombstone after its grace period, from memory and from disk', () => {
    const shard = new Shard({ nodeId: 'n1', shardIndex: 0, address: ADDRESS, initialRing: RING, tombstoneGraceMs: 1000 });
    shard.handle({ kind: 'start' }, 10_000);
    shard.handle(put('gone', pb.AckMode.ACK_LOCAL, 3), 10_000);
    shard.handle(request({ kvsRequest: { kind: pb.RequestKind.DELETE, tuples: [{ key: 'gone' }] } }), 10_001);
    expect(shard.entry('gone')?.value).toBeUndefined();
    expect(shard.entry('gone')).toBeDefined();
    // Within the grace period the tombstone stays (replicas must see it).
    expect(persists(shard.handle({ kind: 'timer', timer: 'anti-entropy' }, 10_900)).flatMap((p) => p.writes).filter((w) => w.key === 'gone')).toEqual([]);
    expect(shard.entry('gone')).toBeDefined();
    const after = persists(shard.handle({ kind: 'timer', timer: 'anti-entropy' }, 11_100)).flatMap((p) => p.writes);
    expect(after).toContainEqual({ key: 'gone', bytes: undefined });
    expect(shard.entry('gone')).toBeUndefined();
    expect(shard.counters.tombstonesCollected).toBe(1);
  });

  it('keeps its anti-entropy digests equal to a full recomputation through writes, deletes and collection', () => {
    const twoNodes: PbTypes.IRingUpdate = {
      ...RING,
      nodes: [...RING.nodes!, { id: 'n2', tier: 1, address: 'tcp://127.0.0.1:7100', shardAddresses: ['tcp://127.0.0.1:7101'], virtualNodes: 8, incarnation: 1 }],
      defaultGlobal: 2,
    };
    const shard = new Shard({ nodeId: 'n1', shardIndex: 0, address: ADDRESS, initialRing: twoNodes, tombstoneGraceMs: 1000 });
    shard.handle({ kind: 'start' }, 10_000);
    shard.handle({ kind: 'timer', timer: 'anti-entropy' }, 10_000);
    for (let i = 0; i < 30; i++) shard.handle(put(`d${i % 10}`, pb.AckMode.ACK_LOCAL, i + 1), 10_000 + i);
    expect(shard.digestsConsistent()).toBe(true);
    for (let i = 0; i < 5; i++) shard.handle(request({ kvsRequest: { kind: pb.RequestKind.DELETE, tuples: [{ key: `d${i}` }] } }), 10_100 + i);
    expect(shard.digestsConsistent()).toBe(true);
    shard.handle({ kind: 'timer', timer: 'anti-entropy' }, 12_000);
    expect(shard.counters.tombstonesCollected).toBe(5);
    expect(shard.digestsConsistent()).toBe(true);
  });

  it('a PUT after a DELETE starts the key again, of any lattice type', () => {
    const shard = new Shard({ nodeId: 'n1', shardIndex: 0, address: ADDRESS, initialRing: RING });
    shard.handle(put('k', pb.AckMode.ACK_LOCAL, 5), 1);
    shard.handle(request({ kvsRequest: { kind: pb.RequestKind.DELETE, tuples: [{ key: 'k' }] } }), 2);
    const get = replies(shard.handle(request({ kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: 'k' }] } }), 3));
    expect(get[0]?.kvsResponse?.tuples?.[0]?.error?.code).toBe(pb.ErrorCode.KVS_KEY_NOT_FOUND);
    const set = GSet.of('x');
    const answer = replies(shard.handle(request({ kvsRequest: { kind: pb.RequestKind.PUT, tuples: [{ key: 'k', latticeType: set.type, payload: set.encode() }] } }), 4));
    expect(answer[0]?.kvsResponse?.tuples?.[0]?.error ?? null).toBeNull();
    expect(shard.entry('k')?.value?.reveal()).toEqual(['x']);
    // And the old counter, arriving late by gossip from the first generation, cannot come back.
    shard.handle({ kind: 'message', envelope: envelopeWith({ gossip: { fromNode: 'tcp://127.0.0.1:7002', tuples: [{ key: 'k', latticeType: 10, payload: Counter.ZERO.increment('w', 5).encode() }] } }, { sender: 'tcp://127.0.0.1:7002' }) }, 5);
    expect(shard.entry('k')?.value?.reveal()).toEqual(['x']);
  });

  it('refuses a generation further ahead than the clock drift bound, from a replica PUT or gossip; a later DELETE still deletes', () => {
    const nowMs = 1_700_000_000_000;
    const shard = new Shard({ nodeId: 'n1', shardIndex: 0, address: ADDRESS, initialRing: RING });
    shard.handle(put('k', pb.AckMode.ACK_LOCAL, 5), nowMs);
    const tenYears = { wallMs: nowMs + 10 * 365 * 24 * 3600 * 1000, logical: 0 };
    // A forged replica PUT of a tombstone ten years ahead: refused, typed; the value stays.
    const forged = replies(shard.handle(request({ kvsRequest: { kind: pb.RequestKind.PUT, fromReplica: true, ack: pb.AckMode.ACK_LOCAL, tuples: [{ key: 'k', deleted: true, generation: tenYears }] } }), nowMs + 1));
    expect(forged[0]?.kvsResponse?.tuples?.[0]?.error?.code).toBe(pb.ErrorCode.PROTO_MALFORMED);
    expect(shard.entry('k')?.value?.reveal()).toBe(5);
    // The same by gossip: dropped and counted.
    shard.handle({ kind: 'message', envelope: envelopeWith({ gossip: { fromNode: 'tcp://127.0.0.1:7002', tuples: [{ key: 'k', deleted: true, generation: tenYears }] } }, { sender: 'tcp://127.0.0.1:7002' }) }, nowMs + 2);
    expect(shard.entry('k')?.value?.reveal()).toBe(5);
    expect(shard.counters.futureGenerations).toBe(2);
    // Within the bound (a replica whose clock is 30 s ahead), a generation is taken.
    const ahead = { wallMs: nowMs + 30_000, logical: 0 };
    const value = Counter.ZERO.increment('r', 7);
    shard.handle(request({ kvsRequest: { kind: pb.RequestKind.PUT, fromReplica: true, ack: pb.AckMode.ACK_LOCAL, tuples: [{ key: 'j', latticeType: value.type, payload: value.encode(), generation: ahead }] } }), nowMs + 3);
    expect(shard.entry('j')?.generation.wallMs).toBe(ahead.wallMs);
    // A DELETE of the key the forgery aimed at takes effect.
    shard.handle(request({ kvsRequest: { kind: pb.RequestKind.DELETE, tuples: [{ key: 'k' }] } }), nowMs + 4);
    const get = replies(shard.handle(request({ kvsRequest: { kind: pb.RequestKind.GET, tuples: [{ key: 'k' }] } }), nowMs + 5));
    expect(get[0]?.kvsResponse?.tuples?.[0]?.error?.code).toBe(pb.ErrorCode.KVS_KEY_NOT_FOUND);
  });
});
