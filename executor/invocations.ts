/**
 * The runs an executor holds and held lately, with their state (`lfaas invocations`,
 * `faas.invocations()`): the executor is where every run is seen, direct (leased) calls that skip
 * the schedulers included. Sans-I/O: the executor machine tells it when a run starts and ends, at
 * its own time.
 *
 * Bounded: running entries are the machine's runs (bounded by its `runsMax`; a run it drops
 * without an outcome, its entry replaced by a later attempt or forgotten past `runningMax`), plus
 * at most `finishedMax` finished ones, the oldest finished dropped first.
 *
 * @example
 * ```ts
 * const table = new InvocationTable();
 * table.start({ callId: 'alice/x-1', name: 'alice/f', dag: false, mode: 'sync' }, 1000);
 * table.finish('alice/x-1', { state: 'succeeded' }, 1250);
 * table.list({ name: 'alice/' }, 2000); // [{ callId: 'alice/x-1', state: 'succeeded', durationMs: 250, ... }]
 * ```
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { errorCodeFromWire, errorToWire, pb } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';
import { boundText } from './function-logs.js';

export type InvocationStateName = 'queued' | 'running' | 'succeeded' | 'failed' | 'timed-out' | 'cancelled';
export type InvocationMode = 'sync' | 'async' | 'direct';

export interface InvocationEntry {
  readonly callId: string;
  /** The function, or the DAG. */
  readonly name: string;
  readonly dag: boolean;
  readonly mode: InvocationMode;
  state: InvocationStateName;
  startedAtMs: number;
  finishedAtMs: number;
  /** Failed, timed out or cancelled: the error's catalogue code and message. */
  error: { readonly code: string; readonly message: string } | undefined;
}

export interface InvocationQuery {
  /** A function or DAG, a namespace (`alice/`: its names and the calls whose ids are its own), or '' (all). */
  readonly name?: string;
  readonly runningOnly?: boolean;
  readonly limit?: number;
}

/** Entries in one answer at most. */
export const INVOCATION_QUERY_LIMIT_MAX = 1000;
const INVOCATION_QUERY_LIMIT_DEFAULT = 100;
/** An error message kept with an entry, at most. */
const ERROR_MESSAGE_CHARS_MAX = 512;

/** Whether the entry is named by `name` (see {@link InvocationQuery.name}). */
export function invocationMatches(name: string, entry: { readonly name: string; readonly callId: string }): boolean {
  if (name === '') return true;
  if (name.endsWith('/')) return entry.name.startsWith(name) || entry.callId.startsWith(name);
  return entry.name === name;
}

/**
 * The executor's table of runs (see the module's comment): `start` and `finish` from the machine,
 * `list` for readers.
 *
 * @example
 * ```ts
 * const table = new InvocationTable();
 * table.start({ callId: 'c', name: 'f', dag: false, mode: 'async' }, 0);
 * table.list({ runningOnly: true }, 5)[0]?.durationMs; // 5
 * ```
 */
export class InvocationTable {
  private readonly running = new Map<string, InvocationEntry>();
  /** Finished, oldest first (a Map keeps insertion order). */
  private readonly finished = new Map<string, InvocationEntry>();

  /**
   * `finishedMax`: finished entries kept. `runningMax`: running entries at most, a guard only (the
   * machine's runs are bounded well below it); beyond, the oldest is forgotten.
   */
  constructor(
    private readonly finishedMax = 1000,
    private readonly runningMax = 100_000,
  ) {}

  /** A run starts here (again: a re-dispatch replaces the earlier attempt's entry). */
  start(entry: { readonly callId: string; readonly name: string; readonly dag: boolean; readonly mode: InvocationMode }, nowMs: number): void {
    this.finished.delete(entry.callId);
    this.running.delete(entry.callId);
    if (this.running.size >= this.runningMax) this.running.delete(this.running.keys().next().value!);
    this.running.set(entry.callId, { ...entry, state: 'running', startedAtMs: nowMs, finishedAtMs: 0, error: undefined });
  }

  /** A run ended here; an entry already finished keeps its first outcome. */
  finish(callId: string, outcome: { readonly state: Exclude<InvocationStateName, 'queued' | 'running'>; readonly error?: { readonly code: string; readonly message: string } }, nowMs: number): void {
    const entry = this.running.get(callId);
    if (entry === undefined) return;
    this.running.delete(callId);
    entry.state = outcome.state;
    entry.finishedAtMs = nowMs;
    entry.error = outcome.error === undefined ? undefined : { code: outcome.error.code, message: boundText(outcome.error.message, ERROR_MESSAGE_CHARS_MAX) };
    this.finished.set(callId, entry);
    while (this.finished.size > this.finishedMax) this.finished.delete(this.finished.keys().next().value!);
  }

  /** Whether the run is running here. */
  isRunning(callId: string): boolean {
    return this.running.has(callId);
  }

  /** The entries `query` names, the most recently started first, with their duration at `nowMs`. */
  list(query: InvocationQuery, nowMs: number): (InvocationEntry & { readonly durationMs: number })[] {
    const name = query.name ?? '';
    const limit = Math.min(INVOCATION_QUERY_LIMIT_MAX, query.limit || INVOCATION_QUERY_LIMIT_DEFAULT);
    const pool = query.runningOnly === true ? [...this.running.values()] : [...this.running.values(), ...this.finished.values()];
    return pool
      .filter((entry) => invocationMatches(name, entry))
      .sort((a, b) => b.startedAtMs - a.startedAtMs)
      .slice(0, limit)
      .map((entry) => ({ ...entry, durationMs: Math.max(0, Math.round((entry.state === 'running' ? nowMs : entry.finishedAtMs) - entry.startedAtMs)) }));
  }
}

const STATES: Readonly<Record<InvocationStateName, PbTypes.InvocationState>> = {
  queued: pb.InvocationState.INVOCATION_QUEUED,
  running: pb.InvocationState.INVOCATION_RUNNING,
  succeeded: pb.InvocationState.INVOCATION_SUCCEEDED,
  failed: pb.InvocationState.INVOCATION_FAILED,
  'timed-out': pb.InvocationState.INVOCATION_TIMED_OUT,
  cancelled: pb.InvocationState.INVOCATION_CANCELLED,
};

/** An entry of the invocation table as `InvocationInfo` (faas.proto). */
export function invocationToWire(entry: InvocationEntry & { readonly durationMs: number }, node: string): PbTypes.IInvocationInfo {
  return {
    callId: entry.callId,
    name: entry.name,
    dag: entry.dag,
    state: STATES[entry.state],
    ...(entry.error === undefined ? {} : { error: errorToWire(new LfaasError(entry.error.code as ErrorCode, entry.error.message)) }),
    node,
    startedAtMs: Math.floor(entry.startedAtMs),
    durationMs: Math.min(0xffff_ffff, entry.durationMs),
    mode: entry.mode,
  };
}

/** A sink's outcome as a finished entry's state: its error's code decides timed out, cancelled or failed. */
export function outcomeState(outcome: { value: Uint8Array } | { error: PbTypes.IError }): { state: Exclude<InvocationStateName, 'queued' | 'running'>; error?: { code: string; message: string } } {
  if (!('error' in outcome)) return { state: 'succeeded' };
  const code = errorCodeFromWire(outcome.error.code ?? 0);
  const error = { code, message: outcome.error.message ?? '' };
  if (code === ErrorCode.EXEC_TIMEOUT) return { state: 'timed-out', error };
  if (code === ErrorCode.EXEC_CANCELLED) return { state: 'cancelled', error };
  return { state: 'failed', error };
}
