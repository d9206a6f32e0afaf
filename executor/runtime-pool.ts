/**
 * The pool of runtimes of an executor (sandbox/ is what runs inside one): pre-spawned,
 * unspecialised runtimes wait ("stem cells"); a call goes to an idle runtime of its owner and
 * memory class, preferring one that already holds the function's realm (warm).
 *
 * - Isolation (executor/isolation.ts): at `process` and `bwrap` a runtime is a sandbox process,
 *   and a process serves one owner for its whole life: a stem is bound to the owner of its first
 *   function and ended, never reused, when that owner's functions go cold. (A function's owner is
 *   its namespace, `alice` for `alice/f`; a function in no namespace, an administrator's, is its
 *   own owner.) At `none` a runtime is a trusted thread shared by all.
 * - Warm stacks: of the idle runtimes warm for a function, the most recently used one is taken
 *   (last in, first out), so after a load drop the surplus runtimes go unused and expire.
 * - Keep-alive: a function's realm unused for its `keepAliveMs` is dropped; a runtime left with
 *   none is ended (a process) or becomes unspecialised again (a thread); unspecialised runtimes
 *   beyond `prewarm` that stay idle for `idleWorkerMs` are ended.
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
import pino from 'pino';
import { ErrorCode, LfaasError, decodeLattice, ensureLfaasError, errorFromWire } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { DEFAULT_MAX_VALUE_BYTES, decodeValue, encodeValue } from '../protocol/index.js';
import { LOG_RECORDS_MAX } from '../sandbox/index.js';
import type { HostAsk, HostReply, Invocation, LogRecord, PoolMessage, RuntimeAnswer, RuntimeCall } from '../sandbox/index.js';
import type { IsolationLevel } from './isolation.js';
import { startRuntime } from './runtimes.js';
import type { Runtime, RuntimeExit } from './runtimes.js';

export interface FunctionCode {
  /** `name@version`. */
  readonly id: string;
  /** The bundled module (CommonJS body). */
  readonly code: string;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  /** How long its realm stays warm unused (default 10 minutes). */
  readonly keepAliveMs?: number;
  /** Whose function it is: sandbox processes are never shared between owners (default: the function's name; the host passes its namespace). */
  readonly owner?: string;
}

export interface RuntimePoolOptions {
  /** How runtimes are isolated (default `process`; `none` only for trusted code). */
  readonly isolation?: IsolationLevel;
  /** How often busy sandbox processes' memory is read (default 10 ms). */
  readonly memoryCheckMs?: number;
  /** The level of functions' log records in this process's log (default `LFAAS_FUNCTION_LOG_LEVEL`, else `info`). */
  readonly functionLogLevel?: string;
  /** Workers started ahead of calls (stem cells), in the memory class `memoryMb`. */
  readonly prewarm?: number;
  /** The memory class prewarmed workers get. */
  readonly memoryMb?: number;
  /** Workers at most, over all classes. */
  readonly workersMax?: number;
  /** Calls waiting for a worker, at most. */
  readonly queueMax?: number;
  readonly resultBytesMax?: number;
  /** After a call's timeout, how long its worker may take to settle before it is ended. */
  readonly abortGraceMs?: number;
  /** How long a surplus unspecialised worker may stay idle. */
  readonly idleWorkerMs?: number;
  /** How often keep-alive and idle workers are checked. */
  readonly sweepPeriodMs?: number;
}

const DEFAULT_KEEP_ALIVE_MS = 10 * 60_000;
/** Resident memory a sandbox process may use beyond its size at start and its `memoryMb` (code, stacks, young generation). */
const MEMORY_SLACK_BYTES = 32 * 1024 * 1024;
/** How long another owner's runtime must have been idle before an owner with busy runtimes of its own may take its place. */
const OWNER_RECLAIM_IDLE_MS = 1000;
/** How long after a stem is taken its replacement starts. */
const STEM_TOP_UP_DELAY_MS = 50;
/** Fields of a function's log record that stay the executor's. */
const RESERVED_LOG_FIELDS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'callId', 'fn', 'v']);


