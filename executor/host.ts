/**
 * The executor's I/O side: the tasks the executor machine hands its shell (`MachineTasks`). It
 * owns the runtime pool, the cache, the run scopes of repeatable-read and causal runs, the
 * mailboxes, and an Rpc of its own for the requests a running function makes of other executors
 * (pinned versions of its run). In the simulator, a simulated host stands in for this one.
 *
 * Tasks (see {@link ExecutorTask}):
 * - `run`: fetch the function's code (from the KVS, once), resolve `ref(key)` arguments through
 *   the run's scope, run the function in the pool with the upstream results first, and answer
 *   its msgpack result with the run's cut;
 * - `prepare`: fetch code and specialise a runtime ahead of calls (pinning);
 * - `warm`: a function of a DAG run placed here that waits for its parents' triggers: its code
 *   is fetched, a runtime specialised and its keys prefetched while the parents run (prewarm);
 * - prefetch (part of `run` and `warm`): the keys a run will read, its `ref(key)` arguments and
 *   the function's declared `reads`, are read into the cache as soon as the run is scheduled,
 *   all at once, beside the code fetch and the runtime's start. Only the cache is filled, never a
 *   run's scope: a repeatable-read run pins a key, and a causal run checks it against its cut,
 *   when the function reads it, exactly as without prefetch. A `reads` prefix (`user/*`) stands
 *   for the keys under it that the function read in earlier runs here (the KVS has no scan);
 * - `deliver`: put an invocation message in a mailbox;
 * - `pinned`: the version of a key this executor's cache holds for a run;
 * - `endRun`: the run is over here (drop its scope and mailboxes);
 * - `cancel`: abort the run's functions running here (their `ctx.signal`; the pool replaces a
 *   runtime that does not settle within its grace); they fail EXEC_CANCELLED;
 * - `status`: what the heartbeat tells schedulers (warm functions, cached keys, load);
 * - `writeResult`: an async call's result into the KVS, idempotently (a Priority by attempt).
 */
import { ErrorCode, HybridClock, LfaasError, Priority, decodeLattice, ensureLfaasError } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { DEFAULT_MAX_VALUE_BYTES, encodeValue, functionKey, functionKeyError, functionRecordOf, ownerOfName } from '../protocol/index.js';
import { errorFromWireMessage } from '../protocol/index.js';
import type { MachineTasks, PbTypes, Rpc, TensorValue } from '../protocol/index.js';
import { plainEncodingOf } from './cache.js';
import type { CacheBackend, ExecutorCache } from './cache.js';
import { CounterIncrements } from './increments.js';
import type { InferenceService } from './inference.js';
import { Mailboxes } from './mailboxes.js';
import type { FunctionLogBuffer, LogQuery } from './function-logs.js';
import type { FunctionCode, FunctionHost, RuntimePool } from './runtime-pool.js';
import { RunScope } from './run-scope.js';
import { tracedHost } from './host-spans.js';
import type { ConsistencyMode, ScopeEnvironment } from './run-scope.js';

export type ExecutorTask =
  | {
      readonly op: 'run';
      readonly runId: string;
      readonly name: string;
      readonly version: number;
      readonly args: readonly PbTypes.IArgument[];
      /** msgpack results of the parents, in the DAG's order. */
      readonly upstream: readonly Uint8Array[];
      readonly cut: readonly PbTypes.ICutEntry[];
      readonly mode: ConsistencyMode;
      /** What is left of the run's budget. */
      readonly timeoutMs: number;
      /** Function name -> executor address, for messages between the run's invocations. */
      readonly placement: Readonly<Record<string, string>>;
      /** The trace field of the run's span (protocol/trace-context.ts): its KVS reads and writes are its children. */
      readonly trace?: string;
    }
  | { readonly op: 'prepare'; readonly functions: readonly { readonly name: string; readonly version: number }[] }
  | { readonly op: 'warm'; readonly runId: string; readonly name: string; readonly version: number; readonly args: readonly PbTypes.IArgument[] }
  | { readonly op: 'deliver'; readonly runId: string; readonly target: string; readonly payload: Uint8Array }
  /** `first`: the run's first read of the key, asked of the run's holder (it pins the key if the run has not). */
  | { readonly op: 'pinned'; readonly runId: string; readonly key: string; readonly first?: boolean }
  | { readonly op: 'endRun'; readonly runId: string }
  | { readonly op: 'cancel'; readonly runId: string }
  | { readonly op: 'status' }
  /** The function log records a reader asks for (executor/function-logs.ts), answered as a `LogsReply`. */
  | { readonly op: 'logs'; readonly query: LogQuery }
  | { readonly op: 'writeResult'; readonly key: string; readonly attempt: number; readonly value?: Uint8Array; readonly error?: { readonly code: string; readonly message: string; readonly stack?: string } };

