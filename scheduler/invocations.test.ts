import { describe, expect, it } from 'vitest';
import { pb } from '../protocol/index.js';
import { schedulerInvocations } from './invocations.js';

describe('a scheduler\'s invocations answer', () => {
  it('lists its queued runs that the request names, and the live executors', () => {
    const queued = [
      { runId: 'alice/a-1', dag: '', functions: [{ name: 'alice/f' }], acceptedAtMs: 1000 },
      { runId: 'bob/b-1', dag: 'bob/pipeline', functions: [{ name: 'bob/x' }, { name: 'bob/y' }], acceptedAtMs: 1500 },
      { runId: 'alice/a-2', dag: '', functions: [{ name: 'inc' }], acceptedAtMs: 1800 },
    ];
    const executors = ['tcp://127.0.0.1:1', 'tcp://127.0.0.1:2'];
    const all = schedulerInvocations({}, queued, executors, 'tcp://127.0.0.1:9', 2000);
    expect(all.executors).toEqual(executors);
    expect(all.invocations?.map((entry) => [entry.callId, entry.name, entry.dag, entry.state, entry.durationMs])).toEqual([
      ['alice/a-1', 'alice/f', false, pb.InvocationState.INVOCATION_QUEUED, 1000],
      ['bob/b-1', 'bob/pipeline', true, pb.InvocationState.INVOCATION_QUEUED, 500],
      ['alice/a-2', 'inc', false, pb.InvocationState.INVOCATION_QUEUED, 200],
    ]);
    // An owner's namespace: its names, and its own calls of functions elsewhere.
    expect(schedulerInvocations({ name: 'alice/' }, queued, executors, 'tcp://127.0.0.1:9', 2000).invocations?.map((entry) => entry.callId)).toEqual(['alice/a-1', 'alice/a-2']);
    expect(schedulerInvocations({ name: 'bob/pipeline' }, queued, executors, 'tcp://127.0.0.1:9', 2000).invocations?.map((entry) => entry.callId)).toEqual(['bob/b-1']);
    expect(schedulerInvocations({ limit: 1 }, queued, executors, 'tcp://127.0.0.1:9', 2000).invocations).toHaveLength(1);
  });
});
