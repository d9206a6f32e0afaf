/**
 * The scheduler machine's books, shared by its parts (scheduler-node.ts, async-retries.ts,
 * pinning.ts, cancel.ts): a run it dispatched and has not seen finish, the functions planned for
 * it, an executor (one boot of it) as it knows it, and a run's execution record as this boot
 * writes it (execution-records.ts has the codec).
 */
import type { PbTypes } from '../protocol/index.js';
import { argumentFromWire } from './execution-records.js';
import type { RunRecord, RunState } from './execution-records.js';
import type { ExecutorView } from './placement.js';

/** Sync and DAG runs are given this much more than their functions' time before they are forgotten. */
export const RUN_GRACE_MS = 5000;

/** One function of a run, as placement and its schedule need it. */
export interface PlannedFunction {
  readonly name: string;
  readonly version: number;
  readonly args: PbTypes.IArgument[];
  readonly successors: readonly string[];
  readonly parents: number;
  /** Its parents in edge order: the order of their results in its arguments. */
  readonly parentNames: readonly string[];
  readonly prefer: string | undefined;
  readonly keys: readonly string[];
  /** Calls of it running at once at most (0: no limit). */
  readonly concurrencyLimit: number;
}

/** A run this scheduler dispatched and has not seen finish. */
export interface Dispatch {
  readonly runId: string;
  readonly dag: string;
  readonly functions: readonly PlannedFunction[];
  readonly consistency: number;
  readonly timeoutMs: number;
  /** Sync: where the sink answers. */
  readonly replyTo: string;
  readonly replyRequestId: number;
  /** Async: where the result goes. */
  readonly resultKey: string;
  readonly traceId: string;
  attempt: number;
  /** Async: when the call was accepted (its re-dispatches wait for room until its timeout after this, plus the grace). */
  acceptedAtMs: number;
  /** Executor -> the dispatch sequence number it got this run under. */
  readonly seqs: Map<string, number>;
  deadlineMs: number;
  finished: boolean;
}

/** An executor as this scheduler knows it: one boot of it. */
export interface ExecutorEntry extends ExecutorView {
  /** Its heartbeats' `executor_id` (`<address>#<nonce>`, or the address alone). */
  readonly incarnation: string;
  /** Its hottest functions as it last reported them (for the monitor). */
  functions: PbTypes.IFunctionLoad[];
  /** Stems waiting there, as it last reported (the dashboard shows them). */
  stems?: number;
}

/**
 * The execution record of an async run, `owner` (this boot) its owner, as of `atMs`.
 *
 * @example
 * const record = runRecordOf(dispatch, 'tcp://127.0.0.1:7000#b1', 'accepted', '', nowMs);
 */
export function runRecordOf(dispatch: Dispatch, owner: string, state: RunState, lostExecutor: string, atMs: number): RunRecord {
  return {
    callId: dispatch.runId,
    owner,
    state,
    attempt: dispatch.attempt,
    dag: dispatch.dag,
    functions: dispatch.functions.map((fn) => ({ name: fn.name, version: fn.version, args: fn.args.map(argumentFromWire), successors: [...fn.successors], parents: [...fn.parentNames], concurrencyLimit: fn.concurrencyLimit })),
    consistency: dispatch.consistency,
    timeoutMs: dispatch.timeoutMs,
    resultKey: dispatch.resultKey,
    traceId: dispatch.traceId.length <= 256 ? dispatch.traceId : '',
    executor: lostExecutor.slice(0, 400),
    atMs: Math.floor(atMs),
  };
}
