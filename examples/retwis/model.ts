/**
 * Retwis's data model: the KVS keys, the lattice each holds, and the helpers every function
 * shares. Each function bundles its own copy of this module and of the lattice library (imported
 * as `lattice-faas/client`, which the bundler maps to the lattice library alone: the rest of the
 * SDK reaches sockets and files; the lattices it builds are its own classes; what it reads through `ctx.getLattice` comes from the
 * runtime's copy, so it is read structurally, never mixed into a merge).
 *
 * Keys (all under `retwis/`):
 * - `retwis/users`                  GSet<string>: every registered user id.
 * - `retwis/user/<user>`            Lww<UserRecord>: the profile, written once at registration.
 * - `retwis/following/<user>`       MapLattice<followee, Lww<FollowState>>: whom `user` follows.
 * - `retwis/followers/<user>`       MapLattice<follower, Lww<FollowState>>: who follows `user`
 *                                   (the same flags, stamped alike, seen from the other side).
 * - `retwis/post/<postId>`          Lww<PostRecord>: a post, immutable, written once.
 * - `retwis/posts/<user>`           OrderedSet<string>: the user's post index, one entry
 *                                   `<time, 15 digits>/<postId>` per post (sorted by time).
 * - `retwis/replies/<postId>`       GSet<string>: the ids of the replies to a post.
 * - `retwis/clock`                  Max: the largest post time handed out (posts are ordered by it).
 */
import type { FunctionContext } from '../../client/index.js';

export const PREFIX = 'retwis/';
export const USERS_KEY = `${PREFIX}users`;
export const CLOCK_KEY = `${PREFIX}clock`;
export const userKey = (user: string): string => `${PREFIX}user/${user}`;
export const followingKey = (user: string): string => `${PREFIX}following/${user}`;
export const followersKey = (user: string): string => `${PREFIX}followers/${user}`;
export const postKey = (postId: string): string => `${PREFIX}post/${postId}`;
export const postsKey = (user: string): string => `${PREFIX}posts/${user}`;
export const repliesKey = (postId: string): string => `${PREFIX}replies/${postId}`;

/**
 * The writer id of every follow flag. One id for all, so two flags stamped alike tie fully and
 * `Lww` breaks the tie on the value's canonical encoding: `"unfollowed"` > `"following"`, so a
 * tie goes to the unfollow (remove wins a tie; see README).
 */
export const FLAG_WRITER = 'retwis';
export type FollowState = 'following' | 'unfollowed';

export interface UserRecord {
  readonly user: string;
  readonly name: string;
  readonly joined: number;
}

export interface PostRecord {
  readonly id: string;
  readonly author: string;
  readonly text: string;
  /** Milliseconds since the epoch, unique per post order: larger than every time the post's function read (the clock, the parent). */
  readonly time: number;
  /** The id of the post this one replies to, or null. */
  readonly replyTo: string | null;
}

/** A post as the timeline and profile show it: the parent's record when it is a reply. */
export interface PostView {
  readonly id: string;
  readonly author: string;
  readonly text: string;
  readonly time: number;
  readonly replyTo: { readonly id: string; readonly author: string; readonly text: string; readonly time: number } | null;
}

/** A flag's stamp: the `(wallMs, logical)` of its Lww. */
export interface Stamp {
  readonly wallMs: number;
  readonly logical: number;
}

const USER_ID = /^[A-Za-z0-9_]{1,32}$/;
const POST_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const TEXT_MAX = 280;
export const TIMELINE_MAX = 200;

export function checkUser(user: unknown, what = 'user'): string {
  if (typeof user !== 'string' || !USER_ID.test(user)) throw new TypeError(`${what} must be 1-32 letters, digits or _ (got ${JSON.stringify(user)})`);
  return user;
}

export function checkPostId(id: unknown): string {
  if (typeof id !== 'string' || !POST_ID.test(id)) throw new TypeError(`a post id is 1-64 letters, digits, _ or - (got ${JSON.stringify(id)})`);
  return id;
}

/** The index entry of a post: sorts by time as a string (15 digits reach the year 33658). */
export const indexEntry = (time: number, postId: string): string => `${String(time).padStart(15, '0')}/${postId}`;

export function parseIndexEntry(entry: string): { time: number; id: string } {
  const slash = entry.indexOf('/');
  return { time: Number(entry.slice(0, slash)), id: entry.slice(slash + 1) };
}

/** Whether `user` is registered. */
export async function isRegistered(ctx: FunctionContext, user: string): Promise<boolean> {
  return (await ctx.get(userKey(user))) !== undefined;
}

/**
 * The users a flag map says are followed (or following): the entries whose flag is `following`.
 * `revealed` is the map's plain value (`ctx.get`): flag -> state.
 */
export function activeOf(revealed: unknown): string[] {
  if (typeof revealed !== 'object' || revealed === null) return [];
  return Object.entries(revealed as Record<string, unknown>)
    .filter(([, state]) => state === 'following')
    .map(([user]) => user)
    .sort();
}

/** The view of a post record, with its parent's record (or null). */
export function viewOf(post: PostRecord, parent: PostRecord | undefined): PostView {
  return {
    id: post.id,
    author: post.author,
    text: post.text,
    time: post.time,
    replyTo: post.replyTo === null || parent === undefined ? null : { id: parent.id, author: parent.author, text: parent.text, time: parent.time },
  };
}

/**
 * Reads post records and their parents, and returns the views in the order of `ids`. A post
 * whose record is not readable yet, or a reply whose parent is not readable yet, is left out: a
 * reply is never shown without the post it answers.
 */
export async function readPosts(ctx: FunctionContext, ids: readonly string[]): Promise<PostView[]> {
  const records = await ctx.getMany(ids.map(postKey));
  const parentIds = [...new Set(ids.map((id) => (records[postKey(id)] as PostRecord | undefined)?.replyTo).filter((id): id is string => typeof id === 'string'))];
  const parents = parentIds.length === 0 ? {} : await ctx.getMany(parentIds.map(postKey));
  const views: PostView[] = [];
  for (const id of ids) {
    const post = records[postKey(id)] as PostRecord | undefined;
    if (post === undefined || post === null) continue;
    const parent = post.replyTo === null ? undefined : (parents[postKey(post.replyTo)] as PostRecord | undefined);
    if (post.replyTo !== null && (parent === undefined || parent === null)) continue;
    views.push(viewOf(post, parent ?? undefined));
  }
  return views;
}
