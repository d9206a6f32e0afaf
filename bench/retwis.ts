/**
 * `retwis`: Retwis (examples/retwis/) under a mixed workload, against the classic Redis-backed
 * Retwis (bench/retwis-redis.ts) in the same run.
 *
 * - Setup: 1,000 users; each follows 10 others drawn by a Zipf law (exponent 1) over a seeded
 *   order of popularity (examples/retwis/workload.ts's `zipfFollowGraph`), so a few users have
 *   hundreds of followers. Ours: the users and follow flags written straight into the KVS in the
 *   shapes the functions write (not measured); Redis: the same through one pipeline. Then one post
 *   per user on average through the functions (not measured), so timelines are not empty.
 * - Load: a closed loop of 16 operations in flight over 4 client connections, each a random user
 *   doing a timeline (80%, 10 posts), a post (15%, 30% of them replies to a post the user saw)
 *   or a follow/unfollow (5%), for a fixed time per system after a warm-up: ours with every call
 *   in the `lww` mode, ours in the `causal` mode (same cluster and data, two rounds in
 *   alternating order, half the time each), then Redis. Each user's client passes its own follow flags to its timelines (its session).
 * - Measured: per system and operation, operations per second and p50/p99 latency from the
 *   client; the anomaly checker (examples/retwis/checker.ts) over every acknowledged operation and
 *   timeline of the measured phase.
 *
 * Redis is started by the bench when `redis-server` is installed (bench/redis-peer.ts); else its
 * rows are missing, the hint is printed and the ratio target is reported as not measured.
 */
import { GSet, LatticeFaas, Lww, MapLattice } from '../client/index.js';
import type { Consistency } from '../client/index.js';
import { retwis } from '../examples/index.js';
import { startFaasBenchCluster } from './faas-cluster.js';
import type { Benchmark } from './harness/benchmark.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { REDIS_INSTALL_HINT, closeRedis, connectRedis, findRedis, startRedis } from './redis-peer.js';
import type { RedisServer } from './redis-peer.js';
import { RedisRetwis } from './retwis-redis.js';

const USERS = 1000;
const FOLLOWS_PER_USER = 10;
const ZIPF_EXPONENT = 1;
const IN_FLIGHT = 8;
const CLIENTS = 4;
const SEED = 20_261_206;
/** Setup writes in flight at once. */
const SETUP_BATCH = 200;

const OURS_LWW = 'lattice-faas retwis, lww';
const OURS_CAUSAL = 'lattice-faas retwis, causal';
const REDIS = 'redis classic retwis (fan-out on write)';

/** The issue's targets, as written. */
const TARGET_P50_RATIO = 1.5;
const TARGET_THROUGHPUT_RATIO = 0.8;

interface SystemResult {
  readonly system: string;
  readonly stats: Record<retwis.OperationKind, retwis.OperationStats>;
  readonly failures: string[];
  operations: number;
  elapsedMs: number;
  timelines: number;
  replyBeforeParent: number;
  resurrectedFollows: number;
  readonly examples: retwis.Violation[];
}

function emptyResult(system: string): SystemResult {
  return { system, stats: { timeline: { latenciesMs: [], failed: 0 }, post: { latenciesMs: [], failed: 0 }, follow: { latenciesMs: [], failed: 0 } }, failures: [], operations: 0, elapsedMs: 0, timelines: 0, replyBeforeParent: 0, resurrectedFollows: 0, examples: [] };
}

/** Adds a measured phase (its driver's stats and checked history) to `into`. */
function accumulate(into: SystemResult, driver: retwis.RetwisDriver, phase: { operations: number; elapsedMs: number }): void {
  for (const kind of ['timeline', 'post', 'follow'] as const) {
    into.stats[kind].latenciesMs.push(...driver.stats[kind].latenciesMs);
    into.stats[kind].failed += driver.stats[kind].failed;
  }
  into.failures.push(...driver.failures.slice(0, Math.max(0, 5 - into.failures.length)));
  into.operations += phase.operations;
  into.elapsedMs += phase.elapsedMs;
  const checked = retwis.checkHistory(driver.history);
  into.timelines += checked.timelines;
  into.replyBeforeParent += checked.replyBeforeParent;
  into.resurrectedFollows += checked.resurrectedFollows;
  into.examples.push(...checked.examples.slice(0, Math.max(0, 5 - into.examples.length)));
}