/** A function version as this executor runs it: its code and limits, and the keys it declares it reads. */
export type HostedFunction = FunctionCode & { readonly reads: readonly string[]; readonly keepAlivePolicy: 'fixed' | 'adaptive' };

export interface RunOutcome {
  readonly value: Uint8Array;
  readonly cut: PbTypes.ICutEntry[];
  /** Traced runs only: no runtime was warm for the function when it was sent to the pool. */
  readonly cold?: boolean;
}

export interface HostStatus {
  readonly warm: string[];
  readonly keys: string[];
  readonly capacity: number;
  readonly load: number;
  /** Stems waiting: runtimes idle with no function loaded (absent: not counted). */
  readonly stems?: number;
}

export interface ExecutorHostOptions {
  readonly self: string;
  readonly pool: RuntimePool;
  readonly cache: ExecutorCache;
  /** The KVS itself, for result writes. */
  readonly kvs: CacheBackend;
  /** Requests to other executors. */
  readonly rpc: Rpc;
  readonly statusKeysMax?: number;
  readonly scopesMax?: number;
  readonly specsMax?: number;
  readonly causalWaitMs?: number;
  readonly requestTimeoutMs?: number;
  /** Prefetch the keys a run will read when it is scheduled (default true; off for comparisons). */
  readonly prefetch?: boolean;
  /** `ctx.infer`: where models run (absent: the executor runs none, and infer fails SCHED_NO_CAPACITY). */
  readonly inference?: Pick<InferenceService, 'infer'>;
  /** The functions' log records, kept for readers (absent: a `logs` task answers none). */
  readonly functionLogs?: Pick<FunctionLogBuffer, 'query'>;
}

/** Keys prefetched for one function's run, at most; keys remembered under a function's `reads` prefixes, at most. */
const PREFETCH_KEYS_MAX = 64;
const PREFIX_KEYS_MAX = 64;
/** Functions whose prefix keys are remembered, and runs whose prefetched keys are tracked, at most. */
const PREFIX_FUNCTIONS_MAX = 1024;
const PREFETCH_RUNS_MAX = 4096;

/** The largest argument array header we build by hand (msgpack array16). */
const ARRAY16_MAX = 0xffff;

/** A msgpack array of already-encoded elements: the header, then the elements as they are. */
function concatArray(items: readonly Uint8Array[]): Uint8Array {
  if (items.length > ARRAY16_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `${items.length} arguments; at most ${ARRAY16_MAX}`);
  const header = items.length < 16 ? Uint8Array.of(0x90 | items.length) : Uint8Array.of(0xdc, items.length >> 8, items.length & 0xff);
  let length = header.byteLength;
  for (const item of items) length += item.byteLength;
  const out = new Uint8Array(length);
  out.set(header, 0);
  let offset = header.byteLength;
  for (const item of items) {
    out.set(item, offset);
    offset += item.byteLength;
  }
  return out;
}

export class ExecutorHost implements MachineTasks {
  private readonly specs = new Map<string, Promise<HostedFunction>>();
  /** The specs fetched (same bound as `specs`). */
  private readonly ready = new Map<string, HostedFunction>();
  private readonly scopes = new Map<string, RunScope>();
  /** Runs with functions running here: the controller a `cancel` aborts, and how many run. */
  private readonly running = new Map<string, { readonly controller: AbortController; active: number }>();
  /** Runs cancelled before a function of theirs reached the pool (a code fetch, a prefetch): bounded, oldest out. */
  private readonly cancelledEarly = new Set<string>();
  readonly mailboxes = new Mailboxes();
  /** `ctx.increment`: this executor's writes of Counters. */
  readonly increments: CounterIncrements;
  private readonly clock: HybridClock;
  private readonly env: ScopeEnvironment;
  /** Prewarms in flight, by function version: a trigger that arrives meanwhile waits for it rather than start a second runtime. */
  private readonly warming = new Map<string, Promise<void>>();
  /** Per function name, the keys it read under its `reads` prefixes (most recent last). */
  private readonly prefixKeys = new Map<string, Set<string>>();
  /** Per `runId\0function`, the keys prefetched for it not yet read by it. */
  private readonly prefetchedFor = new Map<string, Set<string>>();
  readonly counters = { warms: 0, warmFailures: 0, prefetched: 0, prefetchFailures: 0, prefetchUsed: 0, prefetchRefused: 0, codeFetches: 0 };
  /** Time spent reading function records from the KVS (ms): the code-fetch stage of cold starts. */
  codeFetchMs = 0;

