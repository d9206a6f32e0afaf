/**
 * `retwis-timeline(user, limit)`: the latest `limit` posts of everyone `user` follows now, newest
 * first (by time, then id), each with its author, text, time and the post it replies to (its
 * record) or null.
 *
 * Reads only, through `ctx`, so it runs in any consistency mode the caller picks
 * (`{ consistency: 'causal' }` included): the followee flags (one map), each followee's post
 * index (one batched read), then the newest `limit` records and their parents (two batched
 * reads). A reply whose parent is not readable yet is left out, as is an indexed post whose
 * record is not: a timeline never shows a reply before the post it answers.
 */
import type { FunctionContext } from '../../client/index.js';
import { TIMELINE_MAX, activeOf, checkUser, followingKey, parseIndexEntry, postsKey, readPosts } from './model.js';
import type { PostView } from './model.js';

export interface Timeline {
  readonly user: string;
  readonly following: string[];
  readonly posts: PostView[];
}

export default async function timeline(user: string, limit: number, ctx: FunctionContext): Promise<Timeline> {
  checkUser(user);
  if (!Number.isInteger(limit) || limit < 1 || limit > TIMELINE_MAX) throw new TypeError(`limit is an integer from 1 to ${TIMELINE_MAX}`);
  const following = activeOf(await ctx.get(followingKey(user)));
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
  const ids = entries.slice(0, limit + 8).map((entry) => parseIndexEntry(entry).id);
  const posts = (await readPosts(ctx, ids)).slice(0, limit);
  return { user, following, posts };
}