interface PooledWorker {
  readonly runtime: Runtime;
  /** The owner a sandbox process is bound to (undefined: a stem, or any thread). */
  owner: string | undefined;
  readonly memoryMb: number;
  /** Function id -> when it last ran here. */
  readonly loaded: Map<string, number>;
  busy: boolean;
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
  /** The running call's handlers (the runtime's listeners stay for its life: no add/remove per call). */
  onAnswer: ((answer: RuntimeAnswer) => void) | undefined;
  onExit: ((exit: RuntimeExit) => void) | undefined;
}

/**
 * Where a function's `ctx` goes: the executor's cache in the call's consistency mode, and the
 * mailboxes of the call's run. `put` gets a plain (msgpack) value: the host picks its lattice. A
 * method may throw at once (a key the function may not reach): the pool answers that request with
 * the error, as it does a rejection.
 */
export interface FunctionHost {
  get(key: string): Promise<AnyLattice | undefined>;
  put(key: string, value: unknown): Promise<void>;
  merge(key: string, value: AnyLattice): Promise<void>;
  delete(key: string): Promise<void>;
  send?(target: string, payload: Uint8Array): Promise<void>;
  recv?(timeoutMs: number): Promise<Uint8Array | undefined>;
}

interface Pending {
  readonly fn: FunctionCode;
  /** Absent for a prepare (load only). */
  readonly args: Uint8Array | undefined;
  readonly host: FunctionHost | undefined;
  readonly invocation: Invocation;
  readonly resolve: (result: Uint8Array | undefined) => void;
  readonly reject: (error: LfaasError) => void;
}

const NO_INVOCATION: Invocation = { runId: '', functionName: '' };

export class RuntimePool {
  private readonly workers: PooledWorker[] = [];
  private readonly queue: Pending[] = [];
  private readonly keepAlive = new Map<string, number>();
  /** Prepares in flight, by function version. */
  private readonly preparing = new Map<string, Promise<void>>();
  private nextCallId = 1;
  private callsFinished = 0;
  private closed = false;
  private readonly workersMax: number;
  private readonly queueMax: number;
  private readonly resultBytesMax: number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly memoryWatch: NodeJS.Timeout | undefined;
  private readonly functionLog: pino.Logger;
  private topUpTimer: NodeJS.Timeout | undefined;
  /** How runtimes are isolated. */
  readonly isolation: IsolationLevel;
  readonly counters = { calls: 0, warm: 0, cold: 0, timeouts: 0, outOfMemory: 0, replaced: 0, unloaded: 0, idleEnded: 0, logRecords: 0, spawned: 0, protocolBroken: 0 };

  constructor(private readonly options: RuntimePoolOptions = {}) {
    this.isolation = options.isolation ?? 'process';
    this.functionLog = pino({ name: 'function', level: options.functionLogLevel ?? process.env['LFAAS_FUNCTION_LOG_LEVEL'] ?? 'info' }, pino.destination({ fd: 2, sync: false }));
    this.workersMax = options.workersMax ?? 8;
    this.queueMax = options.queueMax ?? 1000;
    this.resultBytesMax = options.resultBytesMax ?? DEFAULT_MAX_VALUE_BYTES;
    for (let i = 0; i < Math.min(this.workersMax, options.prewarm ?? 2); i++) this.spawn(options.memoryMb ?? 128);
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
  runEncoded(fn: FunctionCode, args: Uint8Array, host?: FunctionHost, invocation: Invocation = NO_INVOCATION): Promise<Uint8Array> {
    this.counters.calls++;
    return this.submit(fn, args, host, invocation) as Promise<Uint8Array>;
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
    clearTimeout(this.topUpTimer);
    for (const pending of this.queue.splice(0)) pending.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the runtime pool closed'));
    await Promise.all(this.workers.splice(0).map((pooled) => this.end(pooled)));
  }

  private ownerOf(fn: FunctionCode): string | undefined {
    if (this.isolation === 'none') return undefined;
    if (fn.owner !== undefined) return fn.owner;
    const at = fn.id.lastIndexOf('@');
    return at > 0 ? fn.id.slice(0, at) : fn.id;
  }

  private submit(fn: FunctionCode, args: Uint8Array | undefined, host: FunctionHost | undefined, invocation: Invocation): Promise<Uint8Array | undefined> {
    if (this.closed) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the runtime pool is closed'));
    this.keepAlive.set(fn.id, fn.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS);
    return new Promise((resolve, reject) => {
      const pending: Pending = { fn, args, host, invocation, resolve, reject };
      if (this.dispatch(pending)) return;
      if (this.queue.length >= this.queueMax) {
        reject(new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `${this.queue.length} calls wait for a runtime`));
        return;
      }
      this.queue.push(pending);
    });
  }

