/**
 * The OTLP trace receiver: real OTLP JSON bodies parse into spans grouped by trace, the store
 * stays bounded in traces and bytes, and hostile bodies are refused with typed errors: over
 * the real HTTP server (status codes, the body limit, who may post, the admin token on the API).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isLfaasError } from '../lattices/index.js';
import { TokenVerifier, createToken, generateTokenKeys } from '../protocol/index.js';
import { startDashboard } from './index.js';
import type { Dashboard } from './index.js';
import { otlpBody } from './testing.js';
import { SPANS_PER_TRACE_MAX, TraceStore, parseOtlpTraces } from './traces.js';

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');

const malformedOf = (run: () => unknown): string => {
  try {
    run();
  } catch (error) {
    if (isLfaasError(error) && error.code === ErrorCode.PROTO_MALFORMED) return error.message;
    throw error;
  }
  throw new Error('accepted');
};

describe('parseOtlpTraces', () => {
  it('reads spans with their service, parent, times, status and attributes', () => {
    const traceId = hex(16);
    const [root, child] = [hex(8), hex(8)];
    const spans = parseOtlpTraces(otlpBody(traceId, [{ spanId: root, name: 'call square', startMs: 1_700_000_000_000, endMs: 1_700_000_000_012 }, { spanId: child, parent: root, name: 'run', startMs: 1_700_000_000_002, endMs: 1_700_000_000_010, error: true }]));
    expect(spans).toEqual([
      { traceId, spanId: root, parentSpanId: '', service: 'scheduler', name: 'call square', startMs: 1_700_000_000_000, endMs: 1_700_000_000_012, status: 0, attributes: { 'faas.function': 'square', 'faas.version': '1' } },
      { traceId, spanId: child, parentSpanId: root, service: 'scheduler', name: 'run', startMs: 1_700_000_000_002, endMs: 1_700_000_000_010, status: 2, attributes: { 'faas.function': 'square', 'faas.version': '1' } },
    ]);
  });

  it('refuses what is not an ExportTraceServiceRequest, with PROTO_MALFORMED', () => {
    const good = { traceId: hex(16), spanId: hex(8), name: 'x', startTimeUnixNano: '1', endTimeUnixNano: '2' };
    const wrap = (span: unknown): unknown => ({ resourceSpans: [{ scopeSpans: [{ spans: [span] }] }] });
    expect(malformedOf(() => parseOtlpTraces(null))).toMatch(/JSON object/);
    expect(malformedOf(() => parseOtlpTraces([]))).toMatch(/JSON object/);
    expect(malformedOf(() => parseOtlpTraces({ resourceSpans: 'x' }))).toMatch(/array/);
    expect(malformedOf(() => parseOtlpTraces({ resourceSpans: [7] }))).toMatch(/objects/);
    expect(malformedOf(() => parseOtlpTraces(wrap({ ...good, traceId: 'zz' })))).toMatch(/traceId/);
    expect(malformedOf(() => parseOtlpTraces(wrap({ ...good, spanId: hex(16) })))).toMatch(/spanId/);
    expect(malformedOf(() => parseOtlpTraces(wrap({ ...good, parentSpanId: 5 })))).toMatch(/parentSpanId/);
    expect(malformedOf(() => parseOtlpTraces(wrap({ ...good, startTimeUnixNano: '-1' })))).toMatch(/nanoseconds/);
    expect(malformedOf(() => parseOtlpTraces(wrap({ ...good, startTimeUnixNano: '1'.repeat(40) })))).toMatch(/nanoseconds/);
    expect(malformedOf(() => parseOtlpTraces(wrap({ ...good, name: { toString: 1 } })))).toMatch(/name/);
    expect(malformedOf(() => parseOtlpTraces(wrap({ ...good, attributes: {} })))).toMatch(/attributes/);
    // Long names and many attributes are cut, not refused; __proto__ keys are ignored.
    const [span] = parseOtlpTraces(wrap({ ...good, name: 'n'.repeat(10_000), attributes: [{ key: '__proto__', value: { stringValue: 'x' } }, ...Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: { stringValue: 'v'.repeat(5000) } }))] }));
    expect(span!.name.length).toBeLessThanOrEqual(200);
    expect(Object.keys(span!.attributes)).toHaveLength(16);
    expect(Object.getPrototypeOf(span!.attributes)).toBe(Object.prototype);
    expect(Object.values(span!.attributes).every((value) => value.length <= 200)).toBe(true);
  });
});

describe('TraceStore', () => {
  it('groups spans by trace, newest first, and stays within its trace and byte bounds', () => {
    const store = new TraceStore(3, 1_000_000);
    const ids = Array.from({ length: 5 }, () => hex(16));
    ids.forEach((traceId, n) => store.add(parseOtlpTraces(otlpBody(traceId, [{ spanId: hex(8), name: `t${n}`, startMs: 1000 + n, endMs: 1010 + n }]))));
    expect(store.size).toBe(3);
    expect(store.recent().map((trace) => trace.name)).toEqual(['t4', 't3', 't2']);
    // A span of a kept trace joins it and makes it the most recent.
    store.add(parseOtlpTraces(otlpBody(ids[2]!, [{ spanId: hex(8), name: 'late', startMs: 1005, endMs: 1030 }])));
    const [latest] = store.recent(1);
    expect(latest).toMatchObject({ traceId: ids[2], name: 't2', spanCount: 2, durationMs: 28 });

    const small = new TraceStore(1000, 20_000);
    for (let n = 0; n < 200; n++) small.add(parseOtlpTraces(otlpBody(hex(16), [{ spanId: hex(8), name: 'x'.repeat(100), startMs: 1, endMs: 2 }])));
    expect(small.bytesHeld).toBeLessThanOrEqual(20_000);
    expect(small.size).toBeGreaterThan(0);
    expect(small.counters.tracesEvicted).toBeGreaterThan(0);

    const one = new TraceStore();
    const traceId = hex(16);
    one.add(parseOtlpTraces(otlpBody(traceId, Array.from({ length: SPANS_PER_TRACE_MAX + 10 }, (_, i) => ({ spanId: hex(8), name: `s${i}`, startMs: 1, endMs: 2 })))));
    expect(one.recent(1)[0]!.spanCount).toBe(SPANS_PER_TRACE_MAX);
    expect(one.counters.spansDropped).toBe(10);
  });
});

describe('the dashboard server (no cluster behind it)', () => {
  const keys = generateTokenKeys();
  const verifier = new TokenVerifier(keys);
  const admin = createToken(keys, { owner: 'admin', rights: ['admin', 'deploy', 'call', 'read', 'write'], ttlSeconds: 600 });
  const alice = createToken(keys, { owner: 'alice', rights: ['deploy', 'call'], ttlSeconds: 600 });
  let dashboard: Dashboard;
  const assets = mkdtempSync(join(tmpdir(), 'lfaas-dashboard-assets-'));

  beforeAll(async () => {
    writeFileSync(join(assets, 'index.html'), '<!doctype html><title>t</title>');
    dashboard = await startDashboard({ cluster: () => undefined, memberKeyPair: 'insecure', adminToken: undefined, verifyToken: (token) => verifier.verify(token), port: 0, assetsDir: assets, traceBodyBytesMax: 64 * 1024 });
  });
  afterAll(async () => {
    await dashboard?.stop();
  });

  const post = (body: string | Uint8Array, type = 'application/json'): Promise<Response> => fetch(`${dashboard.address}/v1/traces`, { method: 'POST', headers: { 'content-type': type }, body, signal: AbortSignal.timeout(10_000) });
  const errorOf = async (response: Response): Promise<{ status: number; code: string }> => ({ status: response.status, code: ((await response.json()) as { error: { code: string } }).error.code });

  it('takes an OTLP JSON body from loopback and shows the trace to the admin only', async () => {
    const traceId = hex(16);
    const accepted = await post(JSON.stringify(otlpBody(traceId, [{ spanId: hex(8), name: 'call square', startMs: Date.now() - 5, endMs: Date.now() }])));
    expect(accepted.status).toBe(200);
    expect(await accepted.json()).toEqual({ partialSuccess: {} });

    const state = (token: string | undefined): Promise<Response> => fetch(`${dashboard.address}/api/state`, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) });
    expect(await errorOf(await state(undefined))).toEqual({ status: 401, code: 'UNAUTHORISED' });
    expect(await errorOf(await state('lfaas1.forged.token'))).toEqual({ status: 401, code: 'UNAUTHORISED' });
    expect(await errorOf(await state(alice))).toEqual({ status: 403, code: 'UNAUTHORISED' });
    const answer = await state(admin);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-security-policy')).toContain("default-src 'self'");
    const body = (await answer.json()) as { traces: { traceId: string; name: string; spanCount: number }[]; problems: string[] };
    expect(body.traces[0]).toMatchObject({ traceId, name: 'call square', spanCount: 1 });
    expect(body.problems.join()).toMatch(/not known yet|not asked yet/);
    const trace = await fetch(`${dashboard.address}/api/traces/${traceId}`, { headers: { authorization: `Bearer ${admin}` } });
    expect(((await trace.json()) as { spans: unknown[] }).spans).toHaveLength(1);
    expect(await errorOf(await fetch(`${dashboard.address}/api/traces/${hex(16)}`, { headers: { authorization: `Bearer ${admin}` } }))).toEqual({ status: 404, code: 'KVS_KEY_NOT_FOUND' });
    // The page needs no token (it holds no data); an unknown path is 404.
    expect((await fetch(`${dashboard.address}/`)).status).toBe(200);
    expect((await fetch(`${dashboard.address}/etc/passwd`)).status).toBe(404);
  });

  it('refuses hostile bodies with typed errors and keeps serving', async () => {
    expect(await errorOf(await post('{"resourceSpans": ['))).toEqual({ status: 400, code: 'PROTO_MALFORMED' });
    expect(await errorOf(await post('[]'))).toEqual({ status: 400, code: 'PROTO_MALFORMED' });
    expect(await errorOf(await post(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'x' }] }] }] })))).toEqual({ status: 400, code: 'PROTO_MALFORMED' });
    expect(await errorOf(await post('['.repeat(50_000)))).toEqual({ status: 400, code: 'PROTO_MALFORMED' });
    expect(await errorOf(await post(`${'['.repeat(30_000)}${']'.repeat(30_000)}`))).toEqual({ status: 400, code: 'PROTO_MALFORMED' });
    expect(await errorOf(await post(`{"resourceSpans":[${'{"scopeSpans":[{"spans":[]}]},'.repeat(1500)}{}]}`))).toEqual({ status: 400, code: 'PROTO_MALFORMED' });
    expect(await errorOf(await post(new Uint8Array([0xff, 0xfe, 0x00, 0x7b])))).toEqual({ status: 400, code: 'PROTO_MALFORMED' });
    expect(await errorOf(await post('x'.repeat(65 * 1024)))).toEqual({ status: 413, code: 'PROTO_TOO_LARGE' });
    expect(await errorOf(await post('{}', 'application/x-protobuf'))).toEqual({ status: 415, code: 'PROTO_MALFORMED' });
    expect((await fetch(`${dashboard.address}/v1/traces`)).status).toBe(405);
    // Still serving, nothing kept from the refused bodies.
    expect((await post('{"resourceSpans":[]}')).status).toBe(200);
    expect(dashboard.traces.size).toBe(1);
  });
});
