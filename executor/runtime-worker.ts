/**
 * One runtime worker thread: it runs user functions in cached `vm` contexts, one per function
 * version, and answers each call with its msgpack-encoded result or a typed error. Time and
 * memory limits are enforced from outside (the pool aborts a call at its timeout, then ends and
 * replaces a worker that does not settle within a grace period, or that runs out of heap); a
 * synchronous loop while a module evaluates is also cut by the `vm` timeout.
 *
 * Function code is a CommonJS-style module body (what esbuild's `cjs` format emits): it assigns
 * its function to `module.exports` (or `module.exports.default`). The function is called with the
 * call's arguments and then a {@link FunctionContext} (`ctx`).
 *
 * Whose failure a failed call is. The platform's own failures (a `ctx` request refused by the
 * host or by this worker: EXEC_BAD_VALUE, KVS_*, TRANSPORT_TIMEOUT, GONE, ...; the call's own
 * timeout; arguments or a result that cannot be encoded) keep their code when the function lets
 * them propagate, so a 50 MB `ctx.put` fails its caller with EXEC_BAD_VALUE. Everything else the
 * function throws is EXEC_USER_ERROR, whatever `code` it carries: user code must not be able to
 * answer with a platform code. The two are told apart by identity, not by shape or class (a
 * shape is forged in one line, and the function's realm has classes of its own): every error
 * this worker hands to user code for a platform failure is recorded, with the code and message it
 * was raised with and the call it was raised for, in a `WeakMap` that lives here, out of user
 * code's reach; a rejection is a platform failure only if it is one of those very objects, for
 * that call. A function that catches one and rethrows the same object keeps its code (as
 * recorded: changing `.code` on it changes nothing); a copy or a new error is its own.
 *
 * The `vm` context is not a security boundary (its globals come from this realm, so determined
 * code can reach this worker's objects); the record guards against functions that throw
 * typed-looking errors, by accident or on purpose, not against code that escapes the context.
 */
import { performance } from 'node:perf_hooks';
import { types } from 'node:util';
import { parentPort, threadId } from 'node:worker_threads';
import { Script, createContext } from 'node:vm';
import pino from 'pino';
import { ErrorCode, LatticeType, LfaasError, decodeLattice, ensureLfaasError, errorFromWire } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { decodeValue, encodeValue } from '../protocol/index.js';
import type { FunctionContext } from '../protocol/index.js';

/** Who is running: the run (call) id and the function's name within it. */
export interface Invocation {
  readonly runId: string;
  readonly functionName: string;
}

/** A call as the pool sends it. */
export interface RuntimeCall {
  readonly kind: 'call';
  readonly callId: number;
  /** `name@version`: the cache key of the function's context. */
  readonly functionId: string;
  /** Sent only when the pool does not know the worker has the function yet. */
  readonly code?: string;
  /** msgpack of the argument array; absent for a load without a call (prewarming). */
  readonly args?: Uint8Array;
  readonly timeoutMs: number;
  readonly resultBytesMax: number;
  readonly invocation: Invocation;
}

/** The pool's other messages to a worker. */
export type PoolMessage =
  | RuntimeCall
  | HostReply
  /** The call's time is up: abort its signal (the pool ends the worker if it does not settle). */
  | { readonly kind: 'abort'; readonly callId: number }
  /** Drop a function's context (its keep-alive ran out). */
  | { readonly kind: 'unload'; readonly functionId: string };

/** The answer to a {@link HostAsk}. */
export interface HostReply {
  readonly kind: 'hostReply';
  readonly requestId: number;
  readonly payload?: Uint8Array;
  readonly error?: { readonly code: string; readonly message: string };
}

/**
 * A function's request of its host (the executor): KVS access through the cache, and messages to
 * other invocations of its run. `payload` is a lattice encoding (merge, and a get's answer), a
 * msgpack user value (put, send, and a recv's answer), or absent.
 */
export interface HostAsk {
  readonly kind: 'host';
  readonly callId: number;
  readonly requestId: number;
  readonly op: 'get' | 'put' | 'merge' | 'delete' | 'send' | 'recv';
  readonly key?: string;
  readonly target?: string;
  readonly timeoutMs?: number;
  readonly payload?: Uint8Array;
}

/** A failed call's error as it crosses to the pool: `code` is the catalogue's. */
export interface WireFailure {
  readonly code: string;
  readonly message: string;
  readonly stack?: string;
}

export type RuntimeAnswer =
  | HostAsk
  | { readonly kind: 'result'; readonly callId: number; readonly result: Uint8Array }
  | { readonly kind: 'loaded'; readonly callId: number }
  | { readonly kind: 'error'; readonly callId: number; readonly loaded: boolean; readonly error: WireFailure }
  | { readonly kind: 'ready' };

