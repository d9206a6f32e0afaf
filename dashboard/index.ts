/**
 * The live dashboard: a web page served by the cluster (`lfaas dashboard`, a role of `lfaas up`)
 * showing the ring and its shards, executors with their warm and stem runtimes, functions and
 * DAGs with calls/s, p50/p99 and errors, autoscaling and membership events, and recent traces
 * (received over OTLP/HTTP JSON). docs/dashboard.md describes it.
 *
 * @example
 * ```ts
 * const dashboard = await startDashboard({ cluster: () => ({ routing, schedulers }), memberKeyPair, adminToken, verifyToken, port: 0 });
 * // open `${dashboard.address}/#token=<admin token>`
 * await dashboard.stop();
 * ```
 */
export { startDashboard, defaultAssetsDir, DEFAULT_DASHBOARD_PORT } from './server.js';
export type { Dashboard, DashboardOptions } from './server.js';
export { Collector, EVENTS_KEY } from './collector.js';
export type { ClusterAddresses, CollectorOptions, ClusterSummary, DashboardEvent, Snapshot } from './collector.js';
export { clusterView } from './aggregate.js';
export type { ClusterView, DagRow, ExecutorRow, FunctionRow, RingNodeRow, ShardRow } from './aggregate.js';
export { TraceStore, parseOtlpTraces } from './traces.js';
export type { Span, TraceView } from './traces.js';
