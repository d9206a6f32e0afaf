/**
 * The FaaS client: register functions and DAGs, call them (sync or async), and reach the KVS.
 *
 * - `register` bundles a TypeScript module with esbuild and registers code and limits with a
 *   scheduler; versions are numbered by the scheduler and immutable.
 * - `call` sends the call to a scheduler, which places it; the executor that runs it answers
 *   here directly. `ref(key)` arguments are read from the executor's cache before the function
 *   runs. A call fails with its typed error (EXEC_TIMEOUT, EXEC_USER_ERROR, EXEC_LOST...).
 * - `callAsync` returns once the scheduler has recorded the call; its future resolves when the
 *   result lands in the KVS, delivered by subscription (not by polling). Async calls run at
 *   least once: a call whose executor dies is dispatched again.
 * - `dag`/`registerDag`/`callDag`: typed DAGs (client/dag-builder.ts).
 * - Ergonomics (docs/sdk.md): a `signal` on every call and wait (CALL_ABORTED, and the call is
 *   cancelled), `cancel(callId)`/`future.cancel()` (EXEC_CANCELLED), `attach(callId)` (a future
 *   for a call another process started), `idempotencyKey` (one run per key), `watch(key)`,
 *   `fn<F>(name)` (a typed callable), `await using`, and the function's mapped stack trace on
 *   EXEC_USER_ERROR (`error.remoteStack`).
 *
 * @example
 * ```ts
 * const faas = await LatticeFaas.connect({ routing: ['tcp://127.0.0.1:7100'], schedulers: ['tcp://127.0.0.1:7200'] });
 * const square = await faas.register<typeof import('./square.js').default>('square', 'examples/functions/square.ts');
 * await faas.call(square, [7]);            // 49
 * const future = await faas.callAsync(square, [8]);
 * await future.result();                   // 64
 * await faas.close();
 * ```
 */
import { createHash, randomBytes } from 'node:crypto';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { DEFAULT_KEEP_ALIVE_MS, Rpc, bindTransport, clientKeyPair, clientToken, decodeValue, encodeValue, errorFromWireMessage, pb, resultKeyOf, resultRecordOf, systemClock, unverifiedClaims } from '../protocol/index.js';
import type { KeyPair, PbTypes, TokenClaims, Transport } from '../protocol/index.js';
import { bundleFunction, checkFunctionCode } from './bundle.js';
import type { AnyFunction, DagDefinition, DagHandle, FunctionHandle, UserArgs, UserResult } from './dag-builder.js';
import { KvsClient } from './kvs-client.js';
import { abortable, abortedError } from './abort.js';
import type { WatchOptions } from './watch.js';
import { listInvocations, readLogs } from './observe.js';
import type { FunctionLogEntry, InvocationEntry, InvocationsOptions, LogsOptions, ObserveClient } from './observe.js';
import { resolveCluster } from './cluster-file.js';
import { CONNECT_TIMEOUT_MS, firstContact } from './cluster-probe.js';
import { ServiceFollower, askServices, discoverSchedulers } from './discovery.js';
import type { ServiceList } from './discovery.js';
import { DirectCalls } from './direct-calls.js';
import { traced } from './trace-spans.js';

export type Consistency = 'lww' | 'repeatable-read' | 'causal';

const CONSISTENCY: Record<Consistency, number> = { lww: pb.Consistency.LWW, 'repeatable-read': pb.Consistency.REPEATABLE_READ, causal: pb.Consistency.CAUSAL };

export interface ConnectOptions {
  /** Routing node addresses; absent: `LFAAS_ROUTING`, else `.lfaas/cluster.json` (`lfaas up`). */
  readonly routing?: readonly string[];
  /**
   * Scheduler addresses; absent: `LFAAS_SCHEDULERS`, else `.lfaas/cluster.json`; absent with
   * `routing` given and no `LFAAS_SCHEDULERS`: discovered from the routing nodes and kept current.
   */
  readonly schedulers?: readonly string[];
  /**
   * How long the first contact may take (an echo a routing node and a scheduler answer), default
   * 2000; 0: none. No answer: TRANSPORT_NO_CLUSTER ("no cluster at ...").
   */
  readonly connectTimeoutMs?: number;
  /** The interface the client's sockets bind to. */
  readonly host?: string;
  /** The host the routing nodes and schedulers reach the client's sockets at (default: `host`). */
  readonly advertise?: string;
  /** The client's key pair; see `KvsClientOptions.keyPair`. */
  readonly keyPair?: KeyPair | 'insecure';
  /**
   * The owner token every request carries (`lfaas token create`); absent: the environment's
   * `LFAAS_TOKEN`. An owner's names live in its namespace: `alice/resize`, `alice/counter`.
   */
  readonly token?: string;
  /** Extra time the client waits beyond a call's own timeout before it gives up on an answer. */
  readonly answerSlackMs?: number;
  /** For registry requests (register, list, delete). */
  readonly requestTimeoutMs?: number;
  /**
   * Direct dispatch (default on): a sync call whose run an executor ran alone earns a short lease
   * (the scheduler's `leaseMs`, 1 s by default) to send the same function or DAG straight to that
   * executor, saving the hop through the scheduler. Executors are watched while such calls are in
   * flight: one that stops answering fails them with EXEC_LOST, as the scheduler would.
   */
  readonly directCalls?: boolean;
  /**
   * A sync call refused SCHED_NO_CAPACITY (every executor saturated; nothing ran) is sent again
   * after the scheduler's retry-after hint, this many times at most (default 5) and within the
   * call's budget; 0: the refusal is returned at once.
   */
  readonly capacityRetries?: number;
}

