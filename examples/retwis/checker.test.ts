import { describe, expect, it } from 'vitest';
import { checkHistory } from './checker.js';
import type { HistoryEvent } from './checker.js';
import type { PostRecord, PostView } from './model.js';

const post = (id: string, author: string, time: number, replyTo: string | null = null): PostRecord => ({ id, author, text: id, time, replyTo });
const view = (record: PostRecord, parent?: PostRecord): PostView => ({ ...record, replyTo: parent === undefined ? null : { id: parent.id, author: parent.author, text: parent.text, time: parent.time } });

const p1 = post('p1', 'bob', 100);
const r1 = post('r1', 'cy', 200, 'p1');
const base: HistoryEvent[] = [
  { kind: 'follow', user: 'ada', followee: 'bob', sentMs: 0, doneMs: 5 },
  { kind: 'follow', user: 'ada', followee: 'cy', sentMs: 6, doneMs: 10 },
  { kind: 'post', post: p1, sentMs: 90, doneMs: 100 },
  { kind: 'post', post: r1, sentMs: 190, doneMs: 200 },
];

describe('the Retwis anomaly checker', () => {
  it('finds nothing in a right history', () => {
    const result = checkHistory([...base, { kind: 'timeline', user: 'ada', limit: 10, following: ['bob', 'cy'], posts: [view(r1, p1), view(p1)], sentMs: 300, doneMs: 310 }]);
    expect(result).toMatchObject({ timelines: 1, replyBeforeParent: 0, resurrectedFollows: 0 });
  });

  it('catches a planted reply shown before its parent, and one shown without its link', () => {
    const missingParent = checkHistory([...base, { kind: 'timeline', user: 'ada', limit: 10, following: ['bob', 'cy'], posts: [view(r1, p1)], sentMs: 300, doneMs: 310 }]);
    expect(missingParent.replyBeforeParent).toBe(1);
    expect(missingParent.examples[0]).toMatchObject({ anomaly: 'reply-before-parent', user: 'ada' });
    const unlinked = checkHistory([...base, { kind: 'timeline', user: 'ada', limit: 10, following: ['bob', 'cy'], posts: [view(r1), view(p1)], sentMs: 300, doneMs: 310 }]);
    expect(unlinked.replyBeforeParent).toBe(1);
    // The parent's author not followed, or the parent cut by the limit: not owed.
    expect(checkHistory([...base, { kind: 'timeline', user: 'ada', limit: 10, following: ['cy'], posts: [view(r1, p1)], sentMs: 300, doneMs: 310 }]).replyBeforeParent).toBe(0);
    expect(checkHistory([...base, { kind: 'timeline', user: 'ada', limit: 1, following: ['bob', 'cy'], posts: [view(r1, p1)], sentMs: 300, doneMs: 310 }]).replyBeforeParent).toBe(0);
  });

  it('a parent in the same millisecond as the oldest post shown is cut or owed by its id, as the timeline sorts', () => {
    // r2 replies to p2; q is the oldest shown, at p2's time. Newest first breaks the tie by id.
    const p2 = post('p2', 'bob', 150);
    const r2 = post('r2', 'cy', 200, 'p2');
    const history = (q: PostRecord): HistoryEvent[] => [...base.slice(0, 2), { kind: 'post', post: p2, sentMs: 140, doneMs: 150 }, { kind: 'post', post: r2, sentMs: 190, doneMs: 200 }, { kind: 'post', post: q, sentMs: 140, doneMs: 150 }, { kind: 'timeline', user: 'ada', limit: 2, following: ['bob', 'cy'], posts: [view(r2, p2), view(q)], sentMs: 300, doneMs: 310 }];
    // p2 sorts after q ('p2' < 'q2'): the limit cut it.
    expect(checkHistory(history(post('q2', 'bob', 150))).replyBeforeParent).toBe(0);
    // p2 sorts before q ('p2' > 'a2'): it was owed, and missing.
    expect(checkHistory(history(post('a2', 'bob', 150))).replyBeforeParent).toBe(1);
  });

  it('catches a planted resurrected follow; a later or concurrent follow excuses it', () => {
    const unfollow: HistoryEvent = { kind: 'unfollow', user: 'ada', followee: 'bob', sentMs: 400, doneMs: 410 };
    const after = (following: string[]): HistoryEvent => ({ kind: 'timeline', user: 'ada', limit: 10, following, posts: [], sentMs: 500, doneMs: 510 });
    expect(checkHistory([...base, unfollow, after(['bob', 'cy'])]).resurrectedFollows).toBe(1);
    expect(checkHistory([...base, unfollow, after(['cy'])]).resurrectedFollows).toBe(0);
    expect(checkHistory([...base, unfollow, { kind: 'follow', user: 'ada', followee: 'bob', sentMs: 450, doneMs: 460 }, after(['bob', 'cy'])]).resurrectedFollows).toBe(0);
    expect(checkHistory([...base, unfollow, { kind: 'follow', user: 'ada', followee: 'bob', sentMs: 398, doneMs: 412 }, after(['bob', 'cy'])]).resurrectedFollows).toBe(0);
    // A timeline sent before the unfollow was acknowledged may still show the pair.
    expect(checkHistory([...base, unfollow, { kind: 'timeline', user: 'ada', limit: 10, following: ['bob'], posts: [], sentMs: 405, doneMs: 420 }]).resurrectedFollows).toBe(0);
  });
});
