/**
 * Every role of a real cluster (built CLI, real processes on 127.0.0.1: a routing node, a storage
 * node, a scheduler, an executor and the HTTP ingress) serves metrics that follow the Prometheus
 * conventions (docs/observability-metrics.md), checked by {@link conventionProblems} on each
 * scrape (the suffix rules on our `lfaas_` families; prom-client's defaults are its own): names `lfaas_[a-z_]+`, counters ending `_total` and gauges not, no `_us`/`_ms`/`_millis`
 * units, time in `_seconds` and sizes in `_bytes`, histograms as `_bucket{le}` (with `+Inf`),
 * `_sum` and `_count`. After an OK call and a failing one, the per-function series carry the
 * function, version, owner and code labels on the executor and the scheduler; the ingress counts
 * an HTTP call by route template; and every role answers /healthz and /readyz.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatticeFaas } from '../client/index.js';
import { ErrorCode } from '../lattices/index.js';
import { FaasCluster, adminToken, eventually, metricValue, scrapeMetrics, startProcess, stopProcess, testKeysFolder } from './cluster.js';
import type { RoleProcess } from './cluster.js';
import { code, rejection } from './wire-faults.js';

interface Family {
  type: string;
  readonly samples: { readonly name: string; readonly labels: Readonly<Record<string, string>> }[];
}

/** The families of a text exposition, by name (samples attached to the family they belong to). */
function parseExposition(text: string): { families: Map<string, Family>; orphans: string[] } {
  const families = new Map<string, Family>();
  const orphans: string[] = [];
  const familyOf = (sample: string): Family | undefined => families.get(sample) ?? families.get(sample.replace(/_(bucket|sum|count)$/, ''));
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP')) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type !== null) {
      families.set(type[1]!, { type: type[2]!, samples: [] });
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (sample === null) {
      orphans.push(line);
      continue;
    }
    const labels: Record<string, string> = {};
    for (const match of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[match[1]!] = match[2]!;
    const family = familyOf(sample[1]!);
    if (family === undefined) orphans.push(line);
    else family.samples.push({ name: sample[1]!, labels });
  }
  return { families, orphans };
}

/** Words that say a metric measures time, or a size. */
const TIME_WORDS = /(latency|duration|elapsed|_wait_|_time_|_age_)/;
const SIZE_WORDS = /(_size(_|$)|occupancy|_memory$)/;

