/**
 * The ingress's routes, as one Hono app over an {@link IngressState}. Every route is under `/v1`
 * (docs/http.md, and the OpenAPI document at `/v1/openapi.json`, list them).
 *
 * A request goes through, in order: the concurrency limit (503 TRANSPORT_BUSY with Retry-After
 * beyond `concurrentMax`), the URL length limit (414), the per-request timeout (504
 * TRANSPORT_TIMEOUT), the token (`Authorization: Bearer <owner token>`: absent or not verifying
 * with the cluster's token key, 401 UNAUTHORISED before any cluster traffic), then the route,
 * which acts through the SDK client of that token (owner-clients.ts), so the cluster sees and
 * checks the caller's own token on every message; a refusal there is 403.
 *
 * Names with a `/` (an owner's `alice/resize`, key `alice/cart`, call id `alice/x-1`) are written
 * in the path as they are, or percent-encoded; both reach the same name.
 */
import { Hono } from 'hono';
import type { Context } from 'hono';
import type { LatticeFaas } from '../client/index.js';
import { ErrorCode, errorFromWire, ensureLfaasError, latticeTypeName } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { decodeValue, resultKeyOf, resultRecordOf, unverifiedClaims } from '../protocol/index.js';
import type { TokenClaims } from '../protocol/index.js';
import { LATTICE_TYPE, answerFormat, encodeAnswer, parseBody, readBody, requestFormat } from './codec.js';
import { HttpError, errorAnswer } from './errors.js';
import { latticeOfBytes, latticeOfValue, writeTypeOf } from './kvs-values.js';
import { openApiDocument } from './openapi.js';
import type { OwnerClients } from './owner-clients.js';

/** The limits of the ingress (defaults in server.ts). */
export interface IngressLimits {
  readonly bodyBytesMax: number;
  readonly urlLengthMax: number;
  readonly keyLengthMax: number;
  readonly concurrentMax: number;
  readonly requestTimeoutMs: number;
  readonly jsonDepthMax: number;
  /** The longest `?wait=` of a result read. */
  readonly resultWaitMsMax: number;
}

export interface IngressState {
  readonly clients: OwnerClients;
  readonly limits: IngressLimits;
  /**
   * Verifies a token with the cluster's public token key (throws UNAUTHORISED); absent: tokens
   * are checked by the cluster only. `null`: an insecure cluster, where no token is asked.
   */
  readonly verifyToken: ((token: string) => TokenClaims) | undefined | null;
  /** Whether a scheduler and the KVS answer (for /v1/health). */
  readonly health: () => Promise<{ scheduler: boolean; kvs: boolean }>;
  readonly counters: { requests: number; refusedBusy: number; timedOut: number; errors: number };
  inFlight: number;
}

const CONSISTENCIES = ['lww', 'repeatable-read', 'causal'] as const;
type Consistency = (typeof CONSISTENCIES)[number];
const ACK_MODES = ['local', 'durable', 'replicated'] as const;
type AckMode = (typeof ACK_MODES)[number];

interface CallOptions {
  version?: number;
  consistency?: Consistency;
  timeoutMs: number;
}

const badValue = (message: string): HttpError => new HttpError(400, ErrorCode.EXEC_BAD_VALUE, message);

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** The call options of a body's object form (`version`, `consistency`, `timeoutMs`), each checked. */
function callOptionsOf(body: Record<string, unknown>, limits: IngressLimits): CallOptions {
  const options: CallOptions = { timeoutMs: limits.requestTimeoutMs };
  const { version, consistency, timeoutMs } = body;
  if (version !== undefined) {
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 0) throw badValue('version must be an integer >= 0 (0: the latest)');
    options.version = version;
  }
  if (consistency !== undefined) {
    if (typeof consistency !== 'string' || !(CONSISTENCIES as readonly string[]).includes(consistency)) throw badValue(`consistency must be one of ${CONSISTENCIES.join(', ')}`);
    options.consistency = consistency as Consistency;
  }
  if (timeoutMs !== undefined) {
    if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 1) throw badValue('timeoutMs must be an integer >= 1');
    // A call's budget never outlasts the request's own timeout.
    options.timeoutMs = Math.min(timeoutMs, limits.requestTimeoutMs);
  }
  for (const key of Object.keys(body)) if (!['args', 'version', 'consistency', 'timeoutMs'].includes(key)) throw badValue(`unknown field ${JSON.stringify(key.slice(0, 100))} (expected args, version, consistency, timeoutMs)`);
  return options;
}

