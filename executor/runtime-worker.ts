/**
 * One runtime worker thread: it runs user functions in cached `vm` contexts, one per function
 * version, and answers each call with its msgpack-encoded result or a typed error. Time and
 * memory limits are enforced from outside (the pool ends and replaces a worker that breaches
 * them); a synchronous loop is also cut by the `vm` timeout so the worker survives it.
 *
 * Function code is a CommonJS-style module body (what esbuild's `cjs` format emits): it assigns
 * its function to `module.exports` (or `module.exports.default`). The function is called with the
 * call's arguments and then a {@link FunctionContext} (`ctx`) for the KVS.
 */
import { parentPort, threadId } from 'node:worker_threads';
import { Script, createContext } from 'node:vm';
import { ErrorCode, HybridClock, LfaasError, Lww, decodeLattice, ensureLfaasError, errorFromWire } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { decodeValue, encodeValue } from '../protocol/index.js';

/** A call as the pool sends it. */
export interface RuntimeCall {
  readonly kind: 'call';
  readonly callId: number;
  /** `name@version`: the cache key of the function's context. */
  readonly functionId: string;
  /** Sent only when the pool does not know the worker has the function yet. */
  readonly code?: string;
  readonly args: Uint8Array;
  readonly timeoutMs: number;
  readonly resultBytesMax: number;
}

/** A worker's answer. */
/** The answer to a {@link KvsAsk}. */
export interface KvsReply {
  readonly kind: 'kvsReply';
  readonly requestId: number;
  readonly payload?: Uint8Array;
  readonly error?: { readonly code: string; readonly message: string };
}

/** A function's KVS access, asked of the pool's host (the executor's cache). */
export interface KvsAsk {
  readonly kind: 'kvs';
  readonly callId: number;
  readonly requestId: number;
  readonly op: 'get' | 'merge' | 'delete';
  readonly key: string;
  readonly payload?: Uint8Array;
}

export type RuntimeAnswer =
  | KvsAsk
  | { readonly kind: 'result'; readonly callId: number; readonly result: Uint8Array }
  | { readonly kind: 'error'; readonly callId: number; readonly loaded: boolean; readonly error: { readonly code: string; readonly message: string; readonly stack?: string } }
  | { readonly kind: 'ready' };

type UserFunction = (...args: unknown[]) => unknown;

/**
 * The user library a function gets as its last argument (the first piece of issue 4's `ctx`):
 * lattice-typed access to the KVS through the executor's cache. Plain values written with `put`
 * are LWW registers; `get` reveals the plain value, `getLattice` gives the lattice itself.
 */
export interface FunctionContext {
  readonly callId: string;
  get(key: string): Promise<unknown>;
  getLattice(key: string): Promise<AnyLattice | undefined>;
  /** Several keys at once (the cache batches their misses into one KVS request per shard). */
  getMany(keys: readonly string[]): Promise<Record<string, unknown>>;
  put(key: string, value: unknown): Promise<void>;
  merge(key: string, value: AnyLattice): Promise<void>;
  delete(key: string): Promise<void>;
}

const clock = new HybridClock(`runtime-${threadId}-${process.pid}`, () => Date.now());
const asks = new Map<number, { resolve: (payload: Uint8Array | undefined) => void; reject: (error: Error) => void }>();
let nextAskId = 1;

function ask(callId: number, op: KvsAsk['op'], key: string, payload?: Uint8Array): Promise<Uint8Array | undefined> {
  if (typeof key !== 'string' || key.length === 0) return Promise.reject(new LfaasError(ErrorCode.KVS_BAD_KEY, 'a key is a non-empty string'));
  const requestId = nextAskId++;
  return new Promise((resolve, reject) => {
    asks.set(requestId, { resolve, reject });
    parentPort!.postMessage({ kind: 'kvs', callId, requestId, op, key, ...(payload === undefined ? {} : { payload }) } satisfies KvsAsk);
  });
}

/** A lattice from any realm (the function bundles its own copy of the library). */
function isLattice(value: unknown): value is AnyLattice {
  return typeof value === 'object' && value !== null && typeof (value as { encode?: unknown }).encode === 'function' && typeof (value as { type?: unknown }).type === 'number';
}

/**
 * Reads a value; an LWW register's timestamp is observed by this worker's clock, so a write that
 * follows the read (a read-modify-write) is later than what it read, even from a faster clock.
 */
async function read(callId: number, key: string): Promise<AnyLattice | undefined> {
  const payload = await ask(callId, 'get', key);
  if (payload === undefined) return undefined;
  const value = decodeLattice(payload);
  if (value instanceof Lww) clock.observe({ wallMs: value.wallMs, logical: value.logical });
  return value;
}

