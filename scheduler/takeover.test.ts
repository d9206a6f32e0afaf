/**
 * Leased execution records and takeover (takeover.ts), driven through real SchedulerNode
 * machines that share one in-memory KVS (a map that merges, as the KVS does; its tasks are
 * carried out in the order they were asked, so the tasks of two schedulers interleave):
 * - a boot writes its lease and registers before it accepts an async call; the record carries
 *   the whole run and its owner; the run is indexed, and leaves the index (the record marked done)
 *   once its result is written;
 * - a survivor takes a dead boot's runs over once the lease has not changed for the lease
 *   timeout (not before), a bounded number per pass, each dispatched again with attempt + 1; the
 *   dead boot is then marked gone and its keys deleted; a boot restarted at the same address
 *   takes its previous boot's runs over at once, and its dispatch numbers are above the old
 *   boot's (an executor's acknowledgement of those does not cover the new ones);
 * - what is read back is hostile: malformed records, index entries, leases and boots entries are
 *   skipped and counted, the rest taken over; a run claimed too often gets EXEC_LOST; a run whose
 *   result is there is only marked done;
 * - two survivors claiming one run at once: the record read back after the claim settles it;
 * - a run left in the index by a failed result write is adopted; the index is rewritten into a
 *   new generation as removals pile up; the boots set moves to a new epoch as gone boots pile up;
 *   a boot marked gone while it lived registers again and rewrites its index;
 * - an async call whose record would be over the KVS value limit is refused EXEC_BAD_VALUE.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, GSet, HybridClock, LfaasError, Lww, Max, Priority, decodeLattice } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { decodeEnvelope, encodeEnvelope, encodeValue, envelopeWith, executionKey, pb, resultKeyOf, resultRecordOf, seededRandom } from '../protocol/index.js';
import type { Effect, MachineInput, PbTypes } from '../protocol/index.js';
import {
  BOOTS_EPOCH_KEY,
  bootEntry,
  bootsKey,
  decodeRunRecord,
  encodeRunRecord,
  indexEntry,
  indexKey,
  leaseKey,
  leaseValue,
  readBoots,
  readIndex,
  readLease,
  runRecordValue,
} from './execution-records.js';
import type { RunRecord } from './execution-records.js';
import type { SchedulerTask } from './kvs-tasks.js';
import { SchedulerNode } from './scheduler-node.js';
import type { SchedulerOptions } from './scheduler-node.js';

const T0 = 1_700_000_000_000;
const CLIENT = 'tcp://127.0.0.1:7401';
const EXECUTOR = 'tcp://127.0.0.1:7500';
const A = 'tcp://127.0.0.1:7400';
const B = 'tcp://127.0.0.1:7410';
const C = 'tcp://127.0.0.1:7420';
const DEAD = 'tcp://127.0.0.1:7999#dead';

interface Sent {
  readonly from: string;
  readonly to: string;
  readonly envelope: PbTypes.IEnvelope;
}

/** The shared KVS: merges like the real one; tasks run in the order asked (FIFO), so schedulers interleave. */
class World {
  readonly data = new Map<string, AnyLattice>();
  /** Keys whose puts fail (KVS_BUSY) while listed. */
  readonly failing = new Set<string>();
  readonly sent: Sent[] = [];
  nowMs = T0;
  private readonly queue: { node: Node; token: number; task: SchedulerTask }[] = [];

  enqueue(node: Node, token: number, task: SchedulerTask): void {
    this.queue.push({ node, token, task });
  }

  get(key: string): AnyLattice | undefined {
    const value = this.data.get(key);
    return value === undefined ? undefined : decodeLattice(value.encode());
  }

  put(key: string, value: AnyLattice): void {
    const copy = decodeLattice(value.encode());
    const existing = this.data.get(key);
    if (existing !== undefined && existing.type !== copy.type) throw new LfaasError(ErrorCode.KVS_LATTICE_MISMATCH, `${key} holds another type`);
    this.data.set(key, existing === undefined ? copy : (existing.merge(copy) as AnyLattice));
  }