/** A function call's body: a JSON array of arguments, or `{ args, version, consistency, timeoutMs }`; empty: no arguments. */
function functionCallOf(body: unknown, limits: IngressLimits): { args: unknown[]; options: CallOptions } {
  if (body === undefined) return { args: [], options: { timeoutMs: limits.requestTimeoutMs } };
  if (Array.isArray(body)) return { args: body, options: { timeoutMs: limits.requestTimeoutMs } };
  if (!isPlainObject(body)) throw badValue('the body must be an array of arguments or an object { args, version, consistency, timeoutMs }');
  const args = body['args'] ?? [];
  if (!Array.isArray(args)) throw badValue('args must be an array');
  return { args, options: callOptionsOf(body, limits) };
}

/**
 * A DAG call's body: per function, its arguments (`{ "increment": [1] }`), or
 * `{ args: { ... }, consistency, timeoutMs }`.
 */
function dagCallOf(body: unknown, limits: IngressLimits): { args: Record<string, unknown[]>; options: CallOptions } {
  if (body === undefined) return { args: {}, options: { timeoutMs: limits.requestTimeoutMs } };
  if (!isPlainObject(body)) throw badValue('the body must be an object of per-function argument arrays, or { args, consistency, timeoutMs }');
  const wrapped = isPlainObject(body['args']);
  const args = (wrapped ? body['args'] : body) as Record<string, unknown>;
  for (const [name, list] of Object.entries(args)) if (!Array.isArray(list)) throw badValue(`the arguments of ${JSON.stringify(name.slice(0, 100))} must be an array`);
  const options = wrapped ? callOptionsOf(body, limits) : { timeoutMs: limits.requestTimeoutMs };
  if (options.version !== undefined) throw badValue('a DAG call takes no version');
  return { args: args as Record<string, unknown[]>, options };
}

/** `Authorization: Bearer <token>`: the token, or undefined when there is none. */
function bearerOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (match === null) throw new HttpError(401, ErrorCode.UNAUTHORISED, 'token refused: the Authorization header must be "Bearer <owner token>"');
  return match[1];
}

/** The path after `prefix`, each segment percent-decoded (a malformed escape is 400). */
function restOfPath(c: Context, prefix: string): string[] {
  const path = new URL(c.req.url).pathname;
  if (!path.startsWith(prefix)) return [];
  return path
    .slice(prefix.length)
    .split('/')
    .filter((segment) => segment.length > 0)
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        throw new HttpError(400, ErrorCode.PROTO_MALFORMED, 'the path has a malformed percent escape');
      }
    });
}

/** `/v1/functions/<name>/<action>`: the name (which may hold a `/`) and the action. */
function nameAndAction(c: Context, prefix: string, actions: readonly string[]): { name: string; action: string } {
  const segments = restOfPath(c, prefix);
  const action = segments.pop();
  const name = segments.join('/');
  if (action === undefined || !actions.includes(action) || name.length === 0) throw new HttpError(404, ErrorCode.PROTO_UNKNOWN_MESSAGE, `no route ${c.req.method} ${new URL(c.req.url).pathname.slice(0, 200)}: expected ${prefix}{name}/${actions.join('|')}`);
  if (name.length > 256) throw new HttpError(400, ErrorCode.EXEC_BAD_VALUE, 'the name is longer than 256 characters');
  return { name, action };
}

