/**
 * The HTTP ingress: calls, async calls and their results, DAG calls and KVS reads and writes over
 * HTTP with JSON (msgpack on request), for curl, browsers and every language. It is a client of
 * the cluster (the SDK over ZeroMQ with its own client key pair), acting for each caller with the
 * caller's own owner token. docs/http.md documents the routes; `lfaas ingress` runs it.
 *
 * @example
 * ```ts
 * const ingress = await startIngress({ routing, schedulers, port: 7080 });
 * await ingress.stop();
 * ```
 */
export { startIngress, DEFAULT_INGRESS_LIMITS, DEFAULT_INGRESS_PORT } from './server.js';
export type { Ingress, IngressOptions } from './server.js';
export type { IngressLimits } from './app.js';
export { HTTP_STATUS_OF_CODE, httpStatusOf } from './errors.js';
export type { ErrorBody } from './errors.js';
export { INGRESS_ROUTES, openApiDocument } from './openapi.js';
export { JSON_TYPE, MSGPACK_TYPE, LATTICE_TYPE } from './codec.js';
export { HTTP_DURATION_BOUNDS_SECONDS, HttpMetrics, OTHER_ROUTE, routeOf } from './http-metrics.js';
export type { HttpSeries } from './http-metrics.js';
