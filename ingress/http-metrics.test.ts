import { describe, expect, it } from 'vitest';
import { HttpMetrics, OTHER_ROUTE, routeOf } from './http-metrics.js';

describe('HttpMetrics', () => {
  it('labels requests with their route template, never the path', () => {
    expect(routeOf('/v1/functions/alice/resize/call')).toBe('/v1/functions/{name}/call');
    expect(routeOf('/v1/functions/square/call-async?x=1')).toBe('/v1/functions/{name}/call-async');
    expect(routeOf('/v1/kvs/alice/secret/key')).toBe('/v1/kvs/{key}');
    expect(routeOf('/v1/calls/alice/Xy12-3')).toBe('/v1/calls/{callId}');
    expect(routeOf('/v1/health')).toBe('/v1/health');
    expect(routeOf('/wp-admin/login.php')).toBe(OTHER_ROUTE);
  });

  it('counts by route, method and status, times into second buckets, and tracks requests in flight', () => {
    const metrics = new HttpMetrics();
    metrics.started();
    metrics.started();
    expect(metrics.inFlight).toBe(2);
    metrics.finished('/v1/functions/a/call', 'POST', 200, 3);
    metrics.finished('/v1/functions/b/call', 'POST', 404, 2000);
    metrics.started();
    metrics.finished('/v1/functions/b/call', 'BREW', 0, 1);
    expect(metrics.inFlight).toBe(0);
    const series = [...metrics.series()];
    const post = series.find((one) => one.method === 'POST')!;
    expect(post.route).toBe('/v1/functions/{name}/call');
    expect([...post.statuses]).toEqual([[200, 1], [404, 1]]);
    expect(post.buckets.reduce((sum, count) => sum + count, 0)).toBe(2);
    expect(post.sumSeconds).toBeCloseTo(2.003, 9);
    expect(series.find((one) => one.method === 'OTHER')!.statuses.get(0)).toBe(1);
  });
});
