/**
 * The pool of runtime worker threads of an executor (DESIGN.md §9, ECOSYSTEM.md "Running user
 * functions"): pre-spawned, unspecialised workers wait ("stem cells"); a call goes to an idle
 * worker of its memory class, preferring one that already holds the function's context (warm);
 * the worker's heap is capped (`resourceLimits`) at the function's `memoryMb`.
 *
 * Limits: a call not answered within its `timeoutMs` fails with EXEC_TIMEOUT; a worker that runs
 * out of memory fails its call with EXEC_OUT_OF_MEMORY. Either way the worker is ended and a
 * fresh one takes its place: the pool, and the executor, stay up. Calls wait in a bounded queue
 * when every worker is busy (SCHED_NO_CAPACITY beyond it).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCode, LfaasError, decodeLattice, ensureLfaasError, errorFromWire } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import { DEFAULT_MAX_VALUE_BYTES, decodeValue, encodeValue } from '../protocol/index.js';
import type { KvsAsk, KvsReply, RuntimeAnswer, RuntimeCall } from './runtime-worker.js';

export interface FunctionCode {
  /** `name@version`. */
  readonly id: string;
  /** The bundled module (CommonJS body). */
  readonly code: string;
  readonly memoryMb: number;
  readonly timeoutMs: number;
}

export interface RuntimePoolOptions {
  /** Workers started ahead of calls, per memory class of `memoryMb`. */
  readonly prewarm?: number;
  /** The memory class prewarmed workers get. */
  readonly memoryMb?: number;
  /** Workers at most, over all classes. */
  readonly workersMax?: number;
  /** Calls waiting for a worker, at most. */
  readonly queueMax?: number;
  readonly resultBytesMax?: number;
}

/** The compiled worker beside this module; from the TypeScript sources (tests), the built one. */
const WORKER_URL = existsSync(fileURLToPath(new URL('./runtime-worker.js', import.meta.url)))
  ? new URL('./runtime-worker.js', import.meta.url)
  : new URL('../dist/executor/runtime-worker.js', import.meta.url);

interface PooledWorker {
  readonly worker: Worker;
  /** Why it ended, when it ended by itself. */
  failure?: Error & { code?: string };
  readonly memoryMb: number;
  readonly loaded: Set<string>;
  busy: boolean;
  ended: boolean;
  readonly ready: Promise<void>;
}

/** Where a function's `ctx` reaches the KVS: the executor's cache. */
export interface FunctionHost {
  get(key: string): Promise<AnyLattice | undefined>;
  merge(key: string, value: AnyLattice): Promise<void>;
  delete(key: string): Promise<void>;
}

interface Pending {
  readonly fn: FunctionCode;
  readonly args: Uint8Array;
  readonly host: FunctionHost | undefined;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: LfaasError) => void;
}

export class RuntimePool {
  private readonly workers: PooledWorker[] = [];
  private readonly queue: Pending[] = [];
  private nextCallId = 1;
  private closed = false;
  private readonly workersMax: number;
  private readonly queueMax: number;
  private readonly resultBytesMax: number;
  readonly counters = { calls: 0, warm: 0, cold: 0, timeouts: 0, outOfMemory: 0, replaced: 0 };

  constructor(private readonly options: RuntimePoolOptions = {}) {
    this.workersMax = options.workersMax ?? 8;
    this.queueMax = options.queueMax ?? 1000;
    this.resultBytesMax = options.resultBytesMax ?? DEFAULT_MAX_VALUE_BYTES;
    for (let i = 0; i < (options.prewarm ?? 2); i++) this.spawn(options.memoryMb ?? 128);
  }