/** The answer carrying `value`, in the format the request accepts. */
function answer(c: Context, status: number, value: unknown, headers: Record<string, string> = {}): Response {
  const { body, contentType } = encodeAnswer(value, answerFormat(c.req.header('accept')));
  return new Response(body, { status, headers: { 'content-type': contentType, ...headers } });
}

function errorResponse(thrown: unknown): Response {
  const { status, body, retryAfterSeconds } = errorAnswer(thrown);
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="lattice-faas"';
  return new Response(JSON.stringify(body), { status, headers });
}

/** Rejects with TRANSPORT_TIMEOUT after `ms`. */
function deadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HttpError(504, ErrorCode.TRANSPORT_TIMEOUT, `${what} did not finish within the request timeout of ${ms} ms`)), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** The value of a result record: the call's result, or its typed error thrown. */
function resultOf(value: AnyLattice | undefined): { done: false } | { done: true; value: unknown } {
  const record = resultRecordOf(value);
  if (record === undefined) return { done: false };
  if (record.ok) return { done: true, value: decodeValue(record.value) };
  throw errorFromWire({ code: record.code, message: record.message });
}

/**
 * The result of call `callId` now, or once it lands within `waitMs` (a subscription to its result
 * key, then one more read: a result written before the subscription took effect is not missed).
 */
async function awaitResult(client: LatticeFaas, callId: string, waitMs: number): Promise<{ done: false } | { done: true; value: unknown }> {
  const key = resultKeyOf(callId);
  const now = resultOf(await client.kvs.get(key));
  if (now.done || waitMs <= 0) return now;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (outcome: () => { done: false } | { done: true; value: unknown }, always: boolean): void => {
      if (settled) return;
      let result;
      try {
        result = outcome();
      } catch (error) {
        settled = true;
        clearTimeout(timer);
        subscription.close();
        reject(error as Error);
        return;
      }
      if (!result.done && !always) return;
      settled = true;
      clearTimeout(timer);
      subscription.close();
      resolve(result);
    };
    const subscription = client.kvs.subscribe([key], (_key, value) => finish(() => resultOf(value), false), Math.max(1000, waitMs + 1000));
    const timer = setTimeout(() => finish(() => ({ done: false }), true), waitMs);
    client.kvs.get(key).then((value) => finish(() => resultOf(value), false), () => {});
  });
}

function resultUrl(callId: string): string {
  return `/v1/calls/${callId.split('/').map(encodeURIComponent).join('/')}`;
}