  constructor(private readonly options: ExecutorHostOptions) {
    this.clock = new HybridClock(options.self, () => Date.now());
    this.increments = new CounterIncrements(options.cache, options.self);
    this.env = {
      cache: options.cache,
      clock: this.clock,
      self: options.self,
      writerId: options.self,
      causalWaitMs: options.causalWaitMs ?? 2000,
      fetchPinned: (holder, runId, key, first) => this.fetchPinned(holder, runId, key, first),
      // Not through the cache: what a holder reads for the run's other executors must not make
      // it look like it caches the key (placement follows the keys executors cache).
      readUncached: (key) => options.kvs.get(key),
    };
  }

  run(task: unknown, done: (error: Error | undefined, result?: unknown) => void): void {
    this.perform(task as ExecutorTask).then(
      (result) => done(undefined, result),
      (error: unknown) => done(ensureLfaasError(error)),
    );
  }

  private async perform(task: ExecutorTask): Promise<unknown> {
    switch (task.op) {
      case 'run':
        return this.runFunction(task);
      case 'prepare':
        await Promise.all(task.functions.map(async (ref) => this.options.pool.prepare(await this.spec(ref.name, ref.version))));
        return undefined;
      case 'warm':
        await this.warm(task);
        return undefined;
      case 'deliver':
        this.mailboxes.deliver(task.runId, task.target, task.payload);
        return undefined;
      case 'pinned': {
        if (task.first === true) return (await this.scopeFor(task.runId, 'repeatable-read').pinFirst(task.key))?.encode();
        const scope = this.scopes.get(task.runId);
        if (scope === undefined) throw new LfaasError(ErrorCode.GONE, `run ${task.runId} holds no versions here`);
        return scope.pinned(task.key)?.encode();
      }
      case 'cancel': {
        const running = this.running.get(task.runId);
        if (running !== undefined) running.controller.abort();
        else {
          this.cancelledEarly.add(task.runId);
          if (this.cancelledEarly.size > 1024) this.cancelledEarly.delete(this.cancelledEarly.values().next().value!);
        }
        return undefined;
      }
      case 'endRun':
        this.scopes.delete(task.runId);
        this.mailboxes.dropRun(task.runId);
        return undefined;
      case 'logs': {
        const found = this.options.functionLogs?.query(task.query) ?? { records: [], truncated: false };
        return { records: found.records, truncated: found.truncated } satisfies PbTypes.ILogsReply;
      }
      case 'status':
        return {
          warm: this.options.pool.warmFunctions(),
          keys: this.options.cache.keys(this.options.statusKeysMax ?? 256),
          capacity: this.options.pool.capacity,
          load: this.options.pool.load,
          stems: this.options.pool.runtimes().filter((runtime) => !runtime.busy && runtime.functions.length === 0).length,
        } satisfies HostStatus;
      case 'writeResult': {
        const record = task.value !== undefined ? { ok: true, value: task.value } : { ok: false, code: task.error?.code ?? ErrorCode.INTERNAL, message: task.error?.message ?? '', ...(task.error?.stack ? { stack: task.error.stack } : {}) };
        await this.options.kvs.put(task.key, new Priority(task.attempt, record), { ack: 'replicated' });
        return undefined;
      }
    }
  }

  private scopeFor(runId: string, mode: ConsistencyMode): RunScope {
    if (mode === 'lww') return new RunScope(this.env, runId, mode);
    let scope = this.scopes.get(runId);
    if (scope === undefined) {
      // Bounded: the oldest run's versions go first (its deadline has most likely passed).
      if (this.scopes.size >= (this.options.scopesMax ?? 10_000)) this.scopes.delete(this.scopes.keys().next().value!);
      scope = new RunScope(this.env, runId, mode);
      this.scopes.set(runId, scope);
    }
    return scope;
  }

