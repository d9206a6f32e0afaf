import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { propertyRuns } from '../lattices/testing.js';
import { pb, validateMessage } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';
import { HashRing, MEMBERSHIP_LIMITS, Membership, nodeFromWire, nodeToWire, stableHash } from './ring.js';
import type { ReplicationFactors, RingNode } from './ring.js';

const runs = propertyRuns(100);
const DEFAULTS: ReplicationFactors = { global: 2, local: 1 };

/** FNV-1a over bytes with the murmur3 finaliser: the documented hash, written out independently. */
function referenceHash(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

describe('stableHash', () => {
  it('is pinned: a change of hash moves every key of every deployed ring', () => {
    expect(stableHash('')).toBe(2872998923);
    expect(stableHash('a')).toBe(444641715);
    expect(stableHash('hello')).toBe(2290972270);
    expect(stableHash('user:42')).toBe(599759890);
    expect(stableHash('ring/key-0')).toBe(3268853610);
    expect(stableHash('é')).toBe(2387039943);
    expect(stableHash('日本語')).toBe(3932500114);
    expect(stableHash('\u{1F600}')).toBe(855877642);
    expect(stableHash('naïve café')).toBe(1404715442);
    // The local ring's seed gives an independent hash.
    expect(stableHash('hello', 0x9e3779b9)).toBe(2436299622);
  });

  it('is deterministic and a 32-bit unsigned integer', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 20 }), fc.nat(), (text, seed) => {
        const h = stableHash(text, seed);
        expect(stableHash(text, seed)).toBe(h);
        expect(Number.isInteger(h) && h >= 0 && h <= 0xffffffff).toBe(true);
      }),
      { numRuns: runs },
    );
  });

  it('hashes the UTF-8 bytes, on the ASCII fast path and on the non-ASCII path alike', () => {
    const encoder = new TextEncoder();
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 20 }), fc.string({ unit: 'grapheme', maxLength: 20 })), fc.nat(), (text, seed) => {
        expect(stableHash(text)).toBe(referenceHash(encoder.encode(text)));
        expect(stableHash(text, seed)).toBe(referenceHash(encoder.encode(text), seed));
      }),
      { numRuns: runs },
    );
    // Precomposed and decomposed forms are different bytes, so different keys.
    expect(stableHash('\u00e9')).not.toBe(stableHash('e\u0301'));
  });

  it('spreads 10k keys over 16 buckets within ±25% of the mean', () => {
    const buckets = new Array<number>(16).fill(0);
    for (let i = 0; i < 10_000; i++) buckets[stableHash(`key-${i}`) % 16]! += 1;
    const mean = 10_000 / 16;
    for (const count of buckets) {
      expect(count).toBeGreaterThanOrEqual(mean * 0.75);
      expect(count).toBeLessThanOrEqual(mean * 1.25);
    }
    // The high bits too (a ring compares whole hashes, not residues).
    const high = new Array<number>(16).fill(0);
    for (let i = 0; i < 10_000; i++) high[stableHash(`key-${i}`) >>> 28]! += 1;
    for (const count of high) {
      expect(count).toBeGreaterThanOrEqual(mean * 0.75);
      expect(count).toBeLessThanOrEqual(mean * 1.25);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Membership as a lattice.

const nodeId = fc.constantFrom('n1', 'n2', 'n3', 'n4');

/**
 * A node's published info is a function of its id and incarnation (a node picks its addresses when
 * it starts, and each start is a new incarnation); only `departed` varies within an incarnation.
 */
function nodeInfo(id: string, incarnation: number, departed: boolean): PbTypes.INodeInfo {
  const shards = 1 + ((id.charCodeAt(1) + incarnation) % 3);
  return {
    id,
    tier: 1,
    address: `tcp://${id}:${7000 + incarnation}`,
    shardAddresses: Array.from({ length: shards }, (_, s) => `tcp://${id}:${8000 + incarnation * 10 + s}`),
    virtualNodes: 8 + incarnation,
    incarnation,
    departed,
    metricsPort: 9000 + incarnation,
  };
}

const nodeArbitrary = fc
  .record({ id: nodeId, incarnation: fc.integer({ min: 0, max: 3 }), departed: fc.boolean() })
  .map(({ id, incarnation, departed }) => nodeInfo(id, incarnation, departed));

const factorArbitrary: fc.Arbitrary<PbTypes.IReplicationFactor> = fc.record({
  key: fc.constantFrom('k1', 'k2', 'k3'),
  tier: fc.constant(1),
  global: fc.integer({ min: 1, max: 4 }),
  local: fc.integer({ min: 1, max: 3 }),
  setAt: fc.record({ wallMs: fc.integer({ min: 0, max: 3 }), logical: fc.integer({ min: 0, max: 2 }) }),
});

/** An update carries the cluster's (configured, so constant) defaults, some nodes and some factors. */
const updateArbitrary: fc.Arbitrary<PbTypes.IRingUpdate> = fc
  .record({ nodes: fc.array(nodeArbitrary, { maxLength: 4 }), replication: fc.array(factorArbitrary, { maxLength: 3 }) })
  .map(({ nodes, replication }) => ({ nodes, replication, defaultGlobal: DEFAULTS.global, defaultLocal: DEFAULTS.local }));

const updatesArbitrary = fc.array(updateArbitrary, { minLength: 0, maxLength: 6 });

function build(updates: readonly PbTypes.IRingUpdate[]): Membership {
  const membership = new Membership(DEFAULTS);
  for (const update of updates) membership.merge(update);
  return membership;
}

/** The lattice state of a membership: nodes and factors, sorted (epoch is a hint, not state). */
function state(membership: Membership): { nodes: PbTypes.INodeInfo[]; replication: PbTypes.IReplicationFactor[] } {
  const wire = membership.toWire();
  return {
    nodes: [...(wire.nodes ?? [])].sort((a, b) => ((a.id ?? '') < (b.id ?? '') ? -1 : 1)),
    replication: [...(wire.replication ?? [])].sort((a, b) => ((a.key ?? '') < (b.key ?? '') ? -1 : 1)),
  };
}

/** Merges `b`'s state into `a` (as gossip does). */
function mergeInto(a: Membership, b: Membership): Membership {
  a.merge(b.toWire());
  return a;
}

describe('Membership is a lattice', () => {
  it('converges in any order even for two descriptions of one incarnation (which a correct node never sends)', () => {
    const described = fc
      .record({ id: nodeId, incarnation: fc.integer({ min: 0, max: 2 }), departed: fc.boolean(), port: fc.integer({ min: 1, max: 3 }) })
      .map(({ id, incarnation, departed, port }) => ({ ...nodeInfo(id, incarnation, departed), address: `tcp://${id}:${port}` }));
    fc.assert(
      fc.property(fc.array(described, { maxLength: 8 }), fc.infiniteStream(fc.nat()), (nodes, seeds) => {
        const shuffled = [...nodes];
        const next = seeds[Symbol.iterator]();
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = next.next().value! % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
        }
        expect(state(build(shuffled.map((node) => ({ nodes: [node] }))))).toEqual(state(build(nodes.map((node) => ({ nodes: [node] })))));
      }),
      { numRuns: propertyRuns(200) },
    );
  });

  it('converges whatever the order of the updates (commutativity)', () => {
    fc.assert(
      fc.property(
        updatesArbitrary.chain((updates) => fc.tuple(fc.constant(updates), fc.shuffledSubarray(updates, { minLength: updates.length, maxLength: updates.length }))),
        ([updates, shuffled]) => {
          expect(state(build(shuffled))).toEqual(state(build(updates)));
        },
      ),
      { numRuns: runs },
    );
  });

  it('merging states is commutative, associative and idempotent', () => {
    fc.assert(
      fc.property(updatesArbitrary, updatesArbitrary, updatesArbitrary, (ua, ub, uc) => {
        const ab = mergeInto(build(ua), build(ub));
        const ba = mergeInto(build(ub), build(ua));
        expect(state(ab)).toEqual(state(ba));
        const abC = mergeInto(mergeInto(build(ua), build(ub)), build(uc));
        const aBC = mergeInto(build(ua), mergeInto(build(ub), build(uc)));
        expect(state(abC)).toEqual(state(aBC));
        const a = build(ua);
        const before = state(a);
        expect(a.merge(a.toWire())).toBe(false);
        expect(mergeInto(a, build(ua)).merge(build(ua).toWire())).toBe(false);
        expect(state(a)).toEqual(before);
      }),
      { numRuns: runs },
    );
  });

  it('is unchanged by duplicated and replayed updates', () => {
    fc.assert(
      fc.property(updatesArbitrary, fc.array(fc.nat(), { maxLength: 8 }), (updates, replays) => {
        const once = build(updates);
        const replayed = [...updates];
        if (updates.length > 0) for (const index of replays) replayed.push(updates[index % updates.length]!);
        const twice = build([...replayed, ...updates]);
        expect(state(twice)).toEqual(state(once));
        // Replaying any already-merged update reports no change.
        for (const update of updates) expect(once.merge(update)).toBe(false);
      }),
      { numRuns: runs },
    );
  });

  it('every node ends at its greatest (incarnation, departed), every factor at its latest setAt', () => {
    fc.assert(
      fc.property(updatesArbitrary, (updates) => {
        const membership = build(updates);
        const all = updates.flatMap((u) => u.nodes ?? []);
        for (const id of new Set(all.map((n) => n.id!))) {
          const mine = all.filter((n) => n.id === id);
          const incarnation = Math.max(...mine.map((n) => n.incarnation!));
          const departed = mine.some((n) => n.incarnation === incarnation && n.departed === true);
          const node = membership.node(id)!;
          expect(node.incarnation).toBe(incarnation);
          expect(node.departed).toBe(departed);
        }
        const factors = updates.flatMap((u) => u.replication ?? []);
        for (const key of new Set(factors.map((f) => f.key!))) {
          const latest = Math.max(...factors.filter((f) => f.key === key).map((f) => f.setAt!.wallMs! * 10 + f.setAt!.logical!));
          const candidates = factors.filter((f) => f.key === key && f.setAt!.wallMs! * 10 + f.setAt!.logical! === latest);
          expect(candidates.map((f) => `${f.global}/${f.local}`)).toContain(`${membership.factorsOf(key).global}/${membership.factorsOf(key).local}`);
        }
      }),
      { numRuns: runs },
    );
  });

  it('a later incarnation wins, whichever arrives first, even over a departure', () => {
    const old = nodeInfo('n1', 1, true);
    const fresh = nodeInfo('n1', 2, false);
    for (const order of [
      [old, fresh],
      [fresh, old],
    ]) {
      const m = build(order.map((n) => ({ nodes: [n] })));
      expect(m.node('n1')).toMatchObject({ incarnation: 2, departed: false, address: fresh.address });
      expect(m.aliveNodes().map((n) => n.id)).toEqual(['n1']);
    }
  });

  it('within one incarnation, departed wins', () => {
    const alive = nodeInfo('n2', 3, false);
    const gone = nodeInfo('n2', 3, true);
    for (const order of [
      [alive, gone],
      [gone, alive],
      [gone, alive, alive, gone],
    ]) {
      const m = build(order.map((n) => ({ nodes: [n] })));
      expect(m.node('n2')).toMatchObject({ incarnation: 3, departed: true });
      expect(m.aliveNodes()).toEqual([]);
    }
  });

  it('replication factors: the later setAt wins, in either order', () => {
    const early = { wallMs: 5, logical: 0 };
    const late = { wallMs: 5, logical: 1 };
    const a = new Membership(DEFAULTS);
    expect(a.setFactors('k', { global: 3, local: 2 }, late)).toBe(true);
    expect(a.setFactors('k', { global: 1, local: 1 }, early)).toBe(false);
    const b = new Membership(DEFAULTS);
    expect(b.setFactors('k', { global: 1, local: 1 }, early)).toBe(true);
    expect(b.setFactors('k', { global: 3, local: 2 }, late)).toBe(true);
    expect(a.factorsOf('k')).toMatchObject({ global: 3, local: 2 });
    expect(b.factorsOf('k')).toMatchObject({ global: 3, local: 2 });
    expect(a.factorsOf('other')).toEqual(DEFAULTS);
    // At the very same time the tie-break is deterministic.
    const c = new Membership(DEFAULTS);
    c.setFactors('t', { global: 2, local: 1 }, early);
    c.setFactors('t', { global: 1, local: 3 }, early);
    const d = new Membership(DEFAULTS);
    d.setFactors('t', { global: 1, local: 3 }, early);
    d.setFactors('t', { global: 2, local: 1 }, early);
    expect(c.factorsOf('t')).toMatchObject(d.factorsOf('t'));
  });
});

// ---------------------------------------------------------------------------------------------
// HashRing.

function ringNode(id: string, shards: number, options: { incarnation?: number; departed?: boolean; virtualNodes?: number } = {}): RingNode {
  return {
    id,
    address: `tcp://${id}:7000`,
    shardAddresses: Array.from({ length: shards }, (_, s) => `tcp://${id}:${8000 + s}`),
    virtualNodes: options.virtualNodes ?? 64,
    incarnation: options.incarnation ?? 1,
    departed: options.departed ?? false,
    metricsPort: 0,
  };
}

function membershipOf(nodes: readonly RingNode[], defaults: ReplicationFactors = DEFAULTS): Membership {
  const m = new Membership(defaults);
  for (const node of nodes) m.upsert(node);
  return m;
}

const keys = Array.from({ length: 2000 }, (_, i) => `key-${i}`);

describe('HashRing.replicasOf', () => {
  it('returns min(global, nodes) * min(local, shards) distinct addresses of alive nodes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 5 }),
        fc.string({ maxLength: 12 }),
        (nodeCount, shards, global, local, key) => {
          const nodes = Array.from({ length: nodeCount }, (_, i) => ringNode(`node-${i}`, shards, { virtualNodes: 16 }));
          const ring = membershipOf(nodes, { global, local }).ring();
          const replicas = ring.replicasOf(key);
          expect(replicas).toHaveLength(Math.min(global, nodeCount) * Math.min(local, shards));
          expect(new Set(replicas).size).toBe(replicas.length);
          const nodesOf = ring.nodesOf(key);
          expect(nodesOf).toHaveLength(Math.min(global, nodeCount));
          // Every replica lives on one of the key's nodes, grouped by node in ring order.
          expect(replicas.map((address) => ring.nodeOfShard(address)!.id)).toEqual(
            nodesOf.flatMap((node) => new Array<string>(Math.min(local, shards)).fill(node.id)),
          );
        },
      ),
      { numRuns: runs },
    );
  });

  it('gives the same replicas for the same membership built in another order', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray(['a', 'b', 'c', 'd', 'e'], { minLength: 5, maxLength: 5 }),
        fc.array(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 20 }),
        (order, sample) => {
          const nodes = ['a', 'b', 'c', 'd', 'e'].map((id, i) => ringNode(id, 1 + (i % 3), { virtualNodes: 32 }));
          const byId = new Map(nodes.map((n) => [n.id, n]));
          const one = membershipOf(nodes).ring();
          const other = membershipOf(order.map((id) => byId.get(id)!)).ring();
          for (const key of sample) expect(other.replicasOf(key)).toEqual(one.replicasOf(key));
        },
      ),
      { numRuns: runs },
    );
  });

  it('applies per-key factors from setFactors, and only to that key', () => {
    const m = membershipOf([ringNode('a', 4), ringNode('b', 4), ringNode('c', 4), ringNode('d', 4)], { global: 1, local: 1 });
    expect(m.ring().replicasOf('hot')).toHaveLength(1);
    m.setFactors('hot', { global: 3, local: 2 }, { wallMs: 10, logical: 0 });
    const ring = m.ring();
    expect(ring.replicasOf('hot')).toHaveLength(6);
    expect(ring.nodesOf('hot')).toHaveLength(3);
    expect(ring.replicasOf('cold')).toHaveLength(1);
    // Factors larger than the cluster are capped by it.
    m.setFactors('hot', { global: 9, local: 9 }, { wallMs: 11, logical: 0 });
    expect(m.ring().replicasOf('hot')).toHaveLength(16);
    // The key's primary is the same whatever its factor: factors only extend the walk.
    expect(m.ring().nodesOf('hot')[0]!.id).toBe(ring.nodesOf('hot')[0]!.id);
  });

  it('adding a 4th node moves about a quarter of the primaries, all of them to the new node', () => {
    const three = [ringNode('alpha', 2), ringNode('beta', 2), ringNode('gamma', 2)];
    const m = membershipOf(three);
    const before = m.ring();
    m.upsert(ringNode('delta', 2));
    const after = m.ring();
    expect(after).not.toBe(before);
    expect(after.nodeCount).toBe(4);
    let movedPrimary = 0;
    for (const key of keys) {
      const oldPrimary = before.nodesOf(key)[0]!.id;
      const newPrimary = after.nodesOf(key)[0]!.id;
      if (oldPrimary !== newPrimary) {
        movedPrimary++;
        expect(newPrimary).toBe('delta');
      }
      const oldReplicas = before.replicasOf(key);
      const newReplicas = after.replicasOf(key);
      if (JSON.stringify(oldReplicas) !== JSON.stringify(newReplicas)) {
        expect(after.nodesOf(key).map((n) => n.id)).toContain('delta');
        // Only the new node's shards come in; every other replica was already there.
        for (const address of newReplicas) if (!oldReplicas.includes(address)) expect(after.nodeOfShard(address)!.id).toBe('delta');
      }
    }
    expect(movedPrimary).toBeGreaterThanOrEqual(0.1 * keys.length);
    expect(movedPrimary).toBeLessThanOrEqual(0.45 * keys.length);
  });

  it('a departed node leaves the ring, and only the keys it held move', () => {
    const nodes = [ringNode('alpha', 2), ringNode('beta', 2), ringNode('gamma', 2), ringNode('delta', 2)];
    const m = membershipOf(nodes);
    const before = m.ring();
    expect(m.upsert({ ...nodes[1]!, departed: true })).toBe(true);
    const after = m.ring();
    expect(after.nodeCount).toBe(3);
    expect(after.nodeOfShard('tcp://beta:8000')).toBeUndefined();
    let moved = 0;
    for (const key of keys) {
      const held = before.nodesOf(key).some((n) => n.id === 'beta');
      const oldReplicas = before.replicasOf(key);
      const newReplicas = after.replicasOf(key);
      expect(after.nodesOf(key).map((n) => n.id)).not.toContain('beta');
      if (!held) expect(newReplicas).toEqual(oldReplicas);
      else {
        moved++;
        // The survivors keep their replicas; beta's are replaced.
        for (const address of oldReplicas) if (!address.startsWith('tcp://beta:')) expect(newReplicas).toContain(address);
      }
    }
    expect(moved).toBeGreaterThan(0);
  });

  it('an empty ring has no replicas', () => {
    const ring = new HashRing([], { factorsOf: () => DEFAULTS });
    expect(ring.replicasOf('k')).toEqual([]);
    expect(ring.nodesOf('k')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Bounds (found by the wire fuzzer, test/fuzz.test.ts): what one ring update or join can add.

describe('Membership bounds', () => {
  const wireNode = (id: string, shards: number, departed = false): PbTypes.INodeInfo => ({
    id,
    tier: 1,
    address: `tcp://127.0.0.1:${20_000 + (stableHash(id) % 10_000)}`,
    shardAddresses: Array.from({ length: shards }, (_, s) => `tcp://127.0.0.1:${30_000 + s}`),
    virtualNodes: 64,
    incarnation: 1,
    departed,
  });
  const encodedBytes = (membership: Membership): number => pb.RingUpdate.encode(membership.toWire()).finish().byteLength;

  it(`ignores a node listing more than ${MEMBERSHIP_LIMITS.shardsPerNodeMax} shards or a huge id (one such join was a ring of megabytes)`, () => {
    const m = new Membership(DEFAULTS);
    expect(m.merge({ nodes: [wireNode('wide', 100_000)] })).toBe(false);
    expect(m.merge({ nodes: [wireNode('x'.repeat(MEMBERSHIP_LIMITS.nodeIdLengthMax + 1), 1)] })).toBe(false);
    expect(m.allNodes()).toEqual([]);
    expect(m.counters.nodesRefused).toBe(2);
    expect(m.merge({ nodes: [wireNode('widest-allowed', MEMBERSHIP_LIMITS.shardsPerNodeMax)] })).toBe(true);
    expect(m.ring().replicasOf('k')).toHaveLength(1);
  });

  it(`one update of 100 000 departed nodes keeps ${MEMBERSHIP_LIMITS.nodesMax} at most, a ring that fits a frame, and room for a real node`, () => {
    const m = new Membership(DEFAULTS);
    m.upsert(nodeFromWire(wireNode('real-0', 2)));
    m.merge({ nodes: Array.from({ length: 100_000 }, (_, i) => wireNode(`fake-${i}`, 1, true)) });
    expect(m.allNodes().length).toBeLessThanOrEqual(MEMBERSHIP_LIMITS.nodesMax);
    expect(m.node('real-0')?.departed).toBe(false);
    expect(encodedBytes(m)).toBeLessThan(MEMBERSHIP_LIMITS.bytesMax);
    // A real node joining now takes the place of the departed node that changed longest ago.
    expect(m.upsert(nodeFromWire(wireNode('real-1', 2)))).toBe(true);
    expect(m.aliveNodes().map((node) => node.id).sort()).toEqual(['real-0', 'real-1']);
    expect(m.counters.nodesEvicted).toBeGreaterThan(0);
  });

  it('alive nodes are never evicted: beyond the bound a new node is ignored', () => {
    const m = new Membership(DEFAULTS);
    m.merge({ nodes: Array.from({ length: MEMBERSHIP_LIMITS.nodesMax }, (_, i) => wireNode(`alive-${i}`, 1)) });
    expect(m.merge({ nodes: [wireNode('one-more', 1)] })).toBe(false);
    expect(m.aliveNodes()).toHaveLength(MEMBERSHIP_LIMITS.nodesMax);
    // A known node still changes (it departs, it comes back with a later incarnation).
    expect(m.merge({ nodes: [{ ...wireNode('alive-0', 1), departed: true }] })).toBe(true);
  });

  it(`keeps ${MEMBERSHIP_LIMITS.factorsMax} replication factors at most and ignores a factor of a huge key`, () => {
    const m = new Membership(DEFAULTS);
    const setAt = { wallMs: 1, logical: 0 };
    m.merge({ replication: Array.from({ length: 100_000 }, (_, i) => ({ key: `k${i}`, tier: 1, global: 2, local: 1, setAt })) });
    expect(m.toWire().replication).toHaveLength(MEMBERSHIP_LIMITS.factorsMax);
    expect(m.merge({ replication: [{ key: 'k'.repeat(MEMBERSHIP_LIMITS.factorKeyLengthMax + 1), tier: 1, global: 3, local: 1, setAt }] })).toBe(false);
    // A key already held still changes.
    expect(m.setFactors('k0', { global: 3, local: 1 }, { wallMs: 2, logical: 0 })).toBe(true);
    expect(encodedBytes(m)).toBeLessThan(MEMBERSHIP_LIMITS.bytesMax);
  });
});

describe('Membership epoch', () => {
  it('a ring update of epoch 2^53 - 1 does not push the epoch past 2^53 (every later ring was undecodable)', () => {
    const m = new Membership(DEFAULTS);
    m.upsert(ringNode('a', 1));
    m.merge({ epoch: Number.MAX_SAFE_INTEGER, nodes: [{ ...nodeToWire(ringNode('b', 1)) }] });
    m.upsert(ringNode('c', 1));
    expect(Number.isSafeInteger(m.epoch)).toBe(true);
    // What a routing node sends (a ring, a lookup's epoch) still passes the receiver's validation.
    expect(() => validateMessage(m.toWire(), 'RingUpdate', 'ringUpdate')).not.toThrow();
    // A peer's epoch within bounds is still adopted (a restarted routing node catches up).
    const restarted = new Membership(DEFAULTS);
    restarted.merge({ epoch: 1234, nodes: [nodeToWire(ringNode('a', 1))] });
    expect(restarted.epoch).toBe(1234);
  });
});
