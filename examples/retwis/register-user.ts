/**
 * `retwis-register(user, name)`: registers `user` with a display name. The profile is a
 * write-once Lww record; registering again changes nothing and says so. The user id joins the
 * `retwis/users` grow-only set.
 */
import type { FunctionContext } from '../../client/index.js';
import { GSet, Lww } from 'lattice-faas/client';
import { USERS_KEY, checkUser, userKey } from './model.js';
import type { UserRecord } from './model.js';

export default async function registerUser(user: string, name: string, ctx: FunctionContext): Promise<{ user: string; created: boolean }> {
  checkUser(user);
  if (typeof name !== 'string' || name.length === 0 || name.length > 64) throw new TypeError('a name is 1-64 characters');
  if ((await ctx.get(userKey(user))) !== undefined) return { user, created: false };
  const record: UserRecord = { user, name, joined: Date.now() };
  // Two concurrent registrations of one id both write: the earlier stamp wins everywhere (an
  // Lww at a fixed writer id would otherwise be any of them), so the first profile stays.
  await ctx.merge(userKey(user), Lww.at({ wallMs: Number.MAX_SAFE_INTEGER - record.joined, logical: 0 }, user, record));
  await ctx.merge(USERS_KEY, GSet.of(user));
  return { user, created: true };
}