  /** Carries out the queued tasks (and those they cause), in order; a crashed node's answers are dropped. */
  flush(): void {
    for (let steps = 0; this.queue.length > 0; steps++) {
      if (steps > 200_000) throw new Error('tasks did not settle');
      const { node, token, task } = this.queue.shift()!;
      let result: unknown;
      let error: LfaasError | undefined;
      try {
        if (task.op === 'get') result = this.get(task.key);
        else if (task.op === 'getMany') result = task.keys.map((key) => this.get(key));
        else if (task.op === 'put') {
          if (this.failing.has(task.key)) throw new LfaasError(ErrorCode.KVS_BUSY, `${task.key} is busy`);
          this.put(task.key, task.value);
        } else for (const key of task.keys) this.data.delete(key);
      } catch (failure) {
        error = failure as LfaasError;
      }
      if (!node.crashed) node.handle(error === undefined ? { kind: 'taskDone', token, result } : { kind: 'taskDone', token, error });
    }
  }

  /** Advances time to `atMs` after T0. */
  at(atMs: number): this {
    this.nowMs = T0 + atMs;
    return this;
  }
}

class Node {
  readonly machine: SchedulerNode;
  crashed = false;
  private nextRequest = 1;

  constructor(
    private readonly world: World,
    readonly address: string,
    incarnation: string,
    options: Partial<SchedulerOptions> = {},
  ) {
    this.machine = new SchedulerNode({ address, incarnation, random: seededRandom(7), executorTimeoutMs: 600_000, ...options });
    this.handle({ kind: 'start' });
    world.flush();
  }

  get counters(): SchedulerNode['counters'] {
    return this.machine.counters;
  }

  get boot(): string {
    return this.machine.boot;
  }

  handle(input: MachineInput): void {
    const effects: readonly Effect[] = this.machine.handle(input, this.world.nowMs);
    for (const effect of effects) {
      if (effect.kind === 'task') this.world.enqueue(this, effect.token, effect.task as SchedulerTask);
      else if (effect.kind === 'send') this.world.sent.push({ from: this.address, to: effect.to, envelope: effect.envelope });
    }
  }

  deliver(body: PbTypes.IEnvelope, header: { requestId?: number; replyTo?: string; sender?: string } = {}): void {
    const envelope = decodeEnvelope(encodeEnvelope(envelopeWith(body, { sender: CLIENT, ...header })));
    this.handle({ kind: 'message', envelope });
    this.world.flush();
  }

  timer(timer: 'lease' | 'takeover' | 'check'): void {
    this.handle({ kind: 'timer', timer });
    this.world.flush();
  }

  /** One lease renewal and one takeover pass. */
  tick(): void {
    this.timer('lease');
    this.timer('takeover');
  }

  register(name = 'f'): void {
    this.deliver({ registerFunction: { spec: { name, code: new TextEncoder().encode('module.exports = (x) => x + 1;') } } }, { requestId: this.nextRequest++, replyTo: CLIENT });
  }

  /** The executor reports (capacity 8): `acked` its highest dispatch number received, `running` its runs. */
  status(acked = 0, running: string[] = []): void {
    this.deliver({ executorStatus: { executorId: `${EXECUTOR}#1`, address: EXECUTOR, utilisation: 0, capacity: 8, ackedSeq: acked, running } }, { sender: EXECUTOR });
  }

  /** An async call of `fn(arg)` (bytes: as they are, not encoded); returns the answers the client got. */
  callAsync(callId: string, arg: unknown, fn = 'f', timeoutMs = 5000): PbTypes.ICallResponse[] {
    const requestId = this.nextRequest++;
    const before = this.world.sent.length;
    const value = arg instanceof Uint8Array ? arg : encodeValue(arg);
    this.deliver({ callRequest: { callId, function: fn, args: [{ value }], async: true, resultKey: resultKeyOf(callId), timeoutMs } }, { requestId, replyTo: CLIENT });
    this.world.flush();
    return this.world.sent.slice(before).filter((sent) => sent.to === CLIENT && Number(sent.envelope.responseTo) === requestId).map((sent) => sent.envelope.callResponse!);
  }
}

const schedulesFrom = (world: World, address: string, runId?: string): PbTypes.ISchedule[] =>
  world.sent.filter((sent) => sent.from === address && sent.envelope.schedule !== undefined && sent.envelope.schedule !== null && (runId === undefined || sent.envelope.schedule.runId === runId)).map((sent) => sent.envelope.schedule!);

const recordOf = (world: World, callId: string): RunRecord | undefined => decodeRunRecord(world.get(executionKey(callId)), callId);
const pendingOf = (world: World, boot: string, gen = 0): string[] => readIndex(world.get(indexKey(boot, gen))).pending.map((entry) => entry.callId);
const bootsOf = (world: World, epoch = 0): Map<string, boolean> => new Map([...readBoots([world.get(bootsKey(epoch))], 10_000).boots].map(([boot, entry]) => [boot, entry.live]));

