/**
 * One function's `ctx` over a seeded in-memory KVS, to call a function directly in a unit test:
 * `await visit('home', ctx)`.
 *
 * The `ctx` is the platform's own, not a stand-in: the sandbox's function side
 * ({@link FunctionRuntime}) makes it for one call that stays open until the context is closed,
 * and its requests are answered by the executor's own code (executor/host-asks.ts) through an
 * executor cache, a run scope in the chosen consistency mode, the counters of `ctx.increment` and
 * the mailboxes of `ctx.recv`, over a one-replica KVS in a map (./memory-kvs.ts). So keys are
 * checked as deployed (a system key is KVS_BAD_KEY, another owner's UNAUTHORISED), values cross
 * the msgpack codec (a value the platform cannot carry fails EXEC_BAD_VALUE), and a
 * repeatable-read context pins the first version of each key it reads.
 *
 * What differs: nothing runs the function for you, so its timeout does not apply (`ctx.signal`
 * aborts only on {@link TestContext.abort}); `ctx.send` records the message in
 * {@link TestContext.sent} (there is no other invocation); `ctx.recv` takes what the test
 * {@link TestContext.deliver}s; `ctx.infer` fails SCHED_NO_CAPACITY unless `infer` is given.
 *
 * @example
 * ```ts
 * const ctx = createTestContext({ kvs: { hits: 3 } });
 * await visit('home', ctx);
 * expect(await ctx.get('hits')).toBe(4);
 * expect(ctx.logs.map((record) => record.text)).toContain('visited');
 * ```
 */
import { ErrorCode, HybridClock, LfaasError } from '../lattices/index.js';
import { DEFAULT_MAX_VALUE_BYTES, decodeValue, encodeValue, functionKeyError } from '../protocol/index.js';
import type { FunctionContext, TensorValue } from '../protocol/index.js';
import { CounterIncrements, ExecutorCache, Mailboxes, RunScope, answerHostAsk } from '../executor/index.js';
import type { ConsistencyMode, FunctionHost, ScopeEnvironment } from '../executor/index.js';
import { FunctionRuntime } from '../sandbox/index.js';
import type { RuntimeAnswer, RuntimeCall } from '../sandbox/index.js';
import { recordOf } from './in-process-runtime.js';
import type { FunctionLogRecord } from './in-process-runtime.js';
import { MemoryKvs } from './memory-kvs.js';
import { seedLattice } from './test-cluster.js';

export interface TestContextOptions {
  /** Keys the KVS holds at first: lattices as they are, plain values as LWW registers (what `ctx.put` writes). */
  readonly kvs?: Readonly<Record<string, unknown>>;
  /** The consistency mode of the call (default `lww`). */
  readonly consistency?: ConsistencyMode;
  /** `ctx.functionName` (default `test`); it decides which keys the function reaches (`alice/f`: `alice/...` only). */
  readonly functionName?: string;
  /** `ctx.callId` (default `test-call`). */
  readonly callId?: string;
  /** Answers `ctx.infer` (absent: it fails SCHED_NO_CAPACITY, as on an executor without models). */
  readonly infer?: (modelKey: string, feeds: Readonly<Record<string, TensorValue>>) => Promise<Record<string, TensorValue>>;
}

/** A message the function sent with `ctx.send`. */
export interface SentMessage {
  readonly target: string;
  readonly message: unknown;
}

/** A function's `ctx`, with what the test needs around it. */
export interface TestContext extends FunctionContext {
  /** What the function logged with `ctx.log` (and `console.*` inside {@link run}), oldest first. */
  readonly logs: readonly FunctionLogRecord[];
  /** The in-memory KVS itself (lattices; no consistency mode): `get`, `put` (merges), `delete`, `keys`. */
  readonly kvs: MemoryKvs;
  /** The messages the function sent with `ctx.send`, oldest first. */
  readonly sent: readonly SentMessage[];
  /** Puts a message in the function's mailbox (the next `ctx.recv` takes it). */
  deliver(message: unknown): void;
  /** Aborts `ctx.signal`, as the executor does when the call's time is up. */
  abort(): void;
  /** Ends the call: later `ctx` requests fail GONE. Idempotent. */
  close(): void;
  [Symbol.dispose](): void;
}

const DEFAULT_FUNCTION = 'test';
const DEFAULT_CALL_ID = 'test-call';
/** The pool's call id of the context's one call. */
const CALL = 1;
/** Messages kept in `sent`, at most. */
const SENT_MAX = 10_000;
/** Log records kept, at most. */
const LOGS_MAX = 100_000;

/**
 * A `ctx` for one function over a seeded in-memory KVS (see the file comment).
 *
 * @example
 * ```ts
 * const ctx = createTestContext({ kvs: { hits: 3, visitors: GSet.of('ada') } });
 * await visit('home', ctx);
 * expect(await ctx.get('hits')).toBe(4);
 * ```
 */
