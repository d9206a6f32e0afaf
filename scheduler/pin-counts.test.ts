/**
 * The scheduler machine and the monitor's pin counts: a raised count prepares the function on
 * more executors at once (the least loaded; one registered through another scheduler too), a
 * later executor takes it on while the count asks for more, a lowered count pins nowhere beyond
 * it; hostile counts are bounded; and the monitor's view (`clusterStats`) carries each
 * executor's function loads, checked.
 */
import { describe, expect, it } from 'vitest';
import { EXECUTORS, Harness } from './testing.js';
import type { Send } from './testing.js';

const CLIENT = 'tcp://127.0.0.1:7401';
const MONITOR = 'tcp://127.0.0.1:7402';

/** The executors sent a prepare of `name` among `sends`. */
const preparedOn = (sends: readonly Send[], name: string): string[] =>
  sends.filter((send) => (send.envelope.prepare?.functions ?? []).some((fn) => fn.name === name)).map((send) => send.to).sort();

function registered(): { harness: Harness; first: string[] } {
  const harness = new Harness();
  harness.statuses();
  const sends = harness.deliver({ registerFunction: { spec: { name: 'hot', code: new TextEncoder().encode('module.exports = () => 1;') } } }, { requestId: 1, replyTo: CLIENT });
  expect(sends.some((send) => send.envelope.registerFunctionResponse?.version === 1)).toBe(true);
  return { harness, first: preparedOn(sends, 'hot') };
}

