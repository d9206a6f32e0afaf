/** `retwis-unfollow(user, followee)`: sets the pair's flag to `unfollowed` (see follow.ts). */
import type { FunctionContext } from '../../client/index.js';
import { setFollow } from './follow.js';
import type { FollowResult } from './follow.js';

export default async function unfollow(user: string, followee: string, ctx: FunctionContext): Promise<FollowResult> {
  return setFollow(user, followee, 'unfollowed', ctx);
}
