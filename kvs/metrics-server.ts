/**
 * The Prometheus endpoint of every role process: `GET /metrics` on a small node:http server,
 * answered from a storage node's {@link ShardStats} (if it has shards), the process's own
 * {@link MetricSample}s, and prom-client's default process metrics; plus `GET /healthz` (the
 * process is alive: 200) and `GET /readyz` (the role is serving: 200, or 503 with a JSON reason,
 * from the role's `ready` hook). docs/observability-metrics.md lists every family.
 *
 * Conventions (checked by test/metrics-conventions.test.ts): names `lfaas_<role>_<what>`, base
 * units in the name (`_seconds`, `_bytes`), counters end in `_total`, gauges do not, histograms
 * are real `histogram` families (`_bucket{le}`, `_sum`, `_count`).
 *
 * Shard series, each labelled with the source's labels (usually `node` and `shard`):
 * - `lfaas_kvs_requests_total{kind}` (counter): requests per kind;
 * - `lfaas_kvs_request_duration_seconds` (histogram): the shard's latency histogram, its bucket
 *   bounds converted from the shard's microseconds to seconds. prom-client's `Histogram` can only
 *   observe single values, not be loaded with the shard's bucket counts (replaying every request
 *   would cost a scrape O(requests)), so histogram families are written by a small metric object
 *   of our own ({@link histogramFamily}) registered beside prom-client's;
 * - `lfaas_kvs_occupancy_bytes`, `lfaas_kvs_keys`, `lfaas_kvs_requests_per_second` (gauges);
 * - one gauge per name in a source's `extra`.
 *
 * Other processes (schedulers, executors, routing nodes, the ingress) have no shards: they pass
 * plain {@link MetricSample}s (`samples`): counters and gauges they keep themselves, and
 * histograms as bucket counts (per-function latencies), read once per scrape.
 *
 * The label names are whatever the sources use, so the series are built at each scrape in a
 * registry of their own (from one call of `collect`, so one scrape is one consistent picture) and
 * merged with the long-lived registry of the default metrics. The global prom-client registry is
 * never touched.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ErrorCode, LfaasError, systemClock } from '../protocol/index.js';
import type { Clock } from '../protocol/index.js';
import { REQUEST_KINDS } from './shard-stats.js';
import type { ShardStats } from './shard-stats.js';

/** One shard's stats as the metrics server shows them. */
export interface MetricsSource {
  /** Labels on every series of this source (`{ node: 'kvs-1', shard: '0' }`); not `kind` or `le`. */
  readonly labels: Readonly<Record<string, string>>;
  readonly stats: Pick<ShardStats, 'snapshot' | 'requestsPerSecond'>;
  /** More gauges: full metric name -> value (`{ lfaas_kvs_gossip_queue: 3 }`). */
  readonly extra?: Readonly<Record<string, number>>;
}

export interface MetricsServerOptions {
  /** The interface to listen on (`127.0.0.1`, `0.0.0.0`). */
  readonly host: string;
  /** The port; 0 picks a free one (read it from the result). */
  readonly port: number;
  /** The sources to show, called once per scrape; at most {@link METRICS_SOURCES_MAX} (default none). */
  readonly collect?: () => readonly MetricsSource[];
  /** More series (a process without shards), called once per scrape; at most {@link METRICS_SAMPLES_MAX}. */
  readonly samples?: () => readonly MetricSample[];
  /** The clock the stats are recorded with, for their decayed rates (default `systemClock`). */
  readonly clock?: Pick<Clock, 'now'>;
  /**
   * Whether the role serves now, for `GET /readyz` (default: ready once the server listens). A
   * role not ready answers 503 with `{ ready: false, reason }`.
   */
  readonly ready?: () => Readiness | Promise<Readiness>;
}

/** What a role's readiness hook says. */
export interface Readiness {
  readonly ready: boolean;
  /** Why not (or what it is ready with): shown in the /readyz body. */
  readonly reason?: string;
}