  /** Waits until every worker started so far is ready (tests, and an executor's startup). */
  async ready(): Promise<void> {
    await Promise.all(this.workers.map((pooled) => pooled.ready));
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Runs `fn` on `args` (its `ctx` reaches the KVS through `host`); resolves with its result or
   * rejects with a typed error.
   */
  run(fn: FunctionCode, args: readonly unknown[], host?: FunctionHost): Promise<unknown> {
    if (this.closed) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the runtime pool is closed'));
    let encoded: Uint8Array;
    try {
      encoded = encodeValue([...args]);
    } catch (error) {
      return Promise.reject(error instanceof LfaasError ? error : new LfaasError(ErrorCode.EXEC_BAD_VALUE, String(error)));
    }
    this.counters.calls++;
    return new Promise((resolve, reject) => {
      const pending: Pending = { fn, args: encoded, host, resolve, reject };
      if (!this.dispatch(pending)) {
        if (this.queue.length >= this.queueMax) {
          reject(new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `${this.queue.length} calls wait for a runtime`));
          return;
        }
        this.queue.push(pending);
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the runtime pool closed'));
    await Promise.all(this.workers.splice(0).map((pooled) => this.end(pooled)));
  }

  /** Starts the call on a worker if one can take it; false when it must wait. */
  private dispatch(pending: Pending): boolean {
    const memoryMb = pending.fn.memoryMb;
    const idle = this.workers.filter((pooled) => !pooled.busy && !pooled.ended && pooled.memoryMb === memoryMb);
    let pooled = idle.find((candidate) => candidate.loaded.has(pending.fn.id)) ?? idle[0];
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
    const warm = pooled.loaded.has(pending.fn.id);
    if (warm) this.counters.warm++;
    else this.counters.cold++;
    let settled = false;
    const finish = (outcome: { value: unknown } | { error: LfaasError }, replace: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      pooled.worker.off('message', onMessage);
      pooled.worker.off('exit', onExit);
      if ('error' in outcome) pending.reject(outcome.error);
      else pending.resolve(outcome.value);
      if (replace) this.replace(pooled);
      else {
        pooled.busy = false;
        this.drain();
      }
    };
    const onMessage = (answer: RuntimeAnswer): void => {
      if (answer.kind === 'ready' || answer.callId !== callId) return;
      if (answer.kind === 'kvs') {
        this.serveKvs(pooled, pending.host, answer);
        return;
      }
      if (answer.kind === 'result') {
        pooled.loaded.add(pending.fn.id);
        try {
          finish({ value: decodeValue(answer.result, { maxBytes: this.resultBytesMax }) }, false);
        } catch (error) {
          finish({ error: error instanceof LfaasError ? error : new LfaasError(ErrorCode.EXEC_BAD_VALUE, String(error)) }, false);
        }
        return;
      }
      if (answer.loaded) pooled.loaded.add(pending.fn.id);
      finish({ error: errorFromWire({ code: answer.error.code, message: answer.error.message }) }, false);
    };
    const onExit = (): void => {
      // The worker died under the call: its heap limit, or (a bug) anything else.
      if (pooled.failure?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
        this.counters.outOfMemory++;
        finish({ error: new LfaasError(ErrorCode.EXEC_OUT_OF_MEMORY, `${pending.fn.id} exceeded ${pending.fn.memoryMb} MB`) }, true);
      } else finish({ error: new LfaasError(ErrorCode.INTERNAL, `the runtime worker running ${pending.fn.id} ended: ${pooled.failure?.message ?? 'no reason given'}`) }, true);
    };
    const timer = setTimeout(() => {
      this.counters.timeouts++;
      finish({ error: new LfaasError(ErrorCode.EXEC_TIMEOUT, `${pending.fn.id} did not finish in ${pending.fn.timeoutMs} ms`) }, true);
    }, pending.fn.timeoutMs);
    pooled.worker.on('message', onMessage);
    pooled.worker.once('exit', onExit);
    const message: RuntimeCall = {
      kind: 'call',
      callId,
      functionId: pending.fn.id,
      ...(warm ? {} : { code: pending.fn.code }),
      args: pending.args,
      timeoutMs: pending.fn.timeoutMs,
      resultBytesMax: this.resultBytesMax,
    };
    pooled.worker.postMessage(message);
  }

  /** Answers a function's KVS access through the call's host (the executor's cache). */
  private serveKvs(pooled: PooledWorker, host: FunctionHost | undefined, ask: KvsAsk): void {
    const reply = (body: { payload?: Uint8Array; error?: { code: string; message: string } }): void => {
      if (!pooled.ended) pooled.worker.postMessage({ kind: 'kvsReply', requestId: ask.requestId, ...body } satisfies KvsReply);
    };
    const fail = (error: unknown): void => {
      const typed = ensureLfaasError(error);
      reply({ error: { code: typed.code, message: typed.message } });
    };
    if (host === undefined) {
      fail(new LfaasError(ErrorCode.KVS_NO_SERVERS, 'this call has no KVS'));
      return;
    }
    try {
      switch (ask.op) {
        case 'get':
          host.get(ask.key).then((value) => reply(value === undefined ? {} : { payload: value.encode() }), fail);
          return;
        case 'merge':
          host.merge(ask.key, decodeLattice(ask.payload ?? new Uint8Array())).then(() => reply({}), fail);
          return;
        case 'delete':
          host.delete(ask.key).then(() => reply({}), fail);
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
    const pooled: PooledWorker = { worker, memoryMb, loaded: new Set(), busy: false, ended: false, ready };
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