  /** Starts the call on a runtime if one can take it; false when it must wait. */
  private dispatch(pending: Pending): boolean {
    const memoryMb = pending.fn.memoryMb;
    const owner = this.ownerOf(pending.fn);
    let best: PooledWorker | undefined;
    let bestUsedOrder = -1;
    let ownUnspecialised: PooledWorker | undefined;
    let stem: PooledWorker | undefined;
    let any: PooledWorker | undefined;
    for (const candidate of this.workers) {
      if (candidate.busy || candidate.ended || candidate.memoryMb !== memoryMb) continue;
      // A sandbox process bound to another owner never runs this one's code.
      if (candidate.owner !== undefined && candidate.owner !== owner) continue;
      if (candidate.owner === undefined) stem ??= candidate;
      else any ??= candidate;
      // Warm stack: the most recently used warm runtime.
      if (candidate.loaded.has(pending.fn.id) && candidate.usedOrder > bestUsedOrder) {
        best = candidate;
        bestUsedOrder = candidate.usedOrder;
      }
      if (candidate.loaded.size === 0 && candidate.owner !== undefined) ownUnspecialised ??= candidate;
    }
    let pooled = best ?? ownUnspecialised ?? (this.isolation === 'none' ? (stem ?? any) : (any ?? stem));
    if (pooled === undefined) {
      // An owner whose runtimes are all busy grows its share only from room, a stem, or another
      // owner's runtime idle for a while: its call usually waits less for one of its own than a
      // process takes to start, and two busy owners would otherwise end each other's processes
      // in turn, each time a cold start.
      const hasOwn = owner !== undefined && this.workers.some((candidate) => candidate.owner === owner && !candidate.ended && candidate.memoryMb === memoryMb);
      if (this.workers.length >= this.workersMax) {
        // Make room: end an idle runtime this call cannot use (another class, or another owner's),
        // the least recently used.
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
      } else if (hasOwn) {
        // Room: a stem is started (if none is starting) and the call waits, for it or for one of its own.
        if (!this.workers.some((candidate) => candidate.owner === undefined && !candidate.isReady && !candidate.ended)) this.spawn(memoryMb);
        return false;
      }
      pooled = this.spawn(memoryMb);
    }
    if (pooled.owner === undefined && owner !== undefined) {
      pooled.owner = owner;
      this.topUpLater();
    }
    this.start(pooled, pending);
    return true;
  }

  /**
   * A stem was taken: another is started a little later, off the path of the call that took it
   * (forking a process blocks this event loop for milliseconds, and its start takes a core for
   * ~100 ms: measured, specialising a stem took 8.8 ms p50 with the replacement started at once,
   * 4.7 ms without).
   */
  private topUpLater(): void {
    if (this.topUpTimer !== undefined) return;
    this.topUpTimer = setTimeout(() => {
      this.topUpTimer = undefined;
      this.topUpStems();
    }, STEM_TOP_UP_DELAY_MS);
    this.topUpTimer.unref();
  }