  /**
   * Prewarm: the function's code fetched and a runtime specialised, and its keys prefetched, while
   * its parents run. A failure only costs the prewarm (the run itself fetches again and answers
   * the error): counted, not thrown.
   */
  private async warm(task: Extract<ExecutorTask, { op: 'warm' }>): Promise<void> {
    this.counters.warms++;
    const id = `${task.name}@${task.version}`;
    const spec = this.spec(task.name, task.version);
    const fetched = this.prefetch(task.runId, task.name, referencesOf(task.args), spec);
    let prepared = this.warming.get(id);
    if (prepared === undefined) {
      prepared = spec.then((code) => this.options.pool.prepare(code)).finally(() => this.warming.delete(id));
      this.warming.set(id, prepared);
    }
    try {
      await prepared;
    } catch {
      this.counters.warmFailures++;
    }
    await fetched;
  }

  /**
   * Reads `keys` and the function's declared `reads` into the cache, all at once, without waiting
   * for them (the run reads them through its scope, joining a read still in flight). Keys out of
   * the function's reach are skipped (its read would be refused anyway). Never throws.
   */
  private async prefetch(runId: string, name: string, keys: readonly string[], spec: Promise<HostedFunction>): Promise<void> {
    if (this.options.prefetch === false) return;
    const wanted = new Set<string>();
    const add = (key: string): void => {
      if (wanted.size >= PREFETCH_KEYS_MAX || wanted.has(key)) return;
      if (functionKeyError(name, key) !== undefined) {
        this.counters.prefetchRefused++;
        return;
      }
      wanted.add(key);
    };
    const reads: Promise<unknown>[] = [];
    const fetch = (from: number): void => {
      const fresh = [...wanted].slice(from);
      for (const key of fresh) {
        this.counters.prefetched++;
        reads.push(this.options.cache.get(key).catch(() => this.counters.prefetchFailures++));
      }
    };
    for (const key of keys) add(key);
    fetch(0);
    const known = wanted.size;
    let declared: readonly string[] = [];
    try {
      declared = (await spec).reads;
    } catch {
      // The run reports an unknown function; nothing more to prefetch.
    }
    for (const entry of declared) {
      if (!entry.endsWith('*')) add(entry);
      else for (const key of this.prefixKeys.get(name) ?? []) if (key.startsWith(entry.slice(0, -1))) add(key);
    }
    fetch(known);
    if (wanted.size > 0) {
      const runKey = `${runId}\u0000${name}`;
      this.prefetchedFor.delete(runKey);
      this.prefetchedFor.set(runKey, wanted);
      if (this.prefetchedFor.size > PREFETCH_RUNS_MAX) this.prefetchedFor.delete(this.prefetchedFor.keys().next().value!);
    }
    await Promise.all(reads);
  }

  /** A key a run read: counted if it was prefetched for the run, remembered if it falls under one of the function's `reads` prefixes. */
  private noteRead(prefetched: Set<string> | undefined, spec: HostedFunction, name: string, key: string): void {
    if (prefetched?.delete(key) === true) this.counters.prefetchUsed++;
    const prefixes = spec.reads;
    if (prefixes === undefined || prefixes.length === 0) return;
    if (!prefixes.some((entry) => entry.endsWith('*') && key.startsWith(entry.slice(0, -1)))) return;
    let known = this.prefixKeys.get(name);
    if (known === undefined) {
      if (this.prefixKeys.size >= PREFIX_FUNCTIONS_MAX) this.prefixKeys.delete(this.prefixKeys.keys().next().value!);
      this.prefixKeys.set(name, (known = new Set()));
    }
    known.delete(key);
    known.add(key);
    if (known.size > PREFIX_KEYS_MAX) known.delete(known.values().next().value!);
  }

