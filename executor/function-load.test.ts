/**
 * Function loads: a steady call rate reads as itself, a stopped function fades out and is
 * forgotten, latencies are the recent calls' p50 and p99, everything stays bounded; and the
 * executor machine puts them in every status, counting direct calls as well as scheduled ones.
 */
import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope } from '../protocol/index.js';
import type { Effect, PbTypes } from '../protocol/index.js';
import { ExecutorNode } from './executor-node.js';
import { FunctionLoads, RATE_FLOOR } from './function-load.js';

describe('FunctionLoads', () => {
  it('a steady rate reads as itself; once the calls stop it fades, then the function is forgotten', () => {
    const loads = new FunctionLoads({ tauMs: 2000, forgetMs: 60_000 });
    // 50 calls/s for 20 s (ten time constants).
    for (let t = 0; t < 20_000; t += 20) loads.record('hot', 5, t);
    const [hot] = loads.report(20_000);
    expect(hot!.name).toBe('hot');
    expect(hot!.rate).toBeGreaterThan(47);
    expect(hot!.rate).toBeLessThan(53);
    // Stopped: e^-1 of it after one time constant, nothing reported once under the floor.
    expect(loads.report(22_000)[0]!.rate).toBeCloseTo(hot!.rate / Math.E, 0);
    expect(loads.report(40_000)).toEqual([]);
    expect(loads.size).toBe(1);
    expect(loads.report(20_000 + 61_000)).toEqual([]);
    expect(loads.size).toBe(0);
  });

  it('failed calls are an error rate of their own, counted in the call rate too', () => {
    const loads = new FunctionLoads({ tauMs: 2000 });
    // 50 calls/s for 20 s, one in five failing.
    for (let t = 0, n = 0; t < 20_000; t += 20, n++) loads.record('flaky', 5, t, n % 5 === 0);
    const [flaky] = loads.report(20_000);
    expect(flaky!.rate).toBeGreaterThan(47);
    expect(flaky!.errors).toBeGreaterThan(8);
    expect(flaky!.errors).toBeLessThan(12);
    loads.record('fine', 5, 20_000);
    expect(loads.report(20_000).find((load) => load.name === 'fine')!.errors).toBe(0);
  });

  it('p50 and p99 are over the recent calls only', () => {
    const loads = new FunctionLoads({ samples: 100 });
    for (let i = 1; i <= 100; i++) loads.record('f', i, 0);
    expect(loads.report(0)[0]).toMatchObject({ p50Ms: 50, p99Ms: 99 });
    // 100 newer calls of 1 ms replace them all.
    for (let i = 0; i < 100; i++) loads.record('f', 1, 1);
    expect(loads.report(1)[0]).toMatchObject({ p50Ms: 1, p99Ms: 1 });
    // A hostile or broken clock: a negative or non-finite duration counts as 0.
    loads.record('g', -5, 2);
    loads.record('g', Number.NaN, 2);
    expect(loads.report(2).find((load) => load.name === 'g')).toMatchObject({ p50Ms: 0, p99Ms: 0 });
  });

  it('bounded: at most `max` functions tracked (the least recently called goes), at most `reported` in a status, hottest first', () => {
    const loads = new FunctionLoads({ max: 10, reported: 3 });
    for (let i = 0; i < 50; i++) for (let n = 0; n <= i % 7; n++) loads.record(`f${i}`, 1, i);
    expect(loads.size).toBe(10);
    const report = loads.report(50);
    expect(report).toHaveLength(3);
    expect(report.map((load) => load.rate)).toEqual([...report.map((load) => load.rate)].sort((a, b) => b - a));
    expect(report.every((load) => load.rate >= RATE_FLOOR)).toBe(true);
  });
});

describe('the executor machine reports its function loads', () => {
  const SELF = 'tcp://127.0.0.1:7310';
  const SCHEDULER = 'tcp://127.0.0.1:7311';
  const CALLER = 'tcp://127.0.0.1:7312';

  /** The status sent to the scheduler at `nowMs`. */
  const status = (executor: ExecutorNode, nowMs: number): PbTypes.IExecutorStatus | undefined => {
    const task = executor.handle({ kind: 'timer', timer: 'status' }, nowMs).find((effect) => effect.kind === 'task');
    if (task?.kind !== 'task') return undefined;
    const sent = executor.handle({ kind: 'taskDone', token: task.token, result: { warm: [], keys: [], capacity: 4, load: 0 } }, nowMs);
    const found = sent.find((effect): effect is Extract<Effect, { kind: 'send' }> => effect.kind === 'send' && effect.to === SCHEDULER);
    return found?.envelope.executorStatus ?? undefined;
  };

  it('each call that ran counts, scheduled or direct, with its time from start to finish', () => {
    const executor = new ExecutorNode({ address: SELF, schedulers: [SCHEDULER] });
    let t = 0;
    for (let i = 0; i < 40; i++, t += 50) {
      // Every other call is direct (a leased client: no scheduler named).
      const schedule: PbTypes.ISchedule = { runId: `r${i}`, functions: [{ name: 'hot', version: 1, executor: SELF }], timeoutMs: 1000, replyTo: CALLER, replyRequestId: i + 1, ...(i % 2 === 0 ? { scheduler: SCHEDULER, dispatchSeq: i + 1 } : {}) };
      const started = executor.handle({ kind: 'message', envelope: decodeEnvelope(encodeEnvelope({ schedule })) }, t);
      const run = started.find((effect) => effect.kind === 'task');
      expect(run?.kind).toBe('task');
      executor.handle({ kind: 'taskDone', token: (run as Extract<Effect, { kind: 'task' }>).token, result: { value: new Uint8Array([0xc0]), cut: [] } }, t + 8);
    }
    const reported = status(executor, t)!;
    expect(reported.functions).toHaveLength(1);
    const [hot] = reported.functions!;
    expect(hot!.name).toBe('hot');
    // 40 calls in 2 s, 20 calls/s, on a 2 s time constant: most of the way there.
    expect(hot!.rate).toBeGreaterThan(10);
    expect(hot!.rate).toBeLessThan(20);
    expect(hot!.p50Ms).toBe(8);
    expect(hot!.p99Ms).toBe(8);
  });
});