/** What breaks the conventions in a text exposition (empty: nothing). */
export function conventionProblems(text: string): string[] {
  const problems: string[] = [];
  const { families, orphans } = parseExposition(text);
  for (const line of orphans) problems.push(`a sample of no declared family: ${line}`);
  for (const [name, family] of families) {
    const ours = name.startsWith('lfaas_');
    if (ours && !/^lfaas_[a-z_]+$/.test(name)) problems.push(`${name}: not lfaas_[a-z_]+`);
    if (/_(us|ms|millis|micros|milliseconds|microseconds)(_|$)/.test(name)) problems.push(`${name}: a unit other than seconds`);
    // prom-client's default metrics are left as they are (its nodejs_active_*_total are gauges).
    if (ours && family.type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: a counter not ending in _total`);
    if (ours && family.type === 'gauge' && name.endsWith('_total')) problems.push(`${name}: a gauge ending in _total`);
    if (ours && TIME_WORDS.test(`${name}_`) && !/_seconds(_|$)/.test(name)) problems.push(`${name}: a time not in _seconds`);
    if (ours && SIZE_WORDS.test(name) && !/_bytes(_|$)/.test(name)) problems.push(`${name}: a size not in _bytes`);
    if (family.type === 'histogram') {
      const buckets = family.samples.filter((sample) => sample.name === `${name}_bucket`);
      if (family.samples.some((sample) => sample.name === name)) problems.push(`${name}: a histogram with a bare sample`);
      if (buckets.some((sample) => sample.labels['le'] === undefined)) problems.push(`${name}: a bucket without le`);
      // One +Inf bucket, one _sum and one _count per series (its labels without le).
      const series = new Set(buckets.map((sample) => JSON.stringify(Object.entries(sample.labels).filter(([label]) => label !== 'le').sort())));
      const count = (suffix: string): number => family.samples.filter((sample) => sample.name === `${name}${suffix}`).length;
      if (buckets.filter((sample) => sample.labels['le'] === '+Inf').length !== series.size) problems.push(`${name}: a series without its +Inf bucket`);
      if (count('_sum') !== series.size || count('_count') !== series.size) problems.push(`${name}: ${series.size} series, ${count('_sum')} _sum and ${count('_count')} _count`);
    }
  }
  return problems;
}

describe('the conventions checker', () => {
  it('finds what breaks the conventions', () => {
    const bad = [
      '# HELP lfaas_x_latency_us_bucket x', '# TYPE lfaas_x_latency_us_bucket counter', 'lfaas_x_latency_us_bucket{le="1"} 1',
      '# HELP lfaas_y_calls y', '# TYPE lfaas_y_calls counter', 'lfaas_y_calls 1',
      '# HELP lfaas_z_total z', '# TYPE lfaas_z_total gauge', 'lfaas_z_total 1',
      '# HELP lfaas_w_duration_seconds w', '# TYPE lfaas_w_duration_seconds histogram', 'lfaas_w_duration_seconds_bucket{le="1"} 1', 'lfaas_w_duration_seconds_sum 1',
      '# HELP lfaas_v_Big v', '# TYPE lfaas_v_Big gauge', 'lfaas_v_Big 1',
      'lfaas_orphan 1',
    ].join('\n');
    const problems = conventionProblems(bad);
    expect(problems).toEqual(expect.arrayContaining([
      expect.stringContaining('lfaas_x_latency_us_bucket: a unit other than seconds'),
      expect.stringContaining('lfaas_y_calls: a counter not ending in _total'),
      expect.stringContaining('lfaas_z_total: a gauge ending in _total'),
      expect.stringContaining('lfaas_w_duration_seconds: a series without its +Inf bucket'),
      expect.stringContaining('lfaas_v_Big: not lfaas_[a-z_]+'),
      expect.stringContaining('a sample of no declared family: lfaas_orphan 1'),
    ]));
    const good = ['# HELP lfaas_a_duration_seconds a', '# TYPE lfaas_a_duration_seconds histogram', 'lfaas_a_duration_seconds_bucket{le="0.1",f="x"} 1', 'lfaas_a_duration_seconds_bucket{le="+Inf",f="x"} 2', 'lfaas_a_duration_seconds_sum{f="x"} 0.3', 'lfaas_a_duration_seconds_count{f="x"} 2'].join('\n');
    expect(conventionProblems(good)).toEqual([]);
  });
});

describe('metrics of every role of a real cluster', () => {
  const cluster = new FaasCluster();
  let ingress: RoleProcess | undefined;
  let faas: LatticeFaas;

  /** Every role process with its name. */
  const roles = (): [string, RoleProcess][] => [
    ['routing', cluster.routing!],
    ...[...cluster.nodes.entries()].map(([id, node]): [string, RoleProcess] => [`storage ${id}`, node]),
    ...cluster.schedulers.map((scheduler, s): [string, RoleProcess] => [`scheduler-${s}`, scheduler]),
    ...cluster.executors.map((executor, e): [string, RoleProcess] => [`executor-${e}`, executor]),
    ['ingress', ingress!],
  ];
  const base = (role: RoleProcess): string => `http://127.0.0.1:${String(role.ready['metricsPort'])}`;

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 1, workers: 2 });
    ingress = await startProcess(['ingress', '--keys', testKeysFolder(), '--routing', cluster.routingAddresses.join(','), '--schedulers', cluster.schedulerAddresses.join(','), '--port', '0', '--metrics-port', '0']);
    faas = await cluster.connect();
  }, 90_000);

  afterAll(async () => {
    await faas?.close();
    if (ingress !== undefined) await stopProcess(ingress);
    await cluster.stop();
  }, 60_000);

  it('serves per-function series, HTTP series and routing series after calls, every scrape within the conventions', async () => {
    await faas.register('conv-ok', code('(x) => x + 1'));
    await faas.register('conv-boom', code('() => { throw new Error("boom"); }'));
    for (let n = 0; n < 3; n++) expect(await faas.call('conv-ok', [n])).toBe(n + 1);
    const boom = await rejection(faas.call('conv-boom'));
    expect(boom.code).toBe(ErrorCode.EXEC_USER_ERROR);
    const missing = await rejection(faas.call('conv-missing'));
    const response = await fetch(`${String(ingress!.ready['address'])}/v1/functions/conv-ok/call`, { method: 'POST', headers: { authorization: `Bearer ${adminToken()}`, 'content-type': 'application/json' }, body: '[41]', signal: AbortSignal.timeout(20_000) });
    expect(response.status).toBe(200);
    expect(await response.json()).toBe(42);

    for (const [name, role] of roles()) {
      expect(role.ready['metricsPort'], `${name} serves metrics`).toEqual(expect.any(Number));
      expect(conventionProblems(await scrapeMetrics(role)), `${name}'s metrics`).toEqual([]);
    }

    const executor = await scrapeMetrics(cluster.executors[0]!);
    const ok = { function: 'conv-ok', version: '1', owner: 'admin' };
    // Every run of conv-ok ran on the one executor, the direct ones and the ingress's included.
    expect(metricValue(executor, 'lfaas_function_calls_total', { ...ok, code: 'OK' })).toBeGreaterThanOrEqual(4);
    expect(metricValue(executor, 'lfaas_function_calls_total', { function: 'conv-boom', owner: 'admin', code: 'EXEC_USER_ERROR' })).toBe(1);
    expect(metricValue(executor, 'lfaas_function_duration_seconds_count', ok)).toBeGreaterThanOrEqual(4);
    expect(metricValue(executor, 'lfaas_function_duration_seconds_bucket', { ...ok, le: '+Inf' })).toBeGreaterThanOrEqual(4);
    expect(executor).toContain('# TYPE lfaas_function_duration_seconds histogram');

    const scheduler = await scrapeMetrics(cluster.schedulers[0]!);
    // The scheduler saw the first call of conv-ok (later ones go straight to the executor), and the missing function.
    expect(metricValue(scheduler, 'lfaas_scheduler_calls_total', { ...ok, code: 'OK' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(scheduler, 'lfaas_scheduler_calls_total', { function: 'conv-missing', code: missing.code })).toBeGreaterThanOrEqual(1);
    expect(metricValue(scheduler, 'lfaas_scheduler_dispatch_duration_seconds_count', ok)).toBeGreaterThanOrEqual(1);

    const http = await scrapeMetrics(ingress!);
    expect(metricValue(http, 'lfaas_http_requests_total', { route: '/v1/functions/{name}/call', method: 'POST', status: '200' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(http, 'lfaas_http_request_duration_seconds_count', { route: '/v1/functions/{name}/call', method: 'POST' })).toBeGreaterThanOrEqual(1);
    expect(metricValue(http, 'lfaas_http_requests_in_flight')).toBeGreaterThanOrEqual(0);
    // Names of functions are not labels of the ingress's series.
    expect(http).not.toContain('conv-ok');

    const routing = await scrapeMetrics(cluster.routing!);
    expect(metricValue(routing, 'lfaas_routing_ring_members')).toBe(1);
    expect(metricValue(routing, 'lfaas_routing_lookups_total')).toBeGreaterThanOrEqual(1);
    expect(metricValue(routing, 'lfaas_routing_joins_total')).toBeGreaterThanOrEqual(1);
    expect(routing).toContain('lfaas_wire_frames_received_total');

    const storage = await scrapeMetrics(cluster.nodes.get('node-0')!);
    expect(storage).toContain('# TYPE lfaas_kvs_request_duration_seconds histogram');
  }, 90_000);

  it('answers /healthz and /readyz on every role', async () => {
    for (const [name, role] of roles()) {
      const health = await fetch(`${base(role)}/healthz`, { signal: AbortSignal.timeout(5000) });
      expect(health.status, `${name} /healthz`).toBe(200);
      expect(await health.json()).toEqual({ alive: true });
      let last: { status: number; body: unknown } = { status: 0, body: undefined };
      const ready = await eventually(async () => {
        const answer = await fetch(`${base(role)}/readyz`, { signal: AbortSignal.timeout(5000) });
        last = { status: answer.status, body: await answer.json() };
        return answer.status === 200;
      }, 15_000);
      expect(ready, `${name} /readyz: ${JSON.stringify(last)}`).toBe(true);
      expect(last.body).toMatchObject({ ready: true });
    }
  }, 60_000);
});
