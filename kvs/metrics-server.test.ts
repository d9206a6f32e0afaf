import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startMetricsServer } from './metrics-server.js';
import type { MetricsServer, MetricsSource } from './metrics-server.js';
import { ShardStats } from './shard-stats.js';

const HOST = '127.0.0.1';
const HALF_LIFE_MS = 10_000;

/** Resolves with the socket error code of a TCP connect to `port` ('connected' if it connects). */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/**
 * The value of the exposition line of `series` (`name{a="1",b="2"}`, labels in any order), or
 * undefined when there is none. Label values here hold no commas or escaped quotes.
 */
function valueOf(text: string, series: string): number | undefined {
  const key = (name: string, labels: string): string => `${name}{${labels.split(',').filter(Boolean).sort().join(',')}}`;
  const wanted = /^([^{]+)\{(.*)\}$/.exec(series);
  const wantedKey = wanted === null ? key(series, '') : key(wanted[1]!, wanted[2]!);
  for (const line of text.split('\n')) {
    const match = /^([^{\s]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match !== null && key(match[1]!, match[2] ?? '') === wantedKey) return Number(match[3]);
  }
  return undefined;
}

describe('startMetricsServer', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  it('serves the shard series and the process metrics on /metrics, 404 elsewhere, and closes its port', async () => {
    const nowMs = 50_000;
    const shard0 = new ShardStats({ nodeId: 'kvs-1', shard: 0, keyRateHalfLifeMs: HALF_LIFE_MS });
    const shard1 = new ShardStats({ nodeId: 'kvs-1', shard: 1, keyRateHalfLifeMs: HALF_LIFE_MS });
    for (let i = 0; i < 3; i++) shard0.recordRequest('get', ['a'], 30, nowMs);
    shard0.recordRequest('put', ['a'], 300, nowMs);
    shard0.recordRequest('delete', ['b'], 1e7, nowMs);
    shard0.setOccupancy(4096, 2);
    shard1.recordRequest('put', ['c'], 10, nowMs);
    const sources: MetricsSource[] = [
      { labels: { node: 'kvs-1', shard: '0' }, stats: shard0, extra: { lfaas_kvs_gossip_queue: 7 } },
      { labels: { node: 'kvs-1', shard: '1' }, stats: shard1 },
    ];
    server = await startMetricsServer({ host: HOST, port: 0, collect: () => sources, clock: { now: () => nowMs } });
    expect(server.port).toBeGreaterThan(0);

    const response = await fetch(`http://${HOST}:${server.port}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();

    expect(text).toContain('# TYPE lfaas_kvs_requests_total counter');
    expect(valueOf(text, 'lfaas_kvs_requests_total{kind="get",node="kvs-1",shard="0"}')).toBe(3);
    expect(valueOf(text, 'lfaas_kvs_requests_total{kind="put",node="kvs-1",shard="0"}')).toBe(1);
    expect(valueOf(text, 'lfaas_kvs_requests_total{kind="delete",node="kvs-1",shard="0"}')).toBe(1);
    expect(valueOf(text, 'lfaas_kvs_requests_total{kind="put",node="kvs-1",shard="1"}')).toBe(1);
    expect(valueOf(text, 'lfaas_kvs_requests_total{kind="get",node="kvs-1",shard="1"}')).toBe(0);

    // Cumulative buckets, +Inf last, count and sum.
    // A histogram family in seconds: cumulative buckets, +Inf last, count and sum.
    expect(text).toContain('# TYPE lfaas_kvs_request_duration_seconds histogram');
    expect(text).not.toMatch(/_us[_{ ]/);
    expect(valueOf(text, 'lfaas_kvs_request_duration_seconds_bucket{le="0.000025",node="kvs-1",shard="0"}')).toBe(0);
    expect(valueOf(text, 'lfaas_kvs_request_duration_seconds_bucket{le="0.00005",node="kvs-1",shard="0"}')).toBe(3);
    expect(valueOf(text, 'lfaas_kvs_request_duration_seconds_bucket{le="0.0004",node="kvs-1",shard="0"}')).toBe(4);
    expect(valueOf(text, 'lfaas_kvs_request_duration_seconds_bucket{le="0.1024",node="kvs-1",shard="0"}')).toBe(4);
    expect(valueOf(text, 'lfaas_kvs_request_duration_seconds_bucket{le="+Inf",node="kvs-1",shard="0"}')).toBe(5);
    expect(valueOf(text, 'lfaas_kvs_request_duration_seconds_count{node="kvs-1",shard="0"}')).toBe(5);
    expect(valueOf(text, 'lfaas_kvs_request_duration_seconds_sum{node="kvs-1",shard="0"}')).toBeCloseTo((3 * 30 + 300 + 1e7) / 1e6, 9);

    expect(valueOf(text, 'lfaas_kvs_occupancy_bytes{node="kvs-1",shard="0"}')).toBe(4096);
    expect(valueOf(text, 'lfaas_kvs_keys{node="kvs-1",shard="0"}')).toBe(2);
    expect(valueOf(text, 'lfaas_kvs_keys{node="kvs-1",shard="1"}')).toBe(0);
    expect(valueOf(text, 'lfaas_kvs_requests_per_second{node="kvs-1",shard="0"}')).toBeCloseTo((5 * Math.LN2 * 1000) / HALF_LIFE_MS, 9);
    expect(valueOf(text, 'lfaas_kvs_gossip_queue{node="kvs-1",shard="0"}')).toBe(7);
    // Default process metrics.
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_heap_size_used_bytes');

    // A second scrape sees new requests (and does not double the counters).
    shard1.recordRequest('put', ['c'], 10, nowMs);
    const again = await (await fetch(`http://${HOST}:${server.port}/metrics`)).text();
    expect(valueOf(again, 'lfaas_kvs_requests_total{kind="put",node="kvs-1",shard="1"}')).toBe(2);
    expect(valueOf(again, 'lfaas_kvs_requests_total{kind="get",node="kvs-1",shard="0"}')).toBe(3);

    const notFound = await fetch(`http://${HOST}:${server.port}/other`);
    expect(notFound.status).toBe(404);
    await notFound.text();
    const wrongMethod = await fetch(`http://${HOST}:${server.port}/metrics`, { method: 'POST', body: 'x' });
    expect(wrongMethod.status).toBe(405);
    await wrongMethod.text();

    const { port } = server;
    // Keep a connection open: close must not wait for it.
    const idle = connect({ host: HOST, port });
    await new Promise((resolve) => idle.once('connect', resolve));
    const idleClosed = new Promise((resolve) => idle.once('close', resolve));
    await server.close();
    await idleClosed;
    server = undefined;
    expect(await connectOutcome(port)).toBe('ECONNREFUSED');
  });

  it('answers 500 when a source uses a reserved label, and serves no shard series without sources', async () => {
    const stats = new ShardStats({ nodeId: 'kvs-1', shard: 0 });
    let sources: MetricsSource[] = [{ labels: { le: 'x' }, stats }];
    server = await startMetricsServer({ host: HOST, port: 0, collect: () => sources });
    const refused = await fetch(`http://${HOST}:${server.port}/metrics`);
    expect(refused.status).toBe(500);
    expect(await refused.text()).toContain('"le"');
    sources = [];
    const empty = await fetch(`http://${HOST}:${server.port}/metrics`);
    expect(empty.status).toBe(200);
    const text = await empty.text();
    expect(text).not.toContain('lfaas_kvs_');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('serves plain samples (counters and gauges of a process without shards), read at each scrape; 500 on a name with two types', async () => {
    const counters = { calls: 2 };
    let clash = false;
    server = await startMetricsServer({
      host: HOST,
      port: 0,
      samples: () => [
        { name: 'lfaas_test_calls_total', help: 'Calls.', type: 'counter', value: counters.calls, labels: { node: 'tcp://127.0.0.1:1' } },
        { name: 'lfaas_test_calls_total', help: 'Calls.', type: 'counter', value: 5, labels: { node: 'tcp://127.0.0.1:2' } },
        { name: 'lfaas_test_workers', help: 'Workers.', type: 'gauge', value: 3 },
        ...(clash ? [{ name: 'lfaas_test_workers', help: 'Workers.', type: 'counter' as const, value: 1 }] : []),
      ],
    });
    const text = await (await fetch(`http://${HOST}:${server.port}/metrics`)).text();
    expect(text).toContain('# TYPE lfaas_test_calls_total counter');
    expect(text).toContain('# HELP lfaas_test_workers Workers.');
    expect(text).toContain('# TYPE lfaas_test_workers gauge');
    expect(valueOf(text, 'lfaas_test_calls_total{node="tcp://127.0.0.1:1"}')).toBe(2);
    expect(valueOf(text, 'lfaas_test_calls_total{node="tcp://127.0.0.1:2"}')).toBe(5);
    expect(valueOf(text, 'lfaas_test_workers')).toBe(3);
    expect(text).not.toContain('lfaas_kvs_');
    expect(text).toContain('process_cpu_user_seconds_total');
    // The next scrape reads the counters again (not added to the last scrape's).
    counters.calls = 4;
    const again = await (await fetch(`http://${HOST}:${server.port}/metrics`)).text();
    expect(valueOf(again, 'lfaas_test_calls_total{node="tcp://127.0.0.1:1"}')).toBe(4);
    clash = true;
    const refused = await fetch(`http://${HOST}:${server.port}/metrics`);
    expect(refused.status).toBe(500);
    expect(await refused.text()).toContain('lfaas_test_workers');
  });

  it('serves histogram samples as histogram families, 500 on a bucket count that does not fit its bounds', async () => {
    let counts = [1, 0, 2];
    server = await startMetricsServer({
      host: HOST,
      port: 0,
      samples: () => [
        { name: 'lfaas_test_duration_seconds', help: 'Durations.', type: 'histogram', bounds: [0.01, 0.1], counts, sum: 0.5, labels: { function: 'alice/f' } },
        { name: 'lfaas_test_duration_seconds', help: 'Durations.', type: 'histogram', bounds: [0.01, 0.1], counts: [0, 0, 0], sum: 0, labels: { function: 'bob/g' } },
      ],
    });
    const text = await (await fetch(`http://${HOST}:${server.port}/metrics`)).text();
    expect(text).toContain('# TYPE lfaas_test_duration_seconds histogram');
    expect(text).toContain('# HELP lfaas_test_duration_seconds Durations.');
    expect(valueOf(text, 'lfaas_test_duration_seconds_bucket{function="alice/f",le="0.01"}')).toBe(1);
    expect(valueOf(text, 'lfaas_test_duration_seconds_bucket{function="alice/f",le="0.1"}')).toBe(1);
    expect(valueOf(text, 'lfaas_test_duration_seconds_bucket{function="alice/f",le="+Inf"}')).toBe(3);
    expect(valueOf(text, 'lfaas_test_duration_seconds_count{function="alice/f"}')).toBe(3);
    expect(valueOf(text, 'lfaas_test_duration_seconds_sum{function="alice/f"}')).toBe(0.5);
    expect(valueOf(text, 'lfaas_test_duration_seconds_count{function="bob/g"}')).toBe(0);
    counts = [1, 2];
    const refused = await fetch(`http://${HOST}:${server.port}/metrics`);
    expect(refused.status).toBe(500);
    expect(await refused.text()).toContain('lfaas_test_duration_seconds');
  });

  it('answers /healthz 200 always and /readyz from the ready hook (503 with the reason when not ready)', async () => {
    let readiness: { ready: boolean; reason?: string } = { ready: false, reason: 'not joined the ring yet' };
    server = await startMetricsServer({ host: HOST, port: 0, ready: () => readiness });
    const health = await fetch(`http://${HOST}:${server.port}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ alive: true });
    const notReady = await fetch(`http://${HOST}:${server.port}/readyz`);
    expect(notReady.status).toBe(503);
    expect(notReady.headers.get('content-type')).toContain('application/json');
    expect(await notReady.json()).toEqual({ ready: false, reason: 'not joined the ring yet' });
    readiness = { ready: true };
    const ready = await fetch(`http://${HOST}:${server.port}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
    const post = await fetch(`http://${HOST}:${server.port}/readyz`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    await post.text();
  });

  it('answers /readyz 200 without a ready hook', async () => {
    server = await startMetricsServer({ host: HOST, port: 0 });
    const ready = await fetch(`http://${HOST}:${server.port}/readyz`);
    expect(ready.status).toBe(200);
    await ready.text();
  });

  it('rejects when the port is taken', async () => {
    server = await startMetricsServer({ host: HOST, port: 0, collect: () => [] });
    await expect(startMetricsServer({ host: HOST, port: server.port, collect: () => [] })).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});
