/**
 * The monitor machine driven by hand: it acts only while it holds the lease, asks the routing node
 * and every scheduler for their view, decides on the snapshot, and turns each decision into an
 * event and a provider task (one per role at a time), whose outcome is an event too.
 */
import { describe, expect, it } from 'vitest';
import { pb } from '../protocol/index.js';
import type { Effect, Envelope, PbTypes } from '../protocol/index.js';
import { MonitorNode } from './monitor-node.js';
import type { MonitorTask } from './monitor-node.js';
import { policyWith } from './policy.js';

const ROUTING = 'mem://routing';
const SCHEDULER = 'mem://scheduler';

function monitor(): MonitorNode {
  return new MonitorNode({
    address: 'mem://monitor',
    name: 'm1',
    routing: [ROUTING],
    schedulers: [SCHEDULER],
    periodMs: 1000,
    policy: policyWith({ executor: { upSustainMs: 2000, graceMs: 1000, max: 4 }, storage: { graceMs: 1000 } }),
  });
}

const tasks = (effects: readonly Effect[]): { token: number; task: MonitorTask }[] =>
  effects.filter((effect): effect is Extract<Effect, { kind: 'task' }> => effect.kind === 'task').map((effect) => ({ token: effect.token, task: effect.task as MonitorTask }));
const sends = (effects: readonly Effect[]): Extract<Effect, { kind: 'send' }>[] => effects.filter((effect): effect is Extract<Effect, { kind: 'send' }> => effect.kind === 'send');

function answer(to: Extract<Effect, { kind: 'send' }>, stats: PbTypes.IClusterStats): Envelope {
  return pb.Envelope.create({ responseTo: Number(to.envelope.requestId), sender: to.to, clusterStats: stats }) as Envelope;
}

const busyExecutors: PbTypes.IClusterStats = { executors: [{ address: 'tcp://127.0.0.1:1', utilisation: 1.5, capacity: 4 }] };
const storage: PbTypes.IClusterStats = { nodes: [{ id: 'node-0', address: 'tcp://127.0.0.1:2', shardAddresses: ['tcp://127.0.0.1:3'] }], shards: [{ nodeId: 'node-0', shard: 0, occupancyBytes: 100, keyCount: 3 }], replicationMax: 1 };

/** One period: the tick, the lease answer, the two stats answers; the effects after them. */
function period(node: MonitorNode, nowMs: number, holder: string): Effect[] {
  const lease = tasks(node.handle({ kind: 'timer', timer: 'tick' }, nowMs)).find(({ task }) => task.op === 'lease');
  expect(lease, 'a lease task each period').toBeDefined();
  const afterLease = node.handle({ kind: 'taskDone', token: lease!.token, result: holder }, nowMs);
  const asked = sends(afterLease);
  if (holder !== 'm1') {
    expect(asked, 'no stats asked without the lease').toEqual([]);
    return [...afterLease];
  }
  expect(asked.map((send) => send.to).sort()).toEqual([ROUTING, SCHEDULER]);
  const effects: Effect[] = [...afterLease];
  for (const send of asked) effects.push(...node.handle({ kind: 'message', envelope: answer(send, send.to === ROUTING ? storage : busyExecutors) }, nowMs));
  return effects;
}

