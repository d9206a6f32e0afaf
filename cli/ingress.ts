/**
 * `lfaas ingress`: the HTTP ingress (ingress/) as its own process. It is a client of the cluster,
 * not a member: it binds with a fresh client key pair (CURVE, like any SDK client) and acts for
 * each caller with the caller's own owner token. Its member key (`ingress.key`) serves one thing:
 * announcing its HTTP URL to the routing nodes (ingress-announce.ts). With `--keys`, a token that does not verify with
 * the cluster's public token key (`token.pub`, re-read when it changes) is refused 401 before any
 * cluster traffic; with `--insecure` (a plain cluster on loopback) no token is asked.
 *
 * Its Prometheus metrics, /healthz and /readyz are served on a port of their own (`metricsPort`),
 * not on the HTTP port: the HTTP port faces callers, and the metrics name routes and counts that
 * are the operator's (the same split as every other role; docs/observability-metrics.md).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HTTP_DURATION_BOUNDS_SECONDS, startIngress } from '../ingress/index.js';
import type { HttpMetrics, Ingress, IngressLimits } from '../ingress/index.js';
import { startMetricsServer } from '../kvs/index.js';
import type { MetricSample, Readiness } from '../kvs/index.js';
import { generateKeyPair } from '../protocol/index.js';
import { announceReady, guardProcess, stopOnSignals } from './process.js';
import { roleLog, setLogNode } from './log.js';
import { announceIngress } from './ingress-announce.js';
import { startTracing } from './tracing.js';
import { FolderTokenVerifier, TOKEN_PUBLIC_FILE } from './token-trust.js';
import { schedulersFor } from './discovered-schedulers.js';

export interface IngressProcessOptions {
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
  readonly host: string;
  /**
   * Where the cluster reaches the ingress's own sockets (docs/multi-host.md): given, they bind
   * `host` and advertise this; absent, they stay on 127.0.0.1 (a cluster on this machine).
   */
  readonly advertise?: string;
  readonly port: number;
  readonly keys?: string;
  readonly insecure?: boolean;
  readonly bodyLimitMb: number;
  readonly concurrency: number;
  readonly requestTimeoutMs: number;
  readonly clientsMax: number;
  readonly headersTimeoutMs: number;
  /** -1: no metrics server; 0: an ephemeral port (default). */
  readonly metricsPort?: number;
}

/** The ingress's HTTP series now (http-metrics.ts), labelled with `labels`. */
export function httpSamples(metrics: HttpMetrics, labels: Readonly<Record<string, string>>): MetricSample[] {
  const samples: MetricSample[] = [{ name: 'lfaas_http_requests_in_flight', help: 'HTTP requests the ingress is serving now.', type: 'gauge', value: metrics.inFlight, labels }];
  for (const series of metrics.series()) {
    const own = { ...labels, route: series.route, method: series.method };
    for (const [status, count] of series.statuses) samples.push({ name: 'lfaas_http_requests_total', help: 'HTTP requests the ingress answered, by route template, method and status (0: the connection closed before an answer).', type: 'counter', value: count, labels: { ...own, status: String(status) } });
    samples.push({ name: 'lfaas_http_request_duration_seconds', help: 'How long the ingress took to answer HTTP requests, by route template and method, in seconds.', type: 'histogram', bounds: HTTP_DURATION_BOUNDS_SECONDS, counts: [...series.buckets], sum: series.sumSeconds, labels: own });
  }
  return samples;
}

/** The ingress's own counters (refusals, timeouts, errors). */
function ingressCounterSamples(ingress: Ingress, labels: Readonly<Record<string, string>>): MetricSample[] {
  const { counters } = ingress.state;
  return [
    { name: 'lfaas_ingress_refused_busy_total', help: 'HTTP requests refused 503 because the ingress was serving its concurrency limit.', type: 'counter', value: counters.refusedBusy, labels },
    { name: 'lfaas_ingress_timeouts_total', help: 'HTTP requests answered 504 at the ingress\'s request timeout.', type: 'counter', value: counters.timedOut, labels },
    { name: 'lfaas_ingress_errors_total', help: 'HTTP requests answered with an error.', type: 'counter', value: counters.errors, labels },
    { name: 'lfaas_ingress_owner_clients', help: 'Callers\' tokens with a cluster client open.', type: 'gauge', value: ingress.state.clients.size, labels },
  ];
}

/** Ready while a scheduler and a routing node answer an echo (its /v1/health, cached 500 ms). */
async function ingressReadiness(ingress: Ingress): Promise<Readiness> {
  const health = await ingress.state.health();
  if (health.scheduler && health.kvs) return { ready: true };
  return { ready: false, reason: [health.scheduler ? '' : 'no scheduler answers', health.kvs ? '' : 'no routing node answers'].filter(Boolean).join('; ') };
}

export async function runIngressProcess(options: IngressProcessOptions): Promise<void> {
  guardProcess('ingress');
  await startTracing({ role: 'ingress' });
  const insecure = options.insecure === true;
  if (!insecure && options.keys === undefined) throw new Error('ingress: no keys: pass --keys <folder> (its token.pub verifies callers\' tokens), or --insecure for a plain cluster on loopback');
  const verifier = !insecure && options.keys !== undefined && existsSync(join(options.keys, TOKEN_PUBLIC_FILE)) ? new FolderTokenVerifier(options.keys) : undefined;
  const limits: Partial<IngressLimits> = { bodyBytesMax: Math.round(options.bodyLimitMb * 1024 * 1024), concurrentMax: options.concurrency, requestTimeoutMs: options.requestTimeoutMs };
  const keyPair = insecure ? 'insecure' : generateKeyPair();
  // Without --schedulers: discovered from the routing nodes and kept current (docs/multi-host.md).
  const clusterSide = options.advertise === undefined ? {} : { host: options.host, advertise: options.advertise };
  const schedulers = await schedulersFor({ routing: options.routing, schedulers: options.schedulers, keyPair, ...clusterSide });
  const ingress = await startIngress({
    routing: options.routing,
    schedulers: schedulers.list,
    ...(options.advertise === undefined ? {} : { clusterHost: options.host, clusterAdvertise: options.advertise }),
    host: options.host,
    port: options.port,
    keyPair,
    ...(verifier === undefined ? {} : { verifyToken: (token: string) => verifier.verify(token) }),
    limits,
    clientsMax: options.clientsMax,
    headersTimeoutMs: options.headersTimeoutMs,
  });
  setLogNode(ingress.address);
  const metricsPort = options.metricsPort ?? 0;
  const labels = { node: ingress.address };
  const metrics =
    metricsPort < 0
      ? undefined
      : await startMetricsServer({ host: options.host, port: metricsPort, samples: () => [...httpSamples(ingress.httpMetrics, labels), ...ingressCounterSamples(ingress, labels)], ready: () => ingressReadiness(ingress) });
  // Discovery: the routing nodes list this ingress's URL while it announces itself (ingress-announce.ts).
  const announcement = await announceIngress({ routing: options.routing, ...(options.keys === undefined ? {} : { keys: options.keys }), insecure, host: options.host, ...(options.advertise === undefined ? {} : { advertise: options.advertise }), port: ingress.port, warn: (message) => roleLog().warn(message) });
  announceReady({ role: 'ingress', address: ingress.address, port: ingress.port, url: announcement.url ?? null, pid: process.pid, tokens: insecure ? 'none' : verifier === undefined ? 'cluster' : 'verified', metricsPort: metrics?.port ?? null });
  stopOnSignals(async () => {
    await announcement.stop();
    await ingress.stop();
    await metrics?.close();
    await schedulers.stop();
  }, 'ingress');
}
