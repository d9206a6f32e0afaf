/**
 * The pool of runtimes of an executor (sandbox/ is what runs inside one): unspecialised runtimes
 * wait ahead of calls ("stem cells"); a call goes to an idle runtime of its owner and memory
 * class, preferring one that already holds the function's realm (warm).
 *
 * - Isolation (executor/isolation.ts): at `process` and `bwrap` a runtime is a sandbox process,
 *   and a process serves one owner for its whole life: a stem is bound to the owner of its first
 *   function and ended, never reused, when that owner's functions go cold. (A function's owner is
 *   its namespace, `alice` for `alice/f`; a function in no namespace, an administrator's, is its
 *   own owner.) At `none` a runtime is a trusted thread shared by all; a cold call takes an idle
 *   thread that already holds other functions before it takes an empty one (a stem).
 * - Warm stacks: of the idle runtimes warm for a function, the most recently used one is taken
 *   (last in, first out), so after a load drop the surplus runtimes go unused and expire.
 * - Stem pools that refill (executor/stem-pools.ts, stem-targets.ts, stem-refill.ts): every memory class calls use has a target
 *   of waiting stems, and so has every owner (in a class) whose calls keep needing a fresh
 *   runtime (at `process`/`bwrap`: its stems are bound to it ahead of its calls, and the pool
 *   takes them first). A target is a floor (`prewarm` for the class `memoryMb`, 0 otherwise) plus
 *   Little's law on the cold starts that needed a stem: their decaying rate times the measured
 *   start time of a stem, with headroom; it decays back to the floor when they stop. Stems are
 *   started off the calls' path, a little after one is taken (forking blocks this event loop), a
 *   few at a time, within `workersMax`, and all stems together within `stemsMax` (default half
 *   the slots, or `prewarm` if more): stems never crowd out warm runtimes (a call that needs room
 *   ends an idle stem of another class first). Surplus stems idle for `idleWorkerMs` are ended;
 *   an owner's runtime with nothing loaded beyond its owner's target is ended at once.
 * - Keep-alive policies, one per function version (executor/keep-alives.ts): `fixed` keeps a
 *   realm `keepAliveMs` after its last use (15 minutes by default); `adaptive` may answer a
 *   prewarm window: the function's idle realms are then unloaded once its call finishes (a
 *   process left with none ends) and the function is prepared again when the window comes.
 *   `keepAliveTimeScale` divides every window (benchmarks run a minute in a second).
 * - A running call's `ctx` requests and log records are answered and written by
 *   executor/host-asks.ts, through the call's {@link FunctionHost}.
 * - Cold starts are timed in stages: the runtime's creation, the bundle's evaluation (a cold call
 *   is sent as a load, then the call) and the first call; see executor/cold-starts.ts.
 * - Limits: at a call's `timeoutMs` the call fails with EXEC_TIMEOUT and its `ctx.signal` is
 *   aborted; a runtime that does not answer within `abortGraceMs` after that (a loop, a promise
 *   that never settles, a microtask loop left behind) is ended and replaced. Memory: the heap is
 *   capped at the function's `memoryMb`, and a sandbox process whose resident memory grows past
 *   its size at start plus `memoryMb` (buffers count) is ended: EXEC_OUT_OF_MEMORY. The pool,
 *   and the executor, stay up. Calls wait in a bounded queue when every runtime is busy
 *   (SCHED_NO_CAPACITY beyond it).
 * - Logs: what a function logs (`console.log`, `ctx.log`) goes to this process's log as JSON
 *   lines with the call id and the function.
 */
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { ErrorCode, LfaasError, ensureLfaasError, errorFromWire } from '../lattices/index.js';
import { DEFAULT_MAX_VALUE_BYTES, decodeValue, encodeValue } from '../protocol/index.js';
import { LOG_RECORDS_MAX } from '../sandbox/index.js';
import type { HostAsk, Invocation, PoolMessage, RuntimeAnswer, RuntimeCall } from '../sandbox/index.js';
import type { IsolationLevel } from './isolation.js';
import { answerHostAsk, writeFunctionLog } from './host-asks.js';
import type { FunctionHost } from './host-asks.js';
import { KeepAlives } from './keep-alives.js';
import type { KeepAliveState } from './keep-alives.js';
import type { HybridOptions } from './keepalive-policy.js';
import { startRuntime } from './runtimes.js';
import type { Runtime, RuntimeExit } from './runtimes.js';
import { StemRefill } from './stem-refill.js';
import { mappedStack } from './stack-map.js';
import { ColdStarts } from './cold-starts.js';
import type { ColdStartStages } from './cold-starts.js';
import type { StemTarget } from './stem-pools.js';

export type { FunctionHost } from './host-asks.js';
export type { KeepAliveState } from './keep-alives.js';
export type { StemTarget } from './stem-pools.js';
export type { ColdStartStages } from './cold-starts.js';