describe('the scheduler and the monitor\'s pin counts', () => {
  it('a raised count prepares the function on more executors at once, the warm and least loaded first', () => {
    const { harness, first } = registered();
    expect(first).toHaveLength(2);
    harness.nowMs = 200;
    harness.statuses(Object.fromEntries(first.map((address) => [address, ['hot@1']])));
    const raised = harness.deliver({ pinCounts: { counts: [{ name: 'hot', count: 4 }], validMs: 10_000 } });
    const more = preparedOn(raised, 'hot');
    expect(more).toEqual(EXECUTORS.filter((address) => !first.includes(address)).sort());
    // The same counts again (the monitor sends them every period): nothing more to send.
    harness.nowMs = 1200;
    expect(preparedOn(harness.deliver({ pinCounts: { counts: [{ name: 'hot', count: 4 }], validMs: 10_000 } }), 'hot')).toEqual([]);
    expect(harness.node.counters.pinCountsReceived).toBe(2);
  });

  it('a count of 3 of 4 executors picks the least loaded of those not holding it', () => {
    const { harness, first } = registered();
    harness.nowMs = 200;
    harness.statuses(Object.fromEntries(first.map((address) => [address, ['hot@1']])));
    const more = preparedOn(harness.deliver({ pinCounts: { counts: [{ name: 'hot', count: 3 }], validMs: 10_000 } }), 'hot');
    // Utilisation rises with the index: the least loaded executor not holding it.
    expect(more).toEqual([EXECUTORS.find((address) => !first.includes(address))]);
  });

  it('a function registered through another scheduler is looked up in the registry, pinned here and topped up', () => {
    const { harness, first } = registered();
    // Another scheduler sharing the same KVS, which never saw the registration.
    const other = harness.sibling();
    other.statuses(Object.fromEntries(first.map((address) => [address, ['hot@1']])));
    expect(preparedOn(other.deliver({ pinCounts: { counts: [{ name: 'hot', count: 3 }, { name: 'never-registered', count: 3 }], validMs: 10_000 } }), 'hot')).toHaveLength(1);
  });

  it('a saturated or draining executor is not prepared on by a raised count', () => {
    const { harness, first } = registered();
    harness.nowMs = 200;
    const others = EXECUTORS.filter((address) => !first.includes(address));
    // One of the others reports itself saturated (a draining executor reports far more).
    harness.deliver({ executorStatus: { executorId: `${others[0]}#1`, address: others[0]!, utilisation: 1_000_000, capacity: 4 } });
    expect(preparedOn(harness.deliver({ pinCounts: { counts: [{ name: 'hot', count: 4 }], validMs: 10_000 } }), 'hot')).toEqual([others[1]]);
  });

  it('a later executor takes the function on while its count asks for more; not once the count is lowered', () => {
    const { harness, first } = registered();
    const late = 'tcp://127.0.0.1:7420';
    const later = 'tcp://127.0.0.1:7421';
    harness.nowMs = 200;
    const warm = Object.fromEntries(EXECUTORS.map((address) => [address, ['hot@1']]));
    harness.deliver({ pinCounts: { counts: [{ name: 'hot', count: 5 }], validMs: 60_000 } });
    harness.statuses(warm);
    expect(first).toHaveLength(2);
    // A fifth executor: the count (5) wants it.
    expect(preparedOn(harness.statuses({}, {}, [late]), 'hot')).toEqual([late]);
    // Lowered to the default: a sixth takes nothing on.
    harness.nowMs = 300;
    expect(preparedOn(harness.deliver({ pinCounts: { counts: [], validMs: 60_000 } }), 'hot')).toEqual([]);
    expect(preparedOn(harness.statuses({}, {}, [later]), 'hot')).toEqual([]);
  });

  it('a count of 0 pins the function nowhere new; the counts lapse back to the default after their validity', () => {
    const { harness } = registered();
    harness.nowMs = 200;
    harness.deliver({ pinCounts: { counts: [{ name: 'hot', count: 0 }], validMs: 1000 } });
    // Executors that joined while it was 0 (their statuses name no warm function).
    const fresh = ['tcp://127.0.0.1:7430', 'tcp://127.0.0.1:7431'];
    expect(preparedOn(harness.statuses({}, {}, fresh), 'hot')).toEqual([]);
    // Its first two holders die (silent past the executor timeout): only the fresh two are known.
    harness.nowMs = 1100;
    harness.statuses({}, {}, fresh);
    harness.nowMs = 1400;
    harness.node.handle({ kind: 'timer', timer: 'check' }, harness.nowMs);
    expect(harness.node.executorAddresses().sort()).toEqual(fresh);
    // The count lapsed (1 s): the default 2 again, so the fresh executors take it on (their
    // next scan, one retry period after the last).
    harness.nowMs = 6500;
    expect(preparedOn(harness.statuses({}, {}, fresh), 'hot')).toEqual(fresh);
  });

  it('hostile counts: too long a list is refused, bad names skipped, a count bounded by the executors it may know', () => {
    const { harness } = registered();
    harness.nowMs = 200;
    const tooMany = Array.from({ length: 10_001 }, (_, i) => ({ name: `f${i}`, count: 3 }));
    expect(harness.deliver({ pinCounts: { counts: tooMany, validMs: 10_000 } })).toEqual([]);
    expect(harness.node.counters.pinCountsRefused).toBe(1);
    const sends = harness.deliver({ pinCounts: { counts: [{ name: '../hot', count: 4 }, { name: 'hot', count: 0xffff_ffff }], validMs: 0xffff_ffff } });
    // 'hot' asks for every executor (4 here, not 4 billion); the bad name is skipped.
    expect(preparedOn(sends, 'hot')).toHaveLength(2);
  });

  it('the monitor\'s view carries each executor\'s function loads, checked', () => {
    const harness = new Harness();
    harness.statuses({}, {
      [EXECUTORS[0]!]: [{ name: 'hot', rate: 120.5, p50Ms: 3, p99Ms: 40 }],
      [EXECUTORS[1]!]: [{ name: 'bad name!', rate: 5 }, { name: 'hot', rate: -3, p50Ms: 2 }, ...Array.from({ length: 100 }, (_, i) => ({ name: `f${i}`, rate: 1 }))],
    });
    const [answer] = harness.deliver({ clusterStatsRequest: {} }, { requestId: 9, replyTo: MONITOR });
    const executors = answer!.envelope.clusterStats!.executors!;
    const first = executors.find((view) => view.address === EXECUTORS[0])!;
    expect(first.functions).toEqual([expect.objectContaining({ name: 'hot', rate: 120.5, p50Ms: 3, p99Ms: 40 })]);
    const second = executors.find((view) => view.address === EXECUTORS[1])!;
    expect(second.functions).toHaveLength(64);
    expect(second.functions![0]).toEqual(expect.objectContaining({ name: 'hot', rate: 0, p50Ms: 2 }));
  });
});