/** The Hono app of the ingress. */
export function ingressApp(state: IngressState): Hono {
  const app = new Hono();
  const limits = state.limits;
  const tokenOf = new WeakMap<Request, string>();

  app.onError((error) => {
    const typed = ensureLfaasError(error);
    if (typed.code === ErrorCode.INTERNAL) process.stderr.write(`ingress: ${typed.message}\n`);
    state.counters.errors++;
    return errorResponse(typed);
  });
  app.notFound((c) => errorResponse(new HttpError(404, ErrorCode.PROTO_UNKNOWN_MESSAGE, `no route ${c.req.method} ${new URL(c.req.url).pathname.slice(0, 200)} (the routes: GET /v1/openapi.json)`)));

  // Limits, timeout and token, for every route.
  app.use('*', async (c, next) => {
    state.counters.requests++;
    if (state.inFlight >= limits.concurrentMax) {
      state.counters.refusedBusy++;
      return errorResponse(new HttpError(503, ErrorCode.TRANSPORT_BUSY, `the ingress is serving ${limits.concurrentMax} requests; try again shortly`, { retryAfterMs: 1000 }));
    }
    if (c.req.url.length > limits.urlLengthMax) return errorResponse(new HttpError(414, ErrorCode.PROTO_TOO_LARGE, `the URL is longer than ${limits.urlLengthMax} characters`));
    const path = new URL(c.req.url).pathname;
    const open = path === '/v1/health' || path === '/v1/openapi.json';
    if (!open && state.verifyToken !== null) {
      const token = bearerOf(c.req.header('authorization'));
      if (token === undefined) return errorResponse(new HttpError(401, ErrorCode.UNAUTHORISED, 'token refused: none was presented (Authorization: Bearer <owner token>)'));
      if (token.length > 4096) return errorResponse(new HttpError(401, ErrorCode.UNAUTHORISED, 'token refused: it is longer than 4096 characters'));
      // Refused here, before any cluster traffic, when the ingress has the cluster's public token key;
      // without it, at least a token that is not one (no client is opened for it: each costs sockets).
      if (state.verifyToken !== undefined) state.verifyToken(token);
      else if (unverifiedClaims(token) === undefined) return errorResponse(new HttpError(401, ErrorCode.UNAUTHORISED, 'token refused: it is not an lfaas1 token'));
      tokenOf.set(c.req.raw, token);
    }
    state.inFlight++;
    try {
      await deadline(next(), limits.requestTimeoutMs + 1000, `${c.req.method} ${path.slice(0, 200)}`);
    } catch (error) {
      if (error instanceof HttpError && error.code === ErrorCode.TRANSPORT_TIMEOUT) state.counters.timedOut++;
      throw error;
    } finally {
      state.inFlight--;
    }
    return undefined;
  });

  const withClient = <T>(c: Context, body: (client: LatticeFaas) => Promise<T>): Promise<T> => state.clients.with(tokenOf.get(c.req.raw) ?? '', body);
  const bodyOf = async (c: Context): Promise<unknown> => {
    const format = requestFormat(c.req.header('content-type'));
    return parseBody(await readBody(c.req.raw, limits.bodyBytesMax), format as 'json' | 'msgpack', limits.jsonDepthMax);
  };

  app.get('/v1/health', async (c) => {
    const health = await state.health();
    const ok = health.scheduler && health.kvs;
    return c.json({ ok, ...health, inFlight: state.inFlight }, ok ? 200 : 503, ok ? {} : { 'retry-after': '1' });
  });

  app.get('/v1/openapi.json', (c) => c.json(openApiDocument()));

  app.post('/v1/functions/*', async (c) => {
    const { name, action } = nameAndAction(c, '/v1/functions/', ['call', 'call-async']);
    const { args, options } = functionCallOf(await bodyOf(c), limits);
    const sdkOptions = { ...(options.version === undefined ? {} : { version: options.version }), ...(options.consistency === undefined ? {} : { consistency: options.consistency }), timeoutMs: options.timeoutMs };
    if (action === 'call') return answer(c, 200, await withClient(c, (client) => client.call(name, args, sdkOptions)));
    const future = await withClient(c, (client) => client.callAsync(name, args, sdkOptions));
    const url = resultUrl(future.callId);
    return answer(c, 202, { callId: future.callId, resultUrl: url }, { location: url });
  });

  app.post('/v1/dags/*', async (c) => {
    const { name, action } = nameAndAction(c, '/v1/dags/', ['call', 'call-async']);
    const { args, options } = dagCallOf(await bodyOf(c), limits);
    const sdkOptions = { ...(options.consistency === undefined ? {} : { consistency: options.consistency }), timeoutMs: options.timeoutMs };
    if (action === 'call') return answer(c, 200, await withClient(c, (client) => client.callDag(name, args, sdkOptions)));
    const future = await withClient(c, (client) => client.callDagAsync(name, args, sdkOptions));
    const url = resultUrl(future.callId);
    return answer(c, 202, { callId: future.callId, resultUrl: url }, { location: url });
  });

  app.get('/v1/calls/*', async (c) => {
    const callId = restOfPath(c, '/v1/calls/').join('/');
    if (callId.length === 0 || callId.length > 256) throw badValue('a call id is 1 to 256 characters');
    const waitText = c.req.query('wait');
    let waitMs = 0;
    if (waitText !== undefined) {
      waitMs = Number(waitText);
      if (!/^\d{1,9}$/.test(waitText)) throw badValue('wait must be a whole number of milliseconds');
      waitMs = Math.min(waitMs, limits.resultWaitMsMax, limits.requestTimeoutMs);
    }
    const outcome = await withClient(c, (client) => awaitResult(client, callId, waitMs));
    if (!outcome.done) return c.json({ status: 'pending', callId }, 202, { 'retry-after': '1' });
    return answer(c, 200, outcome.value);
  });

  const keyOf = (c: Context): string => {
    const key = restOfPath(c, '/v1/kvs/').join('/');
    if (key.length === 0) throw new HttpError(400, ErrorCode.KVS_BAD_KEY, 'the key is empty: /v1/kvs/{key}');
    if (Buffer.byteLength(key) > limits.keyLengthMax) throw new HttpError(400, ErrorCode.KVS_BAD_KEY, `the key is longer than ${limits.keyLengthMax} bytes`);
    return key;
  };
  const ackOf = (c: Context): AckMode => {
    const ack = c.req.query('ack') ?? 'durable';
    if (!(ACK_MODES as readonly string[]).includes(ack)) throw badValue(`ack must be one of ${ACK_MODES.join(', ')}`);
    return ack as AckMode;
  };

  app.get('/v1/kvs/*', async (c) => {
    const key = keyOf(c);
    const value = await withClient(c, (client) => client.kvs.get(key));
    if (value === undefined) throw new HttpError(404, ErrorCode.KVS_KEY_NOT_FOUND, `no key ${JSON.stringify(key.slice(0, 200))}`);
    const type = (latticeTypeName(value.type) ?? String(value.type)).toLowerCase();
    if (answerFormat(c.req.header('accept'), true) === 'lattice') return new Response(value.encode(), { status: 200, headers: { 'content-type': LATTICE_TYPE, 'lfaas-lattice-type': type } });
    return answer(c, 200, value.reveal(), { 'lfaas-lattice-type': type });
  });

  app.put('/v1/kvs/*', async (c) => {
    const key = keyOf(c);
    const ack = ackOf(c);
    const format = requestFormat(c.req.header('content-type'), true);
    const bytes = await readBody(c.req.raw, limits.bodyBytesMax);
    const lattice = format === 'lattice' ? latticeOfBytes(bytes) : latticeOfValue(parseBody(bytes, format, limits.jsonDepthMax), writeTypeOf(c.req.query('type')));
    await withClient(c, (client) => client.kvs.put(key, lattice, { ack }));
    return c.body(null, 204);
  });

  app.delete('/v1/kvs/*', async (c) => {
    const key = keyOf(c);
    const ack = ackOf(c);
    await withClient(c, (client) => client.kvs.delete(key, { ack }));
    return c.body(null, 204);
  });

  // A known path with another method: 405 with the methods it takes.
  const methods: Record<string, string> = { '/v1/functions/': 'POST', '/v1/dags/': 'POST', '/v1/calls/': 'GET', '/v1/kvs/': 'GET, PUT, DELETE', '/v1/health': 'GET', '/v1/openapi.json': 'GET' };
  app.all('*', (c) => {
    const path = new URL(c.req.url).pathname;
    const allowed = Object.entries(methods).find(([prefix]) => path.startsWith(prefix))?.[1];
    if (allowed === undefined) return c.notFound();
    return new Response(JSON.stringify({ error: { code: ErrorCode.PROTO_UNKNOWN_MESSAGE, message: `${c.req.method} is not allowed on ${path.slice(0, 200)}: ${allowed}`, retryable: false } }), { status: 405, headers: { 'content-type': 'application/json; charset=utf-8', allow: allowed } });
  });

  return app;
}
