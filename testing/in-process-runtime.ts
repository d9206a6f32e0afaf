/**
 * The one layer the test harness swaps: a runtime of the executor's pool that runs the functions
 * a test registered as objects, in the test's own process, instead of evaluating bundles in a
 * sandbox process or a thread.
 *
 * Everything around the function stays the platform's: the pool (executor/runtime-pool.ts)
 * posts calls, timeouts and aborts to it exactly as to a sandbox; the function side is the
 * sandbox's own {@link FunctionRuntime} (its `ctx`, its error classification, the msgpack codec
 * its arguments and results cross, its log limits), hosted here on a realm that looks the
 * function up by the marker its registration stored as "code". Messages are copied both ways
 * (`structuredClone`, as a thread's port does), so neither side keeps a reference the other owns.
 *
 * What a function prints with `console.*` is routed, while its call runs, to the realm's own
 * `console` (the sandbox's call-scoped logger) through an `AsyncLocalStorage`: the same log records
 * as deployed. Outside a call, `console` is the test's.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { FunctionRuntime } from '../sandbox/index.js';
import type { Invocation, LogRecord, PoolMessage, Realm, RuntimeAnswer, UserFunction } from '../sandbox/index.js';
import type { Runtime, RuntimeExit } from '../executor/index.js';

/** One record a function logged (`console.*` or `ctx.log`), with its call. */
export interface FunctionLogRecord {
  /** The call (run) id, as `ctx.callId`: the same for every function of one DAG run. */
  readonly callId: string;
  readonly functionName: string;
  readonly level: LogRecord['level'];
  readonly text: string;
  /** `ctx.log`'s fields (`ctx.log.info({ page }, 'visited')`), parsed. */
  readonly fields?: Readonly<Record<string, unknown>>;
}

/** Where a runtime's log records go. */
export type LogSink = (record: FunctionLogRecord) => void;

/** The marker a registration stores in place of a bundle: it names the function in its table. */
const MARKER_PREFIX = '// lattice-faas/testing in-process function ';

/** Functions registered in one cluster (or context), by the marker stored as their code. */
export class FunctionTable {
  private readonly functions = new Map<string, UserFunction>();
  private nextId = 1;

  /** Adds `fn` and returns the code to register for it (a marker; never evaluated). */
  add(name: string, fn: UserFunction): string {
    const code = `${MARKER_PREFIX}${this.nextId++} (${JSON.stringify(name)})\nmodule.exports = undefined;\n`;
    this.functions.set(code, fn);
    return code;
  }

  lookup(code: string): UserFunction | undefined {
    return this.functions.get(code);
  }
}

/** The console a call's realm was given, for the call's async context. */
type RealmConsole = Record<'log' | 'info' | 'warn' | 'error' | 'debug', (...values: unknown[]) => void>;

const callConsole = new AsyncLocalStorage<RealmConsole>();
const CONSOLE_METHODS = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;
let consoleUsers = 0;
let originalConsole: Partial<Record<(typeof CONSOLE_METHODS)[number], (...values: unknown[]) => void>> = {};

/**
 * Routes `console.*` of running test functions to their calls' logs, while at least one cluster
 * or context is open (counted; {@link releaseConsole} undoes it). Outside a call it is the
 * console as it was.
 */
export function captureConsole(): void {
  if (consoleUsers++ > 0) return;
  originalConsole = {};
  for (const method of CONSOLE_METHODS) {
    const original = console[method] as (...values: unknown[]) => void;
    originalConsole[method] = original;
    console[method] = function (this: unknown, ...values: unknown[]): void {
      const realm = callConsole.getStore();
      if (realm === undefined) {
        original.apply(console, values);
        return;
      }
      try {
        realm[method === 'trace' ? 'debug' : method](...values);
      } catch {
        // A log after the call ended (the sandbox throws at the function there; a test's stray
        // callback would only make noise): dropped.
      }
    };
  }
}

export function releaseConsole(): void {
  if (consoleUsers === 0 || --consoleUsers > 0) return;
  for (const method of CONSOLE_METHODS) {
    const original = originalConsole[method];
    if (original !== undefined) console[method] = original;
  }
  originalConsole = {};
}

/** The realm: the function registered under the call's code, run in its call's console context. */
function tableRealm(table: FunctionTable): Realm {
  return {
    evaluate(_functionId, code, globals) {
      const fn = table.lookup(code);
      if (fn === undefined) return { exports: undefined };
      const realmConsole = globals['console'] as RealmConsole;
      const wrapped: UserFunction = (...args) => callConsole.run(realmConsole, () => fn(...args));
      return { exports: wrapped };
    },
    // The function is the test's own object: nothing to freeze it against.
    harden: (value) => value,
  };
}

/**
 * A runtime of the pool hosting the sandbox's function side in this process. Ends by
 * {@link end} only (nothing here can die on its own); a call the pool gave up on (its timeout)
 * keeps running in this process until it settles, its answer dropped.
 */
export class InProcessRuntime implements Runtime {
  onAnswer: ((answer: RuntimeAnswer) => void) | undefined;
  onExit: ((exit: RuntimeExit) => void) | undefined;
  readonly ready = Promise.resolve();
  private readonly runtime: FunctionRuntime;
  /** Pool call id -> the invocation it runs (for the log records' call id and function). */
  private readonly invocations = new Map<number, Invocation>();
  private ended = false;

  constructor(table: FunctionTable, private readonly logs: LogSink) {
    this.runtime = new FunctionRuntime((answer) => this.answer(answer), tableRealm(table));
  }

  post(message: PoolMessage): void {
    if (this.ended) return;
    const copy = structuredClone(message);
    if (copy.kind === 'call') this.invocations.set(copy.callId, copy.invocation);
    // Delivered on a later turn, as a port would: the pool's bookkeeping of the post runs first.
    queueMicrotask(() => {
      if (!this.ended) this.runtime.receive(copy);
    });
  }

  memoryBytes(): undefined {
    return undefined;
  }

  async end(): Promise<void> {
    this.ended = true;
    this.invocations.clear();
  }

  private answer(answer: RuntimeAnswer): void {
    if (this.ended) return;
    if (answer.kind === 'log') {
      const invocation = this.invocations.get(answer.callId);
      this.logs(recordOf(answer, invocation));
    } else if (answer.kind !== 'ready' && answer.kind !== 'host') {
      this.invocations.delete(answer.callId);
    }
    this.onAnswer?.(structuredClone(answer));
  }
}

/** A runtime's log record as the harness keeps it. */
export function recordOf(answer: LogRecord, invocation: Invocation | undefined): FunctionLogRecord {
  let fields: Record<string, unknown> | undefined;
  if (answer.fields !== undefined) {
    try {
      const parsed: unknown = JSON.parse(answer.fields);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) fields = parsed as Record<string, unknown>;
    } catch {
      fields = { fieldsText: answer.fields };
    }
  }
  return { callId: invocation?.runId ?? '', functionName: invocation?.functionName ?? '', level: answer.level, text: answer.text, ...(fields === undefined ? {} : { fields }) };
}
