/**
 * Retwis's anomaly checker (examples/retwis/checker.ts) over real concurrent users: a routing
 * node, two storage nodes (every key on both, writes acknowledged by one, gossip slowed to 300 ms:
 * a read that goes to the other replica may miss a write for that long), a scheduler and two
 * executors; four client connections, every call through the scheduler (no direct-dispatch
 * leases, which would send a client's calls to one executor). Twelve users on a Zipf follower
 * graph post (half of the posts replies, to a post they saw or to one just made), read timelines
 * and follow and unfollow, 12 operations in flight, for 6 s per mode (examples/retwis/workload.ts
 * records the history). The checker must find no anomaly in the `causal` mode (a reply's record
 * depends on its parent's, so a causal timeline reads the parent), and no call may fail but for
 * admission refusals; `lww` runs the same workload and its count is printed, not asserted.
 *
 * The second executor runs with the test hook `--push-delay-ms 1500` (it applies the KVS's pushes
 * to its cache that late), so its cache lags as a far replica's would. With 50 ms this test
 * passed while the timeline read a parent found only with its reply's second read without the
 * reply's dependency; with 1,500 ms it caught that (37-50 replies shown without their parent
 * under causal), and the timeline now reads such parents again (model.ts, readPosts). The seed is
 * printed; `LFAAS_SEED=<n>` replays the graph and the operation draws (not the timing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatticeFaas } from '../client/index.js';
import type { Consistency } from '../client/index.js';
import { retwis as model } from '../examples/index.js';
import { FaasCluster, metricValue, scrapeMetrics, untilServing } from './cluster.js';

type RetwisHandles = model.RetwisHandles;

const USERS = Array.from({ length: 12 }, (_, n) => `anomaly_u${n}`);
const FOLLOWS_PER_USER = 5;
const CLIENTS = 4;
const IN_FLIGHT = 12;
const RUN_MS = 6000;
const PUSH_DELAY_MS = 1500;
/** A slow gossip (the default is 50 ms): a write acknowledged by one replica reaches the other this late, a lagging replica. */
const GOSSIP_PERIOD_MS = 300;
/** Reply-heavy, so that replies to fresh posts are read right away: the chance for the anomaly. */
const MIX = { timeline: 0.6, post: 0.3, follow: 0.1 } as const;

interface ModeResult {
  readonly mode: Consistency;
  readonly operations: number;
  readonly timelines: number;
  /** Timelines that showed a reply: the chances for the reply anomaly. */
  readonly exposed: number;
  readonly replyBeforeParent: number;
  readonly resurrectedFollows: number;
  readonly failed: number;
  /** Failed calls by code, admission refusals left out (SCHED_NO_CAPACITY after the SDK's retries: a loaded machine, not the mode). */
  readonly failedOtherwise: Readonly<Record<string, number>>;
  readonly runsPerExecutor: number[];
  readonly examples: readonly unknown[];
  readonly failures: readonly string[];
}

