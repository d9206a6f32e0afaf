/**
 * `retwis-profile(user, limit)`: the user's record, their own latest `limit` posts (newest first,
 * replies with their parent), and whom they follow and who follows them (sorted, with counts),
 * from the two flag maps. Null when the user is not registered.
 */
import type { FunctionContext } from '../../client/index.js';
import { TIMELINE_MAX, activeOf, checkUser, followersKey, followingKey, parseIndexEntry, postsKey, readPosts, userKey } from './model.js';
import type { PostView, UserRecord } from './model.js';

export interface Profile {
  readonly user: string;
  readonly name: string;
  readonly joined: number;
  readonly posts: PostView[];
  /** All the user's posts (the index's size). */
  readonly postCount: number;
  readonly following: string[];
  readonly followers: string[];
  readonly followingCount: number;
  readonly followerCount: number;
}

export default async function profile(user: string, limit: number, ctx: FunctionContext): Promise<Profile | null> {
  checkUser(user);
  if (!Number.isInteger(limit) || limit < 1 || limit > TIMELINE_MAX) throw new TypeError(`limit is an integer from 1 to ${TIMELINE_MAX}`);
  const read = await ctx.getMany([userKey(user), postsKey(user), followingKey(user), followersKey(user)]);
  const record = read[userKey(user)] as UserRecord | undefined;
  if (record === undefined || record === null) return null;
  const index = Array.isArray(read[postsKey(user)]) ? (read[postsKey(user)] as string[]) : [];
  const ids = index
    .slice(-limit)
    .reverse()
    .map((entry) => parseIndexEntry(entry).id);
  const following = activeOf(read[followingKey(user)]);
  const followers = activeOf(read[followersKey(user)]);
  return {
    user,
    name: record.name,
    joined: record.joined,
    posts: await readPosts(ctx, ids, limit),
    postCount: index.length,
    following,
    followers,
    followingCount: following.length,
    followerCount: followers.length,
  };
}
