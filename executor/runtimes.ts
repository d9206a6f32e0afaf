/**
 * The two kinds of runtime an executor's pool holds, behind one face: a sandbox process
 * (isolation `process` or `bwrap`; sandbox/process-main.ts over a pipe on fd 3) and a trusted
 * thread (isolation `none`; sandbox/thread-main.ts). Both speak sandbox/protocol.ts; what a
 * process writes is checked message by message ({@link checkAnswer}), and a process that breaks
 * the protocol is ended.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { FrameReader, ProtocolError, checkAnswer, frameWriter } from '../sandbox/index.js';
import type { PoolMessage, RuntimeAnswer } from '../sandbox/index.js';
import { sandboxCommand } from './isolation.js';
import { TreeMemory } from './process-tree.js';
import type { IsolationLevel } from './isolation.js';

/** Why a runtime ended by itself. */
export interface RuntimeExit {
  readonly outOfMemory: boolean;
  /** A sandbox process wrote what the protocol does not allow, and was ended for it. */
  readonly brokeProtocol?: boolean;
  readonly reason: string;
}

export interface Runtime {
  /** Settles once the runtime can take calls (or has ended). */
  readonly ready: Promise<void>;
  post(message: PoolMessage): void;
  /** Set by the pool: every message the runtime sends, checked. */
  onAnswer: ((answer: RuntimeAnswer) => void) | undefined;
  /** Set by the pool: the runtime ended by itself (not by {@link end}). */
  onExit: ((exit: RuntimeExit) => void) | undefined;
  /** Resident memory of the runtime's processes, in bytes; undefined for a thread. */
  memoryBytes(): number | undefined;
  end(): Promise<void>;
}

/** The compiled thread entry beside the sandbox sources; from the TypeScript sources (tests), the built one. */
const THREAD_URL = existsSync(fileURLToPath(new URL('../sandbox/thread-main.js', import.meta.url)))
  ? new URL('../sandbox/thread-main.js', import.meta.url)
  : new URL('../dist/sandbox/thread-main.js', import.meta.url);

export function startRuntime(level: IsolationLevel, memoryMb: number): Runtime {
  return level === 'none' ? new ThreadRuntime(memoryMb) : new ProcessRuntime(level, memoryMb);
}

class ThreadRuntime implements Runtime {
  onAnswer: ((answer: RuntimeAnswer) => void) | undefined;
  onExit: ((exit: RuntimeExit) => void) | undefined;
  readonly ready: Promise<void>;
  private readonly worker: Worker;
  private failure: (Error & { code?: string }) | undefined;
  private ended = false;

  constructor(memoryMb: number) {
    this.worker = new Worker(THREAD_URL, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.floor(memoryMb / 8)) } });
    this.worker.unref();
    let markReady: () => void;
    this.ready = new Promise<void>((resolve) => (markReady = resolve));
    this.worker.on('message', (answer: RuntimeAnswer) => {
      if (answer.kind === 'ready') markReady();
      else this.onAnswer?.(answer);
    });
    // Out-of-memory surfaces as an 'error' (ERR_WORKER_OUT_OF_MEMORY), then 'exit'.
    this.worker.on('error', (error: Error & { code?: string }) => {
      this.failure = error;
    });
    this.worker.once('exit', () => {
      markReady();
      if (this.ended) return;
      this.ended = true;
      this.onExit?.({ outOfMemory: this.failure?.code === 'ERR_WORKER_OUT_OF_MEMORY', reason: this.failure?.message ?? 'the thread ended' });
    });
  }

  post(message: PoolMessage): void {
    if (!this.ended) this.worker.postMessage(message);
  }

  memoryBytes(): undefined {
    return undefined;
  }

  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    // A runtime thread holds no sockets, so terminating it is safe.
    await this.worker.terminate();
  }
}

/** How much of a sandbox process's stderr is kept to explain its end. */
const STDERR_TAIL_CHARS = 4096;
/** How long ending a process waits for it to have started. */
const START_WAIT_MS = 5000;
/** How long a sandbox process may take to say it is ready before it is ended. */
const START_TIMEOUT_MS = 20_000;

