/**
 * The pool of runtime worker threads of an executor (DESIGN.md §9, ECOSYSTEM.md "Running user
 * functions"): pre-spawned, unspecialised workers wait ("stem cells"); a call goes to an idle
 * worker of its memory class, preferring one that already holds the function's context (warm);
 * the worker's heap is capped (`resourceLimits`) at the function's `memoryMb`.
 *
 * - Warm stacks: of the idle workers warm for a function, the most recently used one is taken
 *   (last in, first out), so after a load drop the surplus runtimes go unused and expire.
 * - Keep-alive: a function's context unused for its `keepAliveMs` is dropped from its worker,
 *   which becomes unspecialised again; unspecialised workers beyond `prewarm` that stay idle for
 *   `idleWorkerMs` are ended.
 * - Limits: at a call's `timeoutMs` the call fails with EXEC_TIMEOUT and its `ctx.signal` is
 *   aborted; a worker that does not settle within `abortGraceMs` after that (a loop, a promise
 *   that never settles) is ended and replaced. A worker that runs out of heap fails its call with
 *   EXEC_OUT_OF_MEMORY and is replaced. The pool, and the executor, stay up. Calls wait in a
 *   bounded queue when every worker is busy (SCHED_NO_CAPACITY beyond it).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCode, LfaasError, decodeLattice, ensureLfaasError, errorFromWire } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { DEFAULT_MAX_VALUE_BYTES, decodeValue, encodeValue } from '../protocol/index.js';
import type { HostAsk, HostReply, Invocation, PoolMessage, RuntimeAnswer, RuntimeCall } from './runtime-worker.js';

export interface FunctionCode {
  /** `name@version`. */
  readonly id: string;
  /** The bundled module (CommonJS body). */
  readonly code: string;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  /** How long its context stays warm unused (default 10 minutes). */
  readonly keepAliveMs?: number;
}

