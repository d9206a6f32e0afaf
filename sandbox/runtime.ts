/**
 * The function side of a runtime: it loads functions into realms (one per function version),
 * runs one call at a time, serves `ctx` through the executor, and answers each call with its
 * msgpack-encoded result or a typed error. The same code runs in a sandbox process (a Hardened
 * JavaScript compartment) and in a trusted thread (a `node:vm` context); the realm and the channel
 * are handed in.
 *
 * Whose failure a failed call is. The platform's own failures (a `ctx` request refused by the
 * host or here: EXEC_BAD_VALUE, KVS_*, TRANSPORT_TIMEOUT, GONE...; the call's timeout; a broken
 * limit, EXEC_LIMIT) keep their code when the function lets them propagate. Everything else the
 * function throws is EXEC_USER_ERROR, whatever `code` it carries: user code must not answer with a
 * platform code. The two are told apart by identity: every error this runtime hands to user code
 * for a platform failure is recorded, with its code, message and call, in a `WeakMap` out of user
 * code's reach; a rejection is a platform failure only if it is one of those very objects, for
 * that call. A broken limit fails the call even if the function catches its error.
 *
 * What a call leaves behind is cut off when it ends: its timers are cleared, its `ctx` requests
 * never answer, its microtasks and log calls find no call. A call is answered only once the
 * event loop turns after it: one that left a microtask loop behind never is, and times out (the
 * executor then ends the runtime), so an answered runtime is an idle one.
 */
import { types } from 'node:util';
import { ErrorCode, LfaasError, decodeLattice, ensureLfaasError, errorFromWire, isWellFormedString } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { decodeValue, encodeValue } from '../protocol/portable.js';
import type { CallSignal, FunctionContext, FunctionLogger, TensorValue } from '../protocol/portable.js';
import { LOG_BYTES_MAX, LOG_RECORDS_MAX, LOG_RECORD_CHARS_MAX, TIMERS_MAX, makeGlobals, show } from './globals.js';
import type { CallScope } from './globals.js';
import { FRAME_BYTES_MAX } from './protocol.js';
import type { HostAsk, LogRecord, PoolMessage, RuntimeAnswer, RuntimeCall, WireFailure } from './protocol.js';

export type UserFunction = (...args: unknown[]) => unknown;

/** Where functions are evaluated: a compartment (sandbox) or a vm context (trusted threads). */
export interface Realm {
  /**
   * Evaluates a CommonJS-style module body with `globals` as its global object's extra bindings
   * and returns what it exports. A synchronous loop is cut at `timeoutMs` where the realm can
   * (a vm context: `timedOut`); in a sandbox process the executor ends the process instead.
   */
  evaluate(functionId: string, code: string, globals: Record<string, unknown>, timeoutMs: number): { readonly exports: unknown } | { readonly timedOut: true };
  /** Makes an object safe to hand to user code (frozen with everything it reaches), where the realm can. */
  harden<T>(value: T): T;
}

/** A UTF-16 surrogate without its pair (no UTF-8 form): text crossing to the executor gets U+FFFD instead. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** At most this many characters of a function's error text (message, stack) go to its caller. */
const USER_ERROR_TEXT_MAX = 16 * 1024;
/** Function versions kept loaded at once. */
const FUNCTIONS_MAX = 256;

interface ActiveCall extends CallScope {
  active: boolean;
  readonly call: RuntimeCall;
  aborted: boolean;
  readonly onAbort: Array<() => void>;
  breached: LfaasError | undefined;
  /** What a timer callback threw first (the call's own failure). */
  thrown: { readonly value: unknown } | undefined;
  logRecords: number;
  logChars: number;
}

