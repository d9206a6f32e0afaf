/**
 * Reading what runs: function logs and the invocations listing (`faas.logs()`,
 * `faas.invocations()`; the CLI's `lfaas logs` and `lfaas invocations`).
 *
 * Executors keep what their functions log and the runs they hold, each in a bounded table of its
 * own (executor/function-logs.ts, executor/invocations.ts): every run, direct (leased) calls
 * included, is seen on the executor that runs it. So a read asks the schedulers which executors
 * are alive (their answer also holds the async runs they hold queued), then asks every executor,
 * and merges the answers in time order. `follow` asks again every `pollMs` for the records after
 * the last seen of each executor (its cursor, good for one boot of it), and the schedulers for the
 * executors now and then. The cluster answers only what the client's token lists: an owner names
 * its namespace (`alice/`) or a function in it; the admin may name nothing (everything).
 *
 * Text a function logged is untrusted: bounded by the executor, it is handed over as is here;
 * {@link terminalSafe} makes it printable (the CLI uses it).
 *
 * @example
 * ```ts
 * for await (const record of faas.logs({ function: 'alice/resize', sinceMs: Date.now() - 300_000 })) {
 *   console.log(record.callId, record.level, record.text);
 * }
 * const running = await faas.invocations({ running: true });
 * ```
 */
import { ErrorCode, LfaasError, ensureLfaasError } from '../lattices/index.js';
import { errorFromWireMessage, pb } from '../protocol/index.js';
import type { PbTypes, RequestBody } from '../protocol/index.js';

/** One record a function logged, as an executor kept it. */
export interface FunctionLogEntry {
  /** The executor that ran the call (its address). */
  readonly executor: string;
  /** Its number on that executor (increasing for one boot of it). */
  readonly seq: number;
  readonly timeMs: number;
  readonly function: string;
  readonly version: number;
  readonly callId: string;
  readonly level: 'log' | 'info' | 'warn' | 'error' | 'debug' | string;
  readonly text: string;
  /** ctx.log's fields (parsed JSON; the text itself if it does not parse), absent without. */
  readonly fields?: unknown;
}

export interface LogsOptions {
  /** A function, or a namespace (`alice/`); default: the client's own namespace (the admin's: everything). */
  readonly function?: string;
  /** Records written at or after this time (ms since the epoch). */
  readonly sinceMs?: number;
  /** Only this call's records. */
  readonly callId?: string;
  /** Keep reading new records until `signal` aborts (or the iteration is left). */
  readonly follow?: boolean;
  readonly signal?: AbortSignal;
  /** How often a follower asks again (default 500 ms, at least 100). */
  readonly pollMs?: number;
  /** Records per executor in one read, at most (default and maximum 5,000; a follower's reads are bounded the same). */
  readonly limit?: number;
  /** Told of an executor that did not answer (it is left out of this read). */
  readonly onUnreachable?: (executor: string, error: LfaasError) => void;
}

export type InvocationState = 'queued' | 'running' | 'succeeded' | 'failed' | 'timed-out' | 'cancelled';

/** One call as a node reported it. */
export interface InvocationEntry {
  readonly callId: string;
  /** The function, or the DAG. */
  readonly name: string;
  readonly dag: boolean;
  readonly state: InvocationState;
  /** Failed, timed out or cancelled: the error's catalogue code and message. */
  readonly error?: { readonly code: ErrorCode; readonly message: string };
  /** The executor that runs it or ran it (a scheduler's address for a queued call). */
  readonly node: string;
  readonly startedAtMs: number;
  readonly durationMs: number;
  readonly mode: 'sync' | 'async' | 'direct' | string;
}

export interface InvocationsOptions {
  /** A function or DAG, or a namespace (`alice/`); default: the client's own namespace (the admin's: everything). */
  readonly function?: string;
  /** Only the calls queued or running. */
  readonly running?: boolean;
  /** Entries at most (default 100, at most 1,000), the most recently started first. */
  readonly limit?: number;
  /** Told of an executor that did not answer (it is left out). */
  readonly onUnreachable?: (executor: string, error: LfaasError) => void;
}

/** What a reader needs of the client: its requests, the schedulers, and its default namespace. */
export interface ObserveClient {
  request(to: string, body: RequestBody, timeoutMs: number): Promise<PbTypes.Envelope>;
  readonly schedulers: readonly string[];
  /** '' for the admin (everything), `alice/` for an owner. */
  readonly namespace: string;
  readonly requestTimeoutMs: number;
}