export interface CallOptions {
  /** 0 or absent: the latest version. */
  readonly version?: number;
  readonly consistency?: Consistency;
  /** The call's budget (default: the function's own timeout; for a DAG, the sum of its functions'). */
  readonly timeoutMs?: number;
  /**
   * Aborting it rejects the call at once with CALL_ABORTED and asks the cluster to cancel the run
   * (its functions see `ctx.signal` aborted; see {@link LatticeFaas.cancel}). For `callAsync`, it
   * does so until the call's result is in, even after the call was accepted.
   */
  readonly signal?: AbortSignal;
  /**
   * The same key (for this owner and this function or DAG) runs once, and every start of it gets
   * that run's result, for as long as the call's record stays in the KVS (records are not expired
   * today). First wins: a start under a used key with other arguments gets the first call's result
   * (docs/sdk.md). A sync call with a key runs as an async call waited for. 1 to 256 characters.
   */
  readonly idempotencyKey?: string;
}

/**
 * A registered function as a typed callable (`faas.fn<typeof square>('square')`): its arguments
 * and result typed from the function module, its trailing `ctx` left out.
 */
export interface TypedFunction<F extends AnyFunction, Name extends string = string> {
  (...args: CallArgs<UserArgs<F>>): Promise<UserResult<F>>;
  /** Starts the call asynchronously (see {@link LatticeFaas.callAsync}). */
  async(...args: CallArgs<UserArgs<F>>): Promise<CallFuture<UserResult<F>>>;
  /** The same function with these call options (merged over the ones it has). */
  with(options: CallOptions): TypedFunction<F, Name>;
  /** Its handle, for DAGs (`dag(...).fn(square.handle)`) and the other calls. */
  readonly handle: FunctionHandle<F, Name>;
}

export interface RegisterOptions {
  readonly memoryMb?: number;
  readonly timeoutMs?: number;
  /** The `fixed` policy's window: how long its idle runtime stays loaded after a call (15 minutes). */
  readonly keepAliveMs?: number;
  /**
   * `fixed` (the default: keep `keepAliveMs` after each call) or `adaptive` (per function, a
   * histogram of its idle times gives a window before which its runtime is unloaded and after
   * which it is loaded again, and a keep-alive window; `fixed` at 4 hours until the histogram has
   * enough calls; see README).
   */
  readonly keepAlive?: 'fixed' | 'adaptive';
  /**
   * Keys the function reads, fetched into the executor's cache as soon as its run is scheduled:
   * exact keys, or prefixes ending in `*` (the keys under it that the function read before).
   */
  readonly reads?: readonly string[];
  /**
   * Calls of it running at once at most (0 or absent: no limit): beyond, a scheduler refuses
   * sync calls SCHED_NO_CAPACITY with a retry-after hint (the SDK waits and retries) and holds
   * async ones; such a function's calls always go through a scheduler (no direct leases).
   */
  readonly concurrency?: number;
}

/** An async call in flight: its result arrives through the KVS. */
export interface CallFuture<R> {
  readonly callId: string;
  readonly resultKey: string;
  /**
   * Resolves with the result, or rejects with the call's typed error (or TRANSPORT_TIMEOUT after
   * `timeoutMs`). Aborting `signal` rejects the wait at once (CALL_ABORTED) and cancels the call.
   */
  result(options?: { readonly timeoutMs?: number; readonly signal?: AbortSignal }): Promise<R>;
  /** Cancels the call (see {@link LatticeFaas.cancel}): its result becomes EXEC_CANCELLED unless it finished first. */
  cancel(): Promise<boolean>;
}

export interface FunctionInfo {
  readonly name: string;
  readonly latest: number;
  readonly versions: readonly number[];
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly keepAliveMs: number;
  readonly keepAlive: 'fixed' | 'adaptive';
  readonly reads: readonly string[];
  readonly codeBytes: number;
  readonly registeredAtMs: number;
}

const REF = Symbol.for('lattice-faas.ref');

/** A KVS reference argument: the executor reads the key from its cache before the call. */
export interface Ref {
  readonly [REF]: string;
}

/**
 * An argument that is the value of KVS key `key` when the function runs (read through the
 * executor's cache, in the call's consistency mode).
 */
export function ref(key: string): Ref {
  if (typeof key !== 'string' || key.length === 0) throw new LfaasError(ErrorCode.KVS_BAD_KEY, 'ref takes a non-empty key');
  return { [REF]: key };
}