export interface FunctionCode {
  /** `name@version`. */
  readonly id: string;
  /** The bundled module (CommonJS body). */
  readonly code: string;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  /** The `fixed` policy's window: how long its realm stays warm unused (default 15 minutes). */
  readonly keepAliveMs?: number;
  /** How its keep-alive is decided (default `fixed`; `adaptive`: the hybrid histogram policy, which ignores `keepAliveMs`). */
  readonly keepAlivePolicy?: 'fixed' | 'adaptive';
  /** Whose function it is: sandbox processes are never shared between owners (default: the function's name; the host passes its namespace). */
  readonly owner?: string;
  /** The bundle's source map (JSON): the function's stack traces are mapped with it (executor/stack-map.ts). */
  readonly sourceMap?: string;
}

/** One runtime of the pool, for tests and metrics. */
export interface RuntimeInfo {
  /** The owner a sandbox process is bound to (undefined: a stem, or any thread). */
  readonly owner: string | undefined;
  readonly memoryMb: number;
  /** `name@version` of the functions it holds. */
  readonly functions: string[];
  readonly busy: boolean;
  readonly ready: boolean;
}

export interface RuntimePoolOptions {
  /** How runtimes are isolated (default `process`; `none` only for trusted code). */
  readonly isolation?: IsolationLevel;
  /** How often busy sandbox processes' memory is read (default 10 ms). */
  readonly memoryCheckMs?: number;
  /** The level of functions' log records in this process's log (default `LFAAS_FUNCTION_LOG_LEVEL`, else `info`). */
  readonly functionLogLevel?: string;
  /**
   * Every log record a running call writes (after the per-call bound), besides this process's log:
   * the executor keeps them for readers (executor/function-logs.ts). `runId` is the call's run.
   */
  readonly onFunctionLog?: (record: { readonly runId: string; readonly fnId: string; readonly level: string; readonly text: string; readonly fields?: string }) => void;
  /** Stems started ahead of calls, and the floor of the stem target of the memory class `memoryMb` (default 2). */
  readonly prewarm?: number;
  /** The memory class `prewarm` applies to (default 128). */
  readonly memoryMb?: number;
  /** Workers at most, over all classes. */
  readonly workersMax?: number;
  /** Stems waiting at most, over all classes and owners (default half of `workersMax`; `prewarm` at least). */
  readonly stemsMax?: number;
  /** Time constant of the decaying rate of cold starts the stem targets follow (default 10 s). */
  readonly stemRateDecayMs?: number;
  /** Stems per cold start expected while a stem starts (Little's law's headroom; default 2). */
  readonly stemHeadroom?: number;
  /** Calls waiting for a worker, at most. */
  readonly queueMax?: number;
  readonly resultBytesMax?: number;
  /** After a call's timeout, how long its worker may take to settle before it is ended. */
  readonly abortGraceMs?: number;
  /** How long a surplus unspecialised worker may stay idle. */
  readonly idleWorkerMs?: number;
  /** How often keep-alive and idle workers are checked. */
  readonly sweepPeriodMs?: number;
  /** Every keep-alive window is divided by this, and idle times multiplied (default 1; benchmarks: 60, a minute in a second). */
  readonly keepAliveTimeScale?: number;
  /** The adaptive policy's histogram, in unscaled time (default: 1-minute bins over 4 hours, 10 idle times; bins last binMs / keepAliveTimeScale). */
  readonly adaptiveKeepAlive?: HybridOptions;
  /** Each cold call's stages, once its first call answered (the executor exports them). */
  readonly onColdStart?: (stages: ColdStartStages) => void;
  /**
   * Starts one runtime (default: executor/runtimes.ts, a sandbox process or a thread by
   * `isolation`). The in-process test harness (testing/) passes one that runs the functions a
   * test registered in the test's own process.
   */
  readonly startRuntime?: (isolation: IsolationLevel, memoryMb: number) => Runtime;
}

/** Resident memory a sandbox process may use beyond its size at start and its `memoryMb` (code, stacks, young generation). */
const MEMORY_SLACK_BYTES = 32 * 1024 * 1024;
/** How long another owner's runtime must have been idle before an owner with busy runtimes of its own may take its place. */
const OWNER_RECLAIM_IDLE_MS = 1000;

interface PooledWorker {
  readonly runtime: Runtime;
  /** The owner a sandbox process is bound to (undefined: a stem, or any thread). */
  owner: string | undefined;
  readonly memoryMb: number;
  /** Function id -> when it last ran here. */
  readonly loaded: Map<string, number>;
  busy: boolean;
  /** Busy with a prepare (loading a function ahead of its calls), not a call. */
  preparing: boolean;
  ended: boolean;
  /** When it last finished a call. */
  idleSinceMs: number;
  /** Which finished call of the pool was its last one: orders the warm stack (two calls may end in one millisecond). */
  usedOrder: number;
  /** Resident bytes at most while running a call (sandbox processes; set once ready). */
  memoryLimitBytes: number | undefined;
  /** The pool ended it for its memory. */
  overMemory: boolean;
  /** Its runtime said it is ready. */
  isReady: boolean;
  /** When it was started and when it said it was ready (performance.now()). */
  readonly spawnedAt: number;
  readyAt: number | undefined;
  /** The running call's handlers (the runtime's listeners stay for its life: no add/remove per call). */
  onAnswer: ((answer: RuntimeAnswer) => void) | undefined;
  onExit: ((exit: RuntimeExit) => void) | undefined;
}