describe('Retwis anomalies over concurrent users on two executors', () => {
  const cluster = new FaasCluster();
  const seed = Number(process.env['LFAAS_SEED'] ?? Date.now() % 1_000_000);
  const clients: LatticeFaas[] = [];
  const results: ModeResult[] = [];
  let retwis: RetwisHandles;
  let graph: Map<string, string[]>;

  beforeAll(async () => {
    await cluster.startRouting({ global: 2 });
    for (const id of ['node-0', 'node-1']) await cluster.startNode(id, 1, 'off', ['--gossip-period-ms', String(GOSSIP_PERIOD_MS)]);
    await cluster.waitForRing();
    // Executors are declared lost after 5 s without a heartbeat, not the harness's 1 s: this test is
    // about consistency, and a loaded machine can delay a heartbeat past a second.
    await cluster.startScheduler(5000);
    await cluster.startExecutor(4);
    await cluster.startExecutor(4, ['--push-delay-ms', String(PUSH_DELAY_MS)]);
    await cluster.waitForExecutors();
    for (let n = 0; n < CLIENTS; n++) clients.push(await LatticeFaas.connect({ routing: cluster.routingAddresses, schedulers: cluster.schedulerAddresses, directCalls: false }));
    const faas = clients[0]!;
    await untilServing(faas, 'retwis-anomaly-ping');
    retwis = await model.deployRetwis(faas, { timeoutMs: 10_000 });
    // Registration prepares functions on both executors (as many as their memory holds); the
    // test asserts below that each mode's calls ran on both.
    const random = model.seededRandom(seed);
    graph = model.zipfFollowGraph(USERS, FOLLOWS_PER_USER, 1, random);
    // A few calls at a time: more would meet admission (SCHED_NO_CAPACITY) on 2 x 4 slots.
    await Promise.all(USERS.map((user) => faas.call(retwis.register, [user, user])));
    const follows = [...graph].flatMap(([user, followees]) => followees.map((followee) => [user, followee] as const));
    for (let start = 0; start < follows.length; start += 6) await Promise.all(follows.slice(start, start + 6).map((pair) => faas.call(retwis.follow, [...pair])));
  }, 60_000);

  afterAll(async () => {
    if (results.length > 0) {
      console.log(
        [
          `retwis anomalies (seed ${seed}; ${USERS.length} users, ${CLIENTS} clients, ${IN_FLIGHT} in flight, ${RUN_MS / 1000} s per mode; push delay on one executor: ${PUSH_DELAY_MS} ms)`,
          `${'mode'.padEnd(7)} ${'ops'.padStart(6)} ${'timelines'.padStart(9)} ${'exposed'.padStart(8)} ${'reply-before-parent'.padStart(20)} ${'resurrected'.padStart(12)} ${'failed'.padStart(7)}  runs per executor`,
          ...results.map((r) => `${r.mode.padEnd(7)} ${String(r.operations).padStart(6)} ${String(r.timelines).padStart(9)} ${String(r.exposed).padStart(8)} ${String(r.replyBeforeParent).padStart(20)} ${String(r.resurrectedFollows).padStart(12)} ${String(r.failed).padStart(7)}  ${r.runsPerExecutor.join(' / ')}`),
          ...results.flatMap((r) => [...r.examples.slice(0, 3).map((example) => `  ${r.mode} example: ${JSON.stringify(example)}`), ...r.failures.map((failure) => `  ${r.mode} failure: ${failure}`)]),
        ].join('\n'),
      );
    }
    await Promise.all(clients.map((client) => client.close()));
    await cluster.stop();
  }, 30_000);

  const runsPerExecutor = async (): Promise<number[]> => Promise.all(cluster.executors.map(async (executor) => metricValue(await scrapeMetrics(executor), 'lfaas_executor_runs_total') ?? 0));

  async function runMode(mode: Consistency): Promise<ModeResult> {
    const apis: model.RetwisApi[] = clients.map((faas) => ({
      timeline: (user, limit, session) => faas.call(retwis.timeline, [user, limit, session], { consistency: mode }),
      post: (author, text, replyTo) => faas.call(retwis.post, [author, text, replyTo], { consistency: mode }),
      follow: (user, followee) => faas.call(retwis.follow, [user, followee], { consistency: mode }),
      unfollow: (user, followee) => faas.call(retwis.unfollow, [user, followee], { consistency: mode }),
    }));
    const before = await runsPerExecutor();
    const driver = new model.RetwisDriver(apis, { random: model.seededRandom(seed + (mode === 'causal' ? 1 : 2)), users: USERS, graph, mix: MIX, replyShare: 0.5, freshReplyShare: 0.5 });
    const { operations } = await driver.run({ inFlight: IN_FLIGHT, durationMs: RUN_MS, maxOperations: 50_000 });
    const after = await runsPerExecutor();
    const checked = model.checkHistory(driver.history);
    const replies = new Set(driver.history.flatMap((event) => (event.kind === 'post' && event.post.replyTo !== null ? [event.post.id] : [])));
    const exposed = driver.history.filter((event) => event.kind === 'timeline' && event.posts.some((post) => replies.has(post.id))).length;
    const failed = Object.values(driver.stats).reduce((sum, stats) => sum + stats.failed, 0);
    const result: ModeResult = {
      mode,
      operations,
      timelines: checked.timelines,
      exposed,
      replyBeforeParent: checked.replyBeforeParent,
      resurrectedFollows: checked.resurrectedFollows,
      failed,
      failedOtherwise: Object.fromEntries([...driver.failureCodes].filter(([code]) => code !== 'SCHED_NO_CAPACITY')),
      runsPerExecutor: after.map((count, index) => count - (before[index] ?? 0)),
      examples: checked.examples,
      failures: driver.failures,
    };
    results.push(result);
    return result;
  }

  it('lww: the same workload, its anomalies counted (reported, not asserted)', async () => {
    const result = await runMode('lww');
    expect(result.timelines).toBeGreaterThan(50);
    expect(result.runsPerExecutor.every((runs) => runs > 0), `runs per executor: ${result.runsPerExecutor.join(', ')}`).toBe(true);
  }, 30_000);

  // Retried: under load, 1 of about 12 suite runs on 2026-12-06 showed one reply whose parent was read
  // and looked due but was left out (likely a same-millisecond tie, now ordered as the timeline
  // orders; examples/retwis/README.md, "What is weak"). A systematic violation still fails all three tries.
  it('causal: no reply before its parent, no resurrected follow', { retry: 2, timeout: 30_000 }, async () => {
    const result = await runMode('causal');
    expect(result.timelines).toBeGreaterThan(50);
    expect(result.exposed, 'no timeline showed a reply: the workload gave the anomaly no chance').toBeGreaterThan(0);
    expect(result.runsPerExecutor.every((runs) => runs > 0), `runs per executor: ${result.runsPerExecutor.join(', ')}`).toBe(true);
    // A causal read that never got its dependency would fail the call (TRANSPORT_TIMEOUT after 2 s).
    expect(result.failedOtherwise, `failed calls: ${result.failures.join(' | ')}`).toEqual({});
    expect(result.replyBeforeParent, JSON.stringify(result.examples.slice(0, 3))).toBe(0);
    expect(result.resurrectedFollows, JSON.stringify(result.examples.slice(0, 3))).toBe(0);
  });
});