function contextFor(callId: number): FunctionContext {
  return {
    callId: String(callId),
    get: async (key) => (await read(callId, key))?.reveal(),
    getLattice: (key) => read(callId, key),
    getMany: async (keys) => {
      if (!Array.isArray(keys)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'getMany takes an array of keys');
      const values = await Promise.all(keys.map((key) => read(callId, key)));
      const result: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      keys.forEach((key, index) => {
        result[key] = values[index]?.reveal();
      });
      return result;
    },
    put: async (key, value) => {
      const lattice = isLattice(value) ? value : Lww.write(clock, structuredClone(value));
      await ask(callId, 'merge', key, lattice.encode());
    },
    merge: async (key, value) => {
      if (!isLattice(value)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'merge takes a lattice (put takes plain values)');
      await ask(callId, 'merge', key, value.encode());
    },
    delete: async (key) => {
      await ask(callId, 'delete', key);
    },
  };
}

const functions = new Map<string, UserFunction>();
const FUNCTIONS_MAX = 256;

function load(functionId: string, code: string | undefined, timeoutMs: number): UserFunction {
  const cached = functions.get(functionId);
  if (cached !== undefined) return cached;
  if (code === undefined) throw new LfaasError(ErrorCode.INTERNAL, `worker has no code for ${functionId}`);
  if (functions.size >= FUNCTIONS_MAX) functions.delete(functions.keys().next().value!);
  const module = { exports: {} as unknown };
  // A context per function version: its globals are its own. Its promises share the worker's
  // microtask queue (a context of its own, `afterEvaluate`, would leave them pending once the
  // module is evaluated); the pool's timer bounds async work instead, by ending the worker.
  const context = createContext({ module, exports: module.exports, console: { log: () => {}, error: () => {} }, setTimeout, clearTimeout, TextEncoder, TextDecoder, URL });
  new Script(`(function (module, exports) {\n${code}\n})(module, module.exports);`, { filename: `${functionId}.js` }).runInContext(context, { timeout: timeoutMs });
  const exported = module.exports as { default?: unknown } | UserFunction;
  const fn = typeof exported === 'function' ? exported : (exported as { default?: unknown }).default;
  if (typeof fn !== 'function') throw new LfaasError(ErrorCode.EXEC_USER_ERROR, `${functionId} does not export a function`);
  functions.set(functionId, fn as UserFunction);
  return fn as UserFunction;
}

async function call(message: RuntimeCall): Promise<RuntimeAnswer> {
  try {
    const fn = load(message.functionId, message.code, message.timeoutMs);
    const args = decodeValue(message.args);
    if (!Array.isArray(args)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'arguments must be an array');
    let value: unknown;
    try {
      value = await fn(...args, contextFor(message.callId));
    } catch (thrown) {
      // The user's own failure: terminal, returned as is (normalised if it is not an Error).
      const error = thrown instanceof Error || (typeof thrown === 'object' && thrown !== null && 'message' in thrown) ? (thrown as Error) : new Error(String(thrown));
      return { kind: 'error', callId: message.callId, loaded: true, error: { code: ErrorCode.EXEC_USER_ERROR, message: `${error.name ?? 'Error'}: ${error.message}`, ...(error.stack === undefined ? {} : { stack: error.stack }) } };
    }
    // The result was built in the function's own realm (its own Object.prototype): a structured
    // clone brings it into this one, where the value codec recognises plain objects.
    let local: unknown;
    try {
      local = structuredClone(value === undefined ? null : value);
    } catch (error) {
      throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the result cannot be sent: ${(error as Error).message}`);
    }
    return { kind: 'result', callId: message.callId, result: encodeValue(local, { maxBytes: message.resultBytesMax }) };
  } catch (error) {
    const typed = ensureLfaasError(error, ErrorCode.EXEC_USER_ERROR);
    // A synchronous loop cut by the vm timeout.
    const code = (error as { code?: string }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT' ? ErrorCode.EXEC_TIMEOUT : typed.code;
    return { kind: 'error', callId: message.callId, loaded: functions.has(message.functionId), error: { code, message: typed.message } };
  }
}

// A function's stray promise (rejected after its call returned) must not end the worker.
process.on('unhandledRejection', () => {});

parentPort?.on('message', (message: RuntimeCall | KvsReply) => {
  if (message.kind === 'kvsReply') {
    const waiter = asks.get(message.requestId);
    asks.delete(message.requestId);
    if (message.error !== undefined) waiter?.reject(errorFromWire({ code: message.error.code, message: message.error.message }));
    else waiter?.resolve(message.payload);
    return;
  }
  if (message.kind !== 'call') return;
  void call(message).then((answer) => parentPort!.postMessage(answer));
});
parentPort?.postMessage({ kind: 'ready' } satisfies RuntimeAnswer);