class ProcessRuntime implements Runtime {
  onAnswer: ((answer: RuntimeAnswer) => void) | undefined;
  onExit: ((exit: RuntimeExit) => void) | undefined;
  readonly ready: Promise<void>;
  private readonly child: ChildProcess;
  private readonly channel: Writable & Readable;
  private readonly reader = new FrameReader();
  private stderrTail = '';
  private brokeProtocol: string | undefined;
  private ended = false;
  /** Frames to the process, those of one turn in one write. */
  private readonly write: (message: PoolMessage) => void;
  private exited: Promise<void>;
  /** The process tree's memory, read every few milliseconds while it runs a call. */
  private memory: TreeMemory | undefined;

  constructor(level: Exclude<IsolationLevel, 'none'>, memoryMb: number) {
    const command = sandboxCommand(level, memoryMb);
    this.child = spawn(command.command, command.args, {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: {},
      ...(command.uid === undefined ? {} : { uid: command.uid, gid: command.gid }),
    });
    this.channel = this.child.stdio[3] as Writable & Readable;
    this.write = frameWriter(this.channel);
    let markReady: () => void;
    this.ready = new Promise<void>((resolve) => (markReady = resolve));
    this.exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    // A process that never says it is ready would hold its first call for good (a call's clock
    // starts at ready): it is ended, and its exit fails the call.
    const startTimer = setTimeout(() => {
      this.stderrTail += `\nthe sandbox process did not start in ${START_TIMEOUT_MS} ms`;
      this.child.kill('SIGKILL');
    }, START_TIMEOUT_MS);
    startTimer.unref();
    void this.ready.then(() => clearTimeout(startTimer));
    this.child.stderr!.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_CHARS);
    });
    this.channel.on('data', (chunk: Buffer) => {
      if (this.brokeProtocol !== undefined) return;
      try {
        for (const message of this.reader.push(chunk)) {
          const answer = checkAnswer(message);
          if (answer.kind === 'ready') markReady();
          else this.onAnswer?.(answer);
        }
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        this.brokeProtocol = error.message;
        this.child.kill('SIGKILL');
      }
    });
    // A pipe error ends the process; its exit tells the pool.
    this.channel.on('error', () => this.child.kill('SIGKILL'));
    // A process that could not start emits 'error' and maybe no 'exit'.
    this.child.on('error', (error) => {
      this.stderrTail += `\nspawn failed: ${error.message}`;
      if (this.child.pid === undefined) this.child.emit('exit', null, null);
    });
    this.child.once('exit', (code, signal) => {
      markReady();
      this.memory?.close();
      if (this.ended) return;
      this.ended = true;
      const outOfMemory = /heap out of memory|Allocation failed|out of memory/i.test(this.stderrTail);
      const reason = this.brokeProtocol !== undefined ? `the sandbox broke the protocol (${this.brokeProtocol})` : `the sandbox process ended (${signal ?? `exit ${code}`}): ${this.stderrTail.trim().split('\n').slice(-3).join(' | ') || 'no output'}`;
      this.onExit?.({ outOfMemory, brokeProtocol: this.brokeProtocol !== undefined, reason });
    });
  }

  post(message: PoolMessage): void {
    if (!this.ended) this.write(message);
  }

  /** The resident memory of the process and its descendants (bubblewrap's init, node). */
  memoryBytes(): number | undefined {
    const pid = this.child.pid;
    if (pid === undefined || this.ended) return undefined;
    this.memory ??= new TreeMemory(pid);
    return this.memory.bytes();
  }

  async end(): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      // Killed in its first milliseconds, bubblewrap can leave its namespace's init behind for
      // good (before it has set its death signal): a process is ended once it has started.
      await Promise.race([this.ready, new Promise((resolve) => setTimeout(resolve, START_WAIT_MS).unref())]);
      this.child.kill('SIGKILL');
    }
    await this.exited;
  }
}
