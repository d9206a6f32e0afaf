/**
 * An executor's schedulers replaced by discovery (ExecutorNode.setSchedulers, fed by
 * client/discovery.ts in cli/executor.ts): a new scheduler is reported to from the next status; one
 * no longer listed is reported to as if learnt, and forgotten once idle.
 */
import { describe, expect, it } from 'vitest';
import { ExecutorNode, LEARNT_SCHEDULER_IDLE_MS } from './executor-node.js';

describe('executor: schedulers from discovery', () => {
  it('heartbeats the discovered schedulers, and lets a vanished one go once idle', () => {
    const executor = new ExecutorNode({ address: 'tcp://10.0.0.5:7300', schedulers: ['tcp://10.0.0.4:1'], statusPeriodMs: 100 });
    const statusTargets = (nowMs: number): string[] => {
      const task = executor.handle({ kind: 'timer', timer: 'status' }, nowMs).find((effect) => effect.kind === 'task');
      if (task?.kind !== 'task') return [];
      const sent = executor.handle({ kind: 'taskDone', token: task.token, result: { warm: [], keys: [], capacity: 2, load: 0 } }, nowMs);
      return sent.flatMap((effect) => (effect.kind === 'send' && effect.envelope.executorStatus ? [effect.to] : [])).sort();
    };
    expect(statusTargets(100)).toEqual(['tcp://10.0.0.4:1']);
    executor.setSchedulers(['tcp://10.0.0.4:1', 'tcp://10.0.0.8:1']);
    expect(statusTargets(200)).toEqual(['tcp://10.0.0.4:1', 'tcp://10.0.0.8:1']);
    executor.setSchedulers(['tcp://10.0.0.8:1']);
    expect(statusTargets(300)).toEqual(['tcp://10.0.0.4:1', 'tcp://10.0.0.8:1']);
    expect(statusTargets(300 + LEARNT_SCHEDULER_IDLE_MS + 200)).toEqual(['tcp://10.0.0.8:1']);
  });
});
