/**
 * `retwis-follow(user, followee)` and the shared body of `retwis-unfollow`: sets the follow flag
 * of the pair to `following` (or `unfollowed`) in both `retwis/following/<user>` and
 * `retwis/followers/<followee>`, one Lww register per pair in a MapLattice, never a
 * read-modify-write of a plain value.
 *
 * The flag's stamp is later than the one this call read: `(max(now, read.wallMs), ...)` with the
 * logical part bumped when the wall clock has not moved past it. So an operation that has seen
 * another (a re-follow after an unfollow) always wins over it, and a stale follow (stamped before
 * an unfollow it had not seen) loses to it wherever it arrives: it cannot resurrect the pair.
 * Truly concurrent operations resolve by the larger stamp, the same on every replica; a full tie
 * goes to the unfollow (see model.ts's FLAG_WRITER).
 *
 * Resolves with the state written and its stamp (the anomaly checker orders operations by it).
 */
import type { FunctionContext } from '../../client/index.js';
import { Lww, MapLattice } from 'lattice-faas/client';
import { FLAG_WRITER, checkUser, followersKey, followingKey, isRegistered } from './model.js';
import type { FollowState, Stamp } from './model.js';

export interface FollowResult {
  readonly user: string;
  readonly followee: string;
  readonly state: FollowState;
  readonly stamp: Stamp;
}

/** The stamp of the pair's flag in a map read through `ctx.getLattice` (the runtime's classes: read by shape). */
function stampIn(map: unknown, member: string): Stamp | undefined {
  const entry = (map as { get?: (key: string) => unknown } | undefined)?.get?.(member) as { wallMs?: unknown; logical?: unknown } | undefined;
  return typeof entry?.wallMs === 'number' && typeof entry.logical === 'number' ? { wallMs: entry.wallMs, logical: entry.logical } : undefined;
}

export async function setFollow(user: string, followee: string, state: FollowState, ctx: FunctionContext): Promise<FollowResult> {
  checkUser(user);
  checkUser(followee, 'followee');
  if (user === followee) throw new TypeError('a user cannot follow themselves');
  const [userExists, followeeExists] = await Promise.all([isRegistered(ctx, user), isRegistered(ctx, followee)]);
  if (!userExists) throw new Error(`no user ${user}`);
  if (!followeeExists) throw new Error(`no user ${followee}`);
  const [following, followers] = await Promise.all([ctx.getLattice(followingKey(user)), ctx.getLattice(followersKey(followee))]);
  // Later than every stamp of the pair this call has seen, on either side.
  let seen: Stamp = { wallMs: 0, logical: 0 };
  for (const stamp of [stampIn(following, followee), stampIn(followers, user)]) {
    if (stamp !== undefined && (stamp.wallMs > seen.wallMs || (stamp.wallMs === seen.wallMs && stamp.logical > seen.logical))) seen = stamp;
  }
  const now = Date.now();
  const stamp: Stamp = now > seen.wallMs ? { wallMs: now, logical: 0 } : { wallMs: seen.wallMs, logical: seen.logical + 1 };
  const flag = Lww.at(stamp, FLAG_WRITER, state);
  await Promise.all([ctx.merge(followingKey(user), MapLattice.of({ [followee]: flag })), ctx.merge(followersKey(followee), MapLattice.of({ [user]: flag }))]);
  return { user, followee, state, stamp };
}

export default async function follow(user: string, followee: string, ctx: FunctionContext): Promise<FollowResult> {
  return setFollow(user, followee, 'following', ctx);
}