describe('the monitor machine', () => {
  it('without the lease it only renews: no stats, no decisions', () => {
    const node = monitor();
    node.handle({ kind: 'start' }, 0);
    for (let t = 1000; t <= 10_000; t += 1000) expect(tasks(period(node, t, 'someone-else')).filter(({ task }) => task.op !== 'lease')).toEqual([]);
    expect(node.leader).toBe(false);
    expect(node.counters.decisions).toBe(0);
  });

  it('with the lease: a sustained overload becomes one decided event and one provider task; the next waits for its outcome', () => {
    const node = monitor();
    node.handle({ kind: 'start' }, 0);
    const all: { token: number; task: MonitorTask }[] = [];
    for (let t = 1000; t <= 6000; t += 1000) all.push(...tasks(period(node, t, 'm1')));
    expect(all.filter(({ task }) => task.op === 'event' && task.event.kind === 'lease')).toHaveLength(1);
    const provide = all.filter(({ task }) => task.op === 'provide');
    expect(provide).toHaveLength(1);
    expect(provide[0]!.task).toMatchObject({ op: 'provide', action: { kind: 'add', role: 'executor' } });
    const decided = all.filter(({ task }) => task.op === 'event' && task.event.kind === 'decided');
    expect(decided).toHaveLength(1);
    expect(node.lastSnapshot?.storage).toEqual([{ id: 'node-0', bytes: 100, keys: 3, rps: 0, p99Ms: undefined }]);
    // Still busy, but an executor is being added: nothing more for that role meanwhile.
    for (let t = 7000; t <= 12_000; t += 1000) expect(tasks(period(node, t, 'm1')).filter(({ task }) => task.op === 'provide')).toEqual([]);
    // The provider's outcome is an event.
    const done = tasks(node.handle({ kind: 'taskDone', token: provide[0]!.token, result: 'tcp://127.0.0.1:9' }, 12_500));
    expect(done.map(({ task }) => task)).toEqual([{ op: 'event', event: expect.objectContaining({ kind: 'done', action: 'add', role: 'executor', node: 'tcp://127.0.0.1:9' }) }]);
    expect(node.counters.actionsDone).toBe(1);
  });

  it('a failed provider action is an event, and the role may act again after the grace period', () => {
    const node = monitor();
    node.handle({ kind: 'start' }, 0);
    let provide: { token: number; task: MonitorTask } | undefined;
    for (let t = 1000; t <= 6000 && provide === undefined; t += 1000) provide = tasks(period(node, t, 'm1')).find(({ task }) => task.op === 'provide');
    expect(provide).toBeDefined();
    const failed = tasks(node.handle({ kind: 'taskDone', token: provide!.token, error: new Error('no room on this machine') }, 7000));
    expect(failed.map(({ task }) => task)).toEqual([{ op: 'event', event: expect.objectContaining({ kind: 'failed', reason: 'no room on this machine' }) }]);
    let again = false;
    for (let t = 8000; t <= 14_000 && !again; t += 1000) again = tasks(period(node, t, 'm1')).some(({ task }) => task.op === 'provide');
    expect(again).toBe(true);
  });

  it('decides nothing for storage without the routing node\'s answer (silence is not idleness)', () => {
    const node = new MonitorNode({ address: 'mem://monitor', name: 'm1', routing: [ROUTING], schedulers: [], periodMs: 1000, policy: policyWith({ storage: { downSustainMs: 0, graceMs: 0, min: 1 } }) });
    node.handle({ kind: 'start' }, 0);
    for (let t = 1000; t <= 5000; t += 1000) {
      const lease = tasks(node.handle({ kind: 'timer', timer: 'tick' }, t)).find(({ task }) => task.op === 'lease')!;
      node.handle({ kind: 'taskDone', token: lease.token, result: 'm1' }, t);
      // The routing node never answers: the collection times out.
      expect(tasks(node.handle({ kind: 'timer', timer: 'collect' }, t + 800)).filter(({ task }) => task.op === 'provide')).toEqual([]);
    }
    expect(node.counters.statsMissing).toBeGreaterThan(0);
  });

  it('a routing answer that did not come does not restart the storage grace period: the add is decided on the looks that came', () => {
    // Storage over its memory threshold from the start; the answer of the third period is lost.
    const full: PbTypes.IClusterStats = { ...storage, shards: [{ nodeId: 'node-0', shard: 0, occupancyBytes: 2000, keyCount: 3 }] };
    const node = new MonitorNode({ address: 'mem://monitor', name: 'm1', routing: [ROUTING], schedulers: [], periodMs: 1000, policy: policyWith({ storage: { upSustainMs: 2000, graceMs: 500, memoryHighBytes: 1000, max: 4 } }) });
    node.handle({ kind: 'start' }, 0);
    const provided: number[] = [];
    for (let t = 1000; t <= 6000; t += 1000) {
      const lease = tasks(node.handle({ kind: 'timer', timer: 'tick' }, t)).find(({ task }) => task.op === 'lease')!;
      const asked = sends(node.handle({ kind: 'taskDone', token: lease.token, result: 'm1' }, t));
      const effects = t === 3000 ? node.handle({ kind: 'timer', timer: 'collect' }, t + 800) : asked.flatMap((send) => node.handle({ kind: 'message', envelope: answer(send, full) }, t));
      if (tasks(effects).some(({ task }) => task.op === 'provide')) provided.push(t);
    }
    // The looks of 1, 2 and 4 s hold the condition for 2 s: added at 4 s. Had the empty view of 3 s
    // been judged, it would have read as fewer nodes than the minimum and restarted the grace
    // period and the looks (before the fix: no add by 6 s).
    expect(provided).toEqual([4000]);
  });

  it('a hot key reported by the shards becomes a replicate task (not a provider action), and its outcome an event', () => {
    const node = new MonitorNode({ address: 'mem://monitor', name: 'm1', routing: [ROUTING], schedulers: [SCHEDULER], periodMs: 1000, policy: policyWith({ hotKeys: { hotRateMin: 50, hotFactor: 5, replicas: 3 } }) });
    node.handle({ kind: 'start' }, 0);
    const twoNodes: PbTypes.IClusterStats = {
      nodes: [{ id: 'node-0', address: 'tcp://127.0.0.1:2', shardAddresses: ['tcp://127.0.0.1:3'] }, { id: 'node-1', address: 'tcp://127.0.0.1:4', shardAddresses: ['tcp://127.0.0.1:5'] }],
      shards: [
        { nodeId: 'node-0', shard: 0, keyCount: 100, requestsPerSecond: 400, hotKeys: [{ key: 'hot', rate: 300 }] },
        { nodeId: 'node-1', shard: 0, keyCount: 100, requestsPerSecond: 10, hotKeys: [{ key: 'other', rate: 5 }] },
      ],
      replicationMax: 1,
      replicationDefault: 1,
    };
    const lease = tasks(node.handle({ kind: 'timer', timer: 'tick' }, 1000)).find(({ task }) => task.op === 'lease')!;
    const asked = sends(node.handle({ kind: 'taskDone', token: lease.token, result: 'm1' }, 1000));
    const effects: Effect[] = [];
    for (const send of asked) effects.push(...node.handle({ kind: 'message', envelope: answer(send, send.to === ROUTING ? twoNodes : { executors: [] }) }, 1000));
    const replicate = tasks(effects).filter(({ task }) => task.op === 'replicate');
    expect(replicate.map(({ task }) => task)).toEqual([{ op: 'replicate', key: 'hot', replicas: 2, shards: 1 }]);
    const outcome = tasks(node.handle({ kind: 'taskDone', token: replicate[0]!.token }, 1100));
    expect(outcome.map(({ task }) => task)).toEqual([{ op: 'event', event: expect.objectContaining({ kind: 'done', action: 'replicate', node: 'hot' }) }]);
  });

  it('a node whose shards are busy most of the time (busy microseconds between two reports) and miss the p99 objective gets a storage node added, at few requests', () => {
    const node = new MonitorNode({ address: 'mem://monitor', name: 'm1', routing: [ROUTING], schedulers: [SCHEDULER], periodMs: 1000, policy: policyWith({ storage: { upSustainMs: 2000, graceMs: 1000, max: 4 } }) });
    node.handle({ kind: 'start' }, 0);
    // p99 of every look: 10 requests in a 50 ms bucket (the histogram counts only grow).
    const bounds = [1000, 50_000, 1e12];
    const events: string[] = [];
    for (let look = 1; look <= 5; look++) {
      const nowMs = look * 1000;
      const stats: PbTypes.IClusterStats = {
        nodes: [{ id: 'node-0', address: 'tcp://127.0.0.1:2', shardAddresses: ['tcp://127.0.0.1:3'] }],
        // 900 ms busy of every second; 10 requests a second (far below busyRps).
        shards: [{ nodeId: 'node-0', shard: 0, keyCount: 3, requestsPerSecond: 10, sentAtMs: nowMs, busyUs: look * 900_000, latency: { boundsUs: bounds, counts: [0, look * 10, 0] } }],
        replicationMax: 1,
      };
      const lease = tasks(node.handle({ kind: 'timer', timer: 'tick' }, nowMs)).find(({ task }) => task.op === 'lease')!;
      for (const send of sends(node.handle({ kind: 'taskDone', token: lease.token, result: 'm1' }, nowMs))) {
        for (const { task } of tasks(node.handle({ kind: 'message', envelope: answer(send, send.to === ROUTING ? stats : { executors: [] }) }, nowMs))) {
          if (task.op === 'event' && task.event.kind === 'decided') events.push(`${task.event.action} ${task.event.role}: ${task.event.reason}`);
        }
      }
    }
    expect(events).toHaveLength(1);
    expect(events[0]).toMatch(/^add storage: p99 over 10 ms at high utilisation on node-0 \(\d+ requests\/s, busy 90%\)/);
  });

  describe('pinning', () => {
    const SCHEDULER_2 = 'mem://scheduler-2';
    const executorsWith = (rates: readonly number[]): PbTypes.IClusterStats => ({
      executors: ['tcp://127.0.0.1:11', 'tcp://127.0.0.1:12', 'tcp://127.0.0.1:13', 'tcp://127.0.0.1:14'].map((address, i) => ({
        executorId: `${address}#1`,
        address,
        utilisation: 0.3,
        capacity: 4,
        functions: (rates[i] ?? 0) > 0 ? [{ name: 'hot', rate: rates[i]!, p50Ms: 2 + i, p99Ms: 10 * (i + 1) }] : [],
      })),
    });

    /** One period with both schedulers answering `stats`; the effects after the answers. */
    const look = (node: MonitorNode, nowMs: number, stats: PbTypes.IClusterStats): Effect[] => {
      const lease = tasks(node.handle({ kind: 'timer', timer: 'tick' }, nowMs)).find(({ task }) => task.op === 'lease')!;
      const effects: Effect[] = [];
      for (const send of sends(node.handle({ kind: 'taskDone', token: lease.token, result: 'm1' }, nowMs))) {
        effects.push(...node.handle({ kind: 'message', envelope: answer(send, send.to === ROUTING ? storage : stats) }, nowMs));
      }
      return effects;
    };
    const pinCountsSent = (effects: readonly Effect[]): { to: string; counts: { name: string; count: number }[] }[] =>
      sends(effects)
        .filter((send) => send.envelope.pinCounts)
        .map((send) => ({ to: send.to, counts: (send.envelope.pinCounts!.counts ?? []).map((entry) => ({ name: entry.name ?? '', count: entry.count ?? 0 })) }));
    const pinEvents = (effects: readonly Effect[]): MonitorTask[] => tasks(effects).map(({ task }) => task).filter((task) => task.op === 'event' && task.event.action === 'pin');

    it('a hot function\'s rate becomes a pin count sent to every scheduler (an event), and a cooled one lowers it', () => {
      const node = new MonitorNode({
        address: 'mem://monitor',
        name: 'm1',
        routing: [ROUTING],
        schedulers: [SCHEDULER, SCHEDULER_2],
        periodMs: 1000,
        policy: policyWith({ pins: { perExecutorRate: 50, upSustainMs: 2000, downSustainMs: 5000, graceMs: 1000 } }),
      });
      node.handle({ kind: 'start' }, 0);
      // 100 + 80 calls/s on two executors (both schedulers report the same executors: counted once).
      const hot = executorsWith([100, 80]);
      const rising: Effect[] = [];
      for (let t = 1000; t <= 3000; t += 1000) rising.push(...look(node, t, hot));
      expect(node.lastSnapshot?.functions).toEqual([{ name: 'hot', rate: 180, p50Ms: (100 * 2 + 80 * 3) / 180, p99Ms: 20 }]);
      expect(pinEvents(rising)).toEqual([{ op: 'event', event: expect.objectContaining({ kind: 'decided', role: 'executor', action: 'pin', node: 'hot', reason: expect.stringMatching(/^4 executors \(was 2\): 180\.0 calls\/s/) }) }]);
      // Every period each scheduler is sent the counts (before the rise: none differ from the default).
      const sent = pinCountsSent(rising);
      expect(sent.map((send) => send.to)).toEqual([SCHEDULER, SCHEDULER_2, SCHEDULER, SCHEDULER_2, SCHEDULER, SCHEDULER_2]);
      expect(sent.slice(-2).map((send) => send.counts)).toEqual([[{ name: 'hot', count: 4 }], [{ name: 'hot', count: 4 }]]);
      expect(sent[0]!.counts).toEqual([]);
      const validMs = sends(rising).find((send) => send.envelope.pinCounts)!.envelope.pinCounts!.validMs;
      expect(validMs).toBe(10_000);
      // Still hot: the same counts again, no new event.
      const steady = look(node, 4000, hot);
      expect(pinEvents(steady)).toEqual([]);
      expect(pinCountsSent(steady)[0]!.counts).toEqual([{ name: 'hot', count: 4 }]);
      // Cold (its executors stop reporting it): back to the default after 5 s low, an event, and no count sent.
      const cooling: Effect[] = [];
      let cooledAt = 0;
      for (let t = 5000; t <= 15_000 && cooledAt === 0; t += 1000) {
        const effects = look(node, t, executorsWith([]));
        cooling.push(...effects);
        if (pinEvents(effects).length > 0) cooledAt = t;
      }
      expect(cooledAt).toBe(9000);
      expect(pinEvents(cooling)).toEqual([{ op: 'event', event: expect.objectContaining({ action: 'pin', node: 'hot', reason: expect.stringMatching(/^2 executors \(was 4\)/) }) }]);
      expect(pinCountsSent(look(node, 10_000, executorsWith([])))[0]!.counts).toEqual([]);
      expect(node.counters.pinChanges).toBe(2);
    });

    it('decides no pin count without a scheduler\'s answer, and sends nothing without the lease', () => {
      const node = new MonitorNode({ address: 'mem://monitor', name: 'm1', routing: [ROUTING], schedulers: [SCHEDULER], periodMs: 1000, policy: policyWith({ pins: { upSustainMs: 0, graceMs: 0 } }) });
      node.handle({ kind: 'start' }, 0);
      for (let t = 1000; t <= 4000; t += 1000) {
        const lease = tasks(node.handle({ kind: 'timer', timer: 'tick' }, t)).find(({ task }) => task.op === 'lease')!;
        const asked = sends(node.handle({ kind: 'taskDone', token: lease.token, result: 'm1' }, t));
        // Only the routing node answers; the collection times out.
        for (const send of asked) if (send.to === ROUTING) node.handle({ kind: 'message', envelope: answer(send, storage) }, t);
        expect(pinEvents(node.handle({ kind: 'timer', timer: 'collect' }, t + 800))).toEqual([]);
      }
      const other = new MonitorNode({ address: 'mem://monitor-2', name: 'm2', routing: [ROUTING], schedulers: [SCHEDULER], periodMs: 1000 });
      other.handle({ kind: 'start' }, 0);
      const lease = tasks(other.handle({ kind: 'timer', timer: 'tick' }, 1000)).find(({ task }) => task.op === 'lease')!;
      expect(pinCountsSent(other.handle({ kind: 'taskDone', token: lease.token, result: 'm1' }, 1000))).toEqual([]);
    });
  });
});