/** The executor ran `callId` (attempt `attempt`): its result is in the KVS. */
function finish(world: World, callId: string, attempt: number, value: unknown): void {
  world.put(resultKeyOf(callId), new Priority(attempt, { ok: true, value: encodeValue(value) }));
}

/** A record of a run of `f(arg)` owned by `owner` (a forged dead boot's), as that boot would write it. */
function forgedRecord(callId: string, owner: string, attempt = 1): RunRecord {
  return {
    callId,
    owner,
    state: 'accepted',
    attempt,
    dag: '',
    functions: [{ name: 'f', version: 1, args: [{ value: encodeValue(callId) }], successors: [], parents: [], concurrencyLimit: 0 }],
    consistency: 0,
    timeoutMs: 5000,
    resultKey: resultKeyOf(callId),
    traceId: '',
    executor: '',
    atMs: T0,
  };
}

/** A dead boot as it left the KVS: registered, a lease, an index of `runs` (call id -> record or a hostile value). */
function forgeDeadBoot(world: World, runs: Record<string, AnyLattice | RunRecord>, boot = DEAD): void {
  const clock = new HybridClock(boot, () => world.nowMs - 10_000);
  world.put(bootsKey(0), bootEntry(clock, boot, true));
  world.put(leaseKey(boot), leaseValue(clock, 1, 0));
  for (const [callId, record] of Object.entries(runs)) {
    world.put(indexKey(boot, 0), indexEntry(clock, callId, 100));
    world.put(executionKey(callId), 'callId' in record ? encodeRunRecord(clock, record).value : record);
  }
}

/** `node` passes every 500 ms from `fromMs` to `toMs` after T0. */
function passes(world: World, nodes: readonly Node[], fromMs: number, toMs: number): void {
  for (let t = fromMs; t <= toMs; t += 500) {
    world.at(t);
    for (const node of nodes) node.tick();
  }
}

describe('leased execution records', () => {
  it('a boot registers before it accepts an async call; the record carries the run and its owner; the run leaves the index once its result is written', () => {
    const world = new World();
    const a = new Node(world, A, 'boot1');
    expect(readLease(world.get(leaseKey(a.boot)))).toEqual(expect.objectContaining({ gen: 0 }));
    expect(bootsOf(world).get(a.boot)).toBe(true);
    a.status();
    a.register();
    expect(a.callAsync('c1', 41)).toEqual([expect.objectContaining({ callId: 'c1' })]);
    const record = recordOf(world, 'c1')!;
    expect(record).toEqual(expect.objectContaining({ owner: `${A}#boot1`, state: 'accepted', attempt: 1, dag: '', consistency: 0, timeoutMs: 5000, resultKey: resultKeyOf('c1') }));
    expect(record.functions).toEqual([{ name: 'f', version: 1, args: [{ value: new Uint8Array(encodeValue(41)) }], successors: [], parents: [], concurrencyLimit: 0 }]);
    expect(pendingOf(world, a.boot)).toEqual(['c1']);
    expect(a.machine.asyncPending).toBe(1);
    const [schedule] = schedulesFrom(world, A, 'c1');
    expect(schedule!.attempt).toBe(1);
    finish(world, 'c1', 1, 42);
    a.status(Number(schedule!.dispatchSeq), []);
    expect(recordOf(world, 'c1')).toEqual(expect.objectContaining({ state: 'done', owner: a.boot }));
    expect(recordOf(world, 'c1')!.functions[0]!.args).toEqual([]);
    expect(pendingOf(world, a.boot)).toEqual([]);
    expect(readIndex(world.get(indexKey(a.boot, 0))).removed).toBe(1);
    expect(a.machine.asyncPending).toBe(0);
    // The lease is renewed each period, one write whatever is pending.
    const renewals = a.counters.leaseRenewals;
    a.timer('lease');
    expect(a.counters.leaseRenewals).toBe(renewals + 1);
  });

  it('holds async calls until the boot is registered', () => {
    const world = new World();
    world.failing.add(bootsKey(0));
    const a = new Node(world, A, 'boot1');
    world.failing.delete(bootsKey(0));
    a.status();
    a.register();
    const answers = a.callAsync('early', 1);
    expect(answers).toEqual([]);
    expect(world.get(executionKey('early'))).toBeUndefined();
    a.timer('takeover');
    expect(bootsOf(world).get(a.boot)).toBe(true);
    expect(world.sent.filter((sent) => sent.envelope.callResponse?.callId === 'early')).toHaveLength(1);
    expect(recordOf(world, 'early')?.state).toBe('accepted');
  });

  it('refuses an async call whose record would be over the KVS value limit (EXEC_BAD_VALUE), writing nothing', () => {
    const world = new World();
    const a = new Node(world, A, 'boot1');
    a.status();
    a.register();
    const [answer] = a.callAsync('huge', new Uint8Array(9 * 1024 * 1024));
    expect(answer?.error?.message).toContain('execution record');
    expect(answer?.error?.code).toBe(pb.ErrorCode.EXEC_BAD_VALUE);
    expect(world.get(executionKey('huge'))).toBeUndefined();
    expect(pendingOf(world, a.boot)).toEqual([]);
  });
});

