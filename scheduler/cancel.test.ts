/**
 * Cancels at the scheduler machine (the integration tests, test/sdk-cancel.test.ts, run them over
 * real processes): a cancel of a run it holds goes to each executor of the run, answers the sync
 * caller EXEC_CANCELLED, and takes the run off its books; a run it does not hold is a no-op answer.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { errorFromWireMessage } from '../protocol/index.js';
import { Harness } from './testing.js';

const CALLER = 'tcp://127.0.0.1:7601';
const code = (body: string): Uint8Array => new TextEncoder().encode(body);

describe('cancel at the scheduler', () => {
  it('a held run: its executors are told, its caller answered EXEC_CANCELLED, a second cancel is a no-op', () => {
    const harness = new Harness(undefined, { pinExecutors: 0 });
    harness.statuses();
    harness.deliver({ registerFunction: { spec: { name: 'slow', code: code('module.exports = () => 1;') } } }, { requestId: 1, replyTo: CALLER });
    const dispatched = harness.deliver({ callRequest: { callId: 'run-1', function: 'slow' } }, { requestId: 2, replyTo: CALLER, sender: CALLER });
    const executors = dispatched.filter((send) => send.envelope.schedule?.runId === 'run-1').map((send) => send.to);
    expect(executors).toHaveLength(1);

    const sends = harness.deliver({ cancelCall: { callId: 'run-1' } }, { requestId: 3, replyTo: CALLER, sender: CALLER });
    expect(sends.filter((send) => send.envelope.cancelCall?.callId === 'run-1').map((send) => send.to)).toEqual(executors);
    const answer = sends.find((send) => send.envelope.callResponse?.callId === 'run-1');
    expect(answer?.to).toBe(CALLER);
    expect(errorFromWireMessage(answer!.envelope.callResponse!.error!).code).toBe(ErrorCode.EXEC_CANCELLED);
    expect(sends.find((send) => send.envelope.cancelCallResponse !== undefined && send.envelope.cancelCallResponse !== null)?.envelope.cancelCallResponse?.cancelled).toBe(true);

    const again = harness.deliver({ cancelCall: { callId: 'run-1' } }, { requestId: 4, replyTo: CALLER, sender: CALLER });
    expect(again.map((send) => send.envelope.cancelCallResponse?.cancelled ?? null)).toEqual([false]);
    expect(harness.deliver({ cancelCall: { callId: 'never-started' } }, { requestId: 5, replyTo: CALLER, sender: CALLER }).map((send) => send.envelope.cancelCallResponse?.cancelled ?? null)).toEqual([false]);
  });
});