  /** Keeps `prewarm` stems of the default class waiting, within the runtime bound. */
  private topUpStems(): void {
    if (this.closed || this.isolation === 'none') return;
    const memoryMb = this.options.memoryMb ?? 128;
    const stems = this.workers.filter((pooled) => pooled.owner === undefined && !pooled.ended && pooled.memoryMb === memoryMb).length;
    for (let missing = (this.options.prewarm ?? 2) - stems; missing > 0 && this.workers.length < this.workersMax; missing--) this.spawn(memoryMb);
  }

  private start(pooled: PooledWorker, pending: Pending): void {
    pooled.busy = true;
    const callId = this.nextCallId++;
    const fnId = pending.fn.id;
    const warm = pooled.loaded.has(fnId);
    if (pending.args !== undefined) {
      if (warm) this.counters.warm++;
      else this.counters.cold++;
    }
    let settled = false;
    let timedOut = false;
    let graceTimer: NodeJS.Timeout | undefined;
    let log: pino.Logger | undefined;
    let logRecords = 0;
    const release = (replace: boolean): void => {
      clearTimeout(timer);
      clearTimeout(graceTimer);
      pooled.onAnswer = undefined;
      pooled.onExit = undefined;
      if (replace) this.replace(pooled);
      else {
        pooled.busy = false;
        pooled.idleSinceMs = Date.now();
        pooled.usedOrder = ++this.callsFinished;
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
        this.writeLog(log, answer);
        return;
      }
      if (answer.kind === 'result' || answer.kind === 'loaded') {
        pooled.loaded.set(fnId, Date.now());
        if (answer.kind === 'loaded') finish({ value: undefined });
        else if (answer.result.byteLength > this.resultBytesMax) finish({ error: new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the result is ${answer.result.byteLength} bytes; at most ${this.resultBytesMax}`) });
        else finish({ value: answer.result });
      } else {
        if (answer.loaded) pooled.loaded.set(fnId, Date.now());
        finish({ error: errorFromWire({ code: answer.error.code, message: answer.error.message }) });
      }
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
    const onTimeout = (): void => {
      this.counters.timeouts++;
      timedOut = true;
      finish({ error: new LfaasError(ErrorCode.EXEC_TIMEOUT, `${fnId} did not finish in ${pending.fn.timeoutMs} ms`) });
      this.post(pooled, { kind: 'abort', callId });
      graceTimer = setTimeout(() => release(true), this.options.abortGraceMs ?? 100);
    };
    pooled.onAnswer = onMessage;
    pooled.onExit = onExit;
    const message: RuntimeCall = {
      kind: 'call',
      callId,
      functionId: fnId,
      ...(warm ? {} : { code: pending.fn.code }),
      ...(pending.args === undefined ? {} : { args: pending.args }),
      timeoutMs: pending.fn.timeoutMs,
      resultBytesMax: this.resultBytesMax,
      invocation: pending.invocation,
    };
    this.post(pooled, message);
    if (pooled.isReady) startClock();
    else void pooled.runtime.ready.then(startClock);
  }

  /** One log record of a function, into this process's log. */
  private writeLog(log: pino.Logger, record: LogRecord): void {
    this.counters.logRecords++;
    const level = record.level === 'log' ? 'info' : record.level;
    let fields: Record<string, unknown> | undefined;
    if (record.fields !== undefined) {
      try {
        const parsed: unknown = JSON.parse(record.fields);
        if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
          fields = {};
          for (const [key, value] of Object.entries(parsed)) if (!RESERVED_LOG_FIELDS.has(key)) fields[key] = value;
        }
      } catch {
        fields = { fieldsText: record.fields };
      }
    }
    if (fields === undefined) log[level](record.text);
    else log[level](fields, record.text);
  }

  private post(pooled: PooledWorker, message: PoolMessage): void {
    if (!pooled.ended) pooled.runtime.post(message);
  }

  /** Answers a function's `ctx` request through the call's host. */
  private serveHost(pooled: PooledWorker, host: FunctionHost | undefined, ask: HostAsk): void {
    const reply = (payload?: Uint8Array): void => this.post(pooled, { kind: 'hostReply', requestId: ask.requestId, ...(payload === undefined ? {} : { payload }) } satisfies HostReply);
    const fail = (error: unknown): void => {
      const typed = ensureLfaasError(error);
      this.post(pooled, { kind: 'hostReply', requestId: ask.requestId, error: { code: typed.code, message: typed.message } } satisfies HostReply);
    };
    if (host === undefined) {
      fail(new LfaasError(ErrorCode.KVS_NO_SERVERS, 'this call has no KVS'));
      return;
    }
    try {
      const key = ask.key ?? '';
      switch (ask.op) {
        case 'get':
          host.get(key).then((value) => reply(value?.encode()), fail);
          return;
        case 'put':
          host.put(key, decodeValue(ask.payload ?? new Uint8Array())).then(() => reply(), fail);
          return;
        case 'merge':
          host.merge(key, decodeLattice(ask.payload ?? new Uint8Array())).then(() => reply(), fail);
          return;
        case 'delete':
          host.delete(key).then(() => reply(), fail);
          return;
        case 'send':
          if (host.send === undefined) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'this call is not part of a run with other invocations');
          host.send(ask.target ?? '', ask.payload ?? new Uint8Array()).then(() => reply(), fail);
          return;
        case 'recv':
          if (host.recv === undefined) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'this call has no mailbox');
          host.recv(ask.timeoutMs ?? 0).then((payload) => reply(payload), fail);
          return;
      }
    } catch (error) {
      fail(error);
    }
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

  /** Keep-alive: drops realms unused for their keep-alive; ends runtimes left with none (processes) and surplus idle stems. */
  private sweep(nowMs: number): void {
    const prewarm = this.options.prewarm ?? 2;
    let unspecialisedIdle = 0;
    for (const pooled of [...this.workers]) {
      if (pooled.busy || pooled.ended) continue;
      for (const [fnId, usedMs] of pooled.loaded) {
        if (nowMs - usedMs <= (this.keepAlive.get(fnId) ?? DEFAULT_KEEP_ALIVE_MS)) continue;
        pooled.loaded.delete(fnId);
        this.counters.unloaded++;
        this.post(pooled, { kind: 'unload', functionId: fnId });
      }
      if (pooled.loaded.size > 0) continue;
      if (pooled.owner !== undefined) {
        // An owner's process never serves another: cold, it ends.
        this.counters.idleEnded++;
        this.remove(pooled);
        void this.end(pooled);
        continue;
      }
      unspecialisedIdle++;
      if (unspecialisedIdle > prewarm && nowMs - pooled.idleSinceMs > (this.options.idleWorkerMs ?? 60_000)) {
        this.counters.idleEnded++;
        this.remove(pooled);
        void this.end(pooled);
      }
    }
    this.topUpStems();
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
    const runtime = startRuntime(this.isolation, memoryMb);
    const pooled: PooledWorker = { runtime, owner: undefined, memoryMb, loaded: new Map(), busy: false, ended: false, idleSinceMs: Date.now(), usedOrder: 0, memoryLimitBytes: undefined, overMemory: false, isReady: false, onAnswer: undefined, onExit: undefined };
    runtime.onAnswer = (answer) => pooled.onAnswer?.(answer);
    runtime.onExit = (exit) => {
      const onExit = pooled.onExit;
      if (onExit !== undefined) onExit(exit);
      else if (!pooled.ended) {
        // An idle runtime ended by itself: it goes, and a stem takes its place.
        this.remove(pooled);
        pooled.ended = true;
        this.topUpStems();
      }
    };
    void runtime.ready.then(() => {
      pooled.isReady = true;
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