/** Writes the users and the follow graph into our KVS as the functions would (register, follow). */
async function loadOurs(faas: LatticeFaas, users: readonly string[], graph: ReadonlyMap<string, readonly string[]>): Promise<void> {
  const joined = Date.now();
  const writes: (() => Promise<void>)[] = [];
  for (const user of users) {
    writes.push(() => faas.kvs.put(retwis.userKey(user), Lww.at({ wallMs: Number.MAX_SAFE_INTEGER - joined, logical: 0 }, user, { user, name: user, joined }), { ack: 'replicated' }));
  }
  writes.push(() => faas.kvs.put(retwis.USERS_KEY, GSet.of(...users), { ack: 'replicated' }));
  const followers = new Map<string, Record<string, Lww<retwis.FollowState>>>();
  const flag = Lww.at({ wallMs: joined, logical: 0 }, retwis.FLAG_WRITER, 'following' as retwis.FollowState);
  for (const [user, followees] of graph) {
    writes.push(() => faas.kvs.put(retwis.followingKey(user), MapLattice.of(Object.fromEntries(followees.map((followee) => [followee, flag]))), { ack: 'replicated' }));
    for (const followee of followees) {
      const entry = followers.get(followee) ?? {};
      entry[user] = flag;
      followers.set(followee, entry);
    }
  }
  for (const [followee, entry] of followers) writes.push(() => faas.kvs.put(retwis.followersKey(followee), MapLattice.of(entry), { ack: 'replicated' }));
  for (let start = 0; start < writes.length; start += SETUP_BATCH) await Promise.all(writes.slice(start, start + SETUP_BATCH).map((write) => write()));
}

function oursApi(faas: LatticeFaas, handles: retwis.RetwisHandles, consistency: Consistency): retwis.RetwisApi {
  return {
    timeline: (user, limit, session) => faas.call(handles.timeline, [user, limit, session], { consistency }),
    post: (author, text, replyTo) => faas.call(handles.post, [author, text, replyTo], { consistency }),
    follow: (user, followee) => faas.call(handles.follow, [user, followee], { consistency }),
    unfollow: (user, followee) => faas.call(handles.unfollow, [user, followee], { consistency }),
  };
}

/** A warm-up (not recorded), then a measured phase, checked, added to `into`. */
async function measure(into: SystemResult, apis: readonly retwis.RetwisApi[], users: readonly string[], graph: ReadonlyMap<string, readonly string[]>, seed: number, warmMs: number, measureMs: number): Promise<void> {
  await new retwis.RetwisDriver(apis, { random: retwis.seededRandom(seed), users, graph, record: false }).run({ inFlight: IN_FLIGHT, durationMs: warmMs });
  const driver = new retwis.RetwisDriver(apis, { random: retwis.seededRandom(seed + 1), users, graph });
  accumulate(into, driver, await driver.run({ inFlight: IN_FLIGHT, durationMs: measureMs }));
}

/** One post per user on average, through the system (not measured). */
async function seedPosts(apis: readonly retwis.RetwisApi[], users: readonly string[], graph: ReadonlyMap<string, readonly string[]>): Promise<void> {
  const driver = new retwis.RetwisDriver(apis, { random: retwis.seededRandom(SEED - 1), users, graph, record: false, mix: { timeline: 0, post: 1, follow: 0 }, replyShare: 0 });
  await driver.run({ inFlight: IN_FLIGHT, durationMs: 120_000, maxOperations: users.length });
}