function isRef(value: unknown): value is Ref {
  return typeof value === 'object' && value !== null && REF in value;
}

/** Arguments as a call takes them: each may be a `ref(key)` instead. */
export type CallArgs<A extends readonly unknown[]> = { [K in keyof A]: A[K] | Ref };

function encodeArgs(args: readonly unknown[]): PbTypes.IArgument[] {
  return args.map((arg) => (isRef(arg) ? { reference: arg[REF] } : { value: encodeValue(arg) }));
}

const DEFAULT_TIMEOUT_MS = 60_000;

export class LatticeFaas {
  private nextCall = 1;
  private nextScheduler = 0;
  private readonly prefix: string = randomBytes(6).toString('base64url');
  private closed = false;
  readonly counters = { direct: 0, viaScheduler: 0, leases: 0, executorsLost: 0, capacityRetries: 0 };
  /** Leases on executors, and the direct calls sent with them (client/direct-calls.ts). */
  private readonly direct: DirectCalls;

  private constructor(
    readonly kvs: KvsClient,
    private readonly rpc: Rpc,
    private readonly options: ConnectOptions & { readonly routing: readonly string[]; readonly schedulers: readonly string[] },
    /** What the client's token says (unverified: the cluster checks it); none on an insecure cluster. */
    private readonly claims?: TokenClaims,
  ) {
    // An owner's call ids are in its namespace, and so its async calls' records and results.
    const owner = claims === undefined || claims.rights.includes('admin') ? undefined : claims.owner;
    this.prefix = owner === undefined ? this.prefix : `${owner}/${this.prefix}`;
    this.direct = new DirectCalls(rpc, this.counters, { enabled: options.directCalls !== false, answerSlackMs: options.answerSlackMs ?? 2000, defaultTimeoutMs: DEFAULT_TIMEOUT_MS });
  }

  /** The owner this client acts for (from its token), or undefined without one. */
  get owner(): string | undefined {
    return this.claims?.owner;
  }

  static async connect(options: ConnectOptions = {}): Promise<LatticeFaas> {
    // Flags/options > LFAAS_* > the `lfaas up` state file (client/cluster-file.ts).
    // Routing nodes given and no schedulers anywhere: the schedulers are discovered from the
    // routing nodes, and followed as they change (client/discovery.ts).
    const discovering = (options.routing?.length ?? 0) > 0 && (options.schedulers?.length ?? 0) === 0 && (process.env['LFAAS_SCHEDULERS'] ?? '') === '';
    const cluster = resolveCluster({ ...(options.routing === undefined ? {} : { routing: options.routing }), ...(options.schedulers === undefined ? {} : { schedulers: options.schedulers }), ...(options.token === undefined ? {} : { token: options.token }) }, discovering ? { needSchedulers: false } : {});
    if (cluster.schedulers.length === 0 && !discovering) throw new LfaasError(ErrorCode.SCHED_NO_CAPACITY, 'the client needs at least one scheduler address');
    const resolved = { ...options, routing: cluster.routing, schedulers: [...cluster.schedulers], ...(cluster.token === undefined ? {} : { token: cluster.token }) };
    const keyPair = clientKeyPair([...resolved.routing, ...resolved.schedulers], options.keyPair);
    const token = clientToken(resolved.token);
    const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const kvs = await KvsClient.connect({ routing: resolved.routing, keyPair, token: token ?? '', connectTimeoutMs, ...(options.host === undefined ? {} : { host: options.host }), ...(options.advertise === undefined ? {} : { advertise: options.advertise }) });
    const rpc = new Rpc(await bindTransport({ host: options.host ?? '127.0.0.1', ...(options.advertise === undefined ? {} : { advertise: options.advertise }), port: 0, keyPair }), systemClock, { pendingMax: 100_000, ...(token === undefined ? {} : { token }) });
    if (discovering) {
      try {
        resolved.schedulers.push(...(await discoverSchedulers(rpc, resolved.routing, Date.now() + Math.max(connectTimeoutMs, CONNECT_TIMEOUT_MS))));
      } catch (error) {
        await rpc.close();
        await rpc.transport.close();
        await kvs.close();
        throw error;
      }
      // Kept current in place; stops by itself once the client's Rpc is closed.
      new ServiceFollower(rpc, resolved.routing, resolved.schedulers);
    }
    if (connectTimeoutMs > 0) {
      try {
        await firstContact(rpc, resolved.schedulers, connectTimeoutMs, cluster.source);
      } catch (error) {
        await rpc.close();
        await rpc.transport.close();
        await kvs.close();
        throw error;
      }
    }
    return new LatticeFaas(kvs, rpc, resolved, token === undefined ? undefined : unverifiedClaims(token));
  }

