/**
 * `retwis-post(author, text, replyTo)`: publishes a post (`replyTo`: the id of the post it
 * answers, or null) and resolves with its record.
 *
 * The record is written once under its own key (`retwis/post/<id>`) as a causal value: one
 * version, under the clock `{ <id>: 1 }` (the post is its key's only writer, once), whose
 * dependencies name the parent's version when it is a reply. That link is what the causal mode
 * carries: a timeline run in the causal mode that reads the reply then reads the parent at least
 * at that version (waiting for it to reach its executor), so it never shows a reply without the
 * post it answers. The value is built here and merged (`ctx.merge`), not `ctx.put` (whose type
 * depends on the call's mode), so a post may be made in any mode and the key keeps one type.
 *
 * Then its id joins the author's post index (an OrderedSet, grow-only) and the parent's replies
 * (a GSet). The record is written before any index names it, so whoever finds the id in an index
 * can read the record (on this executor at once; elsewhere after propagation, which readers
 * tolerate by leaving out what they cannot read yet).
 *
 * Time: larger than the shared clock (`retwis/clock`, a Max) and than the parent's time, so a
 * post made after another was seen is later than it, and a reply is always later than its parent.
 * The id is the call id (unique per call; an async call retried keeps its id).
 */
import type { FunctionContext } from '../../client/index.js';
import { GSet, Max, MultiKeyCausal, OrderedSet, VectorClock } from 'lattice-faas/client';
import { CLOCK_KEY, TEXT_MAX, checkPostId, checkUser, clockOf, indexEntry, isRegistered, postKey, postsKey, recordOf, repliesKey } from './model.js';
import type { PostRecord } from './model.js';

export default async function post(author: string, text: string, replyTo: string | null, ctx: FunctionContext): Promise<PostRecord> {
  checkUser(author, 'author');
  if (typeof text !== 'string' || text.length === 0 || text.length > TEXT_MAX) throw new TypeError(`a post is 1-${TEXT_MAX} characters`);
  if (replyTo !== null) checkPostId(replyTo);
  if (!(await isRegistered(ctx, author))) throw new Error(`no user ${author}`);
  let after = ((await ctx.get(CLOCK_KEY)) as number | undefined) ?? 0;
  const deps: Record<string, VectorClock> = {};
  if (replyTo !== null) {
    const parentValue = await ctx.getLattice(postKey(replyTo));
    const parent = recordOf(parentValue);
    const parentClock = clockOf(parentValue);
    if (parent === undefined || parentClock === undefined) throw new Error(`no post ${replyTo} to reply to`);
    after = Math.max(after, parent.time);
    deps[postKey(replyTo)] = VectorClock.of(parentClock);
  }
  const time = Math.max(Date.now(), after + 1);
  const id = checkPostId(ctx.callId.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 64));
  const record: PostRecord = { id, author, text, time, replyTo };
  await ctx.merge(postKey(id), MultiKeyCausal.write(VectorClock.of({ [id]: 1 }), record, deps));
  await Promise.all([
    ctx.merge(postsKey(author), OrderedSet.of(indexEntry(time, id))),
    ctx.merge(CLOCK_KEY, new Max(time)),
    ...(replyTo === null ? [] : [ctx.merge(repliesKey(replyTo), GSet.of(id))]),
  ]);
  return record;
}