export class FunctionRuntime {
  private readonly functions = new Map<string, UserFunction>();
  private readonly asks = new Map<number, { readonly callId: number; resolve: (payload: Uint8Array | undefined) => void; reject: (error: Error) => void }>();
  private nextAskId = 1;
  private current: ActiveCall | undefined;
  private contextMethods: object | undefined;
  /** The platform failures handed to user code, by identity (see the file comment). */
  private readonly platformFailures = new WeakMap<object, { readonly callId: number; readonly code: ErrorCode; readonly message: string }>();

  constructor(
    private readonly send: (answer: RuntimeAnswer) => void,
    private readonly realm: Realm,
  ) {}

  /**
   * Warms the load and call path once, before the runtime says it is ready (a stem does this off
   * any call's path): a module of the platform's own evaluated in a realm of its own and called
   * through the value codec with a `ctx`, then dropped. Measured in a fresh process: the first
   * realm and evaluation take ~1.6 ms and the next ones ~0.2 ms; the first specialisation of a
   * stem paid it, and the hardening of the `ctx` methods at its first call.
   */
  warmUp(): void {
    const evaluated = this.realm.evaluate('lfaas-warm-up@0', 'module.exports = (x) => x;', makeGlobals(() => undefined), 1000);
    if ('timedOut' in evaluated) return;
    const fn = evaluated.exports as UserFunction;
    // The `ctx` methods too: built (and hardened) once per runtime, at its first call otherwise.
    this.contextMethods ??= this.makeContextMethods();
    encodeValue(fn(decodeValue(encodeValue([1])), this.contextFor({ invocation: { runId: '', functionName: '' } } as RuntimeCall)));
  }

  receive(message: PoolMessage): void {
    switch (message.kind) {
      case 'hostReply': {
        const waiter = this.asks.get(message.requestId);
        this.asks.delete(message.requestId);
        if (waiter === undefined || this.current?.callId !== waiter.callId) return;
        if (message.error !== undefined) waiter.reject(this.platformFailure(waiter.callId, errorFromWire({ code: message.error.code, message: message.error.message })));
        else waiter.resolve(message.payload);
        return;
      }
      case 'abort':
        if (this.current?.callId === message.callId) this.abort(this.current);
        return;
      case 'unload':
        this.functions.delete(message.functionId);
        return;
      case 'call':
        // Answered once the event loop turns: a call that left a microtask loop behind never
        // is, and times out (the executor then ends this runtime).
        void this.call(message)
          // A bug here, not the function's doing (its failures are answers): said, not swallowed.
          .catch((error: unknown): RuntimeAnswer => ({ kind: 'error', callId: message.callId, loaded: false, error: { code: ErrorCode.INTERNAL, message: `the runtime failed: ${textOf(readQuietly(error, 'message')) ?? 'no reason'}` } }))
          .then((answer) => setImmediate(() => this.send(answer)));
        return;
    }
  }

  private async call(message: RuntimeCall): Promise<RuntimeAnswer> {
    const callId = message.callId;
    const scope = this.begin(message);
    try {
      const fn = this.load(message);
      if (message.args === undefined) return { kind: 'loaded', callId };
      const encodedArgs = message.args;
      const args = this.platformCode(callId, () => decodeValue(encodedArgs));
      if (!Array.isArray(args)) throw this.fail(callId, ErrorCode.EXEC_BAD_VALUE, 'arguments must be an array');
      const value = await fn(...args, this.contextFor(message));
      if (scope.breached !== undefined) throw scope.breached;
      if (scope.thrown !== undefined) throw scope.thrown.value;
      return { kind: 'result', callId, result: this.platformCode(callId, () => encodePlain(value, message.resultBytesMax)) };
    } catch (thrown) {
      return { kind: 'error', callId, loaded: this.functions.has(message.functionId), error: this.failureOf(message, scope, thrown) };
    } finally {
      this.end(scope);
    }
  }

  /** The call's time is up: its signal aborts (listeners run; what they throw is dropped, the call has failed already). */
  private abort(scope: ActiveCall): void {
    if (scope.aborted) return;
    scope.aborted = true;
    for (const listener of scope.onAbort.splice(0)) {
      try {
        listener();
      } catch {
        // The call is EXEC_TIMEOUT whatever its listeners do.
      }
    }
  }

