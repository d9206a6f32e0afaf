import { describe, expect, it } from 'vitest';
import { Autoscaler, p99OfHistogram, policyWith } from './policy.js';
import type { ClusterSnapshot, ExecutorNodeView, StorageNodeView } from './policy.js';

const policy = policyWith({
  executor: { min: 1, max: 3, upSustainMs: 3000, downSustainMs: 10_000, graceMs: 5000 },
  storage: { min: 1, max: 4, upSustainMs: 3000, downSustainMs: 10_000, graceMs: 5000, memoryHighBytes: 1000, latencyObjectiveMs: 10, busyRps: 100, idleRps: 5 },
});

const executors = (...utilisations: number[]): ExecutorNodeView[] => utilisations.map((utilisation, i) => ({ address: `e${i}`, utilisation, capacity: 4 }));
const nodes = (...bytes: number[]): StorageNodeView[] => bytes.map((b, i) => ({ id: `n${i}`, bytes: b, keys: 10, rps: 0, p99Ms: undefined }));
const snapshot = (partial: Partial<ClusterSnapshot>): ClusterSnapshot => ({ storage: nodes(100), executors: executors(0.5), replicationMax: 1, ...partial });

/** Runs the autoscaler every second from `fromMs` to `toMs` over one snapshot; the actions with their times. */
function over(scaler: Autoscaler, shot: ClusterSnapshot, fromMs: number, toMs: number): { atMs: number; kind: string; role: string }[] {
  const out: { atMs: number; kind: string; role: string }[] = [];
  for (let t = fromMs; t <= toMs; t += 1000) for (const action of scaler.decide(shot, t)) out.push({ atMs: t, kind: action.kind, role: action.role });
  return out;
}