export interface RuntimePoolOptions {
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

/** The compiled worker beside this module; from the TypeScript sources (tests), the built one. */
const WORKER_URL = existsSync(fileURLToPath(new URL('./runtime-worker.js', import.meta.url)))
  ? new URL('./runtime-worker.js', import.meta.url)
  : new URL('../dist/executor/runtime-worker.js', import.meta.url);

const DEFAULT_KEEP_ALIVE_MS = 10 * 60_000;

interface PooledWorker {
  readonly worker: Worker;
  /** Why it ended, when it ended by itself. */
  failure?: Error & { code?: string };
  readonly memoryMb: number;
  /** Function id -> when it last ran here. */
  readonly loaded: Map<string, number>;
  busy: boolean;
  ended: boolean;
  /** When it last finished a call. */
  idleSinceMs: number;
  /** Which finished call of the pool was its last one: orders the warm stack (two calls may end in one millisecond). */
  usedOrder: number;
  readonly ready: Promise<void>;
  /** The running call's handlers (the worker's listeners stay for its life: no add/remove per call). */
  onAnswer: ((answer: RuntimeAnswer) => void) | undefined;
  onExit: (() => void) | undefined;
}

/**
 * Where a function's `ctx` goes: the executor's cache in the call's consistency mode, and the
 * mailboxes of the call's run. `put` gets a plain (msgpack) value: the host picks its lattice.
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
  private nextCallId = 1;
  private callsFinished = 0;
  private closed = false;
  private readonly workersMax: number;
  private readonly queueMax: number;
  private readonly resultBytesMax: number;
  private readonly sweeper: NodeJS.Timeout;
  readonly counters = { calls: 0, warm: 0, cold: 0, timeouts: 0, outOfMemory: 0, replaced: 0, unloaded: 0, idleEnded: 0 };

  constructor(private readonly options: RuntimePoolOptions = {}) {
    this.workersMax = options.workersMax ?? 8;
    this.queueMax = options.queueMax ?? 1000;
    this.resultBytesMax = options.resultBytesMax ?? DEFAULT_MAX_VALUE_BYTES;
    for (let i = 0; i < Math.min(this.workersMax, options.prewarm ?? 2); i++) this.spawn(options.memoryMb ?? 128);
    this.sweeper = setInterval(() => this.sweep(Date.now()), options.sweepPeriodMs ?? 1000);
    this.sweeper.unref();
  }

  /** Waits until every worker started so far is ready (tests, and an executor's startup). */
  async ready(): Promise<void> {
    await Promise.all(this.workers.map((pooled) => pooled.ready));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runtime slots at most (one call per worker). */
  get capacity(): number {
    return this.workersMax;
  }

  /** Calls running or waiting. */
  get load(): number {
    return this.workers.filter((pooled) => pooled.busy).length + this.queue.length;
  }

  /** `name@version` of every function with a warm context somewhere in the pool. */
  warmFunctions(): string[] {
    const warm = new Set<string>();
    for (const pooled of this.workers) for (const id of pooled.loaded.keys()) warm.add(id);
    return [...warm];
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

  /** Specialises a runtime for `fn` ahead of its calls (creates its context in a worker). */
  async prepare(fn: FunctionCode): Promise<void> {
    if (this.workers.some((pooled) => pooled.loaded.has(fn.id))) return;
    await this.submit(fn, undefined, undefined, NO_INVOCATION);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const pending of this.queue.splice(0)) pending.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the runtime pool closed'));
    await Promise.all(this.workers.splice(0).map((pooled) => this.end(pooled)));
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

  /** Starts the call on a worker if one can take it; false when it must wait. */
  private dispatch(pending: Pending): boolean {
    const memoryMb = pending.fn.memoryMb;
    let best: PooledWorker | undefined;
    let bestUsedOrder = -1;
    let unspecialised: PooledWorker | undefined;
    let any: PooledWorker | undefined;
    for (const candidate of this.workers) {
      if (candidate.busy || candidate.ended || candidate.memoryMb !== memoryMb) continue;
      any ??= candidate;
      // Warm stack: the most recently used warm worker.
      if (candidate.loaded.has(pending.fn.id) && candidate.usedOrder > bestUsedOrder) {
        best = candidate;
        bestUsedOrder = candidate.usedOrder;
      }
      if (candidate.loaded.size === 0) unspecialised ??= candidate;
    }
    let pooled = best ?? unspecialised ?? any;
    if (pooled === undefined) {
      if (this.workers.length >= this.workersMax) {
        // Make room: end an idle worker of another class.
        const other = this.workers.find((candidate) => !candidate.busy && candidate.memoryMb !== memoryMb);
        if (other === undefined) return false;
        this.remove(other);
        void this.end(other);
      }
      pooled = this.spawn(memoryMb);
    }
    this.start(pooled, pending);
    return true;
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
      if (answer.kind === 'result' || answer.kind === 'loaded') {
        pooled.loaded.set(fnId, Date.now());
        if (answer.kind === 'loaded') finish({ value: undefined });
        else if (answer.result.byteLength > this.resultBytesMax) finish({ error: new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the result is ${answer.result.byteLength} bytes; at most ${this.resultBytesMax}`) });
        else finish({ value: answer.result });
      } else {
        if (answer.loaded) pooled.loaded.set(fnId, Date.now());
        finish({ error: errorFromWire({ code: answer.error.code, message: answer.error.message }) });
      }
      // A worker that settled after its timeout's abort is kept: it is well again.
      release(false);
    };
    const onExit = (): void => {
      // The worker died under the call: its heap limit, or (a bug) anything else.
      if (pooled.failure?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        this.counters.outOfMemory++;
        finish({ error: new LfaasError(ErrorCode.EXEC_OUT_OF_MEMORY, `${fnId} exceeded ${pending.fn.memoryMb} MB`) });
      } else finish({ error: new LfaasError(ErrorCode.INTERNAL, `the runtime worker running ${fnId} ended: ${pooled.failure?.message ?? 'no reason given'}`) });
      release(true);
    };
    const timer = setTimeout(() => {
      this.counters.timeouts++;
      timedOut = true;
      finish({ error: new LfaasError(ErrorCode.EXEC_TIMEOUT, `${fnId} did not finish in ${pending.fn.timeoutMs} ms`) });
      this.post(pooled, { kind: 'abort', callId });
      graceTimer = setTimeout(() => release(true), this.options.abortGraceMs ?? 100);
    }, pending.fn.timeoutMs);
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
  }

  private post(pooled: PooledWorker, message: PoolMessage): void {
    if (!pooled.ended) pooled.worker.postMessage(message);
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

  private drain(): void {
    while (this.queue.length > 0 && !this.closed) {
      const next = this.queue[0]!;
      if (!this.dispatch(next)) return;
      this.queue.shift();
    }
  }

  /** Keep-alive: drops contexts unused for their keep-alive; ends surplus idle stem cells. */
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
      unspecialisedIdle++;
      if (unspecialisedIdle > prewarm && nowMs - pooled.idleSinceMs > (this.options.idleWorkerMs ?? 60_000)) {
        this.counters.idleEnded++;
        this.remove(pooled);
        void this.end(pooled);
      }
    }
  }

  private spawn(memoryMb: number): PooledWorker {
    const worker = new Worker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.floor(memoryMb / 8)) } });
    worker.unref();
    const ready = new Promise<void>((resolve) => {
      const onReady = (answer: RuntimeAnswer): void => {
        if (answer.kind !== 'ready') return;
        worker.off('message', onReady);
        resolve();
      };
      worker.on('message', onReady);
      worker.once('exit', () => resolve());
    });
    const pooled: PooledWorker = { worker, memoryMb, loaded: new Map(), busy: false, ended: false, idleSinceMs: Date.now(), usedOrder: 0, ready, onAnswer: undefined, onExit: undefined };
    worker.on('message', (answer: RuntimeAnswer) => pooled.onAnswer?.(answer));
    worker.once('exit', () => pooled.onExit?.());
    // Out-of-memory surfaces as an 'error' (ERR_WORKER_OUT_OF_MEMORY), then 'exit'; the call's
    // exit handler reports it.
    worker.on('error', (error: Error & { code?: string }) => {
      pooled.failure = error;
    });
    this.workers.push(pooled);
    return pooled;
  }

  /** Ends a worker that breached a limit and starts a fresh one of its class in its place. */
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
    // A runtime worker holds no sockets, so terminating it is safe (ECOSYSTEM.md pitfall 3 is
    // about ZeroMQ sockets in workers).
    await pooled.worker.terminate();
  }
}
