/**
 * The Retwis workload, shared by the anomaly test (test/retwis-anomalies.test.ts) and the
 * benchmark (bench/retwis.ts): a seeded follower graph whose followee popularity is Zipf
 * distributed, and a driver that keeps users busy with a mix of timelines, posts (some of them
 * replies) and follows/unfollows against any implementation of {@link RetwisApi} (Retwis on
 * Lattice FaaS, or the classic Redis design in the benchmark), recording every acknowledged
 * operation and every timeline seen, with the client's send and answer times, for the anomaly
 * checker (checker.ts).
 *
 * Each user's client keeps a session: the follow flags it wrote (from the follow and unfollow
 * results), passed to its timelines (timeline.ts lays them over the flags it reads).
 *
 * @example
 * ```ts
 * const random = seededRandom(7);
 * const users = Array.from({ length: 100 }, (_, n) => `u${n}`);
 * const graph = zipfFollowGraph(users, 10, 1, random);
 * const driver = new RetwisDriver([api], { random, users, graph });
 * await driver.run({ inFlight: 8, durationMs: 5000 });
 * checkHistory(driver.history);
 * ```
 */
import type { HistoryEvent } from './checker.js';
import type { FollowResult } from './follow.js';
import type { FollowSession, PostRecord, PostView } from './model.js';
import type { Timeline } from './timeline.js';

/** What the driver calls: one Retwis deployment, through one client connection. */
export interface RetwisApi {
  timeline(user: string, limit: number, session: FollowSession | null): Promise<Timeline>;
  post(author: string, text: string, replyTo: string | null): Promise<PostRecord>;
  follow(user: string, followee: string): Promise<FollowResult>;
  unfollow(user: string, followee: string): Promise<FollowResult>;
}

export type OperationKind = 'timeline' | 'post' | 'follow';

/** The mix: timelines 80%, posts 15%, follows (and unfollows) 5%. */
export const RETWIS_MIX: Readonly<Record<OperationKind, number>> = { timeline: 0.8, post: 0.15, follow: 0.05 };

/** A seeded PRNG (mulberry32): numbers in [0, 1) (examples/random.ts). */
export { seededUniform as seededRandom } from '../random.js';

/** A sampler of ranks 0..n-1 with P(rank k) proportional to 1 / (k + 1)^s. */
export function zipfSampler(n: number, s: number, random: () => number): () => number {
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) cumulative[k] = total += 1 / Math.pow(k + 1, s);
  return () => {
    const target = random() * total;
    let low = 0;
    let high = n - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((cumulative[middle] ?? 0) < target) low = middle + 1;
      else high = middle;
    }
    return low;
  };
}

/**
 * Who follows whom: each user follows `followsPerUser` others, each drawn by a Zipf law (exponent
 * `s`) over the users in a seeded random order of popularity, so a few users have most of the
 * followers (the first has about `users x followsPerUser / H(n, s)`). Seeded: the same graph for
 * the same arguments.
 */
export function zipfFollowGraph(users: readonly string[], followsPerUser: number, s: number, random: () => number): Map<string, string[]> {
  const popularity = [...users];
  for (let i = popularity.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [popularity[i], popularity[j]] = [popularity[j]!, popularity[i]!];
  }
  const rank = zipfSampler(popularity.length, s, random);
  const graph = new Map<string, string[]>();
  const wanted = Math.min(followsPerUser, users.length - 1);
  for (const user of users) {
    const followees = new Set<string>();
    // Bounded: a user whose draws keep landing on themselves or on repeats stops short.
    for (let attempt = 0; followees.size < wanted && attempt < wanted * 50; attempt++) {
      const followee = popularity[rank()]!;
      if (followee !== user) followees.add(followee);
    }
    graph.set(user, [...followees].sort());
  }
  return graph;
}

export interface DriverOptions {
  readonly random: () => number;
  readonly users: readonly string[];
  /** The follows already made (the setup): user -> followees. */
  readonly graph: ReadonlyMap<string, readonly string[]>;
  /** Posts per timeline (10 by default, a Retwis page). */
  readonly timelineLimit?: number;
  /** The share of posts that reply to a post the user saw last (0.3 by default). */
  readonly replyShare?: number;
  /** Of the replies, the share that answers one of the 4 posts acknowledged last, anyone's (0 by default): fresh threads. */
  readonly freshReplyShare?: number;
  readonly mix?: Readonly<Record<OperationKind, number>>;
  /** Record the history for the checker (true by default). */
  readonly record?: boolean;
}

/** Per operation kind: latencies in ms of the acknowledged calls, and the failures. */
export interface OperationStats {
  readonly latenciesMs: number[];
  failed: number;
}

const RECENT_POSTS = 64;
const FAILURE_EXAMPLES = 5;

/**
 * Drives concurrent users against one or more client connections (`apis`, used in turn by the
 * workers) and records what they did and saw.
 */
export class RetwisDriver {
  readonly history: HistoryEvent[] = [];
  readonly stats: Record<OperationKind, OperationStats> = { timeline: { latenciesMs: [], failed: 0 }, post: { latenciesMs: [], failed: 0 }, follow: { latenciesMs: [], failed: 0 } };
  readonly failures: string[] = [];
  /** Failed operations by error code (`error` when the error had none). */
  readonly failureCodes = new Map<string, number>();
  private readonly following = new Map<string, Set<string>>();
  private readonly sessions = new Map<string, Record<string, { state: 'following' | 'unfollowed'; stamp: { wallMs: number; logical: number } }>>();
  private readonly lastSeen = new Map<string, readonly PostView[]>();
  private readonly recent: PostRecord[] = [];
  private posted = 0;
  private readonly limit: number;
  private readonly replyShare: number;
  private readonly mix: Readonly<Record<OperationKind, number>>;
  private readonly record: boolean;

