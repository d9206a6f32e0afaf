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
import { randomBytes } from 'node:crypto';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { Rpc, ZmqTransport, decodeValue, encodeValue, errorFromWireMessage, pb, resultKeyOf, resultRecordOf, systemClock } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';
import { bundleFunction } from './bundle.js';
import type { AnyFunction, DagDefinition, DagHandle, FunctionHandle, UserArgs, UserResult } from './dag-builder.js';
import { KvsClient } from './kvs-client.js';

export type Consistency = 'lww' | 'repeatable-read' | 'causal';

const CONSISTENCY: Record<Consistency, number> = { lww: pb.Consistency.LWW, 'repeatable-read': pb.Consistency.REPEATABLE_READ, causal: pb.Consistency.CAUSAL };

export interface ConnectOptions {
  readonly routing: readonly string[];
  readonly schedulers: readonly string[];
  /** The interface the client's sockets bind to. */
  readonly host?: string;
  /** Extra time the client waits beyond a call's own timeout before it gives up on an answer. */
  readonly answerSlackMs?: number;
  /** For registry requests (register, list, delete). */
  readonly requestTimeoutMs?: number;
}

export interface CallOptions {
  /** 0 or absent: the latest version. */
  readonly version?: number;
  readonly consistency?: Consistency;
  /** The call's budget (default: the function's own timeout; for a DAG, the sum of its functions'). */
  readonly timeoutMs?: number;
}

export interface RegisterOptions {
  readonly memoryMb?: number;
  readonly timeoutMs?: number;
  readonly keepAliveMs?: number;
}

/** An async call in flight: its result arrives through the KVS. */
export interface CallFuture<R> {
  readonly callId: string;
  readonly resultKey: string;
  /** Resolves with the result, or rejects with the call's typed error (or TRANSPORT_TIMEOUT after `timeoutMs`). */
  result(options?: { readonly timeoutMs?: number }): Promise<R>;
}

export interface FunctionInfo {
  readonly name: string;
  readonly latest: number;
  readonly versions: readonly number[];
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly keepAliveMs: number;
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
  private readonly prefix = randomBytes(6).toString('base64url');
  private closed = false;

  private constructor(
    readonly kvs: KvsClient,
    private readonly rpc: Rpc,
    private readonly options: ConnectOptions,
  ) {}

  static async connect(options: ConnectOptions): Promise<LatticeFaas> {
    if (options.schedulers.length === 0) throw new LfaasError(ErrorCode.SCHED_NO_CAPACITY, 'the client needs at least one scheduler address');
    const kvs = await KvsClient.connect({ routing: options.routing, ...(options.host === undefined ? {} : { host: options.host }) });
    const rpc = new Rpc(await ZmqTransport.bind({ host: options.host ?? '127.0.0.1', port: 0 }), systemClock, { pendingMax: 100_000 });
    return new LatticeFaas(kvs, rpc, options);
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
    const code = typeof source === 'string' ? (await bundleFunction(source)).code : source.code;
    const response = await this.request({
      registerFunction: { spec: { name, code: Buffer.from(code, 'utf8'), memoryMb: options.memoryMb ?? 128, timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, keepAliveMs: options.keepAliveMs ?? 600_000 } },
    });
    const answer = response.registerFunctionResponse;
    if (answer?.error?.code) throw errorFromWireMessage(answer.error);
    return { name, version: answer?.version ?? 0 };
  }

  /** Calls a function and resolves with its result. */
  async call<F extends AnyFunction>(fn: FunctionHandle<F> | string, args: CallArgs<UserArgs<F>> | readonly unknown[] = [], options: CallOptions = {}): Promise<UserResult<F>> {
    const handle = typeof fn === 'string' ? { name: fn, version: 0 } : fn;
    const callId = this.callId();
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const response = await this.rpc.request(
      this.scheduler(),
      { callRequest: { callId, function: handle.name, version: options.version ?? handle.version, args: encodeArgs(args), consistency: CONSISTENCY[options.consistency ?? 'lww'], timeoutMs: options.timeoutMs ?? 0 } },
      { timeoutMs: timeoutMs + (this.options.answerSlackMs ?? 2000) },
    );
    return this.resultOf(response.callResponse) as UserResult<F>;
  }

  /** Starts a call whose result lands in the KVS; resolves once the call is recorded. */
  async callAsync<F extends AnyFunction>(fn: FunctionHandle<F> | string, args: CallArgs<UserArgs<F>> | readonly unknown[] = [], options: CallOptions = {}): Promise<CallFuture<UserResult<F>>> {
    const handle = typeof fn === 'string' ? { name: fn, version: 0 } : fn;
    const callId = this.callId();
    return this.startAsync<UserResult<F>>(callId, { callRequest: { callId, function: handle.name, version: options.version ?? handle.version, args: encodeArgs(args), consistency: CONSISTENCY[options.consistency ?? 'lww'], async: true, resultKey: resultKeyOf(callId), timeoutMs: options.timeoutMs ?? 0 } });
  }