type UserFunction = (...args: unknown[]) => unknown;

const asks = new Map<number, { readonly callId: number; resolve: (payload: Uint8Array | undefined) => void; reject: (error: Error) => void }>();
let nextAskId = 1;
const logger = pino({ name: 'function', level: process.env['LFAAS_FUNCTION_LOG_LEVEL'] ?? 'info', base: { thread: threadId } }, pino.destination({ fd: 2, sync: false }));

/**
 * The platform failures handed to user code, by identity: the code and message each was raised
 * with, and the call it was raised for (see the module comment). Weak: an entry goes when the
 * function drops the error.
 */
const platformFailures = new WeakMap<object, { readonly callId: number; readonly code: ErrorCode; readonly message: string }>();

/** Records `error` as a platform failure of call `callId` (as it is now) and returns it, to be thrown. */
function platformFailure(callId: number, error: LfaasError): LfaasError {
  platformFailures.set(error, { callId, code: error.code, message: error.message });
  return error;
}

/** A platform failure of call `callId`, made and recorded. */
function fail(callId: number, code: ErrorCode, message: string): LfaasError {
  return platformFailure(callId, new LfaasError(code, message));
}

/**
 * Runs platform code (the codecs) for call `callId`: what it throws is a platform failure. Only
 * for code that runs none of the function's: a getter or a proxy trap of the function's that threw
 * in here would have its error recorded as the platform's.
 */
function platformCode<T>(callId: number, action: () => T): T {
  try {
    return action();
  } catch (error) {
    throw platformFailure(callId, ensureLfaasError(error));
  }
}