/**
 * One series a process shows as it is at the scrape: a counter it keeps itself (total so far), a
 * gauge, or a histogram. Samples with one name make one family (one help text, one type).
 */
export type MetricSample = ScalarSample | HistogramSample;

/** A counter or a gauge. */
export interface ScalarSample {
  /** The full metric name (`lfaas_scheduler_calls_total`). */
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  /** The value now (a counter's total since the process started: never negative). */
  readonly value: number;
  /** Labels of this series (`{ node: 'tcp://127.0.0.1:5000' }`). */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A histogram series, from bucket counts kept by the process (not cumulative). */
export interface HistogramSample {
  /** The family name, without `_bucket`/`_sum`/`_count` (`lfaas_function_duration_seconds`). */
  readonly name: string;
  readonly help: string;
  readonly type: 'histogram';
  /** Bucket upper bounds in the metric's unit, finite and ascending (`+Inf` is implied). */
  readonly bounds: readonly number[];
  /** Observations per bucket, not cumulative: `bounds.length + 1` of them (the last beyond every bound). */
  readonly counts: readonly number[];
  /** The sum of the observations. */
  readonly sum: number;
  readonly labels?: Readonly<Record<string, string>>;
}

/** A running metrics server. */
export interface MetricsServer {
  /** The port it listens on. */
  readonly port: number;
  /** Stops listening and closes every connection, idle or not. */
  close(): Promise<void>;
}

/** A scrape with more sources than this is refused (500): it would be a bug, not a node. */
export const METRICS_SOURCES_MAX = 4096;
/** A scrape with more samples than this is refused (500), as one with too many sources. */
export const METRICS_SAMPLES_MAX = 65_536;
/** Label names the series use themselves; a source may not set them. */
const RESERVED_LABELS: ReadonlySet<string> = new Set(['kind', 'le']);
/** A scrape request must arrive within this (slow or stuck clients do not hold sockets). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Concurrent connections, at most (Prometheus uses one; this leaves room for people and tests). */
const CONNECTIONS_MAX = 64;

/**
 * Starts the metrics server and resolves once it listens. `GET /metrics` (or `HEAD`) answers the
 * Prometheus text exposition; `GET /healthz` 200 `{"alive":true}`; `GET /readyz` 200
 * `{"ready":true}` or 503 `{"ready":false,"reason":...}` from `ready`; other paths 404, other
 * methods 405, and a scrape that fails (a source with a bad label or metric name, two sources
 * with one name clash) 500 with the reason. Rejects when it cannot listen (port taken).
 *
 * The default process metrics install process-wide observers (event-loop delay, GC) that prom-client
 * cannot remove; start one metrics server per process.
 *
 * @example
 * ```ts
 * const server = await startMetricsServer({ host: '0.0.0.0', port: 9464, collect: () => shards.map((s) => ({ labels: { node: id, shard: String(s.index) }, stats: s.stats })) });
 * // ...
 * await server.close();
 * ```
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const clock = options.clock ?? systemClock;
  const processRegistry = new Registry();
  collectDefaultMetrics({ register: processRegistry });

  const server = createServer((request, response) => {
    void answer(request, response, () => scrape(processRegistry, options.collect?.() ?? [], options.samples?.() ?? [], clock.now()), options.ready ?? (() => ({ ready: true })));
  });
  server.requestTimeout = REQUEST_TIMEOUT_MS;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
  server.maxConnections = CONNECTIONS_MAX;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closed: Promise<void> | undefined;
  return {
    port,
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

async function answer(request: IncomingMessage, response: ServerResponse, metrics: () => Promise<{ text: string; contentType: string }>, ready: () => Readiness | Promise<Readiness>): Promise<void> {
  const path = (request.url ?? '/').split('?', 1)[0];
  if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') return send(response, 404, 'not found\n');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return send(response, 405, 'method not allowed\n');
  }
  const head = request.method === 'HEAD';
  if (path === '/healthz') return send(response, 200, head ? '' : '{"alive":true}\n', JSON_TYPE);
  if (path === '/readyz') {
    let readiness: Readiness;
    try {
      readiness = await ready();
    } catch (error) {
      readiness = { ready: false, reason: `the readiness check failed: ${error instanceof Error ? error.message : String(error)}` };
    }
    const body = `${JSON.stringify({ ready: readiness.ready, ...(readiness.reason === undefined ? {} : { reason: readiness.reason }) })}\n`;
    return send(response, readiness.ready ? 200 : 503, head ? '' : body, JSON_TYPE);
  }
  let result: { text: string; contentType: string };
  try {
    result = await metrics();
  } catch (error) {
    return send(response, 500, `scrape failed: ${error instanceof Error ? error.message : String(error)}\n`);
  }
  send(response, 200, request.method === 'HEAD' ? '' : result.text, result.contentType);
}

const JSON_TYPE = 'application/json; charset=utf-8';

function send(response: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

/** One scrape: the shard series of `sources` at `nowMs` and the `samples`, after the default metrics. */
async function scrape(processRegistry: Registry, sources: readonly MetricsSource[], samples: readonly MetricSample[], nowMs: number): Promise<{ text: string; contentType: string }> {
  const shardRegistry = buildShardRegistry(sources, nowMs);
  const merged = Registry.merge([processRegistry, shardRegistry, buildSampleRegistry(samples)]);
  return { text: await merged.metrics(), contentType: merged.contentType };
}

/** A registry holding the shard series of `sources`, set to their values now. */
function buildShardRegistry(sources: readonly MetricsSource[], nowMs: number): Registry {
  if (sources.length > METRICS_SOURCES_MAX) throw new LfaasError(ErrorCode.INTERNAL, `${sources.length} metrics sources, at most ${METRICS_SOURCES_MAX}`);
  // No sources, no series (an unlabelled metric would otherwise show a made-up 0).
  if (sources.length === 0) return new Registry();
  const labelNameSet = new Set<string>();
  for (const source of sources) {
    for (const name of Object.keys(source.labels)) {
      if (RESERVED_LABELS.has(name)) throw new LfaasError(ErrorCode.INTERNAL, `a metrics source may not set the label ${JSON.stringify(name)}`);
      labelNameSet.add(name);
    }
  }
  const labelNames = [...labelNameSet].sort();
  const registers = [new Registry()];
  const counter = (name: string, help: string, extraLabels: readonly string[] = []): Counter => new Counter({ name, help, labelNames: [...labelNames, ...extraLabels], registers });
  const gauge = (name: string, help: string): Gauge => new Gauge({ name, help, labelNames, registers });

  const requests = counter('lfaas_kvs_requests_total', 'Requests a shard served, by kind.', ['kind']);
  const latency: HistogramSample[] = [];
  const occupancy = gauge('lfaas_kvs_occupancy_bytes', 'Bytes a shard stores.');
  const keys = gauge('lfaas_kvs_keys', 'Keys a shard stores.');
  const rate = gauge('lfaas_kvs_requests_per_second', 'The exponentially decaying request rate of a shard, in requests per second.');
  const extras = new Map<string, Gauge>();

  for (const source of sources) {
    const labels = source.labels;
    const snapshot = source.stats.snapshot();
    for (const kind of REQUEST_KINDS) requests.inc({ ...labels, kind }, snapshot.requests[kind]);
    // The shard counts in microseconds (its last bound infinite); the family is in seconds.
    const finite = snapshot.latencyBoundsUs.filter((bound) => Number.isFinite(bound));
    const counts = finite.map((_, i) => snapshot.latencyCounts[i] ?? 0);
    counts.push(snapshot.latencyCounts.slice(finite.length).reduce((sum, count) => sum + count, 0));
    latency.push({ name: 'lfaas_kvs_request_duration_seconds', help: 'How long a shard took to serve a request, in seconds.', type: 'histogram', bounds: finite.map((bound) => bound / 1e6), counts, sum: snapshot.latencySumUs / 1e6, labels });
    occupancy.set(labels, snapshot.occupancyBytes);
    keys.set(labels, snapshot.keyCount);
    rate.set(labels, source.stats.requestsPerSecond(nowMs));
    for (const [name, value] of Object.entries(source.extra ?? {})) {
      let extra = extras.get(name);
      if (extra === undefined) {
        extra = gauge(name, `${name} (reported by the storage node).`);
        extras.set(name, extra);
      }
      extra.set(labels, value);
    }
  }
  registerHistograms(registers[0]!, 'lfaas_kvs_request_duration_seconds', latency);
  return registers[0]!;
}

/** A registry holding `samples`, one family per name (a name used with two types fails the scrape). */
function buildSampleRegistry(samples: readonly MetricSample[]): Registry {
  if (samples.length > METRICS_SAMPLES_MAX) throw new LfaasError(ErrorCode.INTERNAL, `${samples.length} metric samples, at most ${METRICS_SAMPLES_MAX}`);
  const families = new Map<string, MetricSample[]>();
  for (const sample of samples) {
    const family = families.get(sample.name);
    if (family === undefined) families.set(sample.name, [sample]);
    else if (family[0]!.type !== sample.type) throw new LfaasError(ErrorCode.INTERNAL, `the metric ${sample.name} is both a ${family[0]!.type} and a ${sample.type}`);
    else family.push(sample);
  }
  const registers = [new Registry()];
  for (const [name, family] of families) {
    const first = family[0]!;
    const labelNames = [...new Set(family.flatMap((sample) => Object.keys(sample.labels ?? {})))].sort();
    if (first.type === 'histogram') {
      registerHistograms(registers[0]!, name, family as HistogramSample[]);
    } else if (first.type === 'counter') {
      const counter = new Counter({ name, help: first.help, labelNames, registers });
      for (const sample of family as ScalarSample[]) counter.inc(sample.labels ?? {}, sample.value);
    } else {
      const gauge = new Gauge({ name, help: first.help, labelNames, registers });
      for (const sample of family as ScalarSample[]) gauge.set(sample.labels ?? {}, sample.value);
    }
  }
  return registers[0]!;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * Registers one histogram family in `registry`, written from bucket counts: a metric object of
 * the shape prom-client's registry reads (`name`, `get()`), so it merges and prints with the rest.
 * Empty: nothing registered.
 */
function registerHistograms(registry: Registry, name: string, family: readonly HistogramSample[]): void {
  if (family.length === 0) return;
  if (!METRIC_NAME.test(name)) throw new LfaasError(ErrorCode.INTERNAL, `invalid metric name ${JSON.stringify(name)}`);
  const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
  for (const sample of family) {
    const labels = sample.labels ?? {};
    for (const label of Object.keys(labels)) {
      if (!LABEL_NAME.test(label) || RESERVED_LABELS.has(label)) throw new LfaasError(ErrorCode.INTERNAL, `the histogram ${name} may not have the label ${JSON.stringify(label)}`);
    }
    if (sample.counts.length !== sample.bounds.length + 1) throw new LfaasError(ErrorCode.INTERNAL, `the histogram ${name} has ${sample.bounds.length} bounds and ${sample.counts.length} counts (bounds + 1 expected)`);
    let cumulative = 0;
    sample.bounds.forEach((bound, i) => {
      cumulative += sample.counts[i]!;
      values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: String(bound) }, value: cumulative });
    });
    cumulative += sample.counts[sample.bounds.length]!;
    values.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
    values.push({ metricName: `${name}_sum`, labels: { ...labels }, value: sample.sum });
    values.push({ metricName: `${name}_count`, labels: { ...labels }, value: cumulative });
  }
  const help = family[0]!.help;
  const metric = { name, help, type: 'histogram', aggregator: 'sum', get: () => ({ name, help, type: 'histogram', aggregator: 'sum', values }) };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}
