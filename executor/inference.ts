/**
 * Inference as a platform capability (`ctx.infer(modelKey, feeds)`): functions run in sandboxes
 * that cannot load native modules, so the executor runs models for them, with onnxruntime in a
 * child process (inference-process.ts) forked on first use.
 *
 * - Isolation: the native parser and runtime live in the child. If it dies (a model that crashes
 *   onnxruntime), the requests in flight fail with INTERNAL and the next request forks a new one;
 *   a request that takes longer than its timeout fails with EXEC_TIMEOUT and the child is killed
 *   (a native run cannot be cancelled; the others in flight fail with INTERNAL).
 * - Sessions: one per model key and model version, cached (at most `sessionsMax`, least recently
 *   used released). The version is the bytes' identity: `readModel` goes through the executor's
 *   cache, which hands back the same bytes while the model is unchanged (readChunkedModel keeps
 *   them per manifest), and the sha256 of new bytes otherwise. So the first call on an executor
 *   loads the model and the next ones do not (`counters.modelLoads`).
 * - What a model may reach: models are owners' data and run in one process per executor, so the
 *   child runs in an empty working directory of its own, and refuses any model with a tensor whose
 *   data is in an external file before onnxruntime parses it (onnxruntime would read that file:
 *   onnx-model-check.ts). It is not a namespace sandbox: a model that exploits a bug in
 *   onnxruntime's native parser runs as the executor's user (SECURITY.md).
 * - Validation both ways: feeds by `checkTensorRecord` before they reach the child, outputs again
 *   when they come back. A missing model is KVS_KEY_NOT_FOUND; bytes onnxruntime cannot parse,
 *   feeds the model refuses and malformed tensors are EXEC_BAD_VALUE.
 *
 * @example
 * ```ts
 * const inference = new InferenceService({ mlDir: defaultMlDir(), readModel: (key) => readChunkedModel((k) => cache.get(k).then((v) => v?.reveal()), key) });
 * const outputs = await inference.infer('models/squeezenet', { data: image });
 * await inference.close();
 * ```
 */
import { fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, LfaasError, isErrorCode } from '../lattices/index.js';
import { checkTensorRecord, knownModelSha256, sha256Hex, MODEL_BYTES_MAX } from '../protocol/index.js';
import type { TensorValue } from '../protocol/index.js';
import type { InferenceReply, InferenceRequest } from './inference-process.js';
import { inferenceCommand } from './isolation.js';
import type { IsolationLevel } from './isolation.js';
import { mlPackageInstalled } from './onnx-runtime.js';

export interface InferenceServiceOptions {
  /** The folder onnxruntime-node is installed in (`lfaas ml install`; cli's `defaultMlDir()`). */
  readonly mlDir: string;
  /** The bytes of the model at `key` (through the executor's cache), or undefined when there is none. */
  readModel(key: string): Promise<Uint8Array | undefined>;
  /** Sessions held at once (default 8); the least recently used is released beyond. */
  readonly sessionsMax?: number;
  /** A request's time limit when `infer` is given none (default 30 s; a model's first load counts). */
  readonly timeoutMs?: number;
  /** Requests in the child at once, at most (default 64); beyond, `infer` rejects with TRANSPORT_BUSY. */
  readonly inFlightMax?: number;
  /** Heap limit of the child's JavaScript, in MiB (default 1024; onnxruntime's own memory is native). */
  readonly childHeapMb?: number;
  /**
   * The wall around the child (default `none`: a plain child process, for tests and trusted
   * development); executors pass their runtimes' level: at `process` and `bwrap` it runs as
   * isolation.ts's `inferenceCommand` says (permission model, unprivileged user, namespaces).
   */
  readonly isolation?: IsolationLevel;
}

/** What the service counts (exported as executor metrics). */
export interface InferenceCounters {
  /** Models parsed into a session in the child. */
  modelLoads: number;
  /** Runs that returned outputs. */
  inferences: number;
  /** Requests that failed, for any reason. */
  failures: number;
  /** Inference processes started. */
  processStarts: number;
  /** Inference processes that exited unasked or were killed after a timeout. */
  processCrashes: number;
}

interface Pending {
  readonly resolve: (reply: InferenceReply & { ok: true }) => void;
  readonly reject: (error: LfaasError) => void;
  readonly timer: NodeJS.Timeout;
}

interface Session {
  /** The child generation it was loaded in (a restarted child has none). */
  readonly generation: number;
  readonly ready: Promise<void>;
}

/** The child's entry: compiled beside this file, or under dist/ when running from sources. */
const CHILD_ENTRY = [new URL('./inference-process.js', import.meta.url), new URL('../dist/executor/inference-process.js', import.meta.url)].map((url) => fileURLToPath(url));

