/**
 * The ingress's HTTP metrics: requests by route, method and status, their durations, and the
 * requests in flight, kept as plain numbers; cli/ingress.ts shows them at each scrape
 * (`lfaas_http_requests_total`, `lfaas_http_request_duration_seconds`,
 * `lfaas_http_requests_in_flight`) on the ingress's metrics port. The `route` label is the route's template
 * (`/v1/functions/{name}/call`, from {@link INGRESS_ROUTES}), never the path itself: names, keys
 * and call ids stay out of the labels, and the label set is bounded (unknown paths: `other`).
 */
import { INGRESS_ROUTES } from './openapi.js';

/** Bucket bounds (seconds) of request durations: 1 ms to 60 s (a call may wait for its function). */
export const HTTP_DURATION_BOUNDS_SECONDS: readonly number[] = Object.freeze([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]);
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);
/** The route label of a path no route matches. */
export const OTHER_ROUTE = 'other';

/** Each route's template as a matcher: `{param}` is one segment or more (keys hold slashes). */
const MATCHERS: readonly { readonly template: string; readonly pattern: RegExp }[] = [...new Set(INGRESS_ROUTES.map((route) => route.path))].map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '.+')}$`),
}));

/** The route label of a request path (its query cut off). */
export function routeOf(url: string): string {
  const query = url.indexOf('?');
  const path = query < 0 ? url : url.slice(0, query);
  for (const matcher of MATCHERS) if (matcher.pattern.test(path)) return matcher.template;
  return OTHER_ROUTE;
}

/** One route and method's counts. */
export interface HttpSeries {
  readonly route: string;
  readonly method: string;
  /** Requests per status code. */
  readonly statuses: Map<number, number>;
  /** Requests per duration bucket ({@link HTTP_DURATION_BOUNDS_SECONDS}, then beyond the last), not cumulative. */
  readonly buckets: number[];
  sumSeconds: number;
}

export class HttpMetrics {
  /** Requests being served now. */
  inFlight = 0;
  private readonly seriesByKey = new Map<string, HttpSeries>();

  /** A request is being served. */
  started(): void {
    this.inFlight++;
  }

  /** A request ended (answered or its connection closed) with `status` after `durationMs`. */
  finished(url: string, method: string, status: number, durationMs: number): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    const route = routeOf(url);
    const methodLabel = METHODS.has(method) ? method : 'OTHER';
    const key = `${methodLabel} ${route}`;
    let series: HttpSeries | undefined = this.seriesByKey.get(key);
    if (series === undefined) {
      series = { route, method: methodLabel, statuses: new Map(), buckets: new Array<number>(HTTP_DURATION_BOUNDS_SECONDS.length + 1).fill(0), sumSeconds: 0 };
      this.seriesByKey.set(key, series);
    }
    const statusLabel = status >= 100 && status < 600 ? status : 0;
    series.statuses.set(statusLabel, (series.statuses.get(statusLabel) ?? 0) + 1);
    const seconds = Math.max(0, durationMs) / 1000;
    let bucket = 0;
    while (bucket < HTTP_DURATION_BOUNDS_SECONDS.length && seconds > HTTP_DURATION_BOUNDS_SECONDS[bucket]!) bucket++;
    series.buckets[bucket]!++;
    series.sumSeconds += seconds;
  }

  /** Every route and method seen, with its counts (live objects: read, do not keep). */
  series(): IterableIterator<Readonly<HttpSeries>> {
    return this.seriesByKey.values();
  }
}