  private begin(message: RuntimeCall): ActiveCall {
    const runtime = this;
    const scope: ActiveCall = {
      callId: message.callId,
      active: true,
      call: message,
      aborted: false,
      onAbort: [],
      breached: undefined,
      thrown: undefined,
      timers: new Map(),
      logRecords: 0,
      logChars: 0,
      breach(error: LfaasError): LfaasError {
        scope.breached ??= runtime.platformFailure(message.callId, error);
        return scope.breached;
      },
      uncaught(thrown: unknown): void {
        scope.thrown ??= { value: thrown };
      },
      log(level: LogRecord['level'], text: string, fields?: string): void {
        if (!scope.active) return;
        scope.logRecords++;
        scope.logChars += text.length + (fields?.length ?? 0);
        if (scope.logRecords > LOG_RECORDS_MAX || scope.logChars > LOG_BYTES_MAX) throw scope.breach(new LfaasError(ErrorCode.EXEC_LIMIT, `more than ${LOG_RECORDS_MAX} log records or ${LOG_BYTES_MAX} characters of logs in one call`));
        // Well-formed, as the protocol requires of text (a lone surrogate becomes U+FFFD here, in a log line only).
        const cut = (text.length > LOG_RECORD_CHARS_MAX ? `${text.slice(0, LOG_RECORD_CHARS_MAX)}... (${text.length} characters)` : text).replace(LONE_SURROGATE, '\uFFFD');
        const fieldsText = fields !== undefined && fields.length <= LOG_RECORD_CHARS_MAX && fields.startsWith('{') ? fields.replace(LONE_SURROGATE, '\uFFFD') : undefined;
        runtime.send({ kind: 'log', callId: message.callId, level, text: cut, ...(fieldsText === undefined ? {} : { fields: fieldsText }) });
      },
    };
    this.current = scope;
    return scope;
  }

  private end(scope: ActiveCall): void {
    scope.active = false;
    for (const timer of scope.timers.values()) clearTimeout(timer);
    scope.timers.clear();
    for (const [requestId, waiter] of this.asks) if (waiter.callId === scope.callId) this.asks.delete(requestId);
    if (this.current === scope) this.current = undefined;
  }

  private load(call: RuntimeCall): UserFunction {
    const { callId, functionId, code, timeoutMs } = call;
    const cached = this.functions.get(functionId);
    if (cached !== undefined) return cached;
    if (code === undefined) throw this.fail(callId, ErrorCode.INTERNAL, `the runtime has no code for ${functionId}`);
    if (this.functions.size >= FUNCTIONS_MAX) this.functions.delete(this.functions.keys().next().value!);
    const globals = makeGlobals(() => this.current);
    const evaluated = this.realm.evaluate(functionId, code, globals, timeoutMs);
    if ('timedOut' in evaluated) throw this.fail(callId, ErrorCode.EXEC_TIMEOUT, `${functionId} did not load in ${timeoutMs} ms`);
    const exported = evaluated.exports as { default?: unknown } | UserFunction;
    const fn = typeof exported === 'function' ? exported : readQuietly(exported, 'default');
    if (typeof fn !== 'function') throw this.fail(callId, ErrorCode.EXEC_USER_ERROR, `${functionId} does not export a function`);
    this.functions.set(functionId, fn as UserFunction);
    return fn as UserFunction;
  }

  // -------------------------------------------------------------------------------------------
  // Failures.

  private platformFailure(callId: number, error: LfaasError): LfaasError {
    this.platformFailures.set(error, { callId, code: error.code, message: error.message });
    return error;
  }

  private fail(callId: number, code: ErrorCode, message: string): LfaasError {
    return this.platformFailure(callId, new LfaasError(code, message));
  }