  /**
   * A client over a transport and a KVS client already made, not bound here: the in-process test
   * harness (testing/) runs one on the in-memory network. `options` as for {@link connect}.
   */
  static over(kvs: KvsClient, transport: Transport, options: ConnectOptions & { readonly routing: readonly string[]; readonly schedulers: readonly string[] }): LatticeFaas {
    if (options.schedulers.length === 0) throw new LfaasError(ErrorCode.SCHED_NO_CAPACITY, 'the client needs at least one scheduler address');
    const token = clientToken(options.token);
    const rpc = new Rpc(transport, systemClock, { pendingMax: 100_000, ...(token === undefined ? {} : { token }) });
    return new LatticeFaas(kvs, rpc, options, token === undefined ? undefined : unverifiedClaims(token));
  }

  /** A typed handle of a function registered before (no request is made). */
  function<F extends AnyFunction, Name extends string = string>(name: Name, version = 0): FunctionHandle<F, Name> {
    return { name, version };
  }

  /**
   * Registers a function: `source` is a module path (bundled with esbuild) or `{ code }` (a
   * CommonJS body). Resolves with its handle at the new version.
   */
  async register<F extends AnyFunction, Name extends string = string>(name: Name, source: string | { readonly code: string }, options: RegisterOptions = {}): Promise<FunctionHandle<F, Name>> {
    // A module is bundled; code given as is goes through the same checks (it parses, imports no built-in or file, fits).
    const { code, sourceMap } = typeof source === 'string' ? await bundleFunction(source) : await checkFunctionCode(source.code);
    const response = await this.request({
      registerFunction: { spec: { name, code: Buffer.from(code, 'utf8'), sourceMap: sourceMap ?? '', memoryMb: options.memoryMb ?? 128, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, keepAliveMs: options.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS, keepAlivePolicy: options.keepAlive ?? 'fixed', reads: [...(options.reads ?? [])], concurrency: options.concurrency ?? 0 } },
    });
    const answer = response.registerFunctionResponse;
    if (answer?.error?.code) throw errorFromWireMessage(answer.error);
    // The name now means the new version: this client's calls of it go through a scheduler again.
    this.direct.drop((key) => key.startsWith(`f\u0000${name}\u0000`));
    return { name, version: answer?.version ?? 0 };
  }

  /** Calls a function and resolves with its result. */
  async call<F extends AnyFunction>(fn: FunctionHandle<F> | string, args: CallArgs<UserArgs<F>> | readonly unknown[] = [], options: CallOptions = {}): Promise<UserResult<F>> {
    const handle = typeof fn === 'string' ? { name: fn, version: 0 } : fn;
    // With a key: an async call (its record makes it run once), waited for here.
    if (options.idempotencyKey !== undefined) return (await this.callAsync<F>(handle, args, options)).result(options.signal === undefined ? {} : { signal: options.signal });
    let callId = this.callId();
    if (options.signal?.aborted === true) throw abortedError(`call ${callId}`, options.signal);
    const version = options.version ?? handle.version;
    const encoded = encodeArgs(args);
    const key = `f\u0000${handle.name}\u0000${version}\u0000${options.consistency ?? 'lww'}`;
    // A client span (client/trace-spans.ts): the request carries it on (a no-op without an SDK).
    const run = (): Promise<UserResult<F>> => traced('lfaas.call', () => ({ 'lfaas.function': handle.name, 'lfaas.version': version, 'lfaas.call.id': callId }), async (trace): Promise<UserResult<F>> => {
      const direct = await this.direct.send(key, callId, { [handle.name]: { args: encoded } }, CONSISTENCY[options.consistency ?? 'lww'], options.timeoutMs, trace);
      if (direct !== undefined) return this.resultOf(direct) as UserResult<F>;
      const answer = await this.viaScheduler(
        callId,
        (id) => {
          callId = id;
          return { callRequest: { callId: id, function: handle.name, version, args: encoded, consistency: CONSISTENCY[options.consistency ?? 'lww'], timeoutMs: options.timeoutMs ?? 0 }, ...(trace.length > 0 ? { traceId: trace } : {}) };
        },
        options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      );
      this.direct.take(key, answer?.lease);
      return this.resultOf(answer) as UserResult<F>;
    });
    return abortable(run(), options.signal, `call ${callId}`, () => this.cancel(callId));
  }

  /** Starts a call whose result lands in the KVS; resolves once the call is recorded. */
  async callAsync<F extends AnyFunction>(fn: FunctionHandle<F> | string, args: CallArgs<UserArgs<F>> | readonly unknown[] = [], options: CallOptions = {}): Promise<CallFuture<UserResult<F>>> {
    const handle = typeof fn === 'string' ? { name: fn, version: 0 } : fn;
    const idempotent = options.idempotencyKey !== undefined;
    const callId = idempotent ? this.idempotentCallId(`f:${handle.name}`, options.idempotencyKey) : this.callId();
    return this.startAsync<UserResult<F>>(
      callId,
      { callRequest: { callId, function: handle.name, version: options.version ?? handle.version, args: encodeArgs(args), consistency: CONSISTENCY[options.consistency ?? 'lww'], async: true, resultKey: resultKeyOf(callId), timeoutMs: options.timeoutMs ?? 0, ...(idempotent ? { idempotent } : {}) } },
      options.signal,
    );
  }

