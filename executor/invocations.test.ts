import { describe, expect, it } from 'vitest';
import { InvocationTable, invocationMatches } from './invocations.js';

describe('invocation table', () => {
  it('lists running and finished runs, the most recently started first, with durations', () => {
    const table = new InvocationTable();
    table.start({ callId: 'alice/a-1', name: 'alice/f', dag: false, mode: 'sync' }, 1000);
    table.start({ callId: 'alice/a-2', name: 'alice/f', dag: false, mode: 'direct' }, 2000);
    table.start({ callId: 'x-3', name: 'alice/d', dag: true, mode: 'async' }, 3000);
    table.finish('alice/a-1', { state: 'succeeded' }, 1500);
    table.finish('alice/a-2', { state: 'failed', error: { code: 'EXEC_USER_ERROR', message: 'boom' } }, 2100);
    const listed = table.list({}, 4000);
    expect(listed.map((entry) => [entry.callId, entry.state, entry.durationMs])).toEqual([
      ['x-3', 'running', 1000],
      ['alice/a-2', 'failed', 100],
      ['alice/a-1', 'succeeded', 500],
    ]);
    expect(listed[1]!.error).toEqual({ code: 'EXEC_USER_ERROR', message: 'boom' });
    expect(table.list({ runningOnly: true }, 4000).map((entry) => entry.callId)).toEqual(['x-3']);
    expect(table.list({ limit: 1 }, 4000)).toHaveLength(1);
  });

  it('keeps the first outcome, and a re-dispatch starts the entry again', () => {
    const table = new InvocationTable();
    table.start({ callId: 'c', name: 'f', dag: false, mode: 'async' }, 0);
    table.finish('c', { state: 'timed-out', error: { code: 'EXEC_TIMEOUT', message: 'late' } }, 10);
    table.finish('c', { state: 'succeeded' }, 20);
    expect(table.list({}, 30)[0]!.state).toBe('timed-out');
    table.start({ callId: 'c', name: 'f', dag: false, mode: 'async' }, 40);
    expect(table.list({}, 50)).toHaveLength(1);
    expect(table.list({}, 50)[0]!.state).toBe('running');
  });

  it('keeps at most finishedMax finished entries, the oldest dropped', () => {
    const table = new InvocationTable(10);
    for (let n = 0; n < 100; n++) {
      table.start({ callId: `c-${n}`, name: 'f', dag: false, mode: 'sync' }, n);
      table.finish(`c-${n}`, { state: 'succeeded' }, n + 1);
    }
    const listed = table.list({ limit: 1000 }, 200);
    expect(listed).toHaveLength(10);
    expect(listed.at(-1)!.callId).toBe('c-90');
  });

  it('an owner sees its namespace\'s names and its own call ids, nothing else', () => {
    expect(invocationMatches('alice/', { name: 'alice/f', callId: 'bob/x' })).toBe(true);
    expect(invocationMatches('alice/', { name: 'inc', callId: 'alice/x' })).toBe(true);
    expect(invocationMatches('alice/', { name: 'bob/f', callId: 'bob/x' })).toBe(false);
    expect(invocationMatches('alice/f', { name: 'alice/f', callId: 'bob/x' })).toBe(true);
    expect(invocationMatches('alice/f', { name: 'alice/g', callId: 'alice/x' })).toBe(false);
  });
});

describe('invocation table bounds', () => {
  it('forgets the oldest running entry past runningMax', () => {
    const table = new InvocationTable(10, 5);
    for (let n = 0; n < 8; n++) table.start({ callId: `r-${n}`, name: 'f', dag: false, mode: 'sync' }, n);
    const running = table.list({ runningOnly: true }, 10).map((entry) => entry.callId);
    expect(running).toEqual(['r-7', 'r-6', 'r-5', 'r-4', 'r-3']);
  });
});

describe('invocation table text', () => {
  it('cuts a long error message without splitting a surrogate pair', () => {
    const table = new InvocationTable();
    table.start({ callId: 'c', name: 'f', dag: false, mode: 'sync' }, 0);
    table.finish('c', { state: 'failed', error: { code: 'EXEC_USER_ERROR', message: `${'x'.repeat(511)}😀${'y'.repeat(5000)}` } }, 1);
    const message = table.list({}, 2)[0]!.error!.message;
    expect(message.length).toBeLessThan(600);
    expect(message).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});