  /** Runs platform code (the codecs) for a call: what it throws is a platform failure. Never for code that runs the function's. */
  private platformCode<T>(callId: number, action: () => T): T {
    try {
      return action();
    } catch (error) {
      throw this.platformFailure(callId, ensureLfaasError(error));
    }
  }

  /**
   * What a failed call answers: a broken limit first, EXEC_TIMEOUT once its time is up, a
   * platform failure of this call with the code and message it was raised with, EXEC_LIMIT for a
   * stack overflow, and anything else as the function's own failure.
   */
  private failureOf(message: RuntimeCall, scope: ActiveCall, thrown: unknown): WireFailure {
    if (scope.breached !== undefined) return { code: scope.breached.code, message: scope.breached.message };
    if (scope.aborted) return { code: ErrorCode.EXEC_TIMEOUT, message: `${message.functionId} did not finish in ${message.timeoutMs} ms` };
    // A WeakMap lookup runs no user code, even on a proxy.
    const platform = (typeof thrown === 'object' && thrown !== null) || typeof thrown === 'function' ? this.platformFailures.get(thrown) : undefined;
    if (platform !== undefined && platform.callId === message.callId) return { code: platform.code, message: platform.message };
    if (isStackOverflow(thrown)) return { code: ErrorCode.EXEC_LIMIT, message: `${message.functionId} recursed past the stack limit` };
    return userFailure(thrown);
  }

  // -------------------------------------------------------------------------------------------
  // ctx.

  private ask(message: Omit<HostAsk, 'kind' | 'requestId'>): Promise<Uint8Array | undefined> {
    const requestId = this.nextAskId++;
    return new Promise((resolve, reject) => {
      if (this.current?.callId !== message.callId || !this.current.active) {
        reject(this.fail(message.callId, ErrorCode.GONE, 'the call has ended'));
        return;
      }
      this.asks.set(requestId, { callId: message.callId, resolve, reject });
      this.send({ kind: 'host', requestId, ...message } as HostAsk);
    });
  }

  private checkKey(callId: number, key: unknown): string {
    if (typeof key !== 'string' || key.length === 0) throw this.fail(callId, ErrorCode.KVS_BAD_KEY, 'a key is a non-empty string');
    if (!isWellFormedString(key)) throw this.fail(callId, ErrorCode.KVS_BAD_KEY, 'a key is well-formed Unicode (a lone surrogate has no UTF-8 form)');
    return key;
  }

  /** The call running now, for a `ctx` method; GONE once it has ended (a reference kept past its call). */
  private running(): ActiveCall & { readonly call: RuntimeCall } {
    const scope = this.current;
    if (scope === undefined || !scope.active) throw new LfaasError(ErrorCode.GONE, 'the call has ended');
    return scope;
  }