  /**
   * A typed callable of a registered function: `const square = faas.fn<typeof import('./square.js').default>('square')`,
   * then `await square(7)` (a number), `await square.async(8)` (a future), `square.with({ timeoutMs: 500 })`,
   * `square.handle` (for DAGs). No request is made here.
   */
  fn<F extends AnyFunction, Name extends string = string>(name: Name, options: CallOptions = {}): TypedFunction<F, Name> {
    const handle: FunctionHandle<F, Name> = { name, version: options.version ?? 0 };
    const callable = (...args: readonly unknown[]): Promise<UserResult<F>> => this.call<F>(handle, args, options);
    return Object.defineProperties(callable, {
      async: { value: (...args: readonly unknown[]) => this.callAsync<F>(handle, args, options) },
      with: { value: (more: CallOptions) => this.fn<F, Name>(name, { ...options, ...more }) },
      handle: { value: handle, enumerable: true },
    }) as unknown as TypedFunction<F, Name>;
  }

  /**
   * Cancels a call of this client's owner (any process's: call ids are in the owner's namespace;
   * another owner's is refused UNAUTHORISED). The schedulers (and, for a direct call in flight
   * here, its executor) abort its run: its functions see `ctx.signal` aborted, a runtime that does
   * not return within a short grace is replaced, its caller gets EXEC_CANCELLED, and an async
   * call's result says EXEC_CANCELLED (it is not dispatched again). Resolves whether a run was
   * found; a finished or unknown call is `false`, not an error.
   */
  async cancel(callId: string): Promise<boolean> {
    if (typeof callId !== 'string' || callId.length === 0) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'cancel takes a call id');
    const targets = new Set(this.options.schedulers);
    const executor = this.direct.executorOf(callId);
    if (executor !== undefined) targets.add(executor);
    const requests = [...targets].map((target) => this.rpc.request(target, { cancelCall: { callId } }, { timeoutMs: this.options.requestTimeoutMs ?? 10_000 }));
    // The first node that found the run answers for all: a dead scheduler does not hold it up.
    const found = Promise.any(requests.map(async (request) => ((await request).cancelCallResponse?.cancelled === true ? true : Promise.reject(new Error('not here')))));
    const all = Promise.allSettled(requests);
    if (await Promise.race([found.catch(() => false), all.then(() => false)])) return true;
    const answers = await all;
    let cancelled = false;
    let answered = false;
    let failure: LfaasError | undefined;
    for (const answer of answers) {
      if (answer.status === 'rejected') {
        failure ??= answer.reason as LfaasError;
        continue;
      }
      const response = answer.value.cancelCallResponse;
      if (response?.error?.code) failure ??= errorFromWireMessage(response.error);
      else {
        answered = true;
        cancelled ||= response?.cancelled === true;
      }
    }
    // One scheduler holding the run is enough; refused or unreachable everywhere is an error.
    if (!answered && failure !== undefined) throw failure;
    return cancelled;
  }

  /**
   * A future for an async call started elsewhere (another process of the same owner), by its
   * call id: `result()` resolves from the KVS (at once if the call finished). No request is made;
   * an id no call has waits (bound it with `result({ timeoutMs })` or a signal).
   */
  attach<R = unknown>(callId: string): CallFuture<R> {
    if (typeof callId !== 'string' || callId.length === 0) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'attach takes a call id');
    const watch = this.resultWatch<R>(callId);
    watch.readNow();
    return this.futureOf(callId, watch.outcome);
  }

  /** A KVS key's values as an async iterable (see {@link KvsClient.watch}). */
  watch(key: string, options: WatchOptions = {}): AsyncGenerator<AnyLattice, void, undefined> {
    return this.kvs.watch(key, options);
  }

  /** `await using faas = await LatticeFaas.connect(...)`: closed when the scope ends. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Registers a DAG built with `dag(...)`. */
  async registerDag<In, Out>(definition: DagDefinition<In, Out>): Promise<DagHandle<In, Out>> {
    this.direct.drop((key) => key.startsWith(`d\u0000${definition.name}\u0000`));
    const response = await this.request({ registerDag: { spec: { name: definition.name, functions: [...definition.functions], edges: definition.edges.map(([from, to]) => ({ fromFunction: from, toFunction: to })) } } });
    if (response.done?.error?.code) throw errorFromWireMessage(response.done.error);
    return { name: definition.name };
  }

  /** A typed handle of a DAG registered before. */
  dagHandle<In = Record<string, unknown[]>, Out = unknown>(name: string): DagHandle<In, Out> {
    return { name };
  }

  /** Calls a DAG with per-function arguments; resolves with the sink's result. */
  async callDag<In, Out>(dag: DagHandle<In, Out> | string, args: NoInfer<In>, options: CallOptions = {}): Promise<Out> {
    const name = typeof dag === 'string' ? dag : dag.name;
    if (options.idempotencyKey !== undefined) return (await this.callDagAsync(name, args, options)).result(options.signal === undefined ? {} : { signal: options.signal }) as Promise<Out>;
    let callId = this.callId();
    if (options.signal?.aborted === true) throw abortedError(`call ${callId}`, options.signal);
    const encoded = this.dagArgs(args);
    const key = `d\u0000${name}\u0000${options.consistency ?? 'lww'}`;
    const run = (): Promise<Out> => traced('lfaas.dag_call', () => ({ 'lfaas.dag': name, 'lfaas.call.id': callId }), async (trace): Promise<Out> => {
      const direct = await this.direct.send(key, callId, encoded, CONSISTENCY[options.consistency ?? 'lww'], options.timeoutMs, trace);
      if (direct !== undefined) return this.resultOf(direct) as Out;
      const answer = await this.viaScheduler(
        callId,
        (id) => {
          callId = id;
          return { dagCall: { callId: id, dag: name, args: encoded, consistency: CONSISTENCY[options.consistency ?? 'lww'], timeoutMs: options.timeoutMs ?? 0 }, ...(trace.length > 0 ? { traceId: trace } : {}) };
        },
        options.timeoutMs ?? 2 * DEFAULT_TIMEOUT_MS,
      );
      this.direct.take(key, answer?.lease);
      return this.resultOf(answer) as Out;
    });
    return abortable(run(), options.signal, `call ${callId}`, () => this.cancel(callId));
  }

  /** Starts a DAG call whose result lands in the KVS. */
  async callDagAsync<In, Out>(dag: DagHandle<In, Out> | string, args: NoInfer<In>, options: CallOptions = {}): Promise<CallFuture<Out>> {
    const name = typeof dag === 'string' ? dag : dag.name;
    const idempotent = options.idempotencyKey !== undefined;
    const callId = idempotent ? this.idempotentCallId(`d:${name}`, options.idempotencyKey) : this.callId();
    return this.startAsync<Out>(
      callId,
      { dagCall: { callId, dag: name, args: this.dagArgs(args), consistency: CONSISTENCY[options.consistency ?? 'lww'], async: true, resultKey: resultKeyOf(callId), timeoutMs: options.timeoutMs ?? 0, ...(idempotent ? { idempotent } : {}) } },
      options.signal,
    );
  }

  /**
   * Every registered function, or those of a namespace (`alice/`), or the one named, with its
   * versions. An owner's client lists its own namespace by default (an admin's, everything).
   */
  async functions(name = this.ownNamespace()): Promise<FunctionInfo[]> {
    const response = await this.request({ listFunctions: { name } });
    const list = response.functionList;
    if (list?.error?.code) throw errorFromWireMessage(list.error);
    return (list?.functions ?? []).map((info) => ({
      name: info.name ?? '',
      latest: info.latest ?? 0,
      versions: info.versions ?? [],
      memoryMb: info.memoryMb ?? 0,
      timeoutMs: info.timeoutMs ?? 0,
      keepAliveMs: info.keepAliveMs ?? 0,
      keepAlive: info.keepAlivePolicy === 'adaptive' ? 'adaptive' : 'fixed',
      reads: info.reads ?? [],
      codeBytes: info.codeBytes ?? 0,
      registeredAtMs: Number(info.registeredAtMs ?? 0),
    }));
  }

  async describe(name: string): Promise<FunctionInfo> {
    const [info] = await this.functions(name);
    if (info === undefined) throw new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `no function is named ${JSON.stringify(name)}`);
    return info;
  }

  /** Deletes one version, or every version (0). */
  async deleteFunction(name: string, version = 0): Promise<void> {
    this.direct.drop((key) => key.startsWith(`f\u0000${name}\u0000`));
    const response = await this.request({ deleteFunction: { name, version } });
    if (response.done?.error?.code) throw errorFromWireMessage(response.done.error);
  }

  /** Every DAG, or those of a namespace (`alice/`), or the one named; an owner's own by default. */
  async dags(name = this.ownNamespace()): Promise<DagDefinition[]> {
    const response = await this.request({ listDags: { name } });
    const list = response.dagList;
    if (list?.error?.code) throw errorFromWireMessage(list.error);
    return (list?.dags ?? []).map((spec) => ({ name: spec.name ?? '', functions: spec.functions ?? [], edges: (spec.edges ?? []).map((edge) => [edge.fromFunction ?? '', edge.toFunction ?? ''] as const) }));
  }

  /**
   * What functions logged (console.*, ctx.log), in time order, from every live executor
   * (client/observe.ts); `follow` keeps reading new records until `signal` aborts. An owner reads
   * its own namespace's functions (the default), the admin everything.
   *
   * @example
   * ```ts
   * for await (const record of faas.logs({ function: 'alice/resize', follow: true, signal })) console.log(record.callId, record.text);
   * ```
   */
  logs(options: LogsOptions = {}): AsyncGenerator<FunctionLogEntry> {
    return readLogs(this.observer(), options);
  }

  /** Recent and running calls with their state (queued, running, succeeded, failed, timed-out, cancelled), the most recent first. */
  invocations(options: InvocationsOptions = {}): Promise<InvocationEntry[]> {
    return listInvocations(this.observer(), options);
  }

  private observer(): ObserveClient {
    const timeoutMs = this.options.requestTimeoutMs ?? 10_000;
    return { request: (to, body, requestTimeoutMs) => this.rpc.request(to, body, { timeoutMs: requestTimeoutMs }), schedulers: this.options.schedulers, namespace: this.ownNamespace(), requestTimeoutMs: Math.min(timeoutMs, 5000) };
  }

  /**
   * The services the routing nodes list now (discovery, docs/multi-host.md): schedulers and
   * monitors by transport address, ingresses by HTTP URL; each list sorted, empty when none is
   * announced (or no routing node answered within `timeoutMs`).
   *
   * @example
   * ```ts
   * const { ingresses } = await faas.services(); // ['http://10.0.0.7:8080']
   * ```
   */
  async services(timeoutMs = 2000): Promise<ServiceList> {
    return askServices(this.rpc, this.options.routing, timeoutMs);
  }

  async deleteDag(name: string): Promise<void> {
    this.direct.drop((key) => key.startsWith(`d\u0000${name}\u0000`));
    const response = await this.request({ deleteDag: { name } });
    if (response.done?.error?.code) throw errorFromWireMessage(response.done.error);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.direct.close();
    await this.rpc.close();
    await this.rpc.transport.close();
    await this.kvs.close();
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * A sync call through a scheduler. Refused SCHED_NO_CAPACITY with a retry-after hint (nothing
   * ran), it is sent again after the hint (with jitter: 0.5-1.5x), under a new call id (the refused
   * one may still be on the scheduler's books until the executor reports), `capacityRetries` times
   * at most and only while the wait fits in the call's budget; then the refusal is the answer.
   */
  private async viaScheduler(firstCallId: string, body: (callId: string) => PbTypes.IEnvelope, timeoutMs: number): Promise<PbTypes.ICallResponse | null | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; ; attempt++) {
      this.counters.viaScheduler++;
      const request = body(attempt === 0 ? firstCallId : this.callId());
      const answer = (await this.rpc.request(this.scheduler(), request, { timeoutMs: timeoutMs + (this.options.answerSlackMs ?? 2000) })).callResponse;
      const error = answer?.error;
      const hint = error?.code === pb.ErrorCode.SCHED_NO_CAPACITY ? (error.retryAfterMs ?? 0) : 0;
      const waitMs = Math.round(hint * (0.5 + Math.random()));
      if (hint === 0 || attempt >= (this.options.capacityRetries ?? 5) || Date.now() + waitMs >= deadline) return answer;
      this.counters.capacityRetries++;
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }

  private ownNamespace(): string {
    return this.claims === undefined || this.claims.rights.includes('admin') ? '' : `${this.claims.owner}/`;
  }

  private callId(): string {
    return `${this.prefix}-${(this.nextCall++).toString(36)}`;
  }

  /** The scheduler a call id picks (the same in every client with the same list). */
  /**
   * The scheduler a call id picks, by rendezvous hashing: the scheduler whose hash with the id is
   * highest. Clients listing the same schedulers in any order pick the same one, and clients
   * whose lists differ still agree whenever the winner is in both.
   */
  private schedulerOf(callId: string): string {
    let best = this.options.schedulers[0]!;
    let bestWeight = -1;
    for (const address of this.options.schedulers) {
      const weight = createHash('sha256').update(callId).update('\u0000').update(address).digest().readUInt32BE(0);
      if (weight > bestWeight || (weight === bestWeight && address < best)) [best, bestWeight] = [address, weight];
    }
    return best;
  }

  private scheduler(): string {
    const schedulers = this.options.schedulers;
    const address = schedulers[this.nextScheduler % schedulers.length]!;
    this.nextScheduler++;
    return address;
  }

  private request(body: PbTypes.IEnvelope): Promise<PbTypes.Envelope> {
    return this.rpc.request(this.scheduler(), body, { timeoutMs: this.options.requestTimeoutMs ?? 10_000 });
  }

  private dagArgs(args: unknown): Record<string, PbTypes.IArguments> {
    const out: Record<string, PbTypes.IArguments> = {};
    for (const [name, list] of Object.entries((args ?? {}) as Record<string, unknown>)) {
      if (!Array.isArray(list)) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the arguments of ${name} must be an array`);
      out[name] = { args: encodeArgs(list) };
    }
    return out;
  }

  private resultOf(response: PbTypes.ICallResponse | null | undefined): unknown {
    if (response?.error?.code) throw errorFromWireMessage(response.error);
    const result = response?.result;
    return result === undefined || result === null || result.byteLength === 0 ? undefined : decodeValue(result);
  }

  /**
   * Subscribes to the result key first, then sends the call: the result cannot land unseen. One
   * read after the acceptance covers a result written before the subscription took effect. An
   * aborted `signal` (before the call is accepted, or after, until its result) cancels the call.
   */
  private startAsync<R>(callId: string, body: PbTypes.IEnvelope, signal?: AbortSignal): Promise<CallFuture<R>> {
    // A client span until the call is accepted; the request carries it on (client/trace-spans.ts).
    const attributes = (): Record<string, string> => ({ 'lfaas.call.id': callId, ...(body.dagCall ? { 'lfaas.dag': body.dagCall.dag ?? '' } : { 'lfaas.function': body.callRequest?.function ?? '' }) });
    return traced('lfaas.call_async', attributes, (trace) => {
      if (trace.length > 0) body.traceId = trace;
      return this.startAsyncTraced<R>(callId, body, signal);
    });
  }

  private async startAsyncTraced<R>(callId: string, body: PbTypes.IEnvelope, signal?: AbortSignal): Promise<CallFuture<R>> {
    if (signal?.aborted === true) throw abortedError(`call ${callId}`, signal);
    const watch = this.resultWatch<R>(callId);
    // An idempotent call goes to the scheduler its id picks: concurrent starts of it (from any client
    // with the same scheduler list) meet there, where the second waits for the first's record check.
    const idempotent = body.callRequest?.idempotent === true || body.dagCall?.idempotent === true;
    const sent = idempotent ? this.rpc.request(this.schedulerOf(callId), body, { timeoutMs: this.options.requestTimeoutMs ?? 10_000 }) : this.request(body);
    try {
      const response = await abortable(sent, signal, `call ${callId}`, () => this.cancel(callId));
      if (response.callResponse?.error?.code) throw errorFromWireMessage(response.callResponse.error);
    } catch (error) {
      watch.close();
      throw error;
    }
    watch.readNow();
    if (signal !== undefined) {
      const onAbort = (): void => void this.cancel(callId).catch(() => undefined);
      signal.addEventListener('abort', onAbort, { once: true });
      const forget = (): void => signal.removeEventListener('abort', onAbort);
      watch.outcome.then(forget, forget);
    }
    return this.futureOf(callId, watch.outcome);
  }

  /**
   * The outcome of an async call, from its result key: subscribed now, `readNow()` reads it once
   * (a result written before the subscription took effect); the subscription ends with the outcome.
   */
  private resultWatch<R>(callId: string): { readonly outcome: Promise<R>; close(): void; readNow(): void } {
    const resultKey = resultKeyOf(callId);
    let settle: { resolve: (value: R) => void; reject: (error: LfaasError) => void } | undefined;
    const outcome = new Promise<R>((resolve, reject) => {
      settle = { resolve, reject };
    });
    outcome.catch(() => {});
    let done = false;
    const take = (value: AnyLattice | undefined): void => {
      if (done || value === undefined) return;
      let record;
      try {
        record = resultRecordOf(value);
      } catch (error) {
        done = true;
        subscription.close();
        settle!.reject(error as LfaasError);
        return;
      }
      if (record === undefined) return;
      done = true;
      subscription.close();
      if (record.ok) settle!.resolve(decodeValue(record.value) as R);
      else settle!.reject(errorFromWireMessage({ code: pb.ErrorCode[record.code as keyof typeof pb.ErrorCode] ?? pb.ErrorCode.INTERNAL, message: record.message, ...(record.stack === undefined ? {} : { stack: record.stack }) }));
    };
    const subscription = this.kvs.subscribe([resultKey], (_key, value) => take(value), 30_000);
    return {
      outcome,
      close: () => subscription.close(),
      readNow: () => {
        this.kvs.get(resultKey).then(take, (error: unknown) => {
          // Not allowed to read it (another owner's call): that is the answer. Others: the subscription still waits.
          if (done || (error as LfaasError).code !== ErrorCode.UNAUTHORISED) return;
          done = true;
          subscription.close();
          settle!.reject(error as LfaasError);
        });
      },
    };
  }

  private futureOf<R>(callId: string, outcome: Promise<R>): CallFuture<R> {
    return {
      callId,
      resultKey: resultKeyOf(callId),
      result: (options = {}) => {
        let waiting = outcome;
        if (options.timeoutMs !== undefined) {
          const timeoutMs = options.timeoutMs;
          waiting = new Promise<R>((resolve, reject) => {
            const timer = setTimeout(() => reject(new LfaasError(ErrorCode.TRANSPORT_TIMEOUT, `no result for ${callId} in ${timeoutMs} ms`)), timeoutMs);
            outcome.then(
              (value) => {
                clearTimeout(timer);
                resolve(value);
              },
              (error: unknown) => {
                clearTimeout(timer);
                reject(error as Error);
              },
            );
          });
        }
        return abortable(waiting, options.signal, `the wait for ${callId}`, () => this.cancel(callId));
      },
      cancel: () => this.cancel(callId),
    };
  }

  /**
   * The call id of an idempotency key: the owner's namespace, then a digest of the function (or
   * DAG) and the key, so the same key of the same owner and function names the same call from any
   * process, and the scheduler finds its record.
   */
  private idempotentCallId(scope: string, key: string | undefined): string {
    if (typeof key !== 'string' || key.length === 0 || key.length > 256) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'an idempotency key is 1 to 256 characters');
    return `${this.ownNamespace()}idem-${createHash('sha256').update(`${scope}\u0000${key}`).digest('base64url').slice(0, 32)}`;
  }
}
