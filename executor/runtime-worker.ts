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
 */
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

export type RuntimeAnswer =
  | HostAsk
  | { readonly kind: 'result'; readonly callId: number; readonly result: Uint8Array }
  | { readonly kind: 'loaded'; readonly callId: number }
  | { readonly kind: 'error'; readonly callId: number; readonly loaded: boolean; readonly error: { readonly code: string; readonly message: string; readonly stack?: string } }
  | { readonly kind: 'ready' };

type UserFunction = (...args: unknown[]) => unknown;

const asks = new Map<number, { resolve: (payload: Uint8Array | undefined) => void; reject: (error: Error) => void }>();
let nextAskId = 1;
const logger = pino({ name: 'function', level: process.env['LFAAS_FUNCTION_LOG_LEVEL'] ?? 'info', base: { thread: threadId } }, pino.destination({ fd: 2, sync: false }));

function ask(message: Omit<HostAsk, 'kind' | 'requestId'>): Promise<Uint8Array | undefined> {
  const requestId = nextAskId++;
  return new Promise((resolve, reject) => {
    asks.set(requestId, { resolve, reject });
    parentPort!.postMessage({ kind: 'host', requestId, ...message } satisfies HostAsk);
  });
}

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new LfaasError(ErrorCode.KVS_BAD_KEY, 'a key is a non-empty string');
  return key;
}

/** A lattice from any realm (the function bundles its own copy of the library). */
function isLattice(value: unknown): value is AnyLattice {
  return typeof value === 'object' && value !== null && typeof (value as { encode?: unknown }).encode === 'function' && typeof (value as { type?: unknown }).type === 'number';
}

