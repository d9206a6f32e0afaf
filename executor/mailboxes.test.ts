/**
 * The mailboxes of `ctx.send` / `ctx.recv`: a message sent before its receiver started waits for
 * it; a waiting receiver gets the next message; a receive times out with undefined; a mailbox
 * holds a bounded number of messages (TRANSPORT_BUSY beyond), the table a bounded number of
 * mailboxes; after an invocation closed, messages to it are GONE; dropping a run drops its
 * mailboxes only, and later messages to it are GONE too.
 */
import { describe, expect, it } from 'vitest';
import { Mailboxes } from './mailboxes.js';

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

const codeOf = (act: () => unknown): string | undefined => {
  try {
    act();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
};

describe('Mailboxes', () => {
  it('keeps messages sent before the receiver opened, in order, for it', async () => {
    const boxes = new Mailboxes();
    boxes.deliver('run-1', 'b', bytes(1));
    boxes.deliver('run-1', 'b', bytes(2));
    boxes.open('run-1', 'b');
    expect(await boxes.receive('run-1', 'b', 1000)).toEqual(bytes(1));
    expect(await boxes.receive('run-1', 'b', 1000)).toEqual(bytes(2));
    // Mailboxes are per (run, function): another run's b and this run's c see nothing of it.
    boxes.deliver('run-2', 'b', bytes(9));
    expect(await boxes.receive('run-1', 'b', 10)).toBeUndefined();
    expect(await boxes.receive('run-1', 'c', 10)).toBeUndefined();
    expect(await boxes.receive('run-2', 'b', 1000)).toEqual(bytes(9));
  });

  it('hands a message to a receiver already waiting', async () => {
    const boxes = new Mailboxes();
    boxes.open('run', 'b');
    const first = boxes.receive('run', 'b', 10_000);
    const second = boxes.receive('run', 'b', 10_000);
    boxes.deliver('run', 'b', bytes(1));
    boxes.deliver('run', 'b', bytes(2));
    // Waiters are served in the order they asked.
    expect(await first).toEqual(bytes(1));
    expect(await second).toEqual(bytes(2));
  });

  it('answers a receive that times out with undefined, and a later message waits for the next receive', async () => {
    const boxes = new Mailboxes();
    boxes.open('run', 'b');
    expect(await boxes.receive('run', 'b', 20)).toBeUndefined();
    expect(await boxes.receive('run', 'b', 0)).toBeUndefined();
    // The timed-out receivers no longer wait: the message is kept, not handed to them.
    boxes.deliver('run', 'b', bytes(3));
    expect(await boxes.receive('run', 'b', 1000)).toEqual(bytes(3));
  });

  it('bounds a mailbox (TRANSPORT_BUSY beyond messagesMax) and the table (beyond mailboxesMax)', async () => {
    const boxes = new Mailboxes({ messagesMax: 2, mailboxesMax: 3 });
    boxes.deliver('run', 'b', bytes(1));
    boxes.deliver('run', 'b', bytes(2));
    expect(codeOf(() => boxes.deliver('run', 'b', bytes(3)))).toBe('TRANSPORT_BUSY');
    // Reading one makes room for one.
    boxes.open('run', 'b');
    expect(await boxes.receive('run', 'b', 1000)).toEqual(bytes(1));
    boxes.deliver('run', 'b', bytes(3));
    expect(codeOf(() => boxes.deliver('run', 'b', bytes(4)))).toBe('TRANSPORT_BUSY');
    // A message handed to a receiver already waiting takes no room: two more still fit.
    boxes.open('run', 'c');
    const waiting = boxes.receive('run', 'c', 10_000);
    boxes.deliver('run', 'c', bytes(5));
    expect(await waiting).toEqual(bytes(5));
    boxes.deliver('run', 'c', bytes(6));
    boxes.deliver('run', 'c', bytes(7));
    expect(codeOf(() => boxes.deliver('run', 'c', bytes(8)))).toBe('TRANSPORT_BUSY');
    // Three mailboxes are open (b, c, d): a fourth is refused, to a sender and an opener alike.
    boxes.open('run', 'd');
    expect(boxes.size).toBe(3);
    expect(codeOf(() => boxes.deliver('run', 'e', bytes(7)))).toBe('TRANSPORT_BUSY');
    expect(codeOf(() => boxes.open('other', 'a'))).toBe('TRANSPORT_BUSY');
    // Closing one makes room.
    boxes.close('run', 'd');
    boxes.open('other', 'a');
    expect(boxes.size).toBe(3);
  });

  it('refuses messages to a closed invocation with GONE, drops its unread ones and wakes its waiters', async () => {
    const boxes = new Mailboxes();
    boxes.open('run', 'b');
    boxes.deliver('run', 'b', bytes(1));
    boxes.open('run', 'c');
    const waiter = boxes.receive('run', 'c', 10_000);
    boxes.close('run', 'b');
    boxes.close('run', 'c');
    expect(await waiter).toBeUndefined();
    expect(codeOf(() => boxes.deliver('run', 'b', bytes(2)))).toBe('GONE');
    expect(codeOf(() => boxes.deliver('run', 'c', bytes(2)))).toBe('GONE');
    expect(boxes.size).toBe(0);
    // The same function of another run is another invocation.
    expect(codeOf(() => boxes.deliver('run-2', 'b', bytes(3)))).toBeUndefined();
    // The memory of finished invocations is bounded: the oldest is forgotten first.
    const small = new Mailboxes({ finishedMax: 2 });
    for (const name of ['x', 'y', 'z']) {
      small.open('run', name);
      small.close('run', name);
    }
    expect(codeOf(() => small.deliver('run', 'x', bytes(1)))).toBeUndefined();
    expect(codeOf(() => small.deliver('run', 'z', bytes(1)))).toBe('GONE');
  });

  it('opens again for a run dispatched again under the same run id (an async call\'s next attempt)', async () => {
    const boxes = new Mailboxes();
    boxes.open('run', 'b');
    boxes.close('run', 'b');
    expect(codeOf(() => boxes.deliver('run', 'b', bytes(1)))).toBe('GONE');
    boxes.open('run', 'b');
    boxes.deliver('run', 'b', bytes(2));
    expect(await boxes.receive('run', 'b', 1000)).toEqual(bytes(2));
  });

  it('dropRun drops every mailbox of that run, and only of that run; later messages to it are GONE', async () => {
    const boxes = new Mailboxes();
    boxes.deliver('over', 'a', bytes(1));
    boxes.deliver('over', 'b', bytes(2));
    boxes.open('over', 'c');
    boxes.deliver('kept', 'a', bytes(3));
    // A run id that merely starts like the dropped one is another run.
    boxes.deliver('over-2', 'a', bytes(4));
    expect(boxes.size).toBe(5);
    boxes.dropRun('over');
    expect(boxes.size).toBe(2);
    expect(await boxes.receive('kept', 'a', 1000)).toEqual(bytes(3));
    expect(await boxes.receive('over-2', 'a', 1000)).toEqual(bytes(4));
    // The dropped run's messages are gone with it, and a late one is refused rather than kept
    // in a mailbox nobody would ever open or close.
    expect(codeOf(() => boxes.deliver('over', 'a', bytes(5)))).toBe('GONE');
    expect(boxes.size).toBe(2);
    // A run dropped twice, or never seen, is no error.
    boxes.dropRun('over');
    boxes.dropRun('never');
  });
});