/** Pages of one executor's records in one read, at most (1,000 records each). */
const PAGES_MAX = 5;
const POLL_MIN_MS = 100;
/** A follower asks the schedulers for the live executors every this many polls. */
const EXECUTORS_REFRESH_POLLS = 10;

const STATE_NAMES: Readonly<Record<number, InvocationState>> = {
  [pb.InvocationState.INVOCATION_QUEUED]: 'queued',
  [pb.InvocationState.INVOCATION_RUNNING]: 'running',
  [pb.InvocationState.INVOCATION_SUCCEEDED]: 'succeeded',
  [pb.InvocationState.INVOCATION_FAILED]: 'failed',
  [pb.InvocationState.INVOCATION_TIMED_OUT]: 'timed-out',
  [pb.InvocationState.INVOCATION_CANCELLED]: 'cancelled',
};

// Control characters (C0 but tab, DEL, C1) and the bidirectional overrides and isolates (which can
// make a line read as something else: "Trojan Source").
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `text` safe to print on a terminal: control characters, escape sequences' introducers and
 * bidirectional overrides shown as `\xNN`/`\uNNNN` (a newline as `\n`: one record, one line).
 *
 * @example
 * ```ts
 * terminalSafe('a\x1b[2Jb\n'); // 'a\\x1b[2Jb\\n'
 * ```
 */