/** A plain value from the function's realm, brought into this one and encoded. */
function encodePlain(value: unknown, maxBytes: number): Uint8Array {
  if (value === undefined || value === null || typeof value !== 'object') return encodeValue(value ?? null, { maxBytes });
  let local: unknown;
  try {
    local = structuredClone(value);
  } catch (error) {
    throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the value cannot be sent: ${(error as Error).message}`);
  }
  return encodeValue(local, { maxBytes });
}

/** The plain value of a lattice: causal values reveal their concurrent versions, `get` gives the first. */
function plain(value: AnyLattice | undefined): unknown {
  if (value === undefined) return undefined;
  const revealed = value.reveal();
  return value.type === LatticeType.SingleKeyCausal || value.type === LatticeType.MultiKeyCausal ? (revealed as unknown[])[0] : revealed;
}

function contextFor(call: RuntimeCall, signal: AbortSignal): FunctionContext {
  const callId = call.callId;
  const getLattice = async (key: string): Promise<AnyLattice | undefined> => {
    const payload = await ask({ callId, op: 'get', key: checkKey(key) });
    return payload === undefined ? undefined : decodeLattice(payload, { verifyCanonical: false });
  };
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
    get: async (key) => plain(await getLattice(key)),
    getLattice,
    getMany: async (keys) => {
      if (!Array.isArray(keys)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'getMany takes an array of keys');
      const values = await Promise.all(keys.map((key) => getLattice(key)));
      const result: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      keys.forEach((key, index) => {
        result[key] = plain(values[index]);
      });
      return result;
    },
    put: async (key, value) => {
      if (isLattice(value)) await ask({ callId, op: 'merge', key: checkKey(key), payload: value.encode() });
      else await ask({ callId, op: 'put', key: checkKey(key), payload: encodePlain(value, call.resultBytesMax) });
    },
    merge: async (key, value) => {
      if (!isLattice(value)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'merge takes a lattice (put takes plain values)');
      await ask({ callId, op: 'merge', key: checkKey(key), payload: value.encode() });
    },
    delete: async (key) => {
      await ask({ callId, op: 'delete', key: checkKey(key) });
    },
    send: async (target, message) => {
      if (typeof target !== 'string' || target.length === 0) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'send takes the name of a function of this run');
      await ask({ callId, op: 'send', target, payload: encodePlain(message, call.resultBytesMax) });
    },
    recv: async (options = {}) => {
      const timeoutMs = options.timeoutMs ?? 1000;
      if (!Number.isFinite(timeoutMs) || timeoutMs < 0) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'recv timeoutMs is a finite number >= 0');
      const payload = await ask({ callId, op: 'recv', timeoutMs });
      return payload === undefined ? undefined : decodeValue(payload);
    },
  };
}

const functions = new Map<string, UserFunction>();
const FUNCTIONS_MAX = 256;
const aborts = new Map<number, AbortController>();

function load(functionId: string, code: string | undefined, timeoutMs: number): UserFunction {
  const cached = functions.get(functionId);
  if (cached !== undefined) return cached;
  if (code === undefined) throw new LfaasError(ErrorCode.INTERNAL, `worker has no code for ${functionId}`);
  if (functions.size >= FUNCTIONS_MAX) functions.delete(functions.keys().next().value!);
  const module = { exports: {} as unknown };
  // A context per function version: its globals are its own. Its promises share the worker's
  // microtask queue (a context of its own, `afterEvaluate`, would leave them pending once the
  // module is evaluated); the pool's timer bounds async work instead, by ending the worker.
  // Globals a function may use: timers and pure helpers (Buffer too, which the lattice library
  // bundled into a function needs); nothing that reaches the file system or the network.
  const context = createContext({ module, exports: module.exports, console: { log: () => {}, error: () => {} }, setTimeout, clearTimeout, queueMicrotask, structuredClone, TextEncoder, TextDecoder, URL, AbortController, AbortSignal, Buffer });
  new Script(`(function (module, exports) {\n${code}\n})(module, module.exports);`, { filename: `${functionId}.js` }).runInContext(context, { timeout: timeoutMs });
  const exported = module.exports as { default?: unknown } | UserFunction;
  const fn = typeof exported === 'function' ? exported : (exported as { default?: unknown }).default;
  if (typeof fn !== 'function') throw new LfaasError(ErrorCode.EXEC_USER_ERROR, `${functionId} does not export a function`);
  functions.set(functionId, fn as UserFunction);
  return fn as UserFunction;
}

async function call(message: RuntimeCall): Promise<RuntimeAnswer> {
  const controller = new AbortController();
  aborts.set(message.callId, controller);
  try {
    const fn = load(message.functionId, message.code, message.timeoutMs);
    if (message.args === undefined) return { kind: 'loaded', callId: message.callId };
    const args = decodeValue(message.args);
    if (!Array.isArray(args)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'arguments must be an array');
    let value: unknown;
    try {
      value = await fn(...args, contextFor(message, controller.signal));
    } catch (thrown) {
      if (controller.signal.aborted) return { kind: 'error', callId: message.callId, loaded: true, error: { code: ErrorCode.EXEC_TIMEOUT, message: `${message.functionId} did not finish in ${message.timeoutMs} ms` } };
      // The user's own failure: terminal, returned as is (normalised if it is not an Error).
      const error = thrown instanceof Error || (typeof thrown === 'object' && thrown !== null && 'message' in thrown) ? (thrown as Error) : new Error(String(thrown));
      const code = (thrown as { code?: unknown }).code;
      // A typed error of ours (a KVS failure seen through ctx) keeps its code.
      const typed = typeof code === 'string' && /^(KVS|EXEC|TRANSPORT|GONE|LATTICE)_?/.test(code) && code !== ErrorCode.EXEC_USER_ERROR ? code : undefined;
      return {
        kind: 'error',
        callId: message.callId,
        loaded: true,
        error: { code: ErrorCode.EXEC_USER_ERROR, message: `${typed === undefined ? '' : `${typed}: `}${error.name ?? 'Error'}: ${error.message}`, ...(error.stack === undefined ? {} : { stack: error.stack }) },
      };
    }
    // The result was built in the function's own realm (its own Object.prototype): a structured
    // clone brings it into this one, where the value codec recognises plain objects.
    return { kind: 'result', callId: message.callId, result: encodePlain(value, message.resultBytesMax) };
  } catch (error) {
    const typed = ensureLfaasError(error, ErrorCode.EXEC_USER_ERROR);
    // A synchronous loop cut by the vm timeout.
    const code = (error as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT' ? ErrorCode.EXEC_TIMEOUT : typed.code;
    return { kind: 'error', callId: message.callId, loaded: functions.has(message.functionId), error: { code, message: typed.message } };
  } finally {
    aborts.delete(message.callId);
  }
}

// A function's stray promise (rejected after its call returned) must not end the worker.
process.on('unhandledRejection', () => {});

parentPort?.on('message', (message: PoolMessage) => {
  switch (message.kind) {
    case 'hostReply': {
      const waiter = asks.get(message.requestId);
      asks.delete(message.requestId);
      if (message.error !== undefined) waiter?.reject(errorFromWire({ code: message.error.code, message: message.error.message }));
      else waiter?.resolve(message.payload);
      return;
    }
    case 'abort':
      aborts.get(message.callId)?.abort(new LfaasError(ErrorCode.EXEC_TIMEOUT, 'the call ran out of time'));
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