interface Pending {
  readonly fn: FunctionCode;
  /** Absent for a prepare (load only). */
  readonly args: Uint8Array | undefined;
  readonly host: FunctionHost | undefined;
  readonly invocation: Invocation;
  /** Aborted: the call is cancelled (EXEC_CANCELLED), queued or running (as a timeout: abort, grace, replace). */
  readonly signal: AbortSignal | undefined;
  /** When it was handed to the pool (performance.now()). */
  readonly arrivedAt: number;
  readonly resolve: (result: Uint8Array | undefined) => void;
  readonly reject: (error: LfaasError) => void;
}

/** What a cold call's dispatch found, for its stage timings. */
interface ColdDispatch {
  /** The runtime existed when the call arrived. */
  readonly stem: boolean;
}

const NO_INVOCATION: Invocation = { runId: '', functionName: '' };


export class RuntimePool {
  private readonly workers: PooledWorker[] = [];
  private readonly queue: Pending[] = [];
  /** Keep-alive policies by function version, and the prewarms they plan. */
  private readonly keepAlives: KeepAlives<FunctionCode>;
  /** Prepares in flight, by function version. */
  private readonly preparing = new Map<string, Promise<void>>();
  /** The stem pools' targets, kept by refills and trims (executor/stem-refill.ts). */
  private readonly stems: StemRefill<PooledWorker>;
  private readonly coldStarts: ColdStarts;
  private nextCallId = 1;
  private callsFinished = 0;
  private closed = false;
  private readonly workersMax: number;
  private readonly prewarm: number;
  private readonly defaultMemoryMb: number;
  private readonly queueMax: number;
  private readonly resultBytesMax: number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly memoryWatch: NodeJS.Timeout | undefined;
  private readonly functionLog: pino.Logger;
  /** How runtimes are isolated. */
  readonly isolation: IsolationLevel;
  readonly counters = {
    calls: 0,
    warm: 0,
    cold: 0,
    timeouts: 0,
    outOfMemory: 0,
    replaced: 0,
    unloaded: 0,
    idleEnded: 0,
    logRecords: 0,
    spawned: 0,
    protocolBroken: 0,
    /** Cold calls that needed a fresh runtime and found a stem (one started before they arrived). */
    stemHits: 0,
    /** Cold calls that needed a fresh runtime and waited for one started after they arrived. */
    stemMisses: 0,
    /** Stems started to refill the stem pools (not the first `prewarm`, not replacements). */
    stemsRefilled: 0,
    /** Functions prepared again by their keep-alive policy's prewarm window. */
    prewarmed: 0,
    preparesDropped: 0,
  };

  constructor(private readonly options: RuntimePoolOptions = {}) {
    this.isolation = options.isolation ?? 'process';
    this.functionLog = pino({ name: 'function', level: options.functionLogLevel ?? process.env['LFAAS_FUNCTION_LOG_LEVEL'] ?? 'info' }, pino.destination({ fd: 2, sync: false }));
    this.workersMax = options.workersMax ?? 8;
    this.prewarm = Math.min(this.workersMax, options.prewarm ?? 2);
    this.defaultMemoryMb = options.memoryMb ?? 128;
    this.keepAlives = new KeepAlives<FunctionCode>({ timeScale: options.keepAliveTimeScale ?? 1, ...(options.adaptiveKeepAlive === undefined ? {} : { adaptive: options.adaptiveKeepAlive }), prewarm: (fn) => this.prewarmDue(fn) });
    const stemsMax = Math.max(this.prewarm, options.stemsMax ?? Math.floor(this.workersMax / 2));
    this.stems = new StemRefill<PooledWorker>(
      { runtimes: () => this.workers, runtimesFree: () => this.workersMax - this.workers.length, startStem: (memoryMb, owner) => { this.spawn(memoryMb).owner = owner; }, closed: () => this.closed, counters: this.counters },
      { isolation: this.isolation, memoryMb: this.defaultMemoryMb, prewarm: this.prewarm, stemsMax, idleWorkerMs: options.idleWorkerMs ?? 60_000, ...(options.stemRateDecayMs === undefined ? {} : { decayMs: options.stemRateDecayMs }), ...(options.stemHeadroom === undefined ? {} : { headroom: options.stemHeadroom }) },
    );
    this.coldStarts = new ColdStarts(options.onColdStart);
    this.queueMax = options.queueMax ?? 1000;
    this.resultBytesMax = options.resultBytesMax ?? DEFAULT_MAX_VALUE_BYTES;
    for (let i = 0; i < this.prewarm; i++) this.spawn(this.defaultMemoryMb);
    this.sweeper = setInterval(() => this.sweep(Date.now()), options.sweepPeriodMs ?? 1000);
    this.sweeper.unref();
    if (this.isolation !== 'none') {
      this.memoryWatch = setInterval(() => this.checkMemory(), options.memoryCheckMs ?? 10);
      this.memoryWatch.unref();
    }
  }