export function createTestContext(options: TestContextOptions = {}): TestContext {
  const functionName = options.functionName ?? DEFAULT_FUNCTION;
  const callId = options.callId ?? DEFAULT_CALL_ID;
  const self = 'mem://test-context';
  const kvs = new MemoryKvs();
  const clock = new HybridClock(self, () => Date.now());
  for (const [key, value] of Object.entries(options.kvs ?? {})) kvs.write(key, seedLattice(clock, value));

  const cache = new ExecutorCache(kvs);
  const env: ScopeEnvironment = {
    cache,
    clock,
    self,
    writerId: self,
    causalWaitMs: 2000,
    // One executor: the run's holder is this one, and nothing upstream pinned anything.
    fetchPinned: async () => {
      throw new LfaasError(ErrorCode.GONE, 'the test context is the only executor of its call');
    },
    readUncached: (key) => kvs.get(key),
  };
  const scope = new RunScope(env, callId, options.consistency ?? 'lww');
  const increments = new CounterIncrements(cache, self);
  const mailboxes = new Mailboxes();
  mailboxes.open(callId, functionName);
  const sent: SentMessage[] = [];
  const logs: FunctionLogRecord[] = [];
  let incrementsMade = 0;
  const reach = (key: string): string => {
    const error = functionKeyError(functionName, key);
    if (error !== undefined) throw error;
    return key;
  };
  const host: FunctionHost = {
    get: (key) => scope.get(reach(key)),
    put: (key, value) => scope.put(reach(key), value),
    merge: (key, value) => scope.merge(reach(key), value),
    delete: (key) => scope.delete(reach(key)),
    increment: (key, amount) => increments.add(reach(key), amount, `${callId}\u0000${functionName}\u0000${incrementsMade++}`),
    infer: (modelKey, feeds) => {
      if (options.infer === undefined) throw new LfaasError(ErrorCode.SCHED_NO_CAPACITY, 'ctx.infer is not available in the test context: pass `infer` to createTestContext');
      return options.infer(reach(modelKey), feeds as Record<string, TensorValue>);
    },
    send: async (target, payload) => {
      if (sent.length >= SENT_MAX) throw new LfaasError(ErrorCode.EXEC_LIMIT, `more than ${SENT_MAX} messages sent in the test context`);
      sent.push({ target, message: decodeValue(payload) });
    },
    recv: (timeoutMs) => mailboxes.receive(callId, functionName, timeoutMs),
  };

  const invocation = { runId: callId, functionName };
  let captured: FunctionContext | undefined;
  let release: (() => void) | undefined;
  let closed = false;
  const runtime: FunctionRuntime = new FunctionRuntime(
    (answer: RuntimeAnswer) => {
      if (closed) return;
      if (answer.kind === 'host') answerHostAsk(host, answer, (reply) => queueMicrotask(() => runtime.receive(reply)));
      else if (answer.kind === 'log' && logs.length < LOGS_MAX) logs.push(recordOf(answer, invocation));
    },
    {
      // The call's one "function": it hands its ctx out and stays open until the context closes.
      evaluate: () => ({
        exports: (ctx: FunctionContext) => {
          captured = ctx;
          return new Promise<void>((resolve) => (release = resolve));
        },
      }),
      harden: (value) => value,
    },
  );
  const call: RuntimeCall = { kind: 'call', callId: CALL, functionId: `${functionName}@test`, code: 'test context', args: encodeValue([]), timeoutMs: 2 ** 31 - 1, resultBytesMax: DEFAULT_MAX_VALUE_BYTES, invocation };
  // The function is called before the runtime's first await: its ctx is here when receive returns.
  runtime.receive(call);
  if (captured === undefined) throw new LfaasError(ErrorCode.INTERNAL, 'the test context did not start its call');

  const close = (): void => {
    if (closed) return;
    release?.();
    closed = true;
    mailboxes.dropRun(callId);
    cache.close();
  };
  const extras: Omit<TestContext, keyof FunctionContext> = {
    logs,
    kvs,
    sent,
    deliver: (message) => mailboxes.deliver(callId, functionName, encodeValue(message)),
    abort: () => runtime.receive({ kind: 'abort', callId: CALL }),
    close,
    [Symbol.dispose]: close,
  };
  // After close, the sandbox's ctx would leave a request unanswered for good (a stray request
  // of a finished call): here it fails GONE at once.
  const ctx = captured;
  const open = <A extends unknown[], R>(method: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => (closed ? Promise.reject(new LfaasError(ErrorCode.GONE, 'the test context is closed')) : method(...args));
  const guarded: Pick<FunctionContext, 'get' | 'getLattice' | 'getMany' | 'put' | 'merge' | 'delete' | 'increment' | 'infer' | 'send' | 'recv'> = {
    get: open(ctx.get),
    getLattice: open(ctx.getLattice),
    getMany: open(ctx.getMany),
    put: open(ctx.put),
    merge: open(ctx.merge),
    delete: open(ctx.delete),
    increment: open(ctx.increment),
    infer: open(ctx.infer),
    send: open(ctx.send),
    recv: open(ctx.recv),
  };
  // The ctx itself (frozen, made by the runtime) underneath, the test's extras on top.
  return Object.freeze(Object.assign(Object.create(ctx) as object, guarded, extras)) as TestContext;
}

