/**
 * The HTTP ingress end to end: a real cluster (routing node, storage node, scheduler, executor,
 * each its own process), the `lfaas ingress` process in front of it, and real HTTP with `fetch`
 * (and `curl` when it is installed). Two owners, alice and bob, with tokens of the test keys
 * folder: each reaches only its own functions and keys through the ingress. The ingress keeps
 * clients for two tokens at most here, so switching between alice, bob and the admin closes and
 * opens them (an async call's result is still read after its caller's client was closed).
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import type { LatticeFaas } from '../client/index.js';
import { dag } from '../client/index.js';
import { readTokenKeys } from '../cli/index.js';
import { INGRESS_ROUTES } from '../ingress/index.js';
import { ErrorCode, GSet, decodeLattice } from '../lattices/index.js';
import { createToken } from '../protocol/index.js';
import type { Right } from '../protocol/index.js';
import { FaasCluster, adminToken, startProcess, stopProcess, testKeysFolder, untilServing } from './cluster.js';
import type { RoleProcess } from './cluster.js';

const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const ALL: Right[] = ['deploy', 'call', 'read', 'write'];

interface ErrorBody {
  error: { code: string; message: string; retryable: boolean };
}

describe('HTTP ingress', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;
  let ingress: RoleProcess;
  let base: string;
  let alice: string;
  let bob: string;

  const http = (path: string, init: RequestInit & { token?: string | null } = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    const token = init.token === undefined ? alice : init.token;
    if (token !== null) headers.set('authorization', `Bearer ${token}`);
    if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    return fetch(`${base}${path}`, { ...init, headers, signal: AbortSignal.timeout(20_000) });
  };
  const post = (path: string, body: unknown, token?: string | null): Promise<Response> => http(path, { method: 'POST', body: JSON.stringify(body), ...(token === undefined ? {} : { token }) });
  const errorOf = async (response: Response): Promise<ErrorBody['error']> => {
    const body = (await response.json()) as ErrorBody;
    expect(typeof body.error.code).toBe('string');
    expect(typeof body.error.message).toBe('string');
    expect(typeof body.error.retryable).toBe('boolean');
    return body.error;
  };

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 1 });
    faas = await cluster.connect();
    await untilServing(faas);
    const keys = readTokenKeys(testKeysFolder(), true);
    alice = createToken(keys, { owner: 'alice', rights: ALL, ttlSeconds: 3600 });
    bob = createToken(keys, { owner: 'bob', rights: ALL, ttlSeconds: 3600 });
    const square = await faas.register('alice/square', { code: 'module.exports = (x) => x * x;' }, { timeoutMs: 5000 });
    const increment = await faas.register('alice/increment', { code: 'module.exports = (x) => x + 1;' }, { timeoutMs: 5000 });
    await faas.register('alice/fail', { code: 'module.exports = () => { throw new Error("boom"); };' }, { timeoutMs: 5000 });
    await faas.register('alice/slow', { code: 'module.exports = () => new Promise((resolve) => setTimeout(() => resolve("late"), 4000));' }, { timeoutMs: 10_000 });
    await faas.register('alice/echo', { code: 'module.exports = (...args) => args.slice(0, -1);' }, { timeoutMs: 5000 });
    await faas.register('bob/secret', { code: 'module.exports = () => "bob only";' }, { timeoutMs: 5000 });
    await faas.registerDag(dag('alice/square-of-increment').fn(increment).fn(square, ['alice/increment']).build());
    ingress = await startProcess(['ingress', '--keys', testKeysFolder(), '--routing', cluster.routingAddresses.join(','), '--schedulers', cluster.schedulerAddresses.join(','), '--port', '0', '--body-limit-mb', '0.0625', '--concurrency', '2', '--headers-timeout-ms', '1500', '--clients-max', '2']);
    base = String(ingress.ready['address']);
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  }, 90_000);

  afterAll(async () => {
    if (ingress !== undefined) await stopProcess(ingress);
    await faas?.close();
    await cluster.stop();
  }, 30_000);

  it('is healthy, and serves an OpenAPI 3.1 document listing every route', async () => {
    const health = await http('/v1/health', { token: null });
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ ok: true, scheduler: true, kvs: true });
    const response = await http('/v1/openapi.json', { token: null });
    expect(response.status).toBe(200);
    const document = (await response.json()) as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(document.openapi).toBe('3.1.0');
    for (const route of INGRESS_ROUTES) expect(document.paths[route.path]?.[route.method], `${route.method} ${route.path}`).toBeDefined();
    expect(Object.keys(document.paths).sort()).toEqual([...new Set(INGRESS_ROUTES.map((route) => route.path))].sort());
  });

  it('calls a function (an array of arguments, or the object form), in JSON and in msgpack', async () => {
    const plain = await post('/v1/functions/alice/square/call', [7]);
    expect(plain.status).toBe(200);
    expect(await plain.json()).toBe(49);
    const encoded = await post(`/v1/functions/${encodeURIComponent('alice/square')}/call`, { args: [9], consistency: 'lww', timeoutMs: 5000 });
    expect(await encoded.json()).toBe(81);
    const values = await post('/v1/functions/alice/echo/call', ['text', { nested: [1, null, true] }, -0.5]);
    expect(await values.json()).toEqual(['text', { nested: [1, null, true] }, -0.5]);
    const msgpack = await http('/v1/functions/alice/echo/call', { method: 'POST', body: packr.pack([Buffer.from([1, 2, 3]), 2 ** 40]), headers: { 'content-type': 'application/msgpack', accept: 'application/msgpack' } });
    expect(msgpack.status).toBe(200);
    expect(msgpack.headers.get('content-type')).toBe('application/msgpack');
    const [bytes, big] = packr.unpack(Buffer.from(await msgpack.arrayBuffer())) as [Uint8Array, number];
    expect([...bytes]).toEqual([1, 2, 3]);
    expect(Number(big)).toBe(2 ** 40);
    // Bytes as JSON: base64.
    const asJson = await http('/v1/functions/alice/echo/call', { method: 'POST', body: packr.pack([Buffer.from([255])]), headers: { 'content-type': 'application/msgpack' } });
    expect(await asJson.json()).toEqual([{ $base64: '/w==' }]);
  });

  it('calls asynchronously: 202 with the call id, then its result (long poll)', async () => {
    const started = await post('/v1/functions/alice/square/call-async', [12]);
    expect(started.status).toBe(202);
    const { callId, resultUrl } = (await started.json()) as { callId: string; resultUrl: string };
    expect(callId.startsWith('alice/')).toBe(true);
    expect(started.headers.get('location')).toBe(resultUrl);
    const result = await http(`${resultUrl}?wait=10000`);
    expect(result.status).toBe(200);
    expect(await result.json()).toBe(144);
    // A call that has not finished: pending.
    const slow = (await (await post('/v1/functions/alice/slow/call-async', [])).json()) as { resultUrl: string };
    const pending = await http(slow.resultUrl);
    expect(pending.status).toBe(202);
    expect(await pending.json()).toMatchObject({ status: 'pending' });
    // A failed async call's result is its typed error.
    const failed = (await (await post('/v1/functions/alice/fail/call-async', [])).json()) as { resultUrl: string };
    const failure = await http(`${failed.resultUrl}?wait=10000`);
    expect(failure.status).toBe(422);
    expect((await errorOf(failure)).code).toBe(ErrorCode.EXEC_USER_ERROR);
  }, 30_000);

  it('calls a DAG, sync and async', async () => {
    const response = await post('/v1/dags/alice/square-of-increment/call', { 'alice/increment': [4] });
    expect(response.status).toBe(200);
    expect(await response.json()).toBe(25);
    const wrapped = await post('/v1/dags/alice/square-of-increment/call', { args: { 'alice/increment': [5] }, timeoutMs: 10_000 });
    expect(await wrapped.json()).toBe(36);
    const started = await post('/v1/dags/alice/square-of-increment/call-async', { 'alice/increment': [6] });
    expect(started.status).toBe(202);
    const { resultUrl } = (await started.json()) as { resultUrl: string };
    expect(await (await http(`${resultUrl}?wait=10000`)).json()).toBe(49);
  }, 30_000);

  it('puts, gets and deletes keys: plain JSON, typed lattices, msgpack and the lattice encoding', async () => {
    const put = await http('/v1/kvs/alice/cart', { method: 'PUT', body: JSON.stringify({ items: ['apple'], total: 3 }) });
    expect(put.status).toBe(204);
    const got = await http('/v1/kvs/alice/cart');
    expect(got.status).toBe(200);
    expect(got.headers.get('lfaas-lattice-type')).toBe('lww');
    expect(await got.json()).toEqual({ items: ['apple'], total: 3 });
    // msgpack both ways.
    await http('/v1/kvs/alice/blob', { method: 'PUT', body: packr.pack({ bytes: Buffer.from([7, 8]) }), headers: { 'content-type': 'application/msgpack' } });
    const blob = await http('/v1/kvs/alice/blob', { headers: { accept: 'application/msgpack' } });
    expect([...(packr.unpack(Buffer.from(await blob.arrayBuffer())) as { bytes: Uint8Array }).bytes]).toEqual([7, 8]);
    // A counter: two steps merge.
    for (const step of [5, -2]) expect((await http('/v1/kvs/alice/visits?type=counter', { method: 'PUT', body: String(step) })).status).toBe(204);
    const visits = await http('/v1/kvs/alice/visits');
    expect(visits.headers.get('lfaas-lattice-type')).toBe('counter');
    expect(await visits.json()).toBe(3);
    // Any lattice in its own encoding, both ways.
    const set = GSet.of('a', 'b');
    const raw = await http('/v1/kvs/alice/tags', { method: 'PUT', body: set.encode(), headers: { 'content-type': 'application/vnd.lfaas.lattice' } });
    expect(raw.status).toBe(204);
    const back = await http('/v1/kvs/alice/tags', { headers: { accept: 'application/vnd.lfaas.lattice' } });
    expect(back.headers.get('content-type')).toBe('application/vnd.lfaas.lattice');
    expect(decodeLattice(new Uint8Array(await back.arrayBuffer())).reveal()).toEqual(['a', 'b']);
    // Another lattice type on the key: 409.
    const mismatch = await http('/v1/kvs/alice/visits', { method: 'PUT', body: '"text"' });
    expect(mismatch.status).toBe(409);
    expect((await errorOf(mismatch)).code).toBe(ErrorCode.KVS_LATTICE_MISMATCH);
    // Delete, then 404.
    expect((await http('/v1/kvs/alice/cart', { method: 'DELETE' })).status).toBe(204);
    const gone = await http('/v1/kvs/alice/cart');
    expect(gone.status).toBe(404);
    expect((await errorOf(gone)).code).toBe(ErrorCode.KVS_KEY_NOT_FOUND);
  }, 30_000);

  it('refuses a missing or invalid token 401, and another owner\'s function or key 403', async () => {
    const none = await post('/v1/functions/alice/square/call', [1], null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toContain('Bearer');
    expect((await errorOf(none)).code).toBe(ErrorCode.UNAUTHORISED);
    const forged = await post('/v1/functions/alice/square/call', [1], `${alice.slice(0, -4)}AAAA`);
    expect(forged.status).toBe(401);
    const garbage = await http('/v1/kvs/alice/cart', { headers: { authorization: 'Basic abc' }, token: null });
    expect(garbage.status).toBe(401);
    // Alice may not call bob's function nor read his key; bob may.
    await http('/v1/kvs/bob/diary', { method: 'PUT', body: '"dear diary"', token: bob });
    const call = await post('/v1/functions/bob/secret/call', [], alice);
    expect(call.status).toBe(403);
    expect((await errorOf(call)).code).toBe(ErrorCode.UNAUTHORISED);
    const read = await http('/v1/kvs/bob/diary', { token: alice });
    expect(read.status).toBe(403);
    expect(await (await post('/v1/functions/bob/secret/call', [], bob)).json()).toBe('bob only');
    expect(await (await http('/v1/kvs/bob/diary', { token: bob })).json()).toBe('dear diary');
    // Nor may she read bob's async results.
    const started = (await (await post('/v1/functions/bob/secret/call-async', [], bob)).json()) as { resultUrl: string };
    expect((await http(started.resultUrl, { token: alice })).status).toBe(403);
    // The admin token reaches everything.
    expect(await (await post('/v1/functions/bob/secret/call', [], adminToken())).json()).toBe('bob only');
    // Alice's and the admin's requests took both client slots: bob's client was closed, and his result is still his to read.
    const result = await http(`${started.resultUrl}?wait=10000`, { token: bob });
    expect(result.status).toBe(200);
    expect(await result.json()).toBe('bob only');
  }, 30_000);

  it('answers typed errors: unknown function 404, function error 422, timeout 504, unknown route 404, wrong method 405', async () => {
    const unknown = await post('/v1/functions/alice/nothing/call', []);
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).code).toBe(ErrorCode.SCHED_FUNCTION_NOT_FOUND);
    const failed = await post('/v1/functions/alice/fail/call', []);
    expect(failed.status).toBe(422);
    const failure = await errorOf(failed);
    expect(failure.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(failure.message).toContain('boom');
    expect(failure.retryable).toBe(false);
    const slow = await post('/v1/functions/alice/slow/call', { args: [], timeoutMs: 300 });
    expect(slow.status).toBe(504);
    expect([ErrorCode.EXEC_TIMEOUT, ErrorCode.TRANSPORT_TIMEOUT]).toContain((await errorOf(slow)).code);
    const route = await http('/v2/anything');
    expect(route.status).toBe(404);
    expect((await errorOf(route)).code).toBe(ErrorCode.PROTO_UNKNOWN_MESSAGE);
    const method = await http('/v1/functions/alice/square/call', { method: 'GET' });
    expect(method.status).toBe(405);
    expect(method.headers.get('allow')).toBe('POST');
    await errorOf(method);
  }, 30_000);

  it('refuses hostile bodies with typed errors and keeps serving', async () => {
    const big = await http('/v1/functions/alice/echo/call', { method: 'POST', body: JSON.stringify(['x'.repeat(100_000)]) });
    expect(big.status).toBe(413);
    expect((await errorOf(big)).code).toBe(ErrorCode.PROTO_TOO_LARGE);
    const cases: [string, RequestInit][] = [
      ['malformed JSON', { method: 'POST', body: '[1, 2' }],
      ['wrong type', { method: 'POST', body: '"not an array"' }],
      ['wrong args type', { method: 'POST', body: '{"args": 5}' }],
      ['unknown field', { method: 'POST', body: '{"args": [], "colour": "red"}' }],
      ['huge number', { method: 'POST', body: '[1e999]' }],
      ['deep nesting', { method: 'POST', body: `${'['.repeat(5000)}${']'.repeat(5000)}` }],
      ['proto key', { method: 'POST', body: '[{"__proto__": {"x": 1}}]' }],
      ['malformed msgpack', { method: 'POST', body: new Uint8Array([0xc1, 0xff, 0x00]), headers: { 'content-type': 'application/msgpack' } }],
      ['truncated msgpack', { method: 'POST', body: new Uint8Array([0x92, 0x01]), headers: { 'content-type': 'application/msgpack' } }],
      ['bad version', { method: 'POST', body: '{"args": [], "version": -1}' }],
    ];
    for (const [what, init] of cases) {
      const response = await http('/v1/functions/alice/echo/call', init);
      expect(response.status, what).toBe(400);
      await errorOf(response);
    }
    const type = await http('/v1/functions/alice/echo/call', { method: 'POST', body: 'x', headers: { 'content-type': 'image/png' } });
    expect(type.status).toBe(415);
    const badLattice = await http('/v1/kvs/alice/junk', { method: 'PUT', body: new Uint8Array([1, 2, 3]), headers: { 'content-type': 'application/vnd.lfaas.lattice' } });
    expect(badLattice.status).toBe(400);
    expect((await errorOf(badLattice)).code).toBe(ErrorCode.LATTICE_DECODE);
    const escape = await http('/v1/kvs/alice/%E0%A4%A');
    expect(escape.status).toBe(400);
    const longKey = await http(`/v1/kvs/alice/${'k'.repeat(2000)}`);
    expect(longKey.status).toBe(400);
    expect((await errorOf(longKey)).code).toBe(ErrorCode.KVS_BAD_KEY);
    const wait = await http('/v1/calls/alice/x-1?wait=soon');
    expect(wait.status).toBe(400);
    // Still serving.
    expect(await (await post('/v1/functions/alice/square/call', [3])).json()).toBe(9);
  }, 30_000);

  it('answers 503 with Retry-After beyond its concurrency limit (2 here)', async () => {
    const slow = (): Promise<Response> => post('/v1/functions/alice/slow/call', { args: [], timeoutMs: 2000 });
    const responses = await Promise.all([slow(), slow(), slow()]);
    const busy = responses.filter((response) => response.status === 503);
    expect(busy.length).toBeGreaterThanOrEqual(1);
    expect(busy[0]!.headers.get('retry-after')).toBe('1');
    const error = await errorOf(busy[0]!);
    expect(error.code).toBe(ErrorCode.TRANSPORT_BUSY);
    expect(error.retryable).toBe(true);
    for (const response of responses) if (response.status !== 503) expect(response.status).toBe(504);
  }, 30_000);

  it('cuts off a client that never finishes its headers (slowloris)', async () => {
    const url = new URL(base);
    const socket = connect(Number(url.port), url.hostname);
    const closed = await new Promise<{ closed: boolean; reply: string }>((resolve) => {
      let reply = '';
      const timer = setTimeout(() => resolve({ closed: false, reply }), 15_000);
      socket.on('connect', () => socket.write('GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: '));
      socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')));
      socket.on('close', () => {
        clearTimeout(timer);
        resolve({ closed: true, reply });
      });
      socket.on('error', () => {});
    });
    socket.destroy();
    expect(closed.closed).toBe(true);
    // Still serving others.
    expect((await http('/v1/health', { token: null })).status).toBe(200);
  }, 30_000);

  it('works with curl', async (context) => {
    const probe = spawnSync('curl', ['--version'], { encoding: 'utf8' });
    if (probe.error !== undefined || probe.status !== 0) {
      context.skip('curl is not installed here: the curl case is skipped');
      return;
    }
    const run = (args: string[]): string => {
      const result = spawnSync('curl', ['-sS', '--max-time', '20', ...args], { encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      return result.stdout;
    };
    expect(JSON.parse(run(['-H', `Authorization: Bearer ${alice}`, '-H', 'Content-Type: application/json', '-d', '[11]', `${base}/v1/functions/alice/square/call`]))).toBe(121);
    // curl -d's default Content-Type (form-urlencoded) is read as JSON.
    expect(run(['-X', 'PUT', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${alice}`, '-d', '{"from":"curl"}', `${base}/v1/kvs/alice/curl`])).toBe('204');
    expect(JSON.parse(run(['-H', `Authorization: Bearer ${alice}`, `${base}/v1/kvs/alice/curl`]))).toEqual({ from: 'curl' });
    const refused = JSON.parse(run([`${base}/v1/kvs/alice/curl`])) as ErrorBody;
    expect(refused.error.code).toBe(ErrorCode.UNAUTHORISED);
  }, 30_000);
});