  /** Waits until every runtime started so far is ready (tests, and an executor's startup). */
  async ready(): Promise<void> {
    await Promise.all(this.workers.map((pooled) => pooled.runtime.ready));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runtime slots at most (one call per runtime). */
  get capacity(): number {
    return this.workersMax;
  }

  /** Calls running or waiting. */
  get load(): number {
    return this.workers.filter((pooled) => pooled.busy).length + this.queue.length;
  }

  /** `name@version` of every function with a warm realm somewhere in the pool. */
  warmFunctions(): string[] {
    const warm = new Set<string>();
    for (const pooled of this.workers) for (const id of pooled.loaded.keys()) warm.add(id);
    return [...warm];
  }

  /** The owner each runtime is bound to (undefined: a stem or a thread), for tests and metrics. */
  owners(): Array<string | undefined> {
    return this.workers.map((pooled) => pooled.owner);
  }

  /** Every runtime: its owner, class, functions, and whether it is busy and ready (tests, metrics). */
  runtimes(): RuntimeInfo[] {
    return this.workers.map((pooled) => ({ owner: pooled.owner, memoryMb: pooled.memoryMb, functions: [...pooled.loaded.keys()], busy: pooled.busy, ready: pooled.isReady }));
  }

  /**
   * The stem pools' targets now: the class `memoryMb`'s always, every class and owner (in a
   * class) with recent cold starts that needed a stem; with the stems waiting in each.
   */
  stemTargets(): StemTarget[] {
    return this.stems.report(Date.now());
  }

  /** A stem's start time as the targets assume it (a moving average of the measured ones), ms. */
  get stemStartEstimateMs(): number {
    return this.stems.startEstimateMs;
  }

  /** The stages of the latest cold starts (at most 256, oldest first). */
  coldStages(): ColdStartStages[] {
    return this.coldStarts.latest();
  }

  /** Every function version's keep-alive as applied now (real ms), by `name@version`. */
  keepAliveWindows(): Map<string, KeepAliveState> {
    return this.keepAlives.windows();
  }

  /**
   * Runs `fn` on `args` (its `ctx` reaches the KVS through `host`); resolves with its result or
   * rejects with a typed error.
   */
  async run(fn: FunctionCode, args: readonly unknown[], host?: FunctionHost, invocation: Invocation = NO_INVOCATION): Promise<unknown> {
    let encoded: Uint8Array;
    try {
      encoded = encodeValue([...args]);
    } catch (error) {
      // The codec throws EXEC_BAD_VALUE; anything else keeps its own code (or is normalised).
      throw ensureLfaasError(error, ErrorCode.EXEC_BAD_VALUE);
    }
    const result = await this.runEncoded(fn, encoded, host, invocation);
    return decodeValue(result, { maxBytes: this.resultBytesMax });
  }

  /** As {@link run}, with the arguments already a msgpack array; resolves with the msgpack result. */
  runEncoded(fn: FunctionCode, args: Uint8Array, host?: FunctionHost, invocation: Invocation = NO_INVOCATION, signal?: AbortSignal): Promise<Uint8Array> {
    this.counters.calls++;
    return this.submit(fn, args, host, invocation, signal) as Promise<Uint8Array>;
  }

  /** Specialises a runtime for `fn` ahead of its calls (creates its realm in a runtime). */
  async prepare(fn: FunctionCode): Promise<void> {
    if (this.workers.some((pooled) => pooled.loaded.has(fn.id))) return;
    // One prepare of a version at a time: a second (a DAG's registration, a scheduler's re-pin)
    // while the first's runtime starts would start another process for the same owner.
    const pending = this.preparing.get(fn.id);
    if (pending !== undefined) return pending;
    const prepared = this.submit(fn, undefined, undefined, NO_INVOCATION).then(() => undefined);
    this.preparing.set(fn.id, prepared);
    try {
      await prepared;
    } finally {
      this.preparing.delete(fn.id);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    clearInterval(this.memoryWatch);
    this.stems.close();
    this.keepAlives.close();
    for (const pending of this.queue.splice(0)) pending.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the runtime pool closed'));
    await Promise.all(this.workers.splice(0).map((pooled) => this.end(pooled)));
  }

  private ownerOf(fn: FunctionCode): string | undefined {
    if (this.isolation === 'none') return undefined;
    if (fn.owner !== undefined) return fn.owner;
    const at = fn.id.lastIndexOf('@');
    return at > 0 ? fn.id.slice(0, at) : fn.id;
  }

  private submit(fn: FunctionCode, args: Uint8Array | undefined, host: FunctionHost | undefined, invocation: Invocation, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    if (this.closed) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the runtime pool is closed'));
    if (signal?.aborted === true) return Promise.reject(cancelledError(fn.id));
    this.keepAlives.touched(fn, args !== undefined, Date.now());
    return new Promise((resolve, reject) => {
      const pending: Pending = { fn, args, host, invocation, signal, arrivedAt: performance.now(), resolve, reject };
      if (this.dispatch(pending)) return;
      if (this.queue.length >= this.queueMax) {
        reject(new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `${this.queue.length} calls wait for a runtime`));
        return;
      }
      this.queue.push(pending);
      // Cancelled while it waits: it leaves the queue (once started, start() handles the abort).
      signal?.addEventListener(
        'abort',
        () => {
          const at = this.queue.indexOf(pending);
          if (at < 0) return;
          this.queue.splice(at, 1);
          reject(cancelledError(fn.id));
        },
        { once: true },
      );
    });
  }

  // -------------------------------------------------------------------------------------------
  // Keep-alive policies (executor/keep-alives.ts).

  /**
   * A call of the function finished: with a prewarm planned ahead, its idle realms are unloaded
   * (it is prepared again then). Not when a call of it waits, nor when the window has passed
   * already (a call longer than the window).
   */
  private callFinished(fn: FunctionCode): void {
    if (!this.keepAlives.prewarmAhead(fn.id, Date.now())) return;
    if (this.queue.some((pending) => pending.fn.id === fn.id)) return;
    for (const pooled of this.workers) {
      if (pooled.busy || pooled.ended || !pooled.loaded.delete(fn.id)) continue;
      this.counters.unloaded++;
      this.post(pooled, { kind: 'unload', functionId: fn.id });
    }
  }

  /** A prewarm its keep-alive policy planned is due: prepare the function unless a runtime holds it. */
  private prewarmDue(fn: FunctionCode): void {
    if (this.workers.some((pooled) => !pooled.ended && pooled.loaded.has(fn.id))) return;
    this.prepare(fn).then(
      () => {
        if (this.workers.some((pooled) => pooled.loaded.has(fn.id))) this.counters.prewarmed++;
      },
      // A prewarm that fails costs only itself: the next call loads the function and answers its error.
      () => undefined,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Dispatch and stems.

  /** Starts the call on a runtime if one can take it; false when it must wait. */
  private dispatch(pending: Pending): boolean {
    const memoryMb = pending.fn.memoryMb;
    const owner = this.ownerOf(pending.fn);
    let best: PooledWorker | undefined;
    let bestUsedOrder = -1;
    let ownUnspecialised: PooledWorker | undefined;
    let stem: PooledWorker | undefined;
    let any: PooledWorker | undefined;
    let shared: PooledWorker | undefined;
    for (const candidate of this.workers) {
      if (candidate.busy || candidate.ended || candidate.memoryMb !== memoryMb) continue;
      // A sandbox process bound to another owner never runs this one's code.
      if (candidate.owner !== undefined && candidate.owner !== owner) continue;
      if (candidate.owner !== undefined) any ??= candidate;
      // A thread holding other functions (at `none`); a sandbox process unbound holds none.
      else if (candidate.loaded.size > 0) shared ??= candidate;
      // A ready stem before one still starting.
      else if (stem === undefined || (!stem.isReady && candidate.isReady)) stem = candidate;
      // Warm stack: the most recently used warm runtime.
      if (candidate.loaded.has(pending.fn.id) && candidate.usedOrder > bestUsedOrder) {
        best = candidate;
        bestUsedOrder = candidate.usedOrder;
      }
      if (candidate.loaded.size === 0 && candidate.owner !== undefined) ownUnspecialised ??= candidate;
    }
    let pooled = best ?? ownUnspecialised ?? any ?? shared ?? stem;
    if (pooled === undefined) {
      // An owner whose runtimes are all busy grows its share only from room, a stem, or another
      // owner's runtime idle for a while: its call usually waits less for one of its own than a
      // process takes to start, and two busy owners would otherwise end each other's processes
      // in turn, each time a cold start.
      const hasOwn = owner !== undefined && this.workers.some((candidate) => candidate.owner === owner && !candidate.ended && candidate.memoryMb === memoryMb);
      if (this.workers.length >= this.workersMax) {
        // Make room: end an idle runtime this call cannot use (another class, or another owner's),
        // the least recently used (a stem, never used, first).
        const nowMs = Date.now();
        let other: PooledWorker | undefined;
        for (const candidate of this.workers) {
          if (candidate.busy || candidate.ended || (candidate.memoryMb === memoryMb && (candidate.owner === undefined || candidate.owner === owner))) continue;
          if (hasOwn && nowMs - candidate.idleSinceMs < OWNER_RECLAIM_IDLE_MS) continue;
          if (other === undefined || candidate.usedOrder < other.usedOrder) other = candidate;
        }
        if (other === undefined) return false;
        // A prepare is prefetching: it never ends another owner's warm runtime (that would undo
        // the prefetch of another function); with no room it is dropped.
        if (pending.args === undefined) {
          pending.resolve(undefined);
          return true;
        }
        this.remove(other);
        void this.end(other);
      } else if (hasOwn && pending.args === undefined) {
        // A prepare whose owner's runtimes are all busy never waits for a process to start
        // (measured: a DAG's third function prepared into a new process made its trigger wait
        // ~100 ms for it; unprepared, the trigger loads it into the first of its owner's runtimes
        // to finish, in a few ms). It waits for one of them only while one is itself loading a
        // prepare (a few ms: the DAG's functions then share its process); otherwise it is dropped.
        if (this.workers.some((candidate) => candidate.owner === owner && candidate.preparing && !candidate.ended && candidate.memoryMb === memoryMb)) return false;
        this.counters.preparesDropped++;
        pending.resolve(undefined);
        return true;
      } else if (hasOwn) {
        // Room: a stem is started (if none is starting) and the call waits, for it or for one of its own.
        if (!this.workers.some((candidate) => candidate.owner === undefined && candidate.memoryMb === memoryMb && !candidate.isReady && !candidate.ended)) this.spawn(memoryMb);
        return false;
      }
      pooled = this.spawn(memoryMb);
    }
    const fresh = pooled.loaded.size === 0;
    let cold: ColdDispatch | undefined;
    if (pending.args !== undefined && !pooled.loaded.has(pending.fn.id)) {
      // The runtime existed when the call arrived (ready or starting), or was started for it.
      const stemTaken = pooled.spawnedAt < pending.arrivedAt;
      cold = { stem: stemTaken };
      if (fresh) {
        // A cold start that needed a fresh runtime: the class's rate (a stem of the class, or a
        // start), and the owner's (any fresh runtime of its own).
        if (stemTaken) this.counters.stemHits++;
        else this.counters.stemMisses++;
        this.stems.recordCold(memoryMb, owner, pooled.owner === undefined, Date.now());
      }
    }
    if (pooled.owner === undefined && owner !== undefined) pooled.owner = owner;
    // A stem was taken (or a target rose): the pools are refilled a little later.
    if (fresh) this.stems.later();
    this.start(pooled, pending, cold);
    return true;
  }

  private start(pooled: PooledWorker, pending: Pending, cold: ColdDispatch | undefined): void {
    pooled.busy = true;
    pooled.preparing = pending.args === undefined;
    let callId = this.nextCallId++;
    const fnId = pending.fn.id;
    const warm = pooled.loaded.has(fnId);
    if (pending.args !== undefined) {
      if (warm) this.counters.warm++;
      else this.counters.cold++;
    }
    // A cold call is sent in two steps, a load then the call, to time the evaluation apart.
    let loading = cold !== undefined;
    const postedAt = performance.now();
    let loadedAt = 0;
    let settled = false;
    let timedOut = false;
    let graceTimer: NodeJS.Timeout | undefined;
    let log: pino.Logger | undefined;
    let logRecords = 0;
    const release = (replace: boolean): void => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      pending.signal?.removeEventListener('abort', onCancel);
      pooled.onAnswer = undefined;
      pooled.onExit = undefined;
      if (replace) this.replace(pooled);
      else {
        pooled.busy = false;
        pooled.preparing = false;
        pooled.idleSinceMs = Date.now();
        pooled.usedOrder = ++this.callsFinished;
        if (pending.args !== undefined) this.callFinished(pending.fn);
        this.drain();
      }
    };
    const finish = (outcome: { value: Uint8Array | undefined } | { error: LfaasError }): void => {
      if (settled) return;
      settled = true;
      if ('error' in outcome) pending.reject(outcome.error);
      else pending.resolve(outcome.value);
    };
    const onMessage = (answer: RuntimeAnswer): void => {
      if (answer.kind === 'ready' || answer.callId !== callId) return;
      if (answer.kind === 'host') {
        if (!timedOut) this.serveHost(pooled, pending.host, answer);
        return;
      }
      if (answer.kind === 'log') {
        // The runtime bounds a call's records; a sandbox that does not is not believed past that.
        if (++logRecords > LOG_RECORDS_MAX) return;
        log ??= this.functionLog.child({ callId: pending.invocation.runId, fn: fnId });
        this.counters.logRecords++;
        writeFunctionLog(log, answer);
        this.options.onFunctionLog?.({ runId: pending.invocation.runId, fnId, level: answer.level, text: answer.text, ...(answer.fields === undefined ? {} : { fields: answer.fields }) });
        return;
      }
      if (loading && answer.kind === 'loaded' && !settled) {
        // Evaluated: now the call itself (the timeout's clock runs on).
        loading = false;
        loadedAt = performance.now();
        pooled.loaded.set(fnId, Date.now());
        callId = this.nextCallId++;
        this.post(pooled, callMessage(callId, { code: false, args: true }));
        return;
      }
      if (answer.kind === 'result' || answer.kind === 'loaded') {
        pooled.loaded.set(fnId, Date.now());
        if (answer.kind === 'loaded') finish({ value: undefined });
        else if (answer.result.byteLength > this.resultBytesMax) finish({ error: new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the result is ${answer.result.byteLength} bytes; at most ${this.resultBytesMax}`) });
        else finish({ value: answer.result });
      } else {
        if (answer.loaded) pooled.loaded.set(fnId, Date.now());
        const wired = errorFromWire({ code: answer.error.code, message: answer.error.message });
        // The function's own failure carries its stack, mapped to its sources (executor/stack-map.ts).
        const remoteStack = wired.code === ErrorCode.EXEC_USER_ERROR && typeof answer.error.stack === 'string' ? mappedStack(answer.error.stack, fnId, pending.fn.sourceMap) : '';
        finish({ error: remoteStack.length > 0 ? new LfaasError(wired.code, wired.message, { remoteStack }) : wired });
      }
      // The first call of a cold start answered in time (a result or the function's own error): its stages.
      if (cold !== undefined && loadedAt > 0 && !timedOut) this.coldStarts.record({ spawnedAt: pooled.spawnedAt, readyAt: pooled.readyAt, arrivedAt: pending.arrivedAt, postedAt, loadedAt, answeredAt: performance.now() }, cold.stem, pending.fn.id);
      // A runtime that answered after its timeout's abort is kept: it is well again.
      release(false);
    };
    const onExit = (exit: RuntimeExit): void => {
      // The runtime died under the call: its memory limit, a broken protocol, or (a bug) anything else.
      if (pooled.overMemory || exit.outOfMemory) {
        this.counters.outOfMemory++;
        finish({ error: new LfaasError(ErrorCode.EXEC_OUT_OF_MEMORY, `${fnId} exceeded ${pending.fn.memoryMb} MB`) });
      } else if (exit.brokeProtocol === true) {
        this.counters.protocolBroken++;
        finish({ error: new LfaasError(ErrorCode.EXEC_USER_ERROR, `${fnId}: ${exit.reason}; the sandbox was ended`) });
      } else finish({ error: new LfaasError(ErrorCode.INTERNAL, `the runtime running ${fnId} ended: ${exit.reason}`) });
      release(true);
    };
    // The clock starts once the runtime is ready: a fresh sandbox process's start is not the call's time.
    let timer: NodeJS.Timeout | undefined;
    const startClock = (): void => {
      if (settled || pooled.ended) return;
      timer = setTimeout(onTimeout, pending.fn.timeoutMs);
    };
    /** The call is answered `error` now; its ctx.signal aborts, and a runtime that does not settle within the grace is replaced. */
    const abandon = (error: LfaasError): void => {
      timedOut = true;
      finish({ error });
      this.post(pooled, { kind: 'abort', callId });
      graceTimer = setTimeout(() => release(true), this.options.abortGraceMs ?? 100);
    };
    const onTimeout = (): void => {
      this.counters.timeouts++;
      abandon(new LfaasError(ErrorCode.EXEC_TIMEOUT, `${fnId} did not finish in ${pending.fn.timeoutMs} ms`));
    };
    // Cancelled while it runs: as a timeout; only this call's runtime, which holds its owner's code alone.
    const onCancel = (): void => {
      if (settled || timedOut) return;
      clearTimeout(timer);
      abandon(cancelledError(fnId));
    };
    pending.signal?.addEventListener('abort', onCancel, { once: true });
    pooled.onAnswer = onMessage;
    pooled.onExit = onExit;
    const callMessage = (id: number, send: { readonly code: boolean; readonly args: boolean }): RuntimeCall => ({
      kind: 'call',
      callId: id,
      functionId: fnId,
      ...(send.code ? { code: pending.fn.code } : {}),
      ...(send.args && pending.args !== undefined ? { args: pending.args } : {}),
      timeoutMs: pending.fn.timeoutMs,
      resultBytesMax: this.resultBytesMax,
      invocation: pending.invocation,
    });
    this.post(pooled, callMessage(callId, { code: !warm, args: !loading }));
    if (pooled.isReady) startClock();
    else void pooled.runtime.ready.then(startClock);
  }

  private post(pooled: PooledWorker, message: PoolMessage): void {
    if (!pooled.ended) pooled.runtime.post(message);
  }

  /** Answers a function's `ctx` request through the call's host. */
  private serveHost(pooled: PooledWorker, host: FunctionHost | undefined, ask: HostAsk): void {
    answerHostAsk(host, ask, (reply) => this.post(pooled, reply));
  }

  /**
   * Starts what waits and can start, in order per owner: a call whose owner has no runtime free
   * does not hold up another owner's calls behind it.
   */
  private drain(): void {
    if (this.closed || this.queue.length === 0) return;
    const blocked = new Set<string>();
    for (let i = 0; i < this.queue.length; ) {
      const next = this.queue[i]!;
      const key = `${this.ownerOf(next.fn) ?? ''}\u0000${next.fn.memoryMb}`;
      if (blocked.has(key) || !this.dispatch(next)) {
        blocked.add(key);
        i++;
        continue;
      }
      this.queue.splice(i, 1);
    }
  }

  /**
   * Keep-alive: drops realms unused for their keep-alive; ends runtimes left with none beyond
   * their owner's stem target (processes) and idle stems beyond their class's target
   * (executor/stem-refill.ts); plans the due prewarms and refills the stem pools.
   */
  private sweep(nowMs: number): void {
    for (const pooled of [...this.workers]) {
      if (pooled.busy || pooled.ended) continue;
      for (const [fnId, usedMs] of pooled.loaded) {
        if (nowMs - usedMs <= this.keepAlives.keepAliveMs(fnId)) continue;
        pooled.loaded.delete(fnId);
        this.counters.unloaded++;
        this.post(pooled, { kind: 'unload', functionId: fnId });
      }
    }
    for (const pooled of this.stems.surplus(nowMs)) {
      this.counters.idleEnded++;
      this.remove(pooled);
      void this.end(pooled);
    }
    // The prewarm timer's backup (a timer late under load).
    this.keepAlives.runDue(nowMs);
    this.stems.topUp();
    // Runtimes idle long enough may now be taken by calls that wait.
    this.drain();
  }

  /** Ends busy sandbox processes whose resident memory passed their limit (buffers count, not only the heap). */
  private checkMemory(): void {
    for (const pooled of this.workers) {
      if (!pooled.busy || pooled.ended || pooled.memoryLimitBytes === undefined) continue;
      const bytes = pooled.runtime.memoryBytes();
      if (bytes === undefined || bytes <= pooled.memoryLimitBytes) continue;
      pooled.overMemory = true;
      void pooled.runtime.end().then(() => pooled.onExit?.({ outOfMemory: true, reason: `resident memory ${bytes} bytes passed ${pooled.memoryLimitBytes}` }));
    }
  }

  private spawn(memoryMb: number): PooledWorker {
    this.counters.spawned++;
    const runtime = (this.options.startRuntime ?? startRuntime)(this.isolation, memoryMb);
    const pooled: PooledWorker = { runtime, owner: undefined, memoryMb, loaded: new Map(), busy: false, preparing: false, ended: false, idleSinceMs: Date.now(), usedOrder: 0, memoryLimitBytes: undefined, overMemory: false, isReady: false, spawnedAt: performance.now(), readyAt: undefined, onAnswer: undefined, onExit: undefined };
    runtime.onAnswer = (answer) => pooled.onAnswer?.(answer);
    runtime.onExit = (exit) => {
      const onExit = pooled.onExit;
      if (onExit !== undefined) onExit(exit);
      else if (!pooled.ended) {
        // An idle runtime ended by itself: it goes, and a stem takes its place.
        this.remove(pooled);
        pooled.ended = true;
        this.stems.topUp();
      }
    };
    void runtime.ready.then(() => {
      pooled.isReady = true;
      pooled.readyAt = performance.now();
      // Settled by an exit, it did not start: no start time.
      if (!pooled.ended) {
        this.stems.recordStart(pooled.readyAt - pooled.spawnedAt);
      }
      // A new stem: calls waiting for room may take it.
      setImmediate(() => this.drain());
      const base = runtime.memoryBytes();
      if (base !== undefined) pooled.memoryLimitBytes = base + memoryMb * 1024 * 1024 + MEMORY_SLACK_BYTES;
    });
    this.workers.push(pooled);
    return pooled;
  }

  /** Ends a runtime that broke a limit and starts a fresh stem of its class in its place. */
  private replace(pooled: PooledWorker): void {
    this.counters.replaced++;
    this.remove(pooled);
    void this.end(pooled);
    if (!this.closed) this.spawn(pooled.memoryMb);
    this.drain();
  }

  private remove(pooled: PooledWorker): void {
    const index = this.workers.indexOf(pooled);
    if (index >= 0) this.workers.splice(index, 1);
  }

  private async end(pooled: PooledWorker): Promise<void> {
    if (pooled.ended) return;
    pooled.ended = true;
    await pooled.runtime.end();
  }
}

function cancelledError(fnId: string): LfaasError {
  return new LfaasError(ErrorCode.EXEC_CANCELLED, `${fnId} was cancelled`);
}
