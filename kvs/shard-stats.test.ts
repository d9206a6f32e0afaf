import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../lattices/index.js';
import { propertyRuns } from '../lattices/testing.js';
import { decodeEnvelope, encodeEnvelope } from '../protocol/index.js';
import { LATENCY_BOUNDS_US, REPORT_INFINITE_BOUND_US, ShardStats } from './shard-stats.js';
import type { RequestKindName } from './shard-stats.js';

const HALF_LIFE_MS = 10_000;
/** The rate one fresh access reads as: a count of 1 in accesses per second. */
const ONE_ACCESS_RATE = (Math.LN2 * 1000) / HALF_LIFE_MS;

function stats(options: { hotKeysMax?: number; trackedKeysMax?: number } = {}): ShardStats {
  return new ShardStats({ nodeId: 'kvs-1', shard: 3, keyRateHalfLifeMs: HALF_LIFE_MS, ...options });
}

describe('ShardStats', () => {
  it('reports the busy microseconds, all told, in whole microseconds; ignores nonsense', () => {
    const s = stats();
    expect(s.report(0).busyUs).toBe(0);
    s.recordBusy(10.4);
    s.recordBusy(5.3);
    s.recordBusy(-3);
    s.recordBusy(Number.NaN);
    expect(s.report(1).busyUs).toBe(15);
    expect(decodeEnvelope(encodeEnvelope({ statsReport: s.report(2) }, { validate: true })).statsReport?.busyUs).toBe(15);
  });

  it('halves the request rate and the key rates after one half-life', () => {
    const s = stats();
    for (let i = 0; i < 8; i++) s.recordRequest('get', ['a'], 100, 1_000);
    const rate = s.requestsPerSecond(1_000);
    expect(rate).toBeCloseTo(8 * ONE_ACCESS_RATE, 12);
    expect(s.requestsPerSecond(1_000 + HALF_LIFE_MS)).toBeCloseTo(rate / 2, 12);
    expect(s.requestsPerSecond(1_000 + 3 * HALF_LIFE_MS)).toBeCloseTo(rate / 8, 12);
    expect(s.hotKeys(1_000 + HALF_LIFE_MS)).toEqual([{ key: 'a', rate: expect.closeTo(rate / 2, 12) as number }]);
  });

  it('estimates a steady rate', () => {
    const s = stats();
    // 50 requests per second for ten half-lives.
    for (let t = 0; t <= 10 * HALF_LIFE_MS; t += 20) s.recordRequest('put', ['k'], 10, t);
    expect(s.requestsPerSecond(10 * HALF_LIFE_MS)).toBeGreaterThan(49);
    expect(s.requestsPerSecond(10 * HALF_LIFE_MS)).toBeLessThan(51);
  });

  it('reads a clock that went back as no time passed, and reads never change the state', () => {
    const s = stats();
    s.recordRequest('get', ['a'], 1, 5_000);
    expect(s.requestsPerSecond(4_000)).toBe(ONE_ACCESS_RATE);
    expect(s.requestsPerSecond(5_000)).toBe(ONE_ACCESS_RATE);
    s.recordRequest('get', ['a'], 1, 4_000);
    expect(s.requestsPerSecond(5_000)).toBe(2 * ONE_ACCESS_RATE);
  });

  it('lists the hottest keys first, at most hotKeysMax, ties by key', () => {
    const s = stats({ hotKeysMax: 3 });
    const accesses: [string, number][] = [['cold', 1], ['warm', 3], ['hot', 9], ['tie-b', 2], ['tie-a', 2]];
    for (const [key, times] of accesses) for (let i = 0; i < times; i++) s.recordRequest('get', [key], 50, 0);
    expect(s.hotKeys(0)).toEqual([
      { key: 'hot', rate: 9 * ONE_ACCESS_RATE },
      { key: 'warm', rate: 3 * ONE_ACCESS_RATE },
      { key: 'tie-a', rate: 2 * ONE_ACCESS_RATE },
    ]);
    // Recent accesses outweigh old ones: 'cold' gets 5 accesses two half-lives later (9/4 < 5).
    for (let i = 0; i < 5; i++) s.recordRequest('get', ['cold'], 50, 2 * HALF_LIFE_MS);
    expect(s.hotKeys(2 * HALF_LIFE_MS).map(({ key }) => key)).toEqual(['cold', 'hot', 'warm']);
    expect(stats({ hotKeysMax: 0 }).hotKeys(0)).toEqual([]);
  });

  it('counts every key of a request and ignores empty keys', () => {
    const s = stats();
    s.recordRequest('put', ['a', 'b', 'a', ''], 10, 0);
    expect(s.hotKeys(0)).toEqual([
      { key: 'a', rate: 2 * ONE_ACCESS_RATE },
      { key: 'b', rate: ONE_ACCESS_RATE },
    ]);
    expect(s.trackedKeys).toBe(2);
    expect(s.requestsPerSecond(0)).toBe(ONE_ACCESS_RATE);
  });

  it('tracks at most trackedKeysMax keys and drops the coldest', () => {
    const s = stats({ trackedKeysMax: 100, hotKeysMax: 5 });
    // Five hot keys first, then a stream of 1000 one-off keys.
    for (let i = 0; i < 5; i++) for (let n = 0; n < 10; n++) s.recordRequest('get', [`hot-${i}`], 10, 0);
    for (let i = 0; i < 1000; i++) {
      s.recordRequest('get', [`once-${i}`], 10, i);
      expect(s.trackedKeys).toBeLessThanOrEqual(100);
    }
    expect(s.trackedKeys).toBeGreaterThanOrEqual(90);
    expect(
      s
        .hotKeys(1000)
        .map(({ key }) => key)
        .sort(),
    ).toEqual(['hot-0', 'hot-1', 'hot-2', 'hot-3', 'hot-4']);
    // With room for one key only, the hotter of two stays.
    const one = stats({ trackedKeysMax: 1 });
    one.recordRequest('get', ['x', 'x'], 10, 0);
    one.recordRequest('get', ['y'], 10, 0);
    expect(one.trackedKeys).toBe(1);
    expect(one.hotKeys(0).map(({ key }) => key)).toEqual(['x']);
  });

  it('puts every latency in one bucket: the histogram counts sum to the requests', () => {
    const s = stats();
    const latenciesUs = [0, 25, 25.5, 50, 99, 100, 101, 3200, 102_400, 102_401, 5e6];
    const kinds: RequestKindName[] = ['get', 'put', 'delete'];
    latenciesUs.forEach((latencyUs, i) => s.recordRequest(kinds[i % 3]!, ['k'], latencyUs, i));
    const snapshot = s.snapshot();
    expect(snapshot.requests).toEqual({ get: 4, put: 4, delete: 3 });
    expect(snapshot.latencyBoundsUs).toEqual(LATENCY_BOUNDS_US);
    expect(snapshot.latencyCounts).toEqual([2, 2, 2, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2]);
    expect(snapshot.latencyCounts.reduce((a, b) => a + b, 0)).toBe(latenciesUs.length);
    expect(snapshot.latencySumUs).toBe(latenciesUs.reduce((a, b) => a + b, 0));
  });

  it('keeps the histogram sum equal to the request count for any latencies', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom<RequestKindName>('get', 'put', 'delete'), fc.double({ min: 0, max: 1e9, noNaN: true })), { maxLength: 50 }), (requests) => {
        const s = stats();
        for (const [kind, latencyUs] of requests) s.recordRequest(kind, ['k'], latencyUs, 0);
        const { requests: counts, latencyCounts } = s.snapshot();
        expect(latencyCounts.reduce((a, b) => a + b, 0)).toBe(requests.length);
        expect(counts.get + counts.put + counts.delete).toBe(requests.length);
      }),
      { numRuns: propertyRuns(200) },
    );
  });

  it('refuses bad input and bad options with INTERNAL, changing nothing', () => {
    const s = stats();
    for (const latencyUs of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => s.recordRequest('get', ['k'], latencyUs, 0)).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
    }
    expect(() => s.recordRequest('get', ['k'], 1, Number.NaN)).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
    expect(() => s.recordRequest('scan' as RequestKindName, ['k'], 1, 0)).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
    expect(() => s.setOccupancy(-1, 0)).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
    expect(() => s.setOccupancy(0, 1.5)).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
    expect(s.snapshot().requests).toEqual({ get: 0, put: 0, delete: 0 });
    expect(s.trackedKeys).toBe(0);
    expect(() => new ShardStats({ nodeId: '', shard: 0 })).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
    expect(() => new ShardStats({ nodeId: 'n', shard: -1 })).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
    expect(() => new ShardStats({ nodeId: 'n', shard: 0, keyRateHalfLifeMs: 0 })).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
    expect(() => new ShardStats({ nodeId: 'n', shard: 0, trackedKeysMax: 0 })).toThrow(expect.objectContaining({ code: ErrorCode.INTERNAL }));
  });

  it('reports a StatsReport that validates, encodes and decodes', () => {
    const s = stats();
    s.setOccupancy(123_456, 42);
    s.recordRequest('get', ['user:1', 'user:2'], 30, 1_000);
    s.recordRequest('put', ['user:1'], 1e9, 1_000);
    const report = s.report(1_000.7);
    expect(report.sentAtMs).toBe(1_000);
    expect(report.latency?.boundsUs?.at(-1)).toBe(REPORT_INFINITE_BOUND_US);
    const decoded = decodeEnvelope(encodeEnvelope({ statsReport: report }, { validate: true }));
    expect(decoded.body).toBe('statsReport');
    const got = decoded.statsReport!;
    expect(got.nodeId).toBe('kvs-1');
    expect(got.shard).toBe(3);
    expect(Number(got.occupancyBytes)).toBe(123_456);
    expect(Number(got.keyCount)).toBe(42);
    // Read 0.7 ms after the requests: a hair below the fresh rates.
    const decay = Math.pow(2, -0.7 / HALF_LIFE_MS);
    expect(got.requestsPerSecond).toBeCloseTo(2 * ONE_ACCESS_RATE * decay, 12);
    expect(got.latency?.boundsUs).toEqual(LATENCY_BOUNDS_US.map((bound) => (bound === Number.POSITIVE_INFINITY ? REPORT_INFINITE_BOUND_US : bound)));
    expect(got.latency?.counts?.map(Number)).toEqual([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect((got.hotKeys ?? []).map(({ key, rate }) => ({ key, rate }))).toEqual([
      { key: 'user:1', rate: expect.closeTo(2 * ONE_ACCESS_RATE * decay, 12) as number },
      { key: 'user:2', rate: expect.closeTo(ONE_ACCESS_RATE * decay, 12) as number },
    ]);
    expect((got.hotKeys ?? []).map(({ key, rate }) => ({ key, rate }))).toEqual(s.hotKeys(1_000.7));
    expect(Number(got.sentAtMs)).toBe(1_000);
    // An empty shard's report is valid too.
    expect(() => encodeEnvelope({ statsReport: stats().report(0) }, { validate: true })).not.toThrow();
  });

  it('never raises a decayed rate without new accesses', () => {
    const access = fc.record({ key: fc.constantFrom('a', 'b', 'c', 'd'), atMs: fc.integer({ min: 0, max: 100_000 }) });
    fc.assert(
      fc.property(
        fc.array(access, { maxLength: 30 }),
        fc.array(fc.integer({ min: 0, max: 200_000 }), { minLength: 1, maxLength: 10 }),
        fc.integer({ min: 1, max: 3 }),
        (accesses, readsMs, trackedKeysMax) => {
          const s = stats({ trackedKeysMax, hotKeysMax: 4 });
          for (const { key, atMs } of accesses) s.recordRequest('get', [key], 10, atMs);
          const lastAccessMs = Math.max(0, ...accesses.map(({ atMs }) => atMs));
          let previous: { total: number; keys: Map<string, number> } | undefined;
          for (const readMs of [...readsMs].sort((a, b) => a - b).map((ms) => lastAccessMs + ms)) {
            const total = s.requestsPerSecond(readMs);
            const keys = new Map(s.hotKeys(readMs).map(({ key, rate }) => [key, rate]));
            expect(total).toBeGreaterThanOrEqual(0);
            if (previous !== undefined) {
              expect(total).toBeLessThanOrEqual(previous.total);
              for (const [key, rate] of keys) expect(rate).toBeLessThanOrEqual(previous.keys.get(key) ?? Number.POSITIVE_INFINITY);
            }
            previous = { total, keys };
          }
        },
      ),
      { numRuns: propertyRuns(300) },
    );
  });
});
