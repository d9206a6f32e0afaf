/**
 * The classic Retwis on Redis, in Node: the design of the original Retwis (Salvatore Sanfilippo's
 * PHP example, the "Twitter clone" tutorial on redis.io), the peer users know, behind the same
 * {@link RetwisApi} the benchmark drives ours through:
 *
 * - users: `HSET user:<u> name joined`, `SADD users <u>`;
 * - follow / unfollow: `SADD` / `SREM` `followers:<followee> <u>` and `following:<u> <followee>`
 *   (one MULTI);
 * - post: `INCR next_post_id` for the id, `HSET post:<id> author time text replyTo`, then fan-out
 *   on write: `LPUSH posts:<f> <id>` for every follower `f` and the author (the author's home
 *   timeline holds their own posts, as in the original), each list cut by `LTRIM 0 999`, and the
 *   global `LPUSH timeline <id>` / `LTRIM timeline 0 999`; one pipeline after `SMEMBERS
 *   followers:<author>`. A reply reads its parent's time first (`HGET`), so it is later;
 * - timeline: `LRANGE posts:<u> 0 limit-1` with `SMEMBERS following:<u>`, then `HGETALL
 *   post:<id>` of each (pipelined), then the parents of the replies among them.
 *
 * One ioredis connection per client, auto-pipelining (concurrent commands share a write), as
 * bench/redis-peer.ts's client. Every answer has the shapes of ours (`PostRecord`, `Timeline`,
 * `FollowResult`), so the same driver records its history for the checker.
 */
import type { Redis } from 'ioredis';
import { retwis } from '../examples/index.js';

type RetwisApi = retwis.RetwisApi;
type PostRecord = retwis.PostRecord;
type PostView = retwis.PostView;

/** Home timelines and the global timeline keep this many ids (the original trims the global one to 1,000). */
const LIST_MAX = 1000;

function recordFrom(id: string, fields: Record<string, string> | null | undefined): PostRecord | undefined {
  if (fields === null || fields === undefined || fields['author'] === undefined) return undefined;
  return { id, author: fields['author'], text: fields['text'] ?? '', time: Number(fields['time']), replyTo: fields['replyTo'] === undefined || fields['replyTo'] === '' ? null : fields['replyTo'] };
}

/** The classic Retwis over one connection. */
export class RedisRetwis implements RetwisApi {
  private stamps = 0;

  constructor(private readonly redis: Redis) {}

  /** Registers the users and the follows of `graph` (the setup), pipelined. */
  async load(users: readonly string[], graph: ReadonlyMap<string, readonly string[]>): Promise<void> {
    const joined = Date.now();
    const pipeline = this.redis.pipeline();
    for (const user of users) {
      pipeline.hset(`user:${user}`, 'name', user, 'joined', String(joined));
      pipeline.sadd('users', user);
    }
    for (const [user, followees] of graph) {
      for (const followee of followees) {
        pipeline.sadd(`followers:${followee}`, user);
        pipeline.sadd(`following:${user}`, followee);
      }
    }
    await pipeline.exec();
  }

  async follow(user: string, followee: string): Promise<retwis.FollowResult> {
    await this.redis.multi().sadd(`followers:${followee}`, user).sadd(`following:${user}`, followee).exec();
    return { user, followee, state: 'following', stamp: { wallMs: Date.now(), logical: this.stamps++ } };
  }

  async unfollow(user: string, followee: string): Promise<retwis.FollowResult> {
    await this.redis.multi().srem(`followers:${followee}`, user).srem(`following:${user}`, followee).exec();
    return { user, followee, state: 'unfollowed', stamp: { wallMs: Date.now(), logical: this.stamps++ } };
  }

  async post(author: string, text: string, replyTo: string | null): Promise<PostRecord> {
    const [id, parentTime, followers] = await Promise.all([
      this.redis.incr('next_post_id'),
      replyTo === null ? Promise.resolve(null) : this.redis.hget(`post:${replyTo}`, 'time'),
      this.redis.smembers(`followers:${author}`),
    ]);
    if (replyTo !== null && parentTime === null) throw new Error(`no post ${replyTo} to reply to`);
    const record: PostRecord = { id: String(id), author, text, time: Math.max(Date.now(), parentTime === null ? 0 : Number(parentTime) + 1), replyTo };
    const pipeline = this.redis.pipeline();
    pipeline.hset(`post:${record.id}`, 'author', author, 'text', text, 'time', String(record.time), 'replyTo', replyTo ?? '');
    for (const follower of [...followers, author]) {
      pipeline.lpush(`posts:${follower}`, record.id);
      pipeline.ltrim(`posts:${follower}`, 0, LIST_MAX - 1);
    }
    pipeline.lpush('timeline', record.id);
    pipeline.ltrim('timeline', 0, LIST_MAX - 1);
    await pipeline.exec();
    return record;
  }

  async timeline(user: string, limit: number): Promise<retwis.Timeline> {
    const [ids, following] = await Promise.all([this.redis.lrange(`posts:${user}`, 0, limit - 1), this.redis.smembers(`following:${user}`)]);
    const records = await Promise.all(ids.map(async (id) => recordFrom(id, await this.redis.hgetall(`post:${id}`))));
    const parentIds = [...new Set(records.flatMap((record) => (record?.replyTo === null || record === undefined ? [] : [record.replyTo])))];
    const parents = new Map<string, PostRecord>();
    for (const [index, fields] of (await Promise.all(parentIds.map((id) => this.redis.hgetall(`post:${id}`)))).entries()) {
      const parent = recordFrom(parentIds[index]!, fields);
      if (parent !== undefined) parents.set(parent.id, parent);
    }
    const posts: PostView[] = [];
    for (const record of records) {
      if (record === undefined) continue;
      const parent = record.replyTo === null ? undefined : parents.get(record.replyTo);
      posts.push({ id: record.id, author: record.author, text: record.text, time: record.time, replyTo: parent === undefined ? null : { id: parent.id, author: parent.author, text: parent.text, time: parent.time } });
    }
    return { user, following: following.sort(), posts };
  }
}