  constructor(
    private readonly apis: readonly RetwisApi[],
    private readonly options: DriverOptions,
  ) {
    if (apis.length === 0) throw new Error('RetwisDriver: no client');
    for (const [user, followees] of options.graph) this.following.set(user, new Set(followees));
    this.limit = options.timelineLimit ?? 10;
    this.replyShare = options.replyShare ?? 0.3;
    this.mix = options.mix ?? RETWIS_MIX;
    this.record = options.record ?? true;
  }

  /** Keeps `inFlight` operations going (a random user each) until `durationMs` or `maxOperations`. */
  async run(options: { inFlight: number; durationMs: number; maxOperations?: number }): Promise<{ operations: number; elapsedMs: number }> {
    const start = performance.now();
    const deadline = start + options.durationMs;
    const maxOperations = options.maxOperations ?? 10_000_000;
    let started = 0;
    const worker = async (index: number): Promise<void> => {
      const api = this.apis[index % this.apis.length]!;
      while (started < maxOperations && performance.now() < deadline) {
        started++;
        await this.step(api, this.pick(this.options.users));
      }
    };
    await Promise.all(Array.from({ length: options.inFlight }, (_, index) => worker(index)));
    return { operations: started, elapsedMs: performance.now() - start };
  }

  /** One operation of `user`, its kind drawn from the mix. */
  async step(api: RetwisApi, user: string): Promise<void> {
    const draw = this.options.random();
    const kind: OperationKind = draw < this.mix.timeline ? 'timeline' : draw < this.mix.timeline + this.mix.post ? 'post' : 'follow';
    const sentMs = Date.now();
    const t0 = performance.now();
    try {
      if (kind === 'timeline') await this.timeline(api, user, sentMs);
      else if (kind === 'post') await this.post(api, user, sentMs);
      else await this.followOrUnfollow(api, user, sentMs);
      this.stats[kind].latenciesMs.push(performance.now() - t0);
    } catch (error) {
      this.stats[kind].failed++;
      const code = String((error as { code?: string }).code ?? 'error');
      this.failureCodes.set(code, (this.failureCodes.get(code) ?? 0) + 1);
      if (this.failures.length < FAILURE_EXAMPLES) this.failures.push(`${kind}: ${String((error as { code?: string }).code ?? 'error')}: ${String((error as Error).message).slice(0, 200)}`);
    }
  }

  private async timeline(api: RetwisApi, user: string, sentMs: number): Promise<void> {
    const session = this.sessions.get(user);
    const seen = await api.timeline(user, this.limit, session === undefined ? null : { ...session });
    this.lastSeen.set(user, seen.posts);
    if (this.record) this.history.push({ kind: 'timeline', user, limit: this.limit, following: seen.following, posts: seen.posts, sentMs, doneMs: Date.now() });
  }

  private async post(api: RetwisApi, user: string, sentMs: number): Promise<void> {
    let replyTo: string | null = null;
    if (this.options.random() < this.replyShare) {
      // A post the user saw last, or (none seen yet) a recent one.
      const seen = this.lastSeen.get(user) ?? [];
      const fresh = this.options.random() < (this.options.freshReplyShare ?? 0);
      const pool: readonly { id: string }[] = fresh ? this.recent.slice(-4) : seen.length > 0 ? seen : this.recent;
      if (pool.length > 0) replyTo = this.pick(pool).id;
    }
    const record = await api.post(user, `post ${++this.posted} by ${user}`, replyTo);
    this.recent.push(record);
    if (this.recent.length > RECENT_POSTS) this.recent.shift();
    if (this.record) this.history.push({ kind: 'post', post: record, sentMs, doneMs: Date.now() });
  }

  private async followOrUnfollow(api: RetwisApi, user: string, sentMs: number): Promise<void> {
    const mine = this.following.get(user) ?? new Set<string>();
    this.following.set(user, mine);
    const unfollow = mine.size > 0 && this.options.random() < 0.5;
    let followee: string | undefined;
    if (unfollow) followee = this.pick([...mine]);
    else {
      // A user not followed yet (bounded draws).
      for (let attempt = 0; attempt < 20 && followee === undefined; attempt++) {
        const candidate = this.pick(this.options.users);
        if (candidate !== user && !mine.has(candidate)) followee = candidate;
      }
    }
    if (followee === undefined) return;
    const result = unfollow ? await api.unfollow(user, followee) : await api.follow(user, followee);
    if (result.state === 'following') mine.add(followee);
    else mine.delete(followee);
    const session = this.sessions.get(user) ?? {};
    const previous = session[followee];
    if (previous === undefined || result.stamp.wallMs > previous.stamp.wallMs || (result.stamp.wallMs === previous.stamp.wallMs && result.stamp.logical >= previous.stamp.logical)) {
      session[followee] = { state: result.state, stamp: result.stamp };
    }
    this.sessions.set(user, session);
    if (this.record) this.history.push({ kind: unfollow ? 'unfollow' : 'follow', user, followee, sentMs, doneMs: Date.now() });
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.options.random() * items.length)]!;
  }
}