function ask(message: Omit<HostAsk, 'kind' | 'requestId'>): Promise<Uint8Array | undefined> {
  const requestId = nextAskId++;
  return new Promise((resolve, reject) => {
    asks.set(requestId, { callId: message.callId, resolve, reject });
    try {
      parentPort!.postMessage({ kind: 'host', requestId, ...message } satisfies HostAsk);
    } catch (error) {
      asks.delete(requestId);
      reject(platformFailure(message.callId, new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the request cannot be sent to the executor: ${textOf(error)}`)));
    }
  });
}

function checkKey(callId: number, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw fail(callId, ErrorCode.KVS_BAD_KEY, 'a key is a non-empty string');
  return key;
}

/** A lattice from any realm (the function bundles its own copy of the library). */
function isLattice(value: unknown): value is AnyLattice {
  return typeof value === 'object' && value !== null && typeof (value as { encode?: unknown }).encode === 'function' && typeof (value as { type?: unknown }).type === 'number';
}

/**
 * A plain value from the function's realm, brought into this one and encoded. Its only user code
 * (getters the structured clone reads) runs inside the clone, whose failure becomes a new
 * EXEC_BAD_VALUE here, so this throws LfaasErrors of its own only (see {@link platformCode}).
 */
function encodePlain(value: unknown, maxBytes: number): Uint8Array {
  if (value === undefined || value === null || typeof value !== 'object') return encodeValue(value ?? null, { maxBytes });
  let local: unknown;
  try {
    local = structuredClone(value);
  } catch (error) {
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the value cannot be sent: ${textOf(readQuietly(error, 'message')) ?? 'it cannot be cloned'}`);
  }
  return encodeValue(local, { maxBytes });
}

/**
 * The encoding of a lattice of the function's (its own bundled copy of the library): its
 * `encode()` is user code, so what it throws is the function's own; what it returns must be bytes.
 */
function latticeBytes(callId: number, value: AnyLattice): Uint8Array {
  const bytes: unknown = value.encode();
  if (!types.isUint8Array(bytes)) throw fail(callId, ErrorCode.EXEC_BAD_VALUE, 'a lattice encodes to a Uint8Array');
  return bytes;
}

/** The plain value of a lattice: causal values reveal their concurrent versions, `get` gives the first. */
function plain(value: AnyLattice | undefined): unknown {
  if (value === undefined) return undefined;
  const revealed = value.reveal();
  return value.type === LatticeType.SingleKeyCausal || value.type === LatticeType.MultiKeyCausal ? (revealed as unknown[])[0] : revealed;
}

/**
 * The `ctx` of a call. Every failure it makes is recorded as a platform failure of the call
 * (`fail`, `platformCode`, and the host's refusals in `ask`); the function's own code it runs (a
 * lattice's `encode`, getters of its arguments) is kept out of `platformCode`.
 */
function contextFor(call: RuntimeCall, signal: AbortSignal): FunctionContext {
  const callId = call.callId;
  const getLattice = async (key: string): Promise<AnyLattice | undefined> => {
    const payload = await ask({ callId, op: 'get', key: checkKey(callId, key) });
    return payload === undefined ? undefined : platformCode(callId, () => decodeLattice(payload, { verifyCanonical: false }));
  };
  const revealed = (value: AnyLattice | undefined): unknown => platformCode(callId, () => plain(value));
  let log: pino.Logger | undefined;
  return {
    callId: call.invocation.runId,
    functionName: call.invocation.functionName,
    // Made on first use: most functions never log, and a child logger costs microseconds.
    get log() {
      log ??= logger.child({ callId: call.invocation.runId, fn: call.functionId });
      return log;
    },
    signal,
    get: async (key) => revealed(await getLattice(key)),
    getLattice,
    getMany: async (keys) => {
      if (!Array.isArray(keys)) throw fail(callId, ErrorCode.EXEC_BAD_VALUE, 'getMany takes an array of keys');
      const values = await Promise.all(keys.map((key) => getLattice(key)));
      const result: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      keys.forEach((key, index) => {
        result[key] = revealed(values[index]);
      });
      return result;
    },
    put: async (key, value) => {
      if (isLattice(value)) await ask({ callId, op: 'merge', key: checkKey(callId, key), payload: latticeBytes(callId, value) });
      else await ask({ callId, op: 'put', key: checkKey(callId, key), payload: platformCode(callId, () => encodePlain(value, call.resultBytesMax)) });
    },
    merge: async (key, value) => {
      if (!isLattice(value)) throw fail(callId, ErrorCode.EXEC_BAD_VALUE, 'merge takes a lattice (put takes plain values)');
      await ask({ callId, op: 'merge', key: checkKey(callId, key), payload: latticeBytes(callId, value) });
    },
    delete: async (key) => {
      await ask({ callId, op: 'delete', key: checkKey(callId, key) });
    },
    send: async (target, message) => {
      if (typeof target !== 'string' || target.length === 0) throw fail(callId, ErrorCode.EXEC_BAD_VALUE, 'send takes the name of a function of this run');
      await ask({ callId, op: 'send', target, payload: platformCode(callId, () => encodePlain(message, call.resultBytesMax)) });
    },
    recv: async (options = {}) => {
      const timeoutMs = options.timeoutMs ?? 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw fail(callId, ErrorCode.EXEC_BAD_VALUE, 'recv timeoutMs is a finite number >= 0');
      const payload = await ask({ callId, op: 'recv', timeoutMs });
      return payload === undefined ? undefined : platformCode(callId, () => decodeValue(payload));
    },
  };
}

const functions = new Map<string, UserFunction>();
const FUNCTIONS_MAX = 256;
const aborts = new Map<number, AbortController>();

function load(call: RuntimeCall): UserFunction {
  const { callId, functionId, code, timeoutMs } = call;
  const cached = functions.get(functionId);
  if (cached !== undefined) return cached;
  if (code === undefined) throw fail(callId, ErrorCode.INTERNAL, `worker has no code for ${functionId}`);
  if (functions.size >= FUNCTIONS_MAX) functions.delete(functions.keys().next().value!);
  const module = { exports: {} as unknown };
  // A context per function version: its globals are its own. Its promises share the worker's
  // microtask queue (a context of its own, `afterEvaluate`, would leave them pending once the
  // module is evaluated); the pool's timer bounds async work instead, by ending the worker.
  // Globals a function may use: timers and pure helpers (Buffer too, which the lattice library
  // bundled into a function needs); nothing that reaches the file system or the network.
  const context = createContext({ module, exports: module.exports, console: { log: () => {}, error: () => {} }, setTimeout, clearTimeout, queueMicrotask, structuredClone, TextEncoder, TextDecoder, URL, AbortController, AbortSignal, Buffer });
  const script = new Script(`(function (module, exports) {\n${code}\n})(module, module.exports);`, { filename: `${functionId}.js` });
  const startedMs = performance.now();
  try {
    script.runInContext(context, { timeout: timeoutMs });
  } catch (error) {
    // A synchronous loop cut by the vm timeout. Told by the clock, not by the error: the vm makes
    // it in the function's realm, where a module can make one of the same shape. (The watchdog
    // counts whole milliseconds, so it may fire up to one early.)
    if (performance.now() - startedMs >= timeoutMs - 1) throw fail(callId, ErrorCode.EXEC_TIMEOUT, `${functionId} did not load in ${timeoutMs} ms`);
    throw error;
  }
  const exported = module.exports as { default?: unknown } | UserFunction;
  const fn = typeof exported === 'function' ? exported : (exported as { default?: unknown }).default;
  if (typeof fn !== 'function') throw fail(callId, ErrorCode.EXEC_USER_ERROR, `${functionId} does not export a function`);
  functions.set(functionId, fn as UserFunction);
  return fn as UserFunction;
}

async function call(message: RuntimeCall): Promise<RuntimeAnswer> {
  const callId = message.callId;
  const controller = new AbortController();
  aborts.set(callId, controller);
  try {
    const fn = load(message);
    if (message.args === undefined) return { kind: 'loaded', callId };
    const encodedArgs = message.args;
    const args = platformCode(callId, () => decodeValue(encodedArgs));
    if (!Array.isArray(args)) throw fail(callId, ErrorCode.EXEC_BAD_VALUE, 'arguments must be an array');
    const value = await fn(...args, contextFor(message, controller.signal));
    // The result was built in the function's own realm (its own Object.prototype): a structured
    // clone brings it into this one, where the value codec recognises plain objects.
    return { kind: 'result', callId, result: platformCode(callId, () => encodePlain(value, message.resultBytesMax)) };
  } catch (thrown) {
    return { kind: 'error', callId, loaded: functions.has(message.functionId), error: failureOf(message, controller.signal, thrown) };
  } finally {
    aborts.delete(callId);
  }
}

/**
 * What a failed call answers: EXEC_TIMEOUT once its time is up (the pool has answered that
 * already), a platform failure of this call with the code and message it was raised with, and
 * anything else as the function's own failure.
 */
function failureOf(message: RuntimeCall, signal: AbortSignal, thrown: unknown): WireFailure {
  if (signal.aborted) return { code: ErrorCode.EXEC_TIMEOUT, message: `${message.functionId} did not finish in ${message.timeoutMs} ms` };
  // A WeakMap lookup runs no user code, even on a proxy.
  const platform = (typeof thrown === 'object' && thrown !== null) || typeof thrown === 'function' ? platformFailures.get(thrown) : undefined;
  if (platform !== undefined && platform.callId === message.callId) return { code: platform.code, message: platform.message };
  return userFailure(thrown);
}

/** At most this many characters of a function's error text (message, stack) go to its caller. */
const USER_ERROR_TEXT_MAX = 16 * 1024;

/**
 * The function's own failure: EXEC_USER_ERROR, terminal, with the text of what it threw
 * (`name: message`; a thrown non-Error is normalised). Reading that text runs the function's code
 * (getters, proxy traps, `toString`), so every read is guarded: whatever they throw is dropped,
 * never rethrown where it could pass for something else.
 */
function userFailure(thrown: unknown): WireFailure {
  if ((typeof thrown !== 'object' || thrown === null) && typeof thrown !== 'function') return { code: ErrorCode.EXEC_USER_ERROR, message: `Error: ${textOf(thrown) ?? 'a value that cannot be shown'}` };
  const name = readQuietly(thrown, 'name');
  const message = readQuietly(thrown, 'message');
  const stack = readQuietly(thrown, 'stack');
  const nameText = (typeof name === 'string' && name.length > 0 ? textOf(name) : undefined) ?? 'Error';
  const messageText = (message === undefined ? textOf(thrown) : textOf(message)) ?? 'a value that cannot be shown';
  return { code: ErrorCode.EXEC_USER_ERROR, message: `${nameText}: ${messageText}`, ...(typeof stack === 'string' ? { stack: textOf(stack) ?? '' } : {}) };
}

/** A property of a value that may be the function's, or undefined if reading it throws. */
function readQuietly(value: unknown, property: string): unknown {
  if ((typeof value !== 'object' || value === null) && typeof value !== 'function') return undefined;
  try {
    return (value as Record<string, unknown>)[property];
  } catch {
    return undefined;
  }
}

/** The text of a value that may be the function's, at most {@link USER_ERROR_TEXT_MAX} characters; undefined if making it throws. */
function textOf(value: unknown): string | undefined {
  let text: string;
  try {
    text = String(value);
  } catch {
    return undefined;
  }
  return text.length > USER_ERROR_TEXT_MAX ? `${text.slice(0, USER_ERROR_TEXT_MAX)}... (${text.length} characters)` : text;
}

// A function's stray promise (rejected after its call returned) must not end the worker.
process.on('unhandledRejection', () => {});

parentPort?.on('message', (message: PoolMessage) => {
  switch (message.kind) {
    case 'hostReply': {
      const waiter = asks.get(message.requestId);
      asks.delete(message.requestId);
      if (waiter === undefined) return;
      // The host refused: a platform failure, rebuilt here and recorded for the asking call.
      if (message.error !== undefined) waiter.reject(platformFailure(waiter.callId, errorFromWire({ code: message.error.code, message: message.error.message })));
      else waiter.resolve(message.payload);
      return;
    }
    case 'abort':
      aborts.get(message.callId)?.abort(fail(message.callId, ErrorCode.EXEC_TIMEOUT, 'the call ran out of time'));
      return;
    case 'unload':
      functions.delete(message.functionId);
      return;
    case 'call':
      void call(message).then((answer) => parentPort!.postMessage(answer));
      return;
  }
});
parentPort?.postMessage({ kind: 'ready' } satisfies RuntimeAnswer);
