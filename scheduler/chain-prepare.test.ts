/**
 * The scheduler prepares the function that usually follows the one called: learnt from a
 * caller's consecutive plain calls, and from DAG edges; at most once per function
 * per 2 s, never on an executor already warm for it.
 */
import { describe, expect, it } from 'vitest';
import { EXECUTORS, Harness } from './testing.js';
import type { Send } from './testing.js';

const CALLER = 'tcp://127.0.0.1:7501';
const code = (body: string): Uint8Array => new TextEncoder().encode(body);

const prepares = (sends: readonly Send[], name: string): string[] => sends.filter((send) => (send.envelope.prepare?.functions ?? []).some((fn) => fn.name === name && fn.version === 1)).map((send) => send.to);

function cluster(): Harness {
  // No pins at registration: every prepare seen comes from a chain.
  const harness = new Harness(undefined, { pinExecutors: 0 });
  harness.statuses();
  for (const name of ['f', 'g', 'h']) harness.deliver({ registerFunction: { spec: { name, code: code('module.exports = (x) => x;') } } }, { requestId: 1, replyTo: CALLER });
  return harness;
}

let requestId = 100;
const call = (harness: Harness, name: string, caller = CALLER): Send[] => harness.deliver({ callRequest: { callId: `c${requestId}`, function: name } }, { requestId: requestId++, replyTo: caller, sender: caller });

describe('chains of plain calls', () => {
  it('after a caller called g right after f three times, a call of f prepares g on one executor', () => {
    const harness = cluster();
    for (let round = 0; round < 3; round++) {
      harness.nowMs += 3000;
      expect(prepares(call(harness, 'f'), 'g')).toEqual([]);
      harness.nowMs += 20;
      call(harness, 'g');
    }
    harness.nowMs += 3000;
    const sends = call(harness, 'f');
    const prepared = prepares(sends, 'g');
    expect(prepared).toHaveLength(1);
    expect(EXECUTORS).toContain(prepared[0]);
    expect(harness.node.counters.chainPrepares).toBe(1);
    // Again within 2 s: not sent again; once g reports warm there, not sent there at all.
    harness.nowMs += 500;
    expect(prepares(call(harness, 'f'), 'g')).toEqual([]);
    harness.statuses(Object.fromEntries(EXECUTORS.map((address) => [address, ['g@1']])));
    harness.nowMs += 5000;
    expect(prepares(call(harness, 'f'), 'g')).toEqual([]);
  });

  it('other callers in between do not make a chain, nor does a call after the window', () => {
    const harness = cluster();
    for (let round = 0; round < 5; round++) {
      harness.nowMs += 3000;
      call(harness, 'f', 'tcp://127.0.0.1:7601');
      harness.nowMs += 20;
      call(harness, 'g', 'tcp://127.0.0.1:7602');
      harness.nowMs += 2000;
      call(harness, 'h', 'tcp://127.0.0.1:7601');
    }
    harness.nowMs += 3000;
    const sends = call(harness, 'f', 'tcp://127.0.0.1:7601');
    expect(prepares(sends, 'g')).toEqual([]);
    expect(prepares(sends, 'h')).toEqual([]);
  });

  it('a DAG called through the scheduler teaches its edges: a plain call of its first function prepares the next', () => {
    const harness = cluster();
    harness.deliver({ registerDag: { spec: { name: 'fg', functions: ['f', 'g'], edges: [{ fromFunction: 'f', toFunction: 'g' }] } } }, { requestId: 2, replyTo: CALLER });
    harness.deliver({ dagCall: { callId: 'd1', dag: 'fg', args: { f: { args: [] } } } }, { requestId: 3, replyTo: CALLER });
    harness.nowMs += 3000;
    expect(prepares(call(harness, 'f'), 'g')).toHaveLength(1);
  });
});