export const retwisBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const measureMs = options.quick ? 5000 : 20_000;
  const warmMs = options.quick ? 1500 : 4000;
  const random = retwis.seededRandom(SEED);
  const users = Array.from({ length: USERS }, (_, n) => `u${String(n).padStart(4, '0')}`);
  const graph = retwis.zipfFollowGraph(users, FOLLOWS_PER_USER, ZIPF_EXPONENT, random);
  const followerCounts = new Map<string, number>();
  for (const followees of graph.values()) for (const followee of followees) followerCounts.set(followee, (followerCounts.get(followee) ?? 0) + 1);
  const counts = [...followerCounts.values()].sort((a, b) => b - a);
  const notes: string[] = [
    `setup: ${USERS} users, each follows ${FOLLOWS_PER_USER} (Zipf exponent ${ZIPF_EXPONENT} over a seeded popularity order, seed ${SEED}): the most followed user has ${counts[0] ?? 0} followers, the 10th ${counts[9] ?? 0}, the median ${counts[Math.floor(counts.length / 2)] ?? 0}; ${USERS - followerCounts.size} users have none; then ${USERS} posts (one per user on average) through each system, not measured`,
    `load: closed loop, ${IN_FLIGHT} operations in flight over ${CLIENTS} client connections, a random user per operation: timeline 80% (10 posts), post 15% (30% replies to a post the user saw last), follow/unfollow 5% (half unfollows of a followee); ours: two rounds (lww then causal, then causal then lww), each phase ${warmMs / 1000} s warm-up then ${measureMs / 2000} s measured (${measureMs / 1000} s per mode in all); redis after, ${warmMs / 1000} s warm-up then ${measureMs / 1000} s; each user's client passes its own follow flags to its timelines (read your follows); everything shares the 2 cores`,
    'ours: local cluster (bench/faas-cluster.ts: routing node, 1 storage node with 1 shard, 1 scheduler, 2 executors --workers 4 --prewarm 4, default isolation); the users and follow flags written straight into the KVS in the functions\' shapes; `lww` and `causal` = the consistency mode of every call of the phase (a reply\'s record depends on its parent\'s: the causal timeline reads the parent; posts and follows write the same lattices in both modes); same cluster and data, causal after lww',
    'redis: bench/retwis-redis.ts, the classic design (INCR ids, HSET post:<id>, SADD/SREM followers/following, fan-out on write: LPUSH posts:<follower> for each follower and the author, LTRIM 0 999, global timeline LPUSH/LTRIM; timeline = LRANGE + HGETALL of each post and of the replies\' parents, pipelined), ioredis with auto-pipelining, one connection per client, redis-server without persistence',
    'anomalies: examples/retwis/checker.ts over every acknowledged operation and timeline of the measured phase (reply shown before its parent: parent by a followed author, not cut by the limit, missing or unlinked; resurrected follow: a followee listed after an acknowledged unfollow with no follow since). For Redis the checker is run too, for information: its timeline is a fan-out list, so a parent posted before its author was followed is never in it (the checker counts that), and its home timeline holds the user\'s own posts',
  ];

  const cluster = await startFaasBenchCluster({ executors: 2, workers: 4 });
  let redisServer: RedisServer | undefined;
  const results: SystemResult[] = [];
  const extraClients: LatticeFaas[] = [];
  try {
    const faas = cluster.faas;
    // bench/faas-cluster.ts starts the routing node first and the scheduler third.
    const routing = String(cluster.processes[0]?.ready['address']);
    const scheduler = String(cluster.processes[2]?.ready['address']);
    for (let n = 1; n < CLIENTS; n++) extraClients.push(await LatticeFaas.connect({ routing: [routing], schedulers: [scheduler] }));
    const clients = [faas, ...extraClients];
    const handles = await retwis.deployRetwis(faas, { timeoutMs: 10_000 });
    notes.push(`ours: executors at isolation \`${cluster.isolation}\``);
    await loadOurs(faas, users, graph);
    await seedPosts(clients.map((client) => oursApi(client, handles, 'lww')), users, graph);
    // Two rounds, lww then causal, then causal then lww: neither mode always runs on the warmer cluster.
    const lww = emptyResult(OURS_LWW);
    const causal = emptyResult(OURS_CAUSAL);
    for (const [round, order] of [[0, [lww, causal]], [1, [causal, lww]]] as const) {
      for (const into of order) {
        const mode: Consistency = into === lww ? 'lww' : 'causal';
        if (!options.json) console.error(`retwis: round ${round + 1}: measuring ${mode}`);
        await measure(into, clients.map((client) => oursApi(client, handles, mode)), users, graph, SEED + 10 * (round * 2 + (mode === 'lww' ? 1 : 2)), warmMs, measureMs / 2);
      }
    }
    results.push(lww, causal);
  } finally {
    await Promise.all(extraClients.map((client) => client.close()));
    await cluster.stop();
  }

  if (findRedis() === undefined) {
    notes.push(`REDIS NOT AVAILABLE: ${REDIS_INSTALL_HINT}; its rows are missing, the throughput target is not measured`);
    console.error(REDIS_INSTALL_HINT);
  } else {
    const connections: Awaited<ReturnType<typeof connectRedis>>[] = [];
    try {
      redisServer = await startRedis();
      for (let n = 0; n < CLIENTS; n++) connections.push(await connectRedis(redisServer.port));
      const apis = connections.map((connection) => new RedisRetwis(connection));
      await apis[0]!.load(users, graph);
      await seedPosts(apis, users, graph);
      if (!options.json) console.error('retwis: measuring redis');
      const redis = emptyResult(REDIS);
      await measure(redis, apis, users, graph, SEED + 50, warmMs, measureMs);
      results.push(redis);
      const version = await connections[0]!.info('server');
      notes.push(`redis version: ${/redis_version:(\S+)/.exec(version)?.[1] ?? 'unknown'}`);
    } catch (error) {
      notes.push(`redis: failed: ${(error as Error).message}`);
    } finally {
      await Promise.all(connections.map((connection) => closeRedis(connection)));
      await redisServer?.stop();
    }
  }

  const rows: Row[] = [];
  for (const result of results) {
    const seconds = result.elapsedMs / 1000;
    const all: number[] = [];
    let failed = 0;
    for (const kind of ['timeline', 'post', 'follow'] as const) {
      const stats = result.stats[kind];
      all.push(...stats.latenciesMs);
      failed += stats.failed;
      const summary = summarise(stats.latenciesMs);
      rows.push({ system: result.system, operation: kind, perSecond: stats.latenciesMs.length / seconds, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, count: stats.latenciesMs.length, failed: stats.failed });
    }
    const summary = summarise(all);
    rows.push({
      system: result.system,
      operation: 'all',
      perSecond: all.length / seconds,
      p50Ms: summary.p50Ms,
      p99Ms: summary.p99Ms,
      count: all.length,
      failed,
      timelinesChecked: result.timelines,
      replyBeforeParent: result.replyBeforeParent,
      resurrectedFollows: result.resurrectedFollows,
    });
    if (result.failures.length > 0) notes.push(`FAILED CALLS: ${result.system}: first: ${result.failures.join(' | ')}`);
    if (result.examples.length > 0) notes.push(`${result.system}: first anomalies: ${result.examples.slice(0, 3).map((example) => `${example.anomaly} (${example.detail})`).join('; ')}`);
  }

  const row = (system: string, operation: string): Row | undefined => rows.find((candidate) => candidate['system'] === system && candidate['operation'] === operation);
  const ratios: Record<string, number> = {};
  for (const operation of ['all', 'timeline', 'post', 'follow']) {
    const lww = row(OURS_LWW, operation);
    const causal = row(OURS_CAUSAL, operation);
    const redis = row(REDIS, operation);
    if (lww !== undefined && causal !== undefined) ratios[`p50_causal_over_lww_${operation}`] = Number(causal['p50Ms']) / Number(lww['p50Ms']);
    if (causal !== undefined && redis !== undefined) ratios[`p50_causal_over_redis_${operation}`] = Number(causal['p50Ms']) / Number(redis['p50Ms']);
  }
  const lwwAll = row(OURS_LWW, 'all');
  const causalAll = row(OURS_CAUSAL, 'all');
  const redisAll = row(REDIS, 'all');
  if (causalAll !== undefined && redisAll !== undefined) ratios['throughput_causal_over_redis'] = Number(causalAll['perSecond']) / Number(redisAll['perSecond']);
  if (lwwAll !== undefined && redisAll !== undefined) ratios['throughput_lww_over_redis'] = Number(lwwAll['perSecond']) / Number(redisAll['perSecond']);
  if (lwwAll !== undefined && causalAll !== undefined) ratios['throughput_causal_over_lww'] = Number(causalAll['perSecond']) / Number(lwwAll['perSecond']);

  const targets: Target[] = [];
  if (causalAll !== undefined) {
    const anomalies = Number(causalAll['replyBeforeParent']) + Number(causalAll['resurrectedFollows']);
    targets.push({ name: 'causal mode 0 anomalies (reply before parent + resurrected follow, the checker over the measured phase)', target: '0', value: anomalies, met: anomalies === 0 });
  }
  const p50Ratio = ratios['p50_causal_over_lww_all'];
  if (p50Ratio !== undefined) targets.push({ name: 'causal mode p50 <= 1.5x lww (all operations)', target: `<= ${TARGET_P50_RATIO}`, value: p50Ratio, met: p50Ratio <= TARGET_P50_RATIO });
  const throughputRatio = ratios['throughput_causal_over_redis'];
  if (throughputRatio !== undefined) {
    targets.push({ name: 'throughput >= 0.8x the Redis-backed design (ours in the causal mode, operations/s)', target: `>= ${TARGET_THROUGHPUT_RATIO}`, value: throughputRatio, met: throughputRatio >= TARGET_THROUGHPUT_RATIO });
  } else {
    notes.push(`target "throughput >= ${TARGET_THROUGHPUT_RATIO}x the Redis-backed design": NOT MEASURED (no Redis row)`);
  }
  notes.push(machineLoad.summary());

  const plotRows = rows.filter((candidate) => candidate['operation'] !== 'all');
  await publish('retwis', options, {
    rows,
    ratios,
    targets,
    notes,
    plot: {
      rows: plotRows,
      spec: {
        title: `retwis: p50 latency per operation (${IN_FLIGHT} in flight, ${USERS} users, log scale)`,
        width: 420,
        height: 260,
        // Points, not bars: bars on a log scale have no base.
        mark: { type: 'point', filled: true, size: 120 },
        encoding: {
          x: { field: 'operation', type: 'nominal', title: 'operation', sort: ['timeline', 'post', 'follow'] },
          xOffset: { field: 'system' },
          y: { field: 'p50Ms', type: 'quantitative', scale: { type: 'log' }, title: 'p50 latency (ms)' },
          color: { field: 'system', type: 'nominal', legend: { orient: 'bottom', direction: 'vertical', labelLimit: 420 } },
        },
      },
    },
  });
};