export function terminalSafe(text: string): string {
  return text.replace(UNPRINTABLE, (char) => {
    if (char === '\n') return '\\n';
    if (char === '\r') return '\\r';
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** The live executors, as the schedulers know them (the union of those that answer). */
async function liveExecutors(client: ObserveClient, body: RequestBody, pick: (reply: PbTypes.Envelope) => readonly string[]): Promise<{ executors: string[]; replies: PbTypes.Envelope[] }> {
  const settled = await Promise.allSettled(client.schedulers.map((scheduler) => client.request(scheduler, body, client.requestTimeoutMs)));
  const executors = new Set<string>();
  const replies: PbTypes.Envelope[] = [];
  let firstError: unknown;
  for (const outcome of settled) {
    if (outcome.status === 'rejected') {
      firstError ??= outcome.reason;
      continue;
    }
    replies.push(outcome.value);
    for (const address of pick(outcome.value)) executors.add(address);
  }
  // A refusal (UNAUTHORISED) is the same from every scheduler: say it rather than read nothing.
  if (replies.length === 0) throw firstError instanceof LfaasError ? firstError : new LfaasError(ErrorCode.TRANSPORT_TIMEOUT, 'no scheduler answered');
  return { executors: [...executors].sort(), replies };
}

function entryOf(executor: string, record: PbTypes.IFunctionLogRecord): FunctionLogEntry {
  const fieldsText = record.fields ?? '';
  let fields: unknown;
  if (fieldsText !== '') {
    try {
      fields = JSON.parse(fieldsText);
    } catch {
      fields = fieldsText;
    }
  }
  return {
    executor,
    seq: Number(record.seq ?? 0),
    timeMs: Number(record.timeMs ?? 0),
    function: record.function ?? '',
    version: record.version ?? 0,
    callId: record.callId ?? '',
    level: record.level ?? 'log',
    text: record.text ?? '',
    ...(fields === undefined ? {} : { fields }),
  };
}

function byTime(a: FunctionLogEntry, b: FunctionLogEntry): number {
  return a.timeMs - b.timeMs || (a.executor < b.executor ? -1 : a.executor > b.executor ? 1 : a.seq - b.seq);
}

/** An executor's cursor: the boot it belongs to and the last record seen. */
interface Cursor {
  executorId: string;
  afterSeq: number;
}

/** One executor's new records after its cursor (a few pages at most), moving the cursor. */
async function readExecutor(client: ObserveClient, executor: string, request: PbTypes.ILogsRequest, cursor: Cursor, recordsMax: number): Promise<FunctionLogEntry[]> {
  const out: FunctionLogEntry[] = [];
  for (let page = 0; page < PAGES_MAX && out.length < recordsMax; page++) {
    const reply = await client.request(executor, { logsRequest: { ...request, afterSeq: cursor.afterSeq, limit: Math.min(1000, recordsMax - out.length) } }, client.requestTimeoutMs);
    const body = reply.logsReply;
    if (body?.error?.code) throw errorFromWireMessage(body.error);
    const executorId = body?.executorId ?? '';
    if (executorId !== cursor.executorId) {
      // Another boot of the executor (or the first answer): its numbers start again.
      const restarted = cursor.executorId !== '';
      cursor.executorId = executorId;
      if (restarted && cursor.afterSeq > 0) {
        cursor.afterSeq = 0;
        continue;
      }
    }
    for (const record of body?.records ?? []) {
      out.push(entryOf(executor, record));
      cursor.afterSeq = Math.max(cursor.afterSeq, Number(record.seq ?? 0));
    }
    if (body?.truncated !== true) break;
  }
  return out;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The log records `options` names, in time order; with `follow`, then every new one until
 * `options.signal` aborts. An executor that does not answer is skipped (asked again at the next
 * poll); a refusal of the token rejects (UNAUTHORISED).
 */
export async function* readLogs(client: ObserveClient, options: LogsOptions = {}): AsyncGenerator<FunctionLogEntry> {
  const name = options.function ?? client.namespace;
  const request: PbTypes.ILogsRequest = { name, sinceMs: Math.max(0, Math.floor(options.sinceMs ?? 0)), callId: options.callId ?? '' };
  const recordsMax = Math.min(5000, Math.max(1, options.limit ?? 5000));
  const pollMs = Math.max(POLL_MIN_MS, options.pollMs ?? 500);
  const cursors = new Map<string, Cursor>();
  let executors: string[] = [];
  for (let poll = 0; ; poll++) {
    if (options.signal?.aborted === true) return;
    if (poll % EXECUTORS_REFRESH_POLLS === 0) {
      try {
        executors = (await liveExecutors(client, { logsRequest: { name } }, (reply) => reply.logsReply?.executors ?? [])).executors;
      } catch (error) {
        // The first read says why; a follower keeps the executors it knew.
        if (poll === 0) throw error;
      }
    }
    const reads = await Promise.allSettled(
      executors.map(async (executor) => {
        let cursor = cursors.get(executor);
        if (cursor === undefined) cursors.set(executor, (cursor = { executorId: '', afterSeq: 0 }));
        return readExecutor(client, executor, request, cursor, recordsMax);
      }),
    );
    const batch: FunctionLogEntry[] = [];
    reads.forEach((read, i) => {
      if (read.status === 'fulfilled') batch.push(...read.value);
      else if (read.reason instanceof LfaasError && read.reason.code === ErrorCode.UNAUTHORISED) throw read.reason;
      else options.onUnreachable?.(executors[i]!, ensureLfaasError(read.reason));
    });
    batch.sort(byTime);
    yield* batch;
    if (options.follow !== true) return;
    await sleep(pollMs, options.signal);
  }
}

function invocationOf(info: PbTypes.IInvocationInfo): InvocationEntry {
  const error = info.error?.code ? errorFromWireMessage(info.error) : undefined;
  return {
    callId: info.callId ?? '',
    name: info.name ?? '',
    dag: info.dag === true,
    state: STATE_NAMES[info.state ?? 0] ?? 'running',
    ...(error === undefined ? {} : { error: { code: error.code, message: error.message } }),
    node: info.node ?? '',
    startedAtMs: Number(info.startedAtMs ?? 0),
    durationMs: info.durationMs ?? 0,
    mode: info.mode ?? '',
  };
}

/**
 * Recent and running calls `options` names, the most recently started first: the schedulers'
 * queued async runs and every live executor's runs (an executor that does not answer is left out).
 */
export async function listInvocations(client: ObserveClient, options: InvocationsOptions = {}): Promise<InvocationEntry[]> {
  const limit = Math.min(1000, Math.max(1, options.limit ?? 100));
  const request: PbTypes.IInvocationsRequest = { name: options.function ?? client.namespace, runningOnly: options.running === true, limit };
  const { executors, replies } = await liveExecutors(client, { invocationsRequest: request }, (reply) => reply.invocationList?.executors ?? []);
  const entries = new Map<string, InvocationEntry>();
  const add = (info: PbTypes.IInvocationInfo): void => {
    const entry = invocationOf(info);
    const key = `${entry.callId}\0${entry.node}`;
    if (!entries.has(key)) entries.set(key, entry);
  };
  for (const reply of replies) for (const info of reply.invocationList?.invocations ?? []) add(info);
  const reads = await Promise.allSettled(executors.map((executor) => client.request(executor, { invocationsRequest: request }, client.requestTimeoutMs)));
  reads.forEach((read, i) => {
    if (read.status === 'rejected') {
      if (read.reason instanceof LfaasError && read.reason.code === ErrorCode.UNAUTHORISED) throw read.reason;
      options.onUnreachable?.(executors[i]!, ensureLfaasError(read.reason));
      return;
    }
    for (const info of read.value.invocationList?.invocations ?? []) add(info);
  });
  return [...entries.values()].sort((a, b) => b.startedAtMs - a.startedAtMs).slice(0, limit);
}
