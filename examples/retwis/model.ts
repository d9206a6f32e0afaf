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
 * - `retwis/post/<postId>`          MultiKeyCausal<PostRecord>: a post, immutable, written once,
 *                                   one version under the clock `{ <postId>: 1 }`; a reply's version
 *                                   depends on its parent's (`deps: { retwis/post/<parent>: ... }`),
 *                                   so a run in the causal mode that read the reply reads the parent.
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

/**
 * What a user's client knows of its own follows and unfollows (followee -> the flag it wrote, as
 * the follow result gave it): the timeline lays it over the flags it reads, so a user reads their
 * own follows and unfollows at once, on any executor (read your writes; see README).
 */
export type FollowSession = Readonly<Record<string, { readonly state: FollowState; readonly stamp: Stamp }>>;

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

const later = (a: Stamp, b: Stamp): boolean => a.wallMs > b.wallMs || (a.wallMs === b.wallMs && a.logical > b.logical);

/**
 * The users `user` follows: the flags of `retwis/following/<user>` (read through
 * `ctx.getLattice`: the runtime's MapLattice of Lww flags, read by shape) with the session's own
 * flags laid over them where the session's is later (a tie goes to the unfollow, as the merge
 * does). The session's flags are the ones in the KVS: laying one over is merging it, here only.
 */
export function followingOf(map: unknown, session: FollowSession | null): string[] {
  const entries = (map as { entries?: ReadonlyMap<string, unknown> } | undefined)?.entries;
  const flags = new Map<string, { state: FollowState; stamp: Stamp }>();
  // By shape, not `instanceof`: the map may come from another realm.
  if (entries !== undefined && entries !== null && typeof (entries as { entries?: unknown }).entries === 'function') {
    for (const [followee, flag] of (entries as ReadonlyMap<string, { value?: unknown; wallMs?: unknown; logical?: unknown }>).entries()) {
      if ((flag.value === 'following' || flag.value === 'unfollowed') && typeof flag.wallMs === 'number' && typeof flag.logical === 'number') {
        flags.set(followee, { state: flag.value, stamp: { wallMs: flag.wallMs, logical: flag.logical } });
      }
    }
  }
  for (const [followee, mine] of Object.entries(session ?? {})) {
    const seen = flags.get(followee);
    const tie = seen !== undefined && !later(mine.stamp, seen.stamp) && !later(seen.stamp, mine.stamp);
    if (seen === undefined || later(mine.stamp, seen.stamp) || (tie && mine.state === 'unfollowed')) flags.set(followee, mine);
  }
  return [...flags].filter(([, flag]) => flag.state === 'following').map(([followee]) => followee).sort();
}