  /**
   * `ctx`'s methods, made once and hardened once: each works on the call running now (one at a
   * time). Each call's `ctx` is a frozen object with its ids over them. Every failure they make
   * is recorded as a platform failure of the call; the function's own code they run (a lattice's
   * `encode`, getters of its values) is kept out of `platformCode`.
   */
  private makeContextMethods(): object {
    const getLattice = async (key: string): Promise<AnyLattice | undefined> => {
      const { callId } = this.running();
      const payload = await this.ask({ callId, op: 'get', key: this.checkKey(callId, key) });
      return payload === undefined ? undefined : this.platformCode(callId, () => decodeLattice(payload, { verifyCanonical: false }));
    };
    /** A key's plain value (`read`: the executor reveals it and sends msgpack, cheaper here than a lattice to decode and reveal). */
    const readPlain = async (key: string): Promise<unknown> => {
      const { callId } = this.running();
      const payload = await this.ask({ callId, op: 'read', key: this.checkKey(callId, key) });
      return payload === undefined ? undefined : this.platformCode(callId, () => decodeValue(payload, { maxBytes: FRAME_BYTES_MAX }));
    };
    const encodeFor = (scope: ActiveCall & { readonly call: RuntimeCall }, value: unknown): Uint8Array => this.platformCode(scope.callId, () => encodePlain(value, scope.call.resultBytesMax));
    const logAt =
      (level: LogRecord['level']) =>
      (first?: unknown, ...rest: unknown[]): void => {
        // pino's shapes: (message), (fields, message?), (error, message?).
        const fields = typeof first === 'object' && first !== null ? show(first) : undefined;
        const words = (fields === undefined ? [first, ...rest] : rest).filter((word) => word !== undefined).map(show).join(' ');
        this.running().log(level, words, fields);
      };
    const log: FunctionLogger = { trace: logAt('debug'), debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error'), fatal: logAt('error') };
    const runtime = this;
    const signal: CallSignal = {
      get aborted() {
        return runtime.current?.aborted ?? true;
      },
      get reason() {
        return (runtime.current?.aborted ?? true) ? 'the call ran out of time' : undefined;
      },
      throwIfAborted() {
        const scope = runtime.current;
        if (scope === undefined || scope.aborted) throw new LfaasError(ErrorCode.EXEC_TIMEOUT, 'the call ran out of time');
      },
      addEventListener(type: unknown, listener: unknown) {
        const scope = runtime.current;
        if (type !== 'abort' || typeof listener !== 'function' || scope === undefined || scope.onAbort.length >= TIMERS_MAX) return;
        scope.onAbort.push(listener as () => void);
      },
      removeEventListener(_type: unknown, listener: unknown) {
        const scope = runtime.current;
        const at = scope?.onAbort.indexOf(listener as () => void) ?? -1;
        if (at >= 0) scope!.onAbort.splice(at, 1);
      },
    };
    const methods: Omit<FunctionContext, 'callId' | 'functionName'> = {
      log,
      signal,
      get: (key) => readPlain(key),
      getLattice,
      getMany: async (keys) => {
        const { callId } = this.running();
        if (!Array.isArray(keys)) throw this.fail(callId, ErrorCode.EXEC_BAD_VALUE, 'getMany takes an array of keys');
        const list = [...(keys as unknown[])];
        const values = await Promise.all(list.map((key) => readPlain(key as string)));
        const result: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
        list.forEach((key, index) => {
          result[key as string] = values[index];
        });
        return result;
      },
      put: async (key, value) => {
        const scope = this.running();
        const callId = scope.callId;
        if (isLattice(value)) await this.ask({ callId, op: 'merge', key: this.checkKey(callId, key), payload: this.latticeBytes(callId, value) });
        else await this.ask({ callId, op: 'put', key: this.checkKey(callId, key), payload: encodeFor(scope, value) });
      },
      merge: async (key, value) => {
        const { callId } = this.running();
        if (!isLattice(value)) throw this.fail(callId, ErrorCode.EXEC_BAD_VALUE, 'merge takes a lattice (put takes plain values)');
        await this.ask({ callId, op: 'merge', key: this.checkKey(callId, key), payload: this.latticeBytes(callId, value) });
      },
      delete: async (key) => {
        const { callId } = this.running();
        await this.ask({ callId, op: 'delete', key: this.checkKey(callId, key) });
      },
      increment: async (key, amount = 1) => {
        const { callId } = this.running();
        if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) throw this.fail(callId, ErrorCode.EXEC_BAD_VALUE, 'increment takes an integer amount');
        const payload = await this.ask({ callId, op: 'increment', key: this.checkKey(callId, key), amount });
        const value = payload === undefined ? undefined : this.platformCode(callId, () => decodeValue(payload));
        if (typeof value !== 'number') throw this.fail(callId, ErrorCode.EXEC_BAD_VALUE, 'the executor answered an increment without a number');
        return value;
      },
      infer: async (modelKey, feeds) => {
        const scope = this.running();
        const { callId } = scope;
        if (typeof feeds !== 'object' || feeds === null || Array.isArray(feeds)) throw this.fail(callId, ErrorCode.EXEC_BAD_VALUE, 'infer takes a model key and an object of named tensors');
        // The executor checks every tensor (shape, type, bytes); here they only have to encode.
        const payload = await this.ask({ callId, op: 'infer', key: this.checkKey(callId, modelKey), payload: encodeFor(scope, feeds) });
        const outputs = payload === undefined ? undefined : this.platformCode(callId, () => decodeValue(payload));
        if (typeof outputs !== 'object' || outputs === null) throw this.fail(callId, ErrorCode.EXEC_BAD_VALUE, 'the executor answered an inference without outputs');
        return outputs as Record<string, TensorValue>;
      },
      send: async (target, message) => {
        const scope = this.running();
        if (typeof target !== 'string' || target.length === 0 || !isWellFormedString(target)) throw this.fail(scope.callId, ErrorCode.EXEC_BAD_VALUE, 'send takes the name of a function of this run');
        await this.ask({ callId: scope.callId, op: 'send', target, payload: encodeFor(scope, message) });
      },
      recv: async (options = {}) => {
        const { callId } = this.running();
        const timeoutMs = readQuietly(options, 'timeoutMs') ?? 1000;
        if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) throw this.fail(callId, ErrorCode.EXEC_BAD_VALUE, 'recv timeoutMs is a finite number >= 0');
        const payload = await this.ask({ callId, op: 'recv', timeoutMs });
        return payload === undefined ? undefined : this.platformCode(callId, () => decodeValue(payload));
      },
    };
    return this.realm.harden(methods);
  }

  /** A call's `ctx`: its ids, frozen, over the shared methods. */
  private contextFor(call: RuntimeCall): FunctionContext {
    this.contextMethods ??= this.makeContextMethods();
    return Object.freeze(Object.create(this.contextMethods, { callId: { value: call.invocation.runId, enumerable: true }, functionName: { value: call.invocation.functionName, enumerable: true } })) as FunctionContext;
  }

  /** The encoding of a lattice of the function's (its own bundled copy of the library): `encode()` is user code; it must return bytes. */
  private latticeBytes(callId: number, value: AnyLattice): Uint8Array {
    const bytes: unknown = value.encode();
    if (!(bytes instanceof Uint8Array)) throw this.fail(callId, ErrorCode.EXEC_BAD_VALUE, 'a lattice encodes to a Uint8Array');
    return new Uint8Array(bytes);
  }
}

