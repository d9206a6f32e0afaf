/**
 * `retwis-timeline(user, limit, session)`: the latest `limit` posts of everyone `user` follows
 * now, newest first (by time, then id), each with its author, text, time and the post it replies
 * to (its record) or null. `session`: null, or the user's own recent follow flags as their
 * client holds them (followee -> { state, stamp }, from the follow and unfollow results), laid
 * over the flags read, so a user reads their own follows and unfollows on any executor at once.
 *
 * Reads only, through `ctx`. Called in the causal mode (`{ consistency: 'causal' }`), a reply is
 * never shown without the post it answers: its record depends on its parent's (post.ts), so the
 * run reads the parent at least at that version. In `lww` the parent may not have reached this
 * executor yet and the reply is shown unlinked. The reads: the followee flags (one map), each
 * followee's post index (one batched read), then the newest `limit` (+2 spare) records, then
 * their parents with the records the first read missed (model.ts's `readPosts`); a reply's parent
 * by a followed author is put in the list when a stale index left it out.
 */
import type { FunctionContext } from '../../client/index.js';
import { TIMELINE_MAX, checkSession, checkUser, followingKey, followingOf, parseIndexEntry, postsKey, readPosts } from './model.js';
import type { FollowSession, PostView } from './model.js';

export interface Timeline {
  readonly user: string;
  readonly following: string[];
  readonly posts: PostView[];
}

export default async function timeline(user: string, limit: number, session: FollowSession | null, ctx: FunctionContext): Promise<Timeline> {
  checkUser(user);
  if (!Number.isInteger(limit) || limit < 1 || limit > TIMELINE_MAX) throw new TypeError(`limit is an integer from 1 to ${TIMELINE_MAX}`);
  const following = followingOf(await ctx.getLattice(followingKey(user)), checkSession(session));
  if (following.length === 0) return { user, following, posts: [] };
  const indexes = await ctx.getMany(following.map(postsKey));
  const entries: string[] = [];
  for (const followee of following) {
    const index = indexes[postsKey(followee)];
    // Each index is sorted oldest first: its newest `limit` are all it can give.
    if (Array.isArray(index)) entries.push(...(index as string[]).slice(-limit));
  }
  // Entries sort by time (15 digits), then id; newest first. A few more than asked, for posts left out.
  entries.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  const ids = entries.slice(0, limit + 2).map((entry) => parseIndexEntry(entry).id);
  const followed = new Set(following);
  const posts = await readPosts(ctx, ids, limit, (author) => followed.has(author));
  return { user, following, posts };
}