const KEY_LENGTH_MAX = 1024;

export class InferenceService {
  readonly counters: InferenceCounters = { modelLoads: 0, inferences: 0, failures: 0, processStarts: 0, processCrashes: 0 };
  private child: ChildProcess | undefined;
  private generation = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** By `<key>@<sha256>`, least recently used first. */
  private readonly sessions = new Map<string, Session>();
  /** The sha256 of bytes seen, by identity, so unchanged bytes are not hashed again. */
  private readonly versions = new WeakMap<Uint8Array, string>();
  private closed = false;
  private readonly sessionsMax: number;
  private readonly timeoutMs: number;
  private readonly inFlightMax: number;

  constructor(private readonly options: InferenceServiceOptions) {
    this.sessionsMax = Math.max(1, options.sessionsMax ?? 8);
    this.timeoutMs = Math.max(1, options.timeoutMs ?? 30_000);
    this.inFlightMax = Math.max(1, options.inFlightMax ?? 64);
  }

  /**
   * Runs the model at `modelKey` on `feeds` and resolves with its outputs, each checked. Loads
   * the model into a session first if this executor has none for its current bytes.
   */
  async infer(modelKey: string, feeds: Record<string, TensorValue>, timeoutMs = this.timeoutMs): Promise<Record<string, TensorValue>> {
    try {
      if (this.closed) throw new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the inference service is closed');
      if (typeof modelKey !== 'string' || modelKey.length === 0 || modelKey.length > KEY_LENGTH_MAX) throw new LfaasError(ErrorCode.KVS_BAD_KEY, `a model key is 1 to ${KEY_LENGTH_MAX} characters`);
      const checked = checkTensorRecord(feeds, 'feeds');
      if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, 'an inference timeout is a positive number of milliseconds');
      const deadline = performance.now() + timeoutMs;
      const model = await this.options.readModel(modelKey);
      if (model === undefined) throw new LfaasError(ErrorCode.KVS_KEY_NOT_FOUND, `no model at ${JSON.stringify(modelKey)} (put one with putModel)`);
      if (!(model instanceof Uint8Array) || model.byteLength === 0 || model.byteLength > MODEL_BYTES_MAX) throw new LfaasError(ErrorCode.EXEC_BAD_VALUE, `the model at ${JSON.stringify(modelKey)} is not 1 byte to 1 GiB of bytes`);
      const session = await this.session(modelKey, model, deadline);
      const reply = await this.request({ op: 'run', id: 0, session, feeds: checked }, deadline);
      const outputs = checkTensorRecord(reply.outputs, `outputs of ${modelKey}`);
      this.counters.inferences++;
      return outputs;
    } catch (error) {
      this.counters.failures++;
      throw error;
    }
  }

  /** The inference process's pid while one runs (tests, metrics). */
  get processId(): number | undefined {
    return this.child?.pid;
  }

  /** Whether onnxruntime-node is installed in the ML folder. */
  get installed(): boolean {
    return mlPackageInstalled(this.options.mlDir, 'onnxruntime-node');
  }

  /** Stops the child (requests in flight fail with TRANSPORT_CLOSED); later calls of `infer` are refused. */
  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    this.stopChild(new LfaasError(ErrorCode.TRANSPORT_CLOSED, 'the inference service closed'));
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The session id of `model`'s current bytes, loaded in the current child. */
  private async session(modelKey: string, model: Uint8Array, deadline: number): Promise<string> {
    let version = this.versions.get(model);
    if (version === undefined) {
      version = knownModelSha256(model) ?? sha256Hex(model);
      this.versions.set(model, version);
    }
    const id = `${modelKey}@${version}`;
    this.ensureChild();
    let session = this.sessions.get(id);
    if (session !== undefined && session.generation !== this.generation) {
      this.sessions.delete(id);
      session = undefined;
    }
    if (session === undefined) {
      const ready = this.request({ op: 'load', id: 0, session: id, model }, deadline).then(() => {
        this.counters.modelLoads++;
      });
      session = { generation: this.generation, ready };
      // A failed load is not kept: the next call tries again (the bytes may have been fixed).
      ready.catch(() => {
        if (this.sessions.get(id) === session) this.sessions.delete(id);
      });
      this.sessions.set(id, session);
      this.evictBeyondMax();
    } else {
      // Most recently used last.
      this.sessions.delete(id);
      this.sessions.set(id, session);
    }
    await session.ready;
    return id;
  }

  private evictBeyondMax(): void {
    while (this.sessions.size > this.sessionsMax) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) return;
      this.sessions.delete(oldest);
      this.send({ op: 'unload', session: oldest });
    }
  }

  private ensureChild(): void {
    if (this.child !== undefined) return;
    if (!this.installed) throw new LfaasError(ErrorCode.INTERNAL, `onnxruntime-node is not installed in ${this.options.mlDir}: run \`npx lfaas ml install\` (or set LFAAS_ML_DIR)`);
    const entry = CHILD_ENTRY.find((path) => existsSync(path));
    if (entry === undefined) throw new LfaasError(ErrorCode.INTERNAL, `the inference process entry is missing (looked for ${CHILD_ENTRY.join(', ')}; run npm run build)`);
    // An empty working directory of its own, removed when it exits: nothing a relative path in a
    // model could name (models with external data are refused anyway: onnx-model-check.ts).
    const cwd = mkdtempSync(join(tmpdir(), 'lfaas-inference-'));
    chmodSync(cwd, 0o755);
    const heapMb = this.options.childHeapMb ?? 1024;
    const level = this.options.isolation ?? 'none';
    let child: ChildProcess;
    if (level === 'none') {
      child = fork(entry, [this.options.mlDir], { cwd, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [`--max-old-space-size=${heapMb}`] });
    } else {
      const command = inferenceCommand(level, this.options.mlDir, heapMb);
      child = spawn(command.command, command.args, { cwd, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...(command.uid === undefined ? {} : { uid: command.uid, gid: command.gid }) });
    }
    this.generation++;
    this.counters.processStarts++;
    this.child = child;
    child.on('message', (message: InferenceReply) => this.onReply(message));
    child.on('error', () => {
      // A failed send or spawn: 'exit' follows, which fails the requests.
    });
    child.on('exit', (code, signal) => {
      rmSync(cwd, { recursive: true, force: true });
      if (this.child !== child) return;
      this.child = undefined;
      this.sessions.clear();
      if (!this.closed) this.counters.processCrashes++;
      this.failAll(new LfaasError(ErrorCode.INTERNAL, `the inference process exited (${signal ?? `code ${code}`}) while this request was in it; the next request starts a new one`));
    });
    // The executor's event loop must not wait on it.
    child.unref();
    child.channel?.unref();
  }

  private request(message: Exclude<InferenceRequest, { op: 'unload' }>, deadline: number): Promise<InferenceReply & { ok: true }> {
    if (this.pending.size >= this.inFlightMax) return Promise.reject(new LfaasError(ErrorCode.TRANSPORT_BUSY, `${this.pending.size} inference requests in flight; at most ${this.inFlightMax}`));
    this.ensureChild();
    const id = this.nextId++;
    const child = this.child!;
    return new Promise((resolve, reject) => {
      const remainingMs = Math.max(1, deadline - performance.now());
      const timer = setTimeout(() => {
        if (!this.pending.delete(id)) return;
        reject(new LfaasError(ErrorCode.EXEC_TIMEOUT, `inference took more than its time (${Math.round(remainingMs)} ms left at its start); the inference process is restarted`));
        // A native run cannot be cancelled: the child goes, with what else it was running.
        if (this.child === child) {
          this.counters.processCrashes++;
          this.stopChild(new LfaasError(ErrorCode.INTERNAL, 'the inference process was restarted after another request timed out'));
        }
      }, remainingMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ ...message, id }, id);
    });
  }

  private send(message: InferenceRequest, id?: number): void {
    const child = this.child;
    if (child === undefined || !child.connected) {
      if (id !== undefined) this.settle(id, new LfaasError(ErrorCode.INTERNAL, 'the inference process is not running'));
      return;
    }
    child.channel?.ref();
    child.send(message, (error) => {
      if (error !== null && error !== undefined && id !== undefined) this.settle(id, new LfaasError(ErrorCode.INTERNAL, `could not send to the inference process: ${error.message}`));
    });
  }

  private onReply(message: InferenceReply): void {
    if (typeof message !== 'object' || message === null || typeof message.id !== 'number') return;
    if (message.ok === true) {
      const pending = this.pending.get(message.id);
      if (pending === undefined) return;
      this.pending.delete(message.id);
      clearTimeout(pending.timer);
      this.unrefWhenIdle();
      pending.resolve(message);
      return;
    }
    const code = isErrorCode(message.code) ? message.code : ErrorCode.INTERNAL;
    this.settle(message.id, new LfaasError(code, String(message.message)));
  }

  private settle(id: number, error: LfaasError): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    this.unrefWhenIdle();
    pending.reject(error);
  }

  private unrefWhenIdle(): void {
    if (this.pending.size === 0) this.child?.channel?.unref();
  }

  private failAll(error: LfaasError): void {
    for (const id of [...this.pending.keys()]) this.settle(id, error);
  }

  private stopChild(error: LfaasError): void {
    const child = this.child;
    this.child = undefined;
    this.sessions.clear();
    this.failAll(error);
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}