/** Checks a session argument: null, or followee -> { state, stamp } (at most 1,000 entries). */
export function checkSession(session: unknown): FollowSession | null {
  if (session === null || session === undefined) return null;
  if (typeof session !== 'object' || Array.isArray(session)) throw new TypeError('a session is null or { followee: { state, stamp } }');
  const entries = Object.entries(session as Record<string, unknown>);
  if (entries.length > 1000) throw new TypeError('a session holds at most 1,000 flags');
  for (const [followee, flag] of entries) {
    checkUser(followee, 'a session followee');
    const { state, stamp } = (flag ?? {}) as { state?: unknown; stamp?: { wallMs?: unknown; logical?: unknown } };
    if ((state !== 'following' && state !== 'unfollowed') || typeof stamp?.wallMs !== 'number' || typeof stamp.logical !== 'number') throw new TypeError(`a session flag is { state, stamp: { wallMs, logical } } (${followee})`);
  }
  return session as FollowSession;
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

/** The record a `retwis/post/<id>` value holds (read through `ctx.getLattice`: the runtime's classes, read by shape). */
export function recordOf(value: unknown): PostRecord | undefined {
  const versions = (value as { versions?: readonly { value?: unknown }[] } | undefined)?.versions;
  const record = Array.isArray(versions) ? (versions[0]?.value as PostRecord | undefined) : undefined;
  return record !== undefined && record !== null && typeof record.id === 'string' ? record : undefined;
}

/** The clock of a causal value read through `ctx.getLattice` (node -> count), or undefined. */
export function clockOf(value: unknown): Record<string, number> | undefined {
  const clock = (value as { clock?: { reveal?: () => unknown } } | undefined)?.clock;
  const revealed = typeof clock?.reveal === 'function' ? clock.reveal() : undefined;
  return typeof revealed === 'object' && revealed !== null ? (revealed as Record<string, number>) : undefined;
}

/** Reads post records (`retwis/post/<id>`), one `getLattice` each, at once: id -> record, for those readable. */
export async function readRecords(ctx: FunctionContext, ids: readonly string[]): Promise<Map<string, PostRecord>> {
  const values = await Promise.all(ids.map((id) => ctx.getLattice(postKey(id))));
  const records = new Map<string, PostRecord>();
  ids.forEach((id, index) => {
    const record = recordOf(values[index]);
    if (record !== undefined) records.set(id, record);
  });
  return records;
}

/** Newest first: by time, then id (the order of the index entries, reversed). */
export const newestFirst = (a: { readonly time: number; readonly id: string }, b: { readonly time: number; readonly id: string }): number => b.time - a.time || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * The views of the newest `limit` of the posts `ids` (index entries' ids, newest first), read
 * with their parents. Batched reads: the records, then the parents of the replies among them
 * that the first read did not return, with the records it missed, then the parents of replies
 * found only by that second read (at most three rounds after the first, then the parents of the
 * replies the last round found). A reply's record depends on its parent's, so
 * in the causal mode the second read waits for a parent the first did not find (the platform
 * makes the run read the version a version it read depends on); in `lww` it may still miss it,
 * and the reply is then shown unlinked (`replyTo: null`): the anomaly the checker counts.
 *
 * `owed(author)`: whether a parent by `author` belongs in this list when new enough (the
 * timeline: its author is followed). A reply's parent that is owed and new enough (the list is
 * not full, or the parent is not older than its oldest post) is put in even when the index read
 * did not name it yet (a stale index): the reply's record names it, so the list is the one a
 * fresh index would give.
 */
export async function readPosts(ctx: FunctionContext, ids: readonly string[], limit: number, owed: (author: string) => boolean = () => false): Promise<PostView[]> {
  const records = await readRecords(ctx, ids);
  const parentsMissing = (): string[] => [...records.values()].flatMap((record) => (record.replyTo !== null && !records.has(record.replyTo) ? [record.replyTo] : []));
  // Read again what the first read missed, then the parents of the replies found meanwhile: a
  // parent read in the same round as its reply was read before the run knew the reply depends on
  // it (in the causal mode it would not wait for it), so it is read again once the reply is known.
  // A record has one version: one found is the one a reply depends on. At most three more rounds.
  const askedAfterReply = new Set<string>();
  let wanted = [...new Set([...ids.filter((id) => !records.has(id)), ...parentsMissing()])];
  for (let round = 0; round < 3 && wanted.length > 0; round++) {
    for (const parent of parentsMissing()) askedAfterReply.add(parent);
    for (const [id, record] of await readRecords(ctx, wanted)) records.set(id, record);
    wanted = [...new Set(parentsMissing().filter((parent) => !askedAfterReply.has(parent)))];
  }
  // Replies found only by the last round: their parents are read once more, after them (a reply
  // shown must have had its parent read after it, or the causal mode has nothing to wait for).
  if (wanted.length > 0) for (const [id, record] of await readRecords(ctx, wanted)) records.set(id, record);
  let shown = ids.flatMap((id) => records.get(id) ?? []).sort(newestFirst).slice(0, limit);
  // Owed parents left out by a stale index: at most `limit` rounds (each puts one in or stops).
  for (let round = 0; round < limit; round++) {
    const inList = new Set(shown.map((post) => post.id));
    // Not cut by the limit: the list is not full, or the parent sorts before its oldest post (by
    // time, then id: two posts may share a millisecond).
    const last = shown.length < limit ? undefined : shown[shown.length - 1];
    const missing = shown
      .map((post) => (post.replyTo === null ? undefined : records.get(post.replyTo)))
      .find((parent) => parent !== undefined && !inList.has(parent.id) && owed(parent.author) && (last === undefined || newestFirst(parent, last) < 0));
    if (missing === undefined) break;
    shown = [...shown, missing].sort(newestFirst).slice(0, limit);
  }
  return shown.map((post) => viewOf(post, post.replyTo === null ? undefined : records.get(post.replyTo)));
}