  private async runFunction(task: Extract<ExecutorTask, { op: 'run' }>): Promise<RunOutcome> {
    const specPromise = this.spec(task.name, task.version);
    const references = referencesOf(task.args);
    // A root function's keys are prefetched here, beside its code and runtime (a function that
    // waited for its parents had them prefetched by its `warm` when the run was scheduled).
    const runKey = `${task.runId}\u0000${task.name}`;
    const known = this.ready.get(`${task.name}@${task.version}`);
    if (task.upstream.length === 0 && (references.length > 0 || known === undefined || known.reads.length > 0)) void this.prefetch(task.runId, task.name, references, specPromise);
    const spec = await specPromise;
    const id = spec.id;
    // A prewarm of this function still loading: its runtime is the one to take.
    const warming = this.warming.get(id);
    if (warming !== undefined) await warming.catch(() => undefined);
    const prefetched = this.prefetchedFor.get(runKey);
    this.prefetchedFor.delete(runKey);
    const tracks = prefetched !== undefined || spec.reads.length > 0;
    const scope = this.scopeFor(task.runId, task.mode);
    if (task.mode === 'repeatable-read') scope.holdFirstReadsAt(runHolder(task.placement, this.options.self));
    scope.absorb(task.cut);
    const own: Uint8Array[] = [];
    for (const argument of task.args) {
      if (argument.reference !== undefined && argument.reference !== null && argument.reference.length > 0) {
        // ref(key): the value read through the run's scope (so repeatable read pins it too), with
        // the function's rights (the caller's were checked where the call entered).
        const key = reachable(task.name, argument.reference);
        if (prefetched?.delete(key) === true) this.counters.prefetchUsed++;
        const value = await scope.get(key);
        const encoded = value === undefined ? encodeValue(null) : plainEncodingOf(value);
        if (encoded.byteLength > DEFAULT_MAX_VALUE_BYTES) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `ref(${JSON.stringify(key)}) is ${encoded.byteLength} bytes; an argument is at most ${DEFAULT_MAX_VALUE_BYTES}`);
        own.push(encoded);
      } else own.push(argument.value ?? encodeValue(null));
    }
    const args = concatArray([...task.upstream, ...own]);
    const invocation = { runId: task.runId, functionName: task.name };
    // A run of one function has no other invocation to talk to: no mailbox (the call path of
    // most calls stays free of it).
    const alone = Object.keys(task.placement).length <= 1;
    if (!alone) this.mailboxes.open(task.runId, task.name);
    // A function reaches its owner's keys only, and never a system key (owner-access.ts): a key
    // out of reach throws, and the pool answers the function's request with that error.
    let incrementsMade = 0;
    const host: FunctionHost = {
      get: tracks
        ? (key) => {
            const reached = reachable(task.name, key);
            this.noteRead(prefetched, spec, task.name, reached);
            return scope.get(reached);
          }
        : (key) => scope.get(reachable(task.name, key)),
      put: (key, value) => scope.put(reachable(task.name, key), value),
      merge: (key, value) => scope.merge(reachable(task.name, key), value),
      delete: (key) => scope.delete(reachable(task.name, key)),
      // The nth increment of this invocation is named, so a retry here does not count twice.
      increment: (key, amount) => this.increments.add(reachable(task.name, key), amount, `${task.runId}\u0000${task.name}\u0000${incrementsMade++}`),
      infer: (modelKey, feeds) => {
        const inference = this.options.inference;
        if (inference === undefined) throw new LfaasError(ErrorCode.SCHED_NO_CAPACITY, 'this executor runs no models');
        return inference.infer(reachable(task.name, modelKey), feeds as Record<string, TensorValue>, task.timeoutMs);
      },
      send: (target, payload) => this.send(task, target, payload),
      recv: (timeoutMs) =>
        alone ? new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), Math.min(timeoutMs, task.timeoutMs))) : this.mailboxes.receive(task.runId, task.name, Math.min(timeoutMs, task.timeoutMs)),
    };
    // Traced: every ctx read and write is a span, child of the run's (host-spans.ts).
    const traced = task.trace !== undefined && task.trace.length > 0 ? tracedHost(host, task.trace, this.options.cache) : undefined;
    const cold = traced === undefined ? undefined : !this.options.pool.warmFunctions().includes(id);
    let running = this.running.get(task.runId);
    if (running === undefined) {
      running = { controller: new AbortController(), active: 0 };
      this.running.set(task.runId, running);
      if (this.cancelledEarly.delete(task.runId)) running.controller.abort();
    }
    running.active++;
    try {
      const value = await this.options.pool.runEncoded({ ...spec, timeoutMs: Math.max(1, Math.min(spec.timeoutMs, task.timeoutMs)) }, args, traced ?? host, invocation, running.controller.signal);
      return cold === undefined ? { value, cut: scope.cutOut() } : { value, cut: scope.cutOut(), cold };
    } finally {
      if (!alone) this.mailboxes.close(task.runId, task.name);
      if (--running.active === 0 && this.running.get(task.runId) === running) this.running.delete(task.runId);
    }
  }

  /** A message from an invocation here to another of its run: local, or through its executor. */
  private async send(task: Extract<ExecutorTask, { op: 'run' }>, target: string, payload: Uint8Array): Promise<void> {
    const executor = task.placement[target];
    if (executor === undefined) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `run ${task.runId} has no function ${JSON.stringify(target)}`);
    if (executor === this.options.self) {
      this.mailboxes.deliver(task.runId, target, payload);
      return;
    }
    const response = await this.options.rpc.request(executor, { invocationMessage: { runId: task.runId, sourceFunction: task.name, targetFunction: target, payload } }, { timeoutMs: this.options.requestTimeoutMs ?? 1000, retries: 2 });
    const error = response.done?.error;
    if (error?.code) throw errorFromWireMessage(error);
  }

  private async fetchPinned(holder: string, runId: string, key: string, first = false): Promise<AnyLattice | undefined> {
    const response = await this.options.rpc.request(holder, { versionRequest: { runId, key, ...(first ? { first } : {}) } }, { timeoutMs: this.options.requestTimeoutMs ?? 1000, retries: 1 });
    const reply = response.versionReply;
    // The holder's own error, with its code (GONE when it no longer holds the run's versions).
    if (reply?.error?.code) throw errorFromWireMessage(reply.error);
    const payload = reply?.payload;
    return payload === undefined || payload === null || payload.byteLength === 0 ? undefined : decodeLattice(payload, { verifyCanonical: false });
  }

  /** A function version's code and limits: fetched from the KVS once, then kept (versions are immutable). */
  spec(name: string, version: number): Promise<HostedFunction> {
    const id = `${name}@${version}`;
    let spec = this.specs.get(id);
    if (spec === undefined) {
      const fetchStartedMs = performance.now();
      spec = this.options.cache.get(functionKey(name, version)).then((value) => {
        this.counters.codeFetches++;
        this.codeFetchMs += performance.now() - fetchStartedMs;
        const record = functionRecordOf(value);
        if (record === undefined) throw new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `function ${id} is not registered`);
        // Sandbox processes are an owner's (the namespace of `alice/f`); a function in no
        // namespace (an admin's) is its own owner.
        return {
          id,
          code: record.code,
          memoryMb: record.memoryMb,
          timeoutMs: record.timeoutMs,
          keepAliveMs: record.keepAliveMs,
          keepAlivePolicy: record.keepAlivePolicy,
          reads: record.reads,
          owner: ownerOfName(name) ?? name,
          ...(record.sourceMap === undefined ? {} : { sourceMap: record.sourceMap }),
        } satisfies HostedFunction;
      });
      void spec.then((code) => {
        if (this.specs.has(id)) this.ready.set(id, code);
      }, () => undefined);
      // A failed fetch is not kept: the next call asks again.
      spec.catch(() => this.specs.delete(id));
      if (this.specs.size >= (this.options.specsMax ?? 1024)) {
        const oldest = this.specs.keys().next().value!;
        this.specs.delete(oldest);
        this.ready.delete(oldest);
      }
      this.specs.set(id, spec);
    }
    return spec;
  }
}

/** The keys of a call's `ref(key)` arguments. */
function referencesOf(args: readonly PbTypes.IArgument[]): string[] {
  const keys: string[] = [];
  for (const argument of args) if (argument.reference !== undefined && argument.reference !== null && argument.reference.length > 0) keys.push(argument.reference);
  return keys;
}

/** `key`, when function `functionName` may reach it; throws the typed refusal otherwise. */
function reachable(functionName: string, key: string): string {
  const error = functionKeyError(functionName, key);
  if (error !== undefined) throw error;
  return key;
}

/** The plain value of a lattice, as `ctx.get` reveals it. */
/**
 * The executor that pins a repeatable-read run's first reads for all its functions: the lowest
 * address the run is placed on (every executor of the run computes the same one).
 */
function runHolder(placement: Readonly<Record<string, string>>, self: string): string {
  let holder: string | undefined;
  for (const address of Object.values(placement)) if (holder === undefined || address < holder) holder = address;
  return holder ?? self;
}



