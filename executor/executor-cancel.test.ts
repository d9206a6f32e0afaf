/**
 * Cancels at the executor machine: the sink answers EXEC_CANCELLED at once, the host is told to
 * abort the run's functions (`cancel` task: `ctx.signal`, then the pool's grace and replacement)
 * and to drop its scope; a late result of the aborted function is ignored; an unknown run is a
 * no-op answer.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { decodeEnvelope, encodeEnvelope, errorFromWireMessage } from '../protocol/index.js';
import type { Effect, PbTypes } from '../protocol/index.js';
import { ExecutorNode } from './executor-node.js';

const SELF = 'tcp://127.0.0.1:7300';
const CALLER = 'tcp://127.0.0.1:7301';

const message = (body: PbTypes.IEnvelope, requestId = 0): { kind: 'message'; envelope: PbTypes.Envelope } => ({
  kind: 'message',
  envelope: decodeEnvelope(encodeEnvelope({ ...body, ...(requestId === 0 ? {} : { requestId, replyTo: CALLER }) })),
});
const sends = (effects: readonly Effect[]): PbTypes.Envelope[] => effects.flatMap((effect) => (effect.kind === 'send' ? [effect.envelope as PbTypes.Envelope] : []));
const tasks = (effects: readonly Effect[]): { op: string; runId?: string }[] => effects.flatMap((effect) => (effect.kind === 'task' ? [effect.task as { op: string; runId?: string }] : []));

describe('cancel at the executor', () => {
  it('answers the caller EXEC_CANCELLED, aborts the run here, and ignores its late result', () => {
    const executor = new ExecutorNode({ address: SELF });
    const started = executor.handle(message({ schedule: { runId: 'r1', functions: [{ name: 'f', version: 1, executor: SELF }], timeoutMs: 10_000, replyTo: CALLER, replyRequestId: 9 } }), 0);
    const run = started.find((effect) => effect.kind === 'task' && (effect.task as { op: string }).op === 'run');
    expect(run).toBeDefined();
    expect(executor.runCount).toBe(1);

    const effects = executor.handle(message({ cancelCall: { callId: 'r1' } }, 5), 1);
    const answer = sends(effects).find((envelope) => envelope.callResponse?.callId === 'r1');
    expect(errorFromWireMessage(answer!.callResponse!.error!).code).toBe(ErrorCode.EXEC_CANCELLED);
    expect(sends(effects).find((envelope) => envelope.cancelCallResponse)?.cancelCallResponse?.cancelled).toBe(true);
    expect(tasks(effects)).toEqual(expect.arrayContaining([{ op: 'cancel', runId: 'r1' }, { op: 'endRun', runId: 'r1' }]));
    expect(executor.runCount).toBe(0);

    // The aborted function's result comes back later: nobody is answered twice.
    const late = executor.handle({ kind: 'taskDone', token: (run as { token: number }).token, result: { value: new Uint8Array([1]), cut: [] } }, 2);
    expect(sends(late)).toEqual([]);

    const unknown = executor.handle(message({ cancelCall: { callId: 'r1' } }, 6), 3);
    expect(sends(unknown).map((envelope) => envelope.cancelCallResponse?.cancelled ?? null)).toEqual([false]);
  });
});