describe('takeover', () => {
  it('a survivor takes the runs of a dead boot over once its lease has not changed for the lease timeout, a bounded number per pass, then marks the boot gone', () => {
    const world = new World();
    const a = new Node(world, A, 'boot1');
    const b = new Node(world, B, 'boot1', { takeoverRecordsMax: 4 });
    a.register();
    // a knows no executor: its accepted calls wait for room.
    const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
    for (const [i, id] of ids.entries()) expect(a.callAsync(id, i)).toEqual([expect.objectContaining({ callId: id })]);
    expect(pendingOf(world, a.boot).sort()).toEqual([...ids].sort());
    a.crashed = true;
    b.status();
    // b saw a's lease at its first pass (at T0); it does not change any more.
    passes(world, [b], 500, 2500);
    expect(b.counters.takenOver).toBe(0);
    expect(schedulesFrom(world, B)).toEqual([]);
    passes(world, [b], 3000, 3000);
    expect(b.counters.bootsExpired).toBe(1);
    expect(b.counters.takenOver).toBe(4);
    passes(world, [b], 3500, 4000);
    expect(b.counters.takenOver).toBe(10);
    const schedules = schedulesFrom(world, B);
    expect(schedules.map((schedule) => schedule.runId).sort()).toEqual([...ids].sort());
    expect(new Set(schedules.map((schedule) => schedule.attempt))).toEqual(new Set([2]));
    for (const id of ids) expect(recordOf(world, id)).toEqual(expect.objectContaining({ owner: b.boot, attempt: 2, state: 'running' }));
    expect(pendingOf(world, a.boot)).toEqual([]);
    expect(pendingOf(world, b.boot).sort()).toEqual([...ids].sort());
    // Nothing of a is left: marked gone, its lease and index deleted.
    passes(world, [b], 4500, 4500);
    expect(b.counters.bootsRetired).toBe(1);
    expect(bootsOf(world).get(a.boot)).toBe(false);
    expect(world.get(leaseKey(a.boot))).toBeUndefined();
    expect(world.get(indexKey(a.boot, 0))).toBeUndefined();
    // The runs finish at b: b's index empties.
    for (const [i, id] of ids.entries()) finish(world, id, 2, i + 1);
    b.status(Math.max(...schedules.map((schedule) => Number(schedule.dispatchSeq))), []);
    expect(pendingOf(world, b.boot)).toEqual([]);
    expect(b.machine.asyncPending).toBe(0);
    // Passes on: nothing more to do.
    passes(world, [b], 5000, 6000);
    expect(b.counters.takenOver).toBe(10);
    expect(b.counters.recordsMalformed).toBe(0);
  });

  it('a live boot is never taken over: its lease changes at every renewal', () => {
    const world = new World();
    const a = new Node(world, A, 'boot1');
    const b = new Node(world, B, 'boot1');
    a.register();
    a.callAsync('live', 1);
    b.status();
    for (let t = 300; t <= 10_000; t += 300) {
      world.at(t);
      a.timer('lease');
      if (t % 600 === 0) b.timer('takeover');
    }
    expect(b.counters.bootsExpired).toBe(0);
    expect(b.counters.takenOver).toBe(0);
    expect(recordOf(world, 'live')?.owner).toBe(a.boot);
  });

  it('a boot restarted at the same address takes its previous boot\'s runs over at once, with dispatch numbers above the old boot\'s', () => {
    const world = new World();
    const old = new Node(world, A, 'boot1');
    old.status();
    old.register();
    for (const id of ['x', 'y', 'z']) old.callAsync(id, id);
    const oldSeqs = schedulesFrom(world, A).map((schedule) => Number(schedule.dispatchSeq));
    expect(oldSeqs).toHaveLength(3);
    old.crashed = true;
    world.at(100);
    const fresh = new Node(world, A, 'boot2');
    // The executor reports to the address: its acknowledgement still counts the old boot's dispatches.
    fresh.status(Math.max(...oldSeqs), ['x', 'y', 'z']);
    // Claimed at its first pass (no executor known yet: they wait for room), no lease timeout waited.
    expect(fresh.counters.bootsExpired).toBe(1);
    expect(fresh.counters.takenOver).toBe(3);
    fresh.timer('check');
    const taken = schedulesFrom(world, A).filter((schedule) => schedule.attempt === 2);
    expect(taken.map((schedule) => schedule.runId).sort()).toEqual(['x', 'y', 'z']);
    expect(Math.min(...taken.map((schedule) => Number(schedule.dispatchSeq)))).toBeGreaterThan(Math.max(...oldSeqs));
    // A status acknowledging the old boot's numbers does not end the new boot's runs.
    fresh.status(Math.max(...oldSeqs), []);
    expect(fresh.machine.runCount).toBe(3);
    expect(fresh.counters.redispatched).toBe(0);
  });

  it('skips and counts malformed records, index entries, leases and boots entries; takes the rest over', () => {
    const world = new World();
    const b = new Node(world, B, 'boot1');
    b.status();
    b.register();
    const cycle = { ...forgedRecord('cycle', DEAD), dag: 'd', functions: [
      { name: 'f', version: 1, args: [], successors: ['g'], parents: ['g'], concurrencyLimit: 0 },
      { name: 'g', version: 1, args: [], successors: ['f'], parents: ['f'], concurrencyLimit: 0 },
    ] };
    forgeDeadBoot(world, {
      good: forgedRecord('good', DEAD),
      garbage: Lww.write(new HybridClock('x', () => T0), 'not a record'),
      priority: new Priority(1, runRecordValue(forgedRecord('priority', DEAD))),
      cycle: Lww.write(new HybridClock('x', () => T0), runRecordValue(cycle)),
      elsewhere: Lww.write(new HybridClock('x', () => T0), { ...runRecordValue(forgedRecord('elsewhere', DEAD)), resultKey: 'lfaas/function/f@1' }),
    });
    const clock = new HybridClock('x', () => T0);
    world.put(indexKey(DEAD, 0), indexEntry(clock, 'good', 100).set('', Lww.write(clock, 3)).set('weird', Lww.write(clock, 'big')));
    world.put(bootsKey(0), bootEntry(clock, 'y#1', true).set('z#1', Lww.write(clock, 'live')));
    // Another registered boot whose lease is not a lease.
    world.put(leaseKey('y#1'), GSet.of('lease'));
    passes(world, [b], 500, 3500);
    expect(b.counters.takenOver).toBe(1);
    expect(schedulesFrom(world, B).map((schedule) => [schedule.runId, schedule.attempt])).toEqual([['good', 2]]);
    expect(b.counters.recordsMalformed).toBeGreaterThanOrEqual(4 + 2);
    // Hostile records are never dispatched, and nothing was written under the key one named.
    expect(world.get('lfaas/function/f@1')).toBeDefined();
    expect(recordOf(world, 'good')?.owner).toBe(b.boot);
    passes(world, [b], 4000, 5000);
    expect(b.counters.bootsRetired).toBe(2);
  });

  it('a DAG taken over is scheduled on every live executor (to replace what is left of the earlier attempt anywhere)', () => {
    const world = new World();
    const b = new Node(world, B, 'boot1');
    const other = 'tcp://127.0.0.1:7501';
    b.status();
    b.deliver({ executorStatus: { executorId: `${other}#1`, address: other, utilisation: 0, capacity: 8 } }, { sender: other });
    b.register('f');
    b.register('g');
    const dag: RunRecord = {
      ...forgedRecord('dagrun', DEAD),
      dag: 'fg',
      functions: [
        { name: 'f', version: 1, args: [{ value: encodeValue(1) }], successors: ['g'], parents: [], concurrencyLimit: 0 },
        { name: 'g', version: 1, args: [], successors: [], parents: ['f'], concurrencyLimit: 0 },
      ],
    };
    forgeDeadBoot(world, { dagrun: dag, single: forgedRecord('single', DEAD) });
    passes(world, [b], 500, 3500);
    expect(b.counters.takenOver).toBe(2);
    const to = (runId: string): string[] => world.sent.filter((sent) => sent.envelope.schedule?.runId === runId).map((sent) => sent.to).sort();
    expect(to('dagrun')).toEqual([EXECUTOR, other].sort());
    expect(to('single')).toHaveLength(1);
    const [schedule] = schedulesFrom(world, B, 'dagrun');
    expect(schedule!.functions!.map((fn) => [fn.name, fn.parentNames ?? [], fn.successors ?? []])).toEqual([
      ['f', [], ['g']],
      ['g', ['f'], []],
    ]);
  });

  it('a run whose result is written is only marked done; one claimed too often gets EXEC_LOST as its result', () => {
    const world = new World();
    const b = new Node(world, B, 'boot1');
    b.status();
    b.register();
    forgeDeadBoot(world, { finished: forgedRecord('finished', DEAD), poison: forgedRecord('poison', DEAD, 6) });
    finish(world, 'finished', 1, 'ok');
    passes(world, [b], 500, 3500);
    expect(b.counters.takeoverSettled).toBe(1);
    expect(b.counters.takeoverFailed).toBe(1);
    expect(b.counters.takenOver).toBe(0);
    expect(schedulesFrom(world, B)).toEqual([]);
    expect(recordOf(world, 'finished')?.state).toBe('done');
    expect(recordOf(world, 'poison')?.state).toBe('done');
    const poisoned = resultRecordOf(world.get(resultKeyOf('poison')));
    expect(poisoned).toEqual(expect.objectContaining({ ok: false, code: ErrorCode.EXEC_LOST }));
    expect((world.get(resultKeyOf('poison')) as Priority).priority).toBe(7);
  });

  it('two survivors claiming one run at once: the record read back after the claim lets one dispatch it', () => {
    const world = new World();
    const b = new Node(world, B, 'boot1');
    const c = new Node(world, C, 'boot1');
    for (const node of [b, c]) {
      node.status();
      node.register();
    }
    forgeDeadBoot(world, { contested: forgedRecord('contested', DEAD) });
    passes(world, [b, c], 500, 3000);
    expect(b.counters.takenOver + c.counters.takenOver).toBe(0);
    world.at(3500);
    // Both passes start before either is carried out: their tasks interleave.
    b.handle({ kind: 'timer', timer: 'takeover' });
    c.handle({ kind: 'timer', timer: 'takeover' });
    world.flush();
    const schedules = [...schedulesFrom(world, B, 'contested'), ...schedulesFrom(world, C, 'contested')];
    expect(schedules).toHaveLength(1);
    expect(b.counters.claimsLost + c.counters.claimsLost).toBe(1);
    expect(b.counters.takenOver + c.counters.takenOver).toBe(1);
    const winner = b.counters.takenOver === 1 ? b : c;
    const loser = winner === b ? c : b;
    expect(recordOf(world, 'contested')?.owner).toBe(winner.boot);
    expect(pendingOf(world, winner.boot)).toEqual(['contested']);
    expect(pendingOf(world, loser.boot)).toEqual([]);
  });

  it('adopts a run its own index holds but it no longer does (its failure write failed)', () => {
    const world = new World();
    const a = new Node(world, A, 'boot1');
    a.register();
    // No executor: the run waits for room until its deadline (100 ms + the 5 s grace), then its
    // SCHED_NO_CAPACITY result is written: that write fails.
    a.callAsync('orphan', 1, 'f', 100);
    world.failing.add(resultKeyOf('orphan'));
    world.at(5200);
    a.timer('check');
    expect(a.counters.retriesExpired).toBe(1);
    expect(a.machine.runCount).toBe(0);
    expect(pendingOf(world, a.boot)).toEqual(['orphan']);
    world.failing.delete(resultKeyOf('orphan'));
    world.at(5300);
    a.timer('takeover');
    expect(a.counters.orphansAdopted).toBe(0);
    world.at(5800);
    a.timer('takeover');
    expect(a.counters.orphansAdopted).toBe(1);
    expect(recordOf(world, 'orphan')).toEqual(expect.objectContaining({ attempt: 2, owner: a.boot }));
    a.status();
    world.at(5900);
    a.timer('check');
    expect(schedulesFrom(world, A, 'orphan').map((schedule) => schedule.attempt)).toEqual([2]);
  });

  it('rewrites its index into a new generation as removals pile up; a takeover finds every pending run there', () => {
    const world = new World();
    const a = new Node(world, A, 'boot1');
    const b = new Node(world, B, 'boot1');
    a.status();
    a.register();
    let seq = 0;
    for (let i = 0; i < 300; i++) {
      a.callAsync(`done${i}`, i);
      seq = Math.max(seq, ...schedulesFrom(world, A, `done${i}`).map((schedule) => Number(schedule.dispatchSeq)));
      finish(world, `done${i}`, 1, i);
      a.status(seq, []);
      if (i % 20 === 0) a.timer('lease');
    }
    for (const id of ['p1', 'p2', 'p3']) a.callAsync(id, id);
    a.timer('lease');
    expect(a.counters.indexRotations).toBeGreaterThanOrEqual(1);
    const gen = readLease(world.get(leaseKey(a.boot)))!.gen;
    expect(gen).toBeGreaterThanOrEqual(1);
    expect(world.get(indexKey(a.boot, 0))).toBeUndefined();
    const index = readIndex(world.get(indexKey(a.boot, gen)));
    expect(index.pending.map((entry) => entry.callId).sort()).toEqual(['p1', 'p2', 'p3']);
    expect(index.pending.length + index.removed).toBeLessThan(300);
    a.crashed = true;
    b.status();
    passes(world, [b], 500, 3500);
    expect(b.counters.takenOver).toBe(3);
  });

  it('moves the boots set to a new epoch once gone boots pile up; a later scheduler still finds every live boot', () => {
    const world = new World();
    const clock = new HybridClock('x', () => T0 - 10_000);
    for (let i = 0; i < 16; i++) world.put(bootsKey(0), bootEntry(clock, `tcp://10.0.0.${i}:1#gone`, false));
    forgeDeadBoot(world, { pending: forgedRecord('pending', DEAD) });
    const b = new Node(world, B, 'boot1', { bootsEpochMinMs: 0 });
    b.timer('takeover');
    expect(b.counters.bootsRotations).toBe(1);
    expect((world.get(BOOTS_EPOCH_KEY) as Max).value).toBe(1);
    expect([...bootsOf(world, 1)].sort()).toEqual([
      [b.boot, true],
      [DEAD, true],
    ]);
    // A scheduler that starts now reads the epochs around 0 and finds the current one.
    const c = new Node(world, C, 'boot1');
    expect(bootsOf(world, 1).get(c.boot)).toBe(true);
    c.status();
    c.register();
    passes(world, [c], 500, 3500);
    expect(c.counters.takenOver).toBe(1);
    // The next move drops epoch 0 (nobody writes two epochs back).
    for (let i = 0; i < 16; i++) world.put(bootsKey(1), bootEntry(clock, `tcp://10.0.1.${i}:1#gone`, false));
    world.at(4000);
    b.timer('takeover');
    expect((world.get(BOOTS_EPOCH_KEY) as Max).value).toBe(2);
    expect(world.get(bootsKey(0))).toBeUndefined();
    expect(bootsOf(world, 2).get(c.boot)).toBe(true);
  });

  it('a boot marked gone while it lived registers again and rewrites its index', () => {
    const world = new World();
    const a = new Node(world, A, 'boot1');
    a.register();
    a.callAsync('kept1', 1);
    a.callAsync('kept2', 2);
    // Another scheduler judged it dead (paused past the lease timeout) and retired it.
    const other = new HybridClock('other', () => world.nowMs);
    other.observe((readBoots([world.get(bootsKey(0))], 10).boots.get(a.boot)!.lww).timestamp);
    world.put(bootsKey(0), bootEntry(other, a.boot, false));
    world.data.delete(indexKey(a.boot, 0));
    world.at(500);
    a.timer('takeover');
    expect(bootsOf(world).get(a.boot)).toBe(true);
    expect(a.counters.indexRotations).toBe(1);
    world.at(800);
    a.timer('lease');
    const gen = readLease(world.get(leaseKey(a.boot)))!.gen;
    expect(gen).toBe(1);
    expect(pendingOf(world, a.boot, gen).sort()).toEqual(['kept1', 'kept2']);
  });
});
