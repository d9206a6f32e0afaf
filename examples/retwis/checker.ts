/**
 * The Retwis anomaly checker: given a history of acknowledged operations and observations (each
 * with the client's times when it was sent and answered), counts the two anomalies a user must
 * never see, whatever the consistency mode:
 *
 * - **A reply before its parent.** A timeline of `u` shows reply `r` to post `p`, `p`'s author
 *   is among those `u` follows in that same timeline, and the limit did not cut `p` (fewer posts
 *   than the limit were shown, or `p` is not older than the oldest shown), yet `p` is missing,
 *   or `r` is shown without its link.
 * - **A resurrected follow.** `u` unfollowed `f` (acknowledged), and a timeline of `u` sent after
 *   that still lists `f` among those `u` follows, while no follow of the pair was sent after
 *   the unfollow was: a follow that ended before the unfollow began must not win over it. (A
 *   follow concurrent with the unfollow may win either way: the larger stamp decides.)
 *
 * Pure: a benchmark or a test records the history, then checks it.
 */
import { newestFirst } from './model.js';
import type { PostRecord, PostView } from './model.js';

export type HistoryEvent =
  | { readonly kind: 'post'; readonly post: PostRecord; readonly sentMs: number; readonly doneMs: number }
  | { readonly kind: 'follow' | 'unfollow'; readonly user: string; readonly followee: string; readonly sentMs: number; readonly doneMs: number }
  | { readonly kind: 'timeline'; readonly user: string; readonly limit: number; readonly following: readonly string[]; readonly posts: readonly PostView[]; readonly sentMs: number; readonly doneMs: number };

export interface Violation {
  readonly anomaly: 'reply-before-parent' | 'resurrected-follow';
  /** The timeline observation that showed it (its user and send time). */
  readonly user: string;
  readonly sentMs: number;
  readonly detail: string;
}

export interface CheckResult {
  readonly timelines: number;
  readonly replyBeforeParent: number;
  readonly resurrectedFollows: number;
  /** The first violations found (at most 20), to tell what went wrong. */
  readonly examples: readonly Violation[];
}

const EXAMPLES_MAX = 20;

export function checkHistory(history: readonly HistoryEvent[]): CheckResult {
  const posts = new Map<string, PostRecord>();
  /** `user\0followee` -> the follows and unfollows of the pair. */
  const edges = new Map<string, { kind: 'follow' | 'unfollow'; sentMs: number; doneMs: number }[]>();
  const timelines: Extract<HistoryEvent, { kind: 'timeline' }>[] = [];
  for (const event of history) {
    if (event.kind === 'post') posts.set(event.post.id, event.post);
    else if (event.kind === 'timeline') timelines.push(event);
    else {
      const key = `${event.user}\u0000${event.followee}`;
      let list = edges.get(key);
      if (list === undefined) edges.set(key, (list = []));
      list.push({ kind: event.kind, sentMs: event.sentMs, doneMs: event.doneMs });
    }
  }
  const examples: Violation[] = [];
  let replyBeforeParent = 0;
  let resurrectedFollows = 0;
  const note = (violation: Violation): void => {
    if (examples.length < EXAMPLES_MAX) examples.push(violation);
  };
  for (const timeline of timelines) {
    const shown = new Set(timeline.posts.map((post) => post.id));
    const followed = new Set(timeline.following);
    // Fewer posts than the limit: nothing was cut, every visible post is owed; else those that sort
    // before the oldest shown (newest first by time, then id: two posts may share a millisecond).
    const last = timeline.posts.length < timeline.limit ? undefined : [...timeline.posts].sort(newestFirst).at(-1);
    for (const view of timeline.posts) {
      const parentId = posts.get(view.id)?.replyTo ?? view.replyTo?.id ?? null;
      if (parentId === null) continue;
      const parent = posts.get(parentId);
      const linked = view.replyTo !== null && view.replyTo.id === parentId;
      const parentDue = parent !== undefined && followed.has(parent.author) && (last === undefined || newestFirst(parent, last) < 0);
      if (!linked || (parentDue && !shown.has(parentId))) {
        replyBeforeParent++;
        note({ anomaly: 'reply-before-parent', user: timeline.user, sentMs: timeline.sentMs, detail: `reply ${view.id} shown ${linked ? `without its parent ${parentId}` : 'without its link'}` });
      }
    }
    for (const followee of followed) {
      const list = edges.get(`${timeline.user}\u0000${followee}`) ?? [];
      // The latest unfollow acknowledged before this timeline was sent.
      let unfollow: { sentMs: number; doneMs: number } | undefined;
      for (const edge of list) if (edge.kind === 'unfollow' && edge.doneMs < timeline.sentMs && (unfollow === undefined || edge.sentMs > unfollow.sentMs)) unfollow = edge;
      if (unfollow === undefined) continue;
      // A follow sent after the unfollow began, or still running when it began, may win.
      const excused = list.some((edge) => edge.kind === 'follow' && edge.doneMs >= unfollow.sentMs && edge.sentMs < timeline.doneMs);
      if (!excused) {
        resurrectedFollows++;
        note({ anomaly: 'resurrected-follow', user: timeline.user, sentMs: timeline.sentMs, detail: `${timeline.user} follows ${followee} again after unfollowing at ${unfollow.doneMs}` });
      }
    }
  }
  return { timelines: timelines.length, replyBeforeParent, resurrectedFollows, examples };
}
