/**
 * The executor machine's invocation table, driven through its messages: a run shows running from
 * its schedule, then succeeded, failed (with its code) or timed out; a logs request becomes a
 * `logs` task answered with the executor's boot.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { decodeEnvelope, encodeEnvelope, errorFromWireMessage, pb } from '../protocol/index.js';
import type { Effect, PbTypes } from '../protocol/index.js';
import { ExecutorNode } from './executor-node.js';

const SELF = 'tcp://127.0.0.1:7300';
const CALLER = 'tcp://127.0.0.1:7301';

function message(body: PbTypes.IEnvelope, requestId = 0): { kind: 'message'; envelope: PbTypes.Envelope } {
  return { kind: 'message', envelope: decodeEnvelope(encodeEnvelope({ ...body, ...(requestId === 0 ? {} : { requestId, replyTo: CALLER }) })) };
}

function runTask(effects: readonly Effect[]): number {
  const task = effects.find((effect) => effect.kind === 'task' && (effect.task as { op: string }).op === 'run');
  if (task === undefined || task.kind !== 'task') throw new Error('no run task');
  return task.token;
}

function listed(executor: ExecutorNode, nowMs: number, request: PbTypes.IInvocationsRequest = {}): PbTypes.IInvocationInfo[] {
  const effects = executor.handle(message({ invocationsRequest: request }, 99), nowMs);
  const reply = effects.find((effect) => effect.kind === 'send');
  if (reply === undefined || reply.kind !== 'send') throw new Error('no reply');
  // The answer must encode (bounded, valid): it goes through the codec as on the wire.
  return decodeEnvelope(encodeEnvelope(reply.envelope)).invocationList?.invocations ?? [];
}

describe('the executor machine lists its invocations', () => {
  it('running, then succeeded or failed with its code; the owner filter applies', () => {
    const executor = new ExecutorNode({ address: SELF });
    const ok = executor.handle(message({ schedule: { runId: 'alice/c-1', functions: [{ name: 'alice/f', version: 1, executor: SELF }], timeoutMs: 1000, replyTo: CALLER, replyRequestId: 1 } }), 1000);
    const bad = executor.handle(message({ schedule: { runId: 'bob/c-2', functions: [{ name: 'bob/g', version: 1, executor: SELF }], timeoutMs: 1000, resultKey: 'lfaas/result/bob/c-2' } }), 1100);
    let all = listed(executor, 1200);
    expect(all.map((entry) => [entry.callId, entry.state, entry.mode])).toEqual([
      ['bob/c-2', pb.InvocationState.INVOCATION_RUNNING, 'async'],
      ['alice/c-1', pb.InvocationState.INVOCATION_RUNNING, 'sync'],
    ]);
    executor.handle({ kind: 'taskDone', token: runTask(ok), result: { value: new Uint8Array([0xc0]), cut: [] } }, 1300);
    executor.handle({ kind: 'taskDone', token: runTask(bad), error: new LfaasError(ErrorCode.EXEC_USER_ERROR, 'boom') }, 1400);
    all = listed(executor, 1500);
    const alice = all.find((entry) => entry.callId === 'alice/c-1')!;
    expect(alice.state).toBe(pb.InvocationState.INVOCATION_SUCCEEDED);
    expect(alice.durationMs).toBe(300);
    expect(alice.node).toBe(SELF);
    const bob = all.find((entry) => entry.callId === 'bob/c-2')!;
    expect(bob.state).toBe(pb.InvocationState.INVOCATION_FAILED);
    expect(errorFromWireMessage(bob.error!).code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(listed(executor, 1500, { name: 'alice/' }).map((entry) => entry.callId)).toEqual(['alice/c-1']);
    expect(listed(executor, 1500, { runningOnly: true })).toEqual([]);
  });

  it('a run past its deadline is timed out', () => {
    const executor = new ExecutorNode({ address: SELF });
    executor.handle(message({ schedule: { runId: 'late', functions: [{ name: 'f', version: 1, executor: SELF, parentNames: ['ghost'] }], timeoutMs: 500, replyTo: CALLER, replyRequestId: 3 } }), 0);
    executor.handle({ kind: 'timer', timer: 'run:late' }, 500);
    const [entry] = listed(executor, 600);
    expect(entry?.state).toBe(pb.InvocationState.INVOCATION_TIMED_OUT);
    expect(errorFromWireMessage(entry!.error!).code).toBe(ErrorCode.EXEC_TIMEOUT);
  });

  it('a logs request is a logs task, answered with the records and this boot', () => {
    const executor = new ExecutorNode({ address: SELF, incarnation: 'boot-1' });
    const effects = executor.handle(message({ logsRequest: { name: 'alice/', afterSeq: 5, limit: 10 } }, 7), 0);
    const task = effects.find((effect) => effect.kind === 'task');
    expect(task?.kind === 'task' && task.task).toEqual({ op: 'logs', query: { name: 'alice/', sinceMs: 0, callId: '', afterSeq: 5, limit: 10 } });
    const records: PbTypes.IFunctionLogRecord[] = [{ seq: 6, timeMs: 1, function: 'alice/f', version: 1, callId: 'alice/c', level: 'info', text: 'hi', fields: '' }];
    const answer = executor.handle({ kind: 'taskDone', token: task!.kind === 'task' ? task!.token : 0, result: { records, truncated: false } }, 1);
    const reply = answer.find((effect) => effect.kind === 'send');
    expect(reply?.kind === 'send' && reply.envelope.logsReply).toMatchObject({ executorId: `${SELF}#boot-1`, records: [{ text: 'hi' }] });
  });
});