  /** Registers a DAG built with `dag(...)`. */
  async registerDag<In, Out>(definition: DagDefinition<In, Out>): Promise<DagHandle<In, Out>> {
    const response = await this.request({ registerDag: { spec: { name: definition.name, functions: [...definition.functions], edges: definition.edges.map(([from, to]) => ({ fromFunction: from, toFunction: to })) } } });
    if (response.done?.error?.code) throw errorFromWireMessage(response.done.error);
    return { name: definition.name };
  }

  /** A typed handle of a DAG registered before. */
  dagHandle<In = Record<string, unknown[]>, Out = unknown>(name: string): DagHandle<In, Out> {
    return { name };
  }

  /** Calls a DAG with per-function arguments; resolves with the sink's result. */
  async callDag<In, Out>(dag: DagHandle<In, Out> | string, args: In, options: CallOptions = {}): Promise<Out> {
    const name = typeof dag === 'string' ? dag : dag.name;
    const callId = this.callId();
    const timeoutMs = options.timeoutMs ?? 2 * DEFAULT_TIMEOUT_MS;
    const response = await this.rpc.request(
      this.scheduler(),
      { dagCall: { callId, dag: name, args: this.dagArgs(args), consistency: CONSISTENCY[options.consistency ?? 'lww'], timeoutMs: options.timeoutMs ?? 0 } },
      { timeoutMs: timeoutMs + (this.options.answerSlackMs ?? 2000) },
    );
    return this.resultOf(response.callResponse) as Out;
  }

  /** Starts a DAG call whose result lands in the KVS. */
  async callDagAsync<In, Out>(dag: DagHandle<In, Out> | string, args: In, options: CallOptions = {}): Promise<CallFuture<Out>> {
    const name = typeof dag === 'string' ? dag : dag.name;
    const callId = this.callId();
    return this.startAsync<Out>(callId, { dagCall: { callId, dag: name, args: this.dagArgs(args), consistency: CONSISTENCY[options.consistency ?? 'lww'], async: true, resultKey: resultKeyOf(callId), timeoutMs: options.timeoutMs ?? 0 } });
  }

  /** Every registered function (or the one named), with its versions. */
  async functions(name = ''): Promise<FunctionInfo[]> {
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
    const response = await this.request({ deleteFunction: { name, version } });
    if (response.done?.error?.code) throw errorFromWireMessage(response.done.error);
  }

  async dags(name = ''): Promise<DagDefinition[]> {
    const response = await this.request({ listDags: { name } });
    const list = response.dagList;
    if (list?.error?.code) throw errorFromWireMessage(list.error);
    return (list?.dags ?? []).map((spec) => ({ name: spec.name ?? '', functions: spec.functions ?? [], edges: (spec.edges ?? []).map((edge) => [edge.fromFunction ?? '', edge.toFunction ?? ''] as const) }));
  }

  async deleteDag(name: string): Promise<void> {
    const response = await this.request({ deleteDag: { name } });
    if (response.done?.error?.code) throw errorFromWireMessage(response.done.error);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.rpc.close();
    await this.rpc.transport.close();
    await this.kvs.close();
  }

  // ---- internals -----------------------------------------------------------------------------

  private callId(): string {
    return `${this.prefix}-${(this.nextCall++).toString(36)}`;
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
   * read after the acceptance covers a result written before the subscription took effect.
   */
  private async startAsync<R>(callId: string, body: PbTypes.IEnvelope): Promise<CallFuture<R>> {
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
        settle!.reject(error as LfaasError);
        return;
      }
      if (record === undefined) return;
      done = true;
      subscription.close();
      if (record.ok) settle!.resolve(decodeValue(record.value) as R);
      else settle!.reject(errorFromWireMessage({ code: pb.ErrorCode[record.code as keyof typeof pb.ErrorCode] ?? pb.ErrorCode.INTERNAL, message: record.message }));
    };
    const subscription = this.kvs.subscribe([resultKey], (_key, value) => take(value), 30_000);
    try {
      const response = await this.request(body);
      if (response.callResponse?.error?.code) throw errorFromWireMessage(response.callResponse.error);
    } catch (error) {
      subscription.close();
      throw error;
    }
    this.kvs.get(resultKey).then(take, () => {});
    return {
      callId,
      resultKey,
      result: (options = {}) => {
        if (options.timeoutMs === undefined) return outcome;
        return new Promise<R>((resolve, reject) => {
          const timer = setTimeout(() => reject(new LfaasError(ErrorCode.TRANSPORT_TIMEOUT, `no result for ${callId} in ${options.timeoutMs} ms`)), options.timeoutMs);
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
      },
    };
  }
}
