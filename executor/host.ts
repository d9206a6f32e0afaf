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
 * - `prepare`: fetch code and specialise a runtime ahead of calls (DAG pinning, prefetching);
 * - `deliver`: put an invocation message in a mailbox;
 * - `pinned`: the version of a key this executor's cache holds for a run;
 * - `endRun`: the run is over here (drop its scope and mailboxes);
 * - `status`: what the heartbeat tells schedulers (warm functions, cached keys, load);
 * - `writeResult`: an async call's result into the KVS, idempotently (a Priority by attempt).
 */
import { ErrorCode, HybridClock, LatticeType, LfaasError, Priority, decodeLattice, ensureLfaasError } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { encodeValue, functionKey, functionKeyError, functionRecordOf, ownerOfName } from '../protocol/index.js';
import { errorFromWireMessage } from '../protocol/index.js';
import type { MachineTasks, PbTypes, Rpc } from '../protocol/index.js';
import type { CacheBackend, ExecutorCache } from './cache.js';
import { Mailboxes } from './mailboxes.js';
import type { FunctionCode, FunctionHost, RuntimePool } from './runtime-pool.js';
import { RunScope } from './run-scope.js';
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
    }
  | { readonly op: 'prepare'; readonly functions: readonly { readonly name: string; readonly version: number }[] }
  | { readonly op: 'deliver'; readonly runId: string; readonly target: string; readonly payload: Uint8Array }
  | { readonly op: 'pinned'; readonly runId: string; readonly key: string }
  | { readonly op: 'endRun'; readonly runId: string }
  | { readonly op: 'status' }
  | { readonly op: 'writeResult'; readonly key: string; readonly attempt: number; readonly value?: Uint8Array; readonly error?: { readonly code: string; readonly message: string } };

export interface RunOutcome {
  readonly value: Uint8Array;
  readonly cut: PbTypes.ICutEntry[];
}

export interface HostStatus {
  readonly warm: string[];
  readonly keys: string[];
  readonly capacity: number;
  readonly load: number;
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
}

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
  private readonly specs = new Map<string, Promise<FunctionCode>>();
  private readonly scopes = new Map<string, RunScope>();
  readonly mailboxes = new Mailboxes();
  private readonly clock: HybridClock;
  private readonly env: ScopeEnvironment;

  constructor(private readonly options: ExecutorHostOptions) {
    this.clock = new HybridClock(options.self, () => Date.now());
    this.env = {
      cache: options.cache,
      clock: this.clock,
      self: options.self,
      writerId: options.self,
      causalWaitMs: options.causalWaitMs ?? 2000,
      fetchPinned: (holder, runId, key) => this.fetchPinned(holder, runId, key),
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
      case 'deliver':
        this.mailboxes.deliver(task.runId, task.target, task.payload);
        return undefined;
      case 'pinned': {
        const scope = this.scopes.get(task.runId);
        if (scope === undefined) throw new LfaasError(ErrorCode.GONE, `run ${task.runId} holds no versions here`);
        return scope.pinned(task.key)?.encode();
      }
      case 'endRun':
        this.scopes.delete(task.runId);
        this.mailboxes.dropRun(task.runId);
        return undefined;
      case 'status':
        return {
          warm: this.options.pool.warmFunctions(),
          keys: this.options.cache.keys(this.options.statusKeysMax ?? 256),
          capacity: this.options.pool.capacity,
          load: this.options.pool.load,
        } satisfies HostStatus;
      case 'writeResult': {
        const record = task.value !== undefined ? { ok: true, value: task.value } : { ok: false, code: task.error?.code ?? ErrorCode.INTERNAL, message: task.error?.message ?? '' };
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

  private async runFunction(task: Extract<ExecutorTask, { op: 'run' }>): Promise<RunOutcome> {
    const spec = await this.spec(task.name, task.version);
    const scope = this.scopeFor(task.runId, task.mode);
    scope.absorb(task.cut);
    const own: Uint8Array[] = [];
    for (const argument of task.args) {
      if (argument.reference !== undefined && argument.reference !== null && argument.reference.length > 0) {
        // ref(key): the value read through the run's scope (so repeatable read pins it too), with
        // the function's rights (the caller's were checked where the call entered).
        const value = await scope.get(reachable(task.name, argument.reference));
        own.push(encodeValue(plainOf(value)));
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
    const host: FunctionHost = {
      get: (key) => scope.get(reachable(task.name, key)),
      put: (key, value) => scope.put(reachable(task.name, key), value),
      merge: (key, value) => scope.merge(reachable(task.name, key), value),
      delete: (key) => scope.delete(reachable(task.name, key)),
      send: (target, payload) => this.send(task, target, payload),
      recv: (timeoutMs) =>
        alone ? new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), Math.min(timeoutMs, task.timeoutMs))) : this.mailboxes.receive(task.runId, task.name, Math.min(timeoutMs, task.timeoutMs)),
    };
    try {
      const value = await this.options.pool.runEncoded({ ...spec, timeoutMs: Math.max(1, Math.min(spec.timeoutMs, task.timeoutMs)) }, args, host, invocation);
      return { value, cut: scope.cutOut() };
    } finally {
      if (!alone) this.mailboxes.close(task.runId, task.name);
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

  private async fetchPinned(holder: string, runId: string, key: string): Promise<AnyLattice | undefined> {
    const response = await this.options.rpc.request(holder, { versionRequest: { runId, key } }, { timeoutMs: this.options.requestTimeoutMs ?? 1000, retries: 1 });
    const reply = response.versionReply;
    // The holder's own error, with its code (GONE when it no longer holds the run's versions).
    if (reply?.error?.code) throw errorFromWireMessage(reply.error);
    const payload = reply?.payload;
    return payload === undefined || payload === null || payload.byteLength === 0 ? undefined : decodeLattice(payload, { verifyCanonical: false });
  }

  /** A function version's code and limits: fetched from the KVS once, then kept (versions are immutable). */
  spec(name: string, version: number): Promise<FunctionCode> {
    const id = `${name}@${version}`;
    let spec = this.specs.get(id);
    if (spec === undefined) {
      spec = this.options.cache.get(functionKey(name, version)).then((value) => {
        const record = functionRecordOf(value);
        if (record === undefined) throw new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `function ${id} is not registered`);
        // Sandbox processes are an owner's (the namespace of `alice/f`); a function in no
        // namespace (an admin's) is its own owner.
        return { id, code: record.code, memoryMb: record.memoryMb, timeoutMs: record.timeoutMs, keepAliveMs: record.keepAliveMs, owner: ownerOfName(name) ?? name };
      });
      // A failed fetch is not kept: the next call asks again.
      spec.catch(() => this.specs.delete(id));
      if (this.specs.size >= (this.options.specsMax ?? 1024)) this.specs.delete(this.specs.keys().next().value!);
      this.specs.set(id, spec);
    }
    return spec;
  }
}

/** `key`, when function `functionName` may reach it; throws the typed refusal otherwise. */
function reachable(functionName: string, key: string): string {
  const error = functionKeyError(functionName, key);
  if (error !== undefined) throw error;
  return key;
}

/** The plain value of a lattice, as `ctx.get` reveals it. */
function plainOf(value: AnyLattice | undefined): unknown {
  if (value === undefined) return null;
  const revealed = value.reveal();
  return Array.isArray(revealed) && (value.type === LatticeType.SingleKeyCausal || value.type === LatticeType.MultiKeyCausal) ? revealed[0] : revealed;
}