describe('the autoscaling policy', () => {
  it('adds executors in proportion to the load: enough to bring the average back to the threshold, within max', () => {
    const scaler = new Autoscaler(policyWith({ executor: { max: 8 } }, policy));
    over(scaler, snapshot({ executors: executors(2) }), 0, 2000);
    expect(scaler.decide(snapshot({ executors: executors(2) }), 3000)).toEqual([expect.objectContaining({ kind: 'add', count: 2 })]);
    const capped = new Autoscaler(policy);
    over(capped, snapshot({ executors: executors(2, 2) }), 0, 2000);
    expect(capped.decide(snapshot({ executors: executors(2, 2) }), 3000)).toEqual([expect.objectContaining({ kind: 'add', count: 1 })]);
  });

  it('adds an executor only after the high utilisation held for upSustainMs, then waits out the grace period', () => {
    const scaler = new Autoscaler(policy);
    const busy = snapshot({ executors: executors(0.9, 0.8) });
    const actions = over(scaler, busy, 0, 20_000);
    // Held from 0: acts at 3 s; grace until 8 s, then held again from 8 s: acts at 11 s; then max (3) is reached.
    expect(actions.filter((a) => a.role === 'executor')).toEqual([
      { atMs: 3000, kind: 'add', role: 'executor' },
      { atMs: 11_000, kind: 'add', role: 'executor' },
      { atMs: 19_000, kind: 'add', role: 'executor' },
    ]);
    // A snapshot with the maximum: no more.
    expect(over(new Autoscaler(policy), snapshot({ executors: executors(0.9, 0.9, 0.9) }), 0, 20_000).filter((a) => a.role === 'executor')).toEqual([]);
  });

  it('hysteresis: a condition must hold in 3 of 4 looks over the window and in the latest; a longer lapse starts over', () => {
    const busy = snapshot({ executors: executors(0.9) });
    const calm = snapshot({ executors: executors(0.5) });
    // One dip in the window: still held.
    const dip = new Autoscaler(policy);
    expect([dip.decide(busy, 0), dip.decide(busy, 1000), dip.decide(calm, 2000)].flat()).toEqual([]);
    expect(dip.decide(busy, 3000).map((a) => a.kind)).toEqual(['add']);
    // Calm now: not held, whatever the window saw.
    const now = new Autoscaler(policy);
    expect([now.decide(busy, 0), now.decide(busy, 1000), now.decide(busy, 2000), now.decide(calm, 3000)].flat()).toEqual([]);
    // Half the window calm: not held until the calm looks leave it.
    const lapse = new Autoscaler(policy);
    expect([lapse.decide(busy, 0), lapse.decide(calm, 1000), lapse.decide(calm, 2000), lapse.decide(busy, 3000), lapse.decide(busy, 4000)].flat()).toEqual([]);
    expect(lapse.decide(busy, 5000).map((a) => a.kind)).toEqual(['add']);
  });

  it('removes the least loaded executor after low utilisation held for downSustainMs, never below min', () => {
    const scaler = new Autoscaler(policy);
    const idle = snapshot({ executors: [{ address: 'busy', utilisation: 0.2, capacity: 4 }, { address: 'idle', utilisation: 0, capacity: 4 }] });
    const actions = over(scaler, idle, 0, 9000);
    expect(actions).toEqual([]);
    expect(scaler.decide(idle, 10_000)).toEqual([expect.objectContaining({ kind: 'remove', role: 'executor', target: 'idle' })]);
    expect(over(new Autoscaler(policy), snapshot({ executors: executors(0) }), 0, 30_000)).toEqual([]);
  });

  it('adds a storage node when memory per node is over the threshold, or p99 misses at high load; not when slow but idle', () => {
    expect(over(new Autoscaler(policy), snapshot({ storage: nodes(1500, 1200) }), 0, 3000)).toEqual([{ atMs: 3000, kind: 'add', role: 'storage' }]);
    const slowBusy = snapshot({ storage: [{ id: 'n0', bytes: 10, keys: 1, rps: 500, p99Ms: 25 }] });
    expect(over(new Autoscaler(policy), slowBusy, 0, 3000)).toEqual([{ atMs: 3000, kind: 'add', role: 'storage' }]);
    const slowIdle = snapshot({ storage: [{ id: 'n0', bytes: 10, keys: 1, rps: 20, p99Ms: 25 }] });
    expect(over(new Autoscaler(policy), slowIdle, 0, 10_000).filter((a) => a.kind === 'add')).toEqual([]);
    // Few requests but its shards busy most of the time (heavy requests): high utilisation too.
    const slowCpuBound = snapshot({ storage: [{ id: 'n0', bytes: 10, keys: 1, rps: 20, busy: 0.9, p99Ms: 25 }] });
    expect(over(new Autoscaler(policy), slowCpuBound, 0, 3000)).toEqual([{ atMs: 3000, kind: 'add', role: 'storage' }]);
    const fastCpuBound = snapshot({ storage: [{ id: 'n0', bytes: 10, keys: 1, rps: 20, busy: 0.9, p99Ms: 2 }] });
    expect(over(new Autoscaler(policy), fastCpuBound, 0, 10_000).filter((a) => a.kind === 'add')).toEqual([]);
  });

  it('removes the emptiest storage node when idle, never below the largest replication factor in use', () => {
    const idle = snapshot({ storage: nodes(300, 50, 200) });
    const scaler = new Autoscaler(policy);
    over(scaler, idle, 0, 9000);
    expect(scaler.decide(idle, 10_000)).toEqual([expect.objectContaining({ kind: 'remove', role: 'storage', target: 'n1' })]);
    // Three nodes, replication 3: none may go.
    expect(over(new Autoscaler(policy), snapshot({ storage: nodes(300, 50, 200), replicationMax: 3 }), 0, 30_000).filter((a) => a.role === 'storage')).toEqual([]);
  });

  it('with a known node capacity, adds storage nodes in proportion to the utilisation (served over capacity), and removes none that the load would miss', () => {
    const utilisationPolicy = policyWith({ storage: { max: 10, capacityRps: 100, scaleUpUtilisation: 0.6, idleRps: 50 } }, policy);
    const served = (...rps: number[]): StorageNodeView[] => rps.map((r, i) => ({ id: `n${i}`, bytes: 10, keys: 10, rps: 0, recentRps: r, p99Ms: undefined }));
    // Three nodes serving 90 requests/s each of 100: 0.9 >= 0.6 held 3 s; 5 nodes bring it back to 0.6 (ceil 4.5).
    const scaler = new Autoscaler(utilisationPolicy);
    over(scaler, snapshot({ storage: served(90, 90, 90) }), 0, 2000);
    expect(scaler.decide(snapshot({ storage: served(90, 90, 90) }), 3000)).toEqual([expect.objectContaining({ kind: 'add', role: 'storage', count: 2 })]);
    // The served rate counts, not the decaying one; 0.5 is under the threshold: nothing.
    expect(over(new Autoscaler(utilisationPolicy), snapshot({ storage: served(50, 50) }), 0, 10_000)).toEqual([]);
    // Idle per node (45 < 50 requests/s), but the one left would be at 0.9: no removal; at 20 per node of 3, one goes.
    expect(over(new Autoscaler(utilisationPolicy), snapshot({ storage: served(45, 45) }), 0, 30_000)).toEqual([]);
    expect(over(new Autoscaler(utilisationPolicy), snapshot({ storage: served(20, 20, 20) }), 0, 10_000)).toEqual([{ atMs: 10_000, kind: 'remove', role: 'storage' }]);
    // Capacity unknown (0, the default): no utilisation condition.
    expect(over(new Autoscaler(policy), snapshot({ storage: served(90, 90) }), 0, 10_000).filter((a) => a.role === 'storage')).toEqual([]);
  });

  it('judges only the roles asked: a role without its view gets no decision, and its looks and grace period are kept', () => {
    const scaler = new Autoscaler(policy);
    const full = snapshot({ storage: nodes(1500, 1200) });
    const storageOnly = new Set(['storage'] as const);
    expect([scaler.decide(full, 0, storageOnly), scaler.decide(full, 1000, storageOnly)].flat()).toEqual([]);
    // The routing node did not answer: no storage nodes in view. Judged, that would read as fewer
    // than the minimum and start a grace period; not judged, nothing happens.
    expect(scaler.decide(snapshot({ storage: [] }), 2000, new Set())).toEqual([]);
    expect(scaler.decide(full, 3000, storageOnly)).toEqual([expect.objectContaining({ kind: 'add', role: 'storage' })]);
  });

  it('adds a node when below the minimum, after the grace period', () => {
    const scaler = new Autoscaler(policyWith({ executor: { min: 2 } }, policy));
    scaler.acted('executor', 0);
    expect(scaler.decide(snapshot({ executors: executors(0.1) }), 1000)).toEqual([]);
    expect(scaler.decide(snapshot({ executors: executors(0.1) }), 5000)).toEqual([expect.objectContaining({ kind: 'add', role: 'executor' })]);
  });

  it('p99 of a per-bucket histogram', () => {
    expect(p99OfHistogram([100, 1000, 10_000], [0, 0, 0])).toBeUndefined();
    expect(p99OfHistogram([100, 1000, 10_000], [99, 1, 0])).toBe(0.1);
    expect(p99OfHistogram([100, 1000, 10_000], [90, 9, 1])).toBe(1);
    expect(p99OfHistogram([100, 1000, 10_000], [0, 0, 5])).toBe(10);
  });

  it('hot keys: a key far above the mean rate is replicated on more nodes, and back to the default once it stays cool', () => {
    const hotPolicy = policyWith({ hotKeys: { hotFactor: 10, hotRateMin: 50, replicas: 3, coolSustainMs: 5000 } }, policy);
    const scaler = new Autoscaler(hotPolicy);
    const storage = [
      { id: 'n0', bytes: 10, keys: 100, rps: 300, p99Ms: undefined },
      { id: 'n1', bytes: 10, keys: 100, rps: 100, p99Ms: undefined },
      { id: 'n2', bytes: 10, keys: 100, rps: 100, p99Ms: undefined },
    ];
    // Mean 500 / 300 keys = 1.7 per key; threshold max(50, 17) = 50.
    const hot = snapshot({ storage, replicationDefault: 1, hotKeys: [{ key: 'k-hot', rate: 240 }, { key: 'k-warm', rate: 30 }] });
    expect(scaler.decideHotKeys(hot, 0)).toEqual([expect.objectContaining({ kind: 'replicate', target: 'k-hot', replicas: 3 })]);
    // Once raised, not again.
    expect(scaler.decideHotKeys(hot, 1000)).toEqual([]);
    // Cool (under half the threshold) for 5 s: back to the default.
    const cool = snapshot({ storage, replicationDefault: 1, hotKeys: [{ key: 'k-hot', rate: 10 }] });
    expect(scaler.decideHotKeys(cool, 2000)).toEqual([]);
    expect(scaler.decideHotKeys(hot, 3000)).toEqual([]);
    expect(scaler.decideHotKeys(cool, 4000)).toEqual([]);
    expect(scaler.decideHotKeys(cool, 9000)).toEqual([expect.objectContaining({ kind: 'replicate', target: 'k-hot', replicas: 1 })]);
    expect(scaler.raisedKeys()).toEqual([]);
    // One node: nothing to spread over.
    expect(new Autoscaler(hotPolicy).decideHotKeys(snapshot({ storage: storage.slice(0, 1), replicationDefault: 1, hotKeys: [{ key: 'k-hot', rate: 240 }] }), 0)).toEqual([]);
  });
});
