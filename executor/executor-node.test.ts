/**
 * The executor machine fed hostile schedules (found by the wire fuzzer, test/fuzz.test.ts): what a
 * schedule costs must stay bounded whatever it names.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { decodeEnvelope, encodeEnvelope, errorFromWireMessage } from '../protocol/index.js';
import type { Effect, PbTypes } from '../protocol/index.js';
import { ExecutorNode, LEARNT_SCHEDULER_IDLE_MS, RUN_TIMEOUT_MAX_MS, SCHEDULE_FUNCTIONS_MAX } from './executor-node.js';

const SELF = 'tcp://127.0.0.1:7300';
const CALLER = 'tcp://127.0.0.1:7301';

function scheduleMessage(schedule: PbTypes.ISchedule): { kind: 'message'; envelope: PbTypes.Envelope } {
  return { kind: 'message', envelope: decodeEnvelope(encodeEnvelope({ schedule })) };
}

/** The errors of the call responses among `effects`. */
function answeredErrors(effects: readonly Effect[]): string[] {
  return effects.flatMap((effect) => (effect.kind === 'send' && effect.envelope.callResponse?.error ? [errorFromWireMessage(effect.envelope.callResponse.error).code] : []));
}

describe('the executor machine fed hostile schedules', () => {
  it(`refuses a schedule of more than ${SCHEDULE_FUNCTIONS_MAX} functions at once, whatever its length (it was quadratic)`, () => {
    const executor = new ExecutorNode({ address: SELF });
    const over = Array.from({ length: SCHEDULE_FUNCTIONS_MAX + 1 }, (_, i) => ({ name: `f${i}`, version: 1, executor: SELF }));
    const effects = executor.handle(scheduleMessage({ runId: 'over', functions: over, timeoutMs: 1000, replyTo: CALLER, replyRequestId: 1 }), 0);
    expect(answeredErrors(effects)).toEqual([ErrorCode.EXEC_BAD_VALUE]);
    expect(executor.runCount).toBe(0);
    // 20 000 functions placed here, none naming its parents: each function's parents used to be
    // found by a pass over the whole schedule (4 x 10^8 steps, minutes: the test's own timeout
    // catches that), and each one started a task.
    const many = Array.from({ length: 20_000 }, (_, i) => ({ name: `g${i}`, version: 1, executor: SELF, successors: i + 1 < 20_000 ? [`g${i + 1}`] : [] }));
    const refused = executor.handle(scheduleMessage({ runId: 'many', functions: many, timeoutMs: 1000, replyTo: CALLER, replyRequestId: 2 }), 1);
    expect(answeredErrors(refused)).toEqual([ErrorCode.EXEC_BAD_VALUE]);
    expect(refused.filter((effect) => effect.kind === 'task')).toHaveLength(0);
  });

  it('refuses an async schedule whose result key is not its call\'s own (it could overwrite a registry record), writing nothing', () => {
    const executor = new ExecutorNode({ address: SELF });
    const fn = { name: 'f', version: 1, executor: SELF };
    const forged = executor.handle(scheduleMessage({ runId: 'r1', functions: [fn], timeoutMs: 1000, resultKey: 'lfaas/function/victim@1', replyTo: CALLER, replyRequestId: 1 }), 0);
    expect(answeredErrors(forged)).toEqual([ErrorCode.EXEC_BAD_VALUE]);
    expect(forged.filter((effect) => effect.kind === 'task')).toHaveLength(0);
    expect(executor.runCount).toBe(0);
    // Without a caller to answer: dropped, and still nothing written.
    expect(executor.handle(scheduleMessage({ runId: 'r2', functions: [fn], timeoutMs: 1000, resultKey: 'lfaas/result/someone-else' }), 1)).toEqual([]);
    // Its own key is accepted: the run starts (its first task fetches the function).
    const own = executor.handle(scheduleMessage({ runId: 'r3', functions: [fn], timeoutMs: 1000, resultKey: 'lfaas/result/r3' }), 2);
    expect(executor.runCount).toBe(1);
    expect(own.some((effect) => effect.kind === 'task')).toBe(true);
  });

  it('a run of one function waiting for a trigger that never comes ends at its deadline (it was held for good)', () => {
    const executor = new ExecutorNode({ address: SELF });
    const effects = executor.handle(
      scheduleMessage({ runId: 'orphan', functions: [{ name: 'f', version: 1, executor: SELF, parentNames: ['ghost'] }], timeoutMs: 500, replyTo: CALLER, replyRequestId: 3 }),
      0,
    );
    expect(executor.runCount).toBe(1);
    expect(effects).toContainEqual({ kind: 'timer', timer: 'run:orphan', delayMs: 500 });
    const atDeadline = executor.handle({ kind: 'timer', timer: 'run:orphan' }, 500);
    expect(answeredErrors(atDeadline)).toEqual([ErrorCode.EXEC_TIMEOUT]);
    expect(executor.runCount).toBe(0);
  });

  it('a run is given at most 15 minutes, whatever its schedule asks', () => {
    const executor = new ExecutorNode({ address: SELF });
    const effects = executor.handle(
      scheduleMessage({
        runId: 'forever',
        functions: [
          { name: 'a', version: 1, executor: SELF, successors: ['b'] },
          { name: 'b', version: 1, executor: SELF },
        ],
        timeoutMs: 0xffff_ffff,
        replyTo: CALLER,
        replyRequestId: 4,
      }),
      0,
    );
    expect(effects).toContainEqual({ kind: 'timer', timer: 'run:forever', delayMs: RUN_TIMEOUT_MAX_MS });
  });

  it('a scheduler a schedule names (not configured) is heartbeated only while it uses this executor (it was for good, ten times a second)', () => {
    const configured = 'tcp://127.0.0.1:7302';
    const named = 'tcp://127.0.0.1:7303';
    const executor = new ExecutorNode({ address: SELF, schedulers: [configured], statusPeriodMs: 100 });
    /** The addresses the status of a status period at `nowMs` goes to. */
    const statusTargets = (nowMs: number): string[] => {
      const task = executor.handle({ kind: 'timer', timer: 'status' }, nowMs).find((effect) => effect.kind === 'task');
      if (task?.kind !== 'task') return [];
      const sent = executor.handle({ kind: 'taskDone', token: task.token, result: { warm: [], keys: [], capacity: 2, load: 0 } }, nowMs);
      return sent.flatMap((effect) => (effect.kind === 'send' && effect.envelope.executorStatus ? [effect.to] : [])).sort();
    };
    // Any sender may name any address as the scheduler of a schedule (here placing nothing on this executor).
    executor.handle(scheduleMessage({ runId: 'elsewhere', functions: [{ name: 'f', version: 1, executor: CALLER }], timeoutMs: 1000, scheduler: named, dispatchSeq: 9 }), 0);
    expect(statusTargets(100)).toEqual([configured, named].sort());
    expect(statusTargets(LEARNT_SCHEDULER_IDLE_MS - 100)).toEqual([configured, named].sort());
    expect(statusTargets(LEARNT_SCHEDULER_IDLE_MS + 200)).toEqual([configured]);
    expect(statusTargets(10 * LEARNT_SCHEDULER_IDLE_MS)).toEqual([configured]);
  });
});
