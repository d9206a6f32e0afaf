/**
 * `kvs`: GET and PUT of 8 B and 1 KiB values with 1 and 50 requests in flight (closed loop), on
 * one storage node with 2 shards through our batching client; and Redis (`redis-server` started
 * here on a free loopback port, persistence off) through ioredis with auto-pipelining, driven by
 * the same load harness in the same run, measured alternately; plus `redis-benchmark` for
 * reference. Values: ours are LWW registers holding the bytes (the register adds its timestamp and
 * writer, ~30 B), Redis's are the raw bytes. PUTs are acknowledged `local` (Redis without
 * persistence acknowledges from memory too).
 *
 * Our cluster runs secure (every connection encrypted: TLS-PSK on the default node:net transport,
 * CURVE on ZeroMQ) as it does by default; a second, identical cluster with `--insecure` (plain) is measured in the same rounds, its rows labelled
 * `security: plain`. The targets are computed on the default (encrypted) rows only.
 */
import { HybridClock, Lww } from '../lattices/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop } from './harness/load.js';
import { publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { startBenchCluster } from './kvs-cluster.js';
import { REDIS_INSTALL_HINT, findRedis, redisClient, runRedisBenchmark, startRedis } from './redis-peer.js';

const KEYS = 1000;
/** Our cluster as it runs by default (encrypted). */
const OURS = 'lattice-faas';
/** The same cluster with every role `--insecure` (encryption off). */
const OURS_PLAIN = 'lattice-faas (--insecure)';

export const kvsBenchmark: Benchmark = async (options) => {
  const durationMs = options.quick ? 1000 : 3000;
  const cluster = await startBenchCluster({ nodes: 1, shards: 2, replication: 1 });
  const plain = await startBenchCluster({ nodes: 1, shards: 2, replication: 1, insecure: true }).catch(async (error: unknown) => {
    await cluster.stop();
    throw error;
  });
  const redisFound = findRedis();
  const notes: string[] = [
    'one storage node process with 2 shards (one lmdb environment each, every merge persisted write-behind) + a routing node; the client is the load generator process, shared 2 cores',
    'ours: LWW registers of the bytes (value + HLC timestamp + writer id); Redis: raw bytes; PUT ack = local',
    "Anna's reference figures, quoted beside these (its published figures for this kind of machine, not run here): 8 B values, 16-61 k ops/s with 50 in flight, p50 0.08-0.11 ms sequential; its disk tier never syncs",
    'storage nodes poll after traffic (protocol/busy-poll.ts, 0.3 ms; LFAAS_POLL_US=0 turns it off); the client process does not',
    `security: ${OURS} runs secure as by default (encrypted: TLS-PSK on every connection with the default node:net transport, CURVE with LFAAS_TRANSPORT=zmq); ${OURS_PLAIN} is a second, identical cluster whose roles run with --insecure (plain), measured in turn with the others; Redis runs plain (no TLS); targets are on the ${OURS} (encrypted) rows`,
  ];
  const redis = redisFound === undefined ? undefined : await startRedis();
  if (redisFound === undefined) notes.push(REDIS_INSTALL_HINT);
  const redisConnection = redis === undefined ? undefined : await redisClient(redis.port);
  const rows: Row[] = [];
  try {
    const clock = new HybridClock('bench', () => Date.now());
    for (const valueBytes of [8, 1024]) {
      const bytes = new Uint8Array(valueBytes).fill(7);
      const buffer = Buffer.alloc(valueBytes, 7);
      // Preload every key, so GETs hit.
      for (const ours of [cluster, plain]) await Promise.all(Array.from({ length: KEYS }, (_, k) => ours.client.put(`key-${valueBytes}-${k}`, Lww.write(clock, bytes))));
      if (redisConnection !== undefined) await Promise.all(Array.from({ length: KEYS }, (_, k) => redisConnection.set(`key-${valueBytes}-${k}`, buffer)));
      for (const op of ['GET', 'PUT'] as const) {
        for (const inFlight of [1, 50]) {
          let n = 0;
          const key = (): string => `key-${valueBytes}-${n++ % KEYS}`;
          const systems: [string, 'encrypted' | 'plain', () => Promise<unknown>][] = [OURS, OURS_PLAIN].map((system) => {
            const ours = system === OURS ? cluster : plain;
            return [system, ours.security, op === 'GET' ? () => ours.client.get(key()) : () => ours.client.put(key(), Lww.write(clock, bytes))];
          });
          if (redisConnection !== undefined) systems.push(['redis', 'plain', op === 'GET' ? () => redisConnection.get(key()) : () => redisConnection.set(key(), buffer)]);
          for (const [system, security, operation] of systems) {
            // Warm-up, then the measured run.
            await closedLoop(operation, { inFlight, durationMs: 200, maxOperations: 100_000 });
            const result = await closedLoop(operation, { inFlight, durationMs, maxOperations: 10_000_000 });
            const latency = summarise(result.latenciesMs);
            rows.push({ system, security, op, valueBytes, inFlight, perSecond: result.perSecond, p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, clientCores: result.cpuCores });
          }
        }
      }
    }
    if (redis !== undefined && redisFound?.benchmarkPath !== undefined) {
      const reference = await runRedisBenchmark(redisFound.benchmarkPath, redis.port, { requests: options.quick ? 20_000 : 100_000, clients: 50, valueBytes: 8 });
      rows.push({ system: 'redis-benchmark (C client)', security: 'plain', op: 'GET', valueBytes: 8, inFlight: 50, perSecond: reference.getPerSecond, p50Ms: reference.getP50Ms ?? 0, p99Ms: 0, clientCores: 0 });
      rows.push({ system: 'redis-benchmark (C client)', security: 'plain', op: 'PUT', valueBytes: 8, inFlight: 50, perSecond: reference.setPerSecond, p50Ms: reference.setP50Ms ?? 0, p99Ms: 0, clientCores: 0 });
    }
  } finally {
    await redisConnection?.close();
    await redis?.stop();
    await plain.stop();
    await cluster.stop();
  }

  const find = (system: string, op: string, valueBytes: number, inFlight: number): Row | undefined =>
    rows.find((row) => row['system'] === system && row['op'] === op && row['valueBytes'] === valueBytes && row['inFlight'] === inFlight);
  const ratios: Record<string, number> = {};
  const targets: Target[] = [];
  for (const op of ['GET', 'PUT']) {
    for (const valueBytes of [8, 1024]) {
      for (const inFlight of [1, 50]) {
        const ours = find(OURS, op, valueBytes, inFlight);
        const theirs = find('redis', op, valueBytes, inFlight);
        const label = `${op.toLowerCase()}_${valueBytes}B_${inFlight}inflight`;
        const insecure = find(OURS_PLAIN, op, valueBytes, inFlight);
        if (ours !== undefined && insecure !== undefined) ratios[`${label}_throughput_insecure_over_ours`] = Number(insecure['perSecond']) / Number(ours['perSecond']);
        if (ours === undefined || theirs === undefined) continue;
        ratios[`${label}_throughput_ours_over_redis`] = Number(ours['perSecond']) / Number(theirs['perSecond']);
        ratios[`${label}_p50_ours_over_redis`] = Number(ours['p50Ms']) / Number(theirs['p50Ms']);
        ratios[`${label}_p99_ours_over_redis`] = Number(ours['p99Ms']) / Number(theirs['p99Ms']);
        if (insecure !== undefined) ratios[`${label}_throughput_insecure_over_redis`] = Number(insecure['perSecond']) / Number(theirs['perSecond']);
      }
    }
    const redisValue = (valueBytes: number, inFlight: number, field: string): number => Number(find('redis', op, valueBytes, inFlight)?.[field]);
    const throughput = ratios[`${op.toLowerCase()}_8B_50inflight_throughput_ours_over_redis`];
    if (throughput !== undefined) targets.push({ name: `${op} 8 B, 50 in flight: throughput ours / Redis`, target: '>= 1.0', value: throughput, met: throughput >= 1, peer: { name: `Redis ${op}/s`, value: redisValue(8, 50, 'perSecond') } });
    const p50 = ratios[`${op.toLowerCase()}_8B_1inflight_p50_ours_over_redis`];
    if (p50 !== undefined) targets.push({ name: `${op} 8 B, 1 client: p50 ours / Redis`, target: '<= 1.5', value: p50, met: p50 <= 1.5, peer: { name: 'Redis p50 (ms)', value: redisValue(8, 1, 'p50Ms') } });
    // Issue 17: larger values keep most of Redis's throughput.
    const throughput1k = ratios[`${op.toLowerCase()}_1024B_50inflight_throughput_ours_over_redis`];
    if (throughput1k !== undefined) targets.push({ name: `${op} 1 KiB, 50 in flight: throughput ours / Redis`, target: '>= 0.8', value: throughput1k, met: throughput1k >= 0.8, peer: { name: `Redis ${op}/s`, value: redisValue(1024, 50, 'perSecond') } });
  }
  await publish('kvs', options, {
    rows,
    ratios,
    targets,
    notes,
    plot: {
      rows: rows.filter((row) => row['inFlight'] === 50 && !String(row['system']).startsWith('redis-benchmark')).map((row) => ({ ...row, case: `${row['op']} ${row['valueBytes']} B` })),
      spec: {
        title: 'kvs: operations per second, 50 in flight',
        width: 420,
        height: 260,
        mark: 'bar',
        encoding: {
          x: { field: 'case', type: 'nominal', title: null },
          xOffset: { field: 'system' },
          y: { field: 'perSecond', type: 'quantitative', title: 'operations / s' },
          color: { field: 'system', type: 'nominal' },
        },
      },
    },
  });
};