/** A lattice from any realm (the function bundles its own copy of the library). */
function isLattice(value: unknown): value is AnyLattice {
  return typeof value === 'object' && value !== null && typeof readQuietly(value, 'encode') === 'function' && typeof readQuietly(value, 'type') === 'number';
}


/**
 * A plain value from the function, copied and encoded. The structured clone reads it once (its
 * getters run there; a proxy is refused) and its failure becomes EXEC_BAD_VALUE; the codec then
 * reads only the copy.
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
 * The function's own failure: EXEC_USER_ERROR, terminal, with the text of what it threw. Reading
 * that text runs the function's code (getters, proxy traps, `toString`), so every read is guarded.
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

/** V8's stack overflow, told without running the function's code (a proxy's `getPrototypeOf` trap would run for `instanceof`). */
function isStackOverflow(thrown: unknown): boolean {
  if (typeof thrown !== 'object' || thrown === null || types.isProxy(thrown)) return false;
  try {
    return Object.getPrototypeOf(thrown) === RangeError.prototype && Object.getOwnPropertyDescriptor(thrown, 'message')?.value === 'Maximum call stack size exceeded';
  } catch {
    return false;
  }
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
    text = typeof value === 'string' ? value : String(value);
  } catch {
    return undefined;
  }
  return (text.length > USER_ERROR_TEXT_MAX ? `${text.slice(0, USER_ERROR_TEXT_MAX)}... (${text.length} characters)` : text).replace(LONE_SURROGATE, '\uFFFD');
}
