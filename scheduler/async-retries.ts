/**
 * What becomes of a run whose executor is lost or that ended without a result: the scheduler
 * machine's retries of async runs and its failure writes.
 *
 * - A lost run (its executor died or restarted): a sync one is answered EXEC_LOST at once (no
 *   waiting for the client's timeout); an async one is dispatched again (`again`).
 * - `again`: an async run is dispatched again, `attemptsMax` dispatches at most (the first
 *   included), its record rewritten `running` first; past that, its error is its result.
 * - Admission of a re-dispatch: with no executor with room it does not fail at once (it was
 *   accepted: at least once), it waits in a bounded list (`retriesMax`) and is placed again at each
 *   check period (`retryWaiting`), until its deadline (its timeout after acceptance, plus the
 *   grace), when SCHED_NO_CAPACITY becomes its result.
 * - A failure write: the error goes under the run's result key as a Priority of its attempt (the
 *   lowest attempt wins, so a result written first stays); once written the run is settled (its
 *   record says done, it leaves this boot's index). A failed write leaves it in the index, where
 *   the orphan check (takeover.ts) finds it again.
 */
import { ErrorCode, LfaasError, Lww, Priority } from '../lattices/index.js';
import type { HybridClock } from '../lattices/index.js';
import { envelopeWith, errorToWire, executionKey } from '../protocol/index.js';
import type { Effect } from '../protocol/index.js';
import type { Continuation, SchedulerTask } from './kvs-tasks.js';
import { runRecordValue } from './execution-records.js';
import { RUN_GRACE_MS, runRecordOf } from './run-books.js';
import type { Dispatch, ExecutorEntry } from './run-books.js';

/** An async run to dispatch again once an executor has room. */
export interface Retry {
  readonly dispatch: Dispatch;
  /** The earlier attempt's live executors (see the scheduler's `dispatch`). */
  readonly previous: readonly string[];
  /** Why it is dispatched again. */
  readonly cause: LfaasError;
}

/** The scheduler's counters these retries move. */
export interface AsyncRetryCounters {
  lost: number;
  redispatched: number;
  retriesQueued: number;
  retriesDispatched: number;
  retriesExpired: number;
}

/** What the retries need of the scheduler machine, each named. */
export interface AsyncRetriesHost {
  /** The scheduler's address (the sender of its answers). */
  readonly id: string;
  /** This boot: the owner its records name. */
  readonly boot: string;
  /** The runs the scheduler holds, by run id: a run leaves when it ends, and is held while it waits for room. */
  readonly runs: Map<string, Dispatch>;
  /** Async runs out of `runs` whose result is being checked or written. */
  readonly settling: Set<string>;
  /** The executors alive, by address (a lost run leaves the others' outstanding runs). */
  readonly executors: ReadonlyMap<string, ExecutorEntry>;
  readonly counters: AsyncRetryCounters;
  readonly clock: HybridClock;
  now(): number;
  kvs(task: SchedulerTask, then: Continuation): Effect[];
  /** Places the run and sends its schedules; `onNoCapacity` when no executor has room. */
  dispatch(dispatch: Dispatch, onNoCapacity: (error: LfaasError) => Effect[], previous: readonly string[]): Effect[];
  /** The run's result is written: its record says done, and it leaves this boot's index. */
  settled(dispatch: Dispatch): Effect[];
}

export interface AsyncRetriesOptions {
  /** Dispatches of an async run at most (the first included). */
  readonly attemptsMax: number;
  /** Runs waiting for room at most (beyond, SCHED_NO_CAPACITY is their result at once). */
  readonly retriesMax: number;
}

/**
 * The async runs waiting for room, and what is done with runs that were lost or failed.
 *
 * @example
 * const retries = new AsyncRetries(host, { attemptsMax: 3, retriesMax: 10_000 });
 * effects.push(...retries.lost(dispatch, deadExecutor, false));
 */
export class AsyncRetries {
  /** Async runs waiting for room to be dispatched again (see `waitForRoom`), by run id. */
  private readonly retries = new Map<string, Retry>();
  /** Async runs waiting for room now (each counted once in retriesQueued, then once dispatched or expired). */
  private readonly waiting = new Set<string>();

  constructor(
    private readonly host: AsyncRetriesHost,
    private readonly options: AsyncRetriesOptions,
  ) {}

  /** Whether the run waits for room (its wait has its own deadline). */
  has(runId: string): boolean {
    return this.retries.has(runId);
  }

  /** The runs waiting for room now (`lfaas invocations` lists them queued). */
  waitingRuns(): Dispatch[] {
    return [...this.retries.values()].map((retry) => retry.dispatch);
  }

  /** The run no longer waits (it was cancelled). */
  drop(runId: string): void {
    this.retries.delete(runId);
    this.waiting.delete(runId);
  }

  /**
   * The run's executor at `address` stopped answering (or restarted: `restarted`, the new boot
   * takes the re-dispatch too): a sync run is answered EXEC_LOST, an async one goes again.
   */
  lost(dispatch: Dispatch, address: string, restarted: boolean): Effect[] {
    if (dispatch.finished) return [];
    const survivors = [...dispatch.seqs.keys()].filter((other) => other !== address || restarted);
    for (const other of dispatch.seqs.keys()) if (other !== address) this.host.executors.get(other)?.outstanding.delete(dispatch.runId);
    dispatch.seqs.clear();
    this.host.counters.lost++;
    const error = new LfaasError(ErrorCode.EXEC_LOST, `executor ${address} stopped answering while running ${dispatch.runId}`);
    if (dispatch.resultKey.length === 0) {
      dispatch.finished = true;
      this.host.runs.delete(dispatch.runId);
      if (dispatch.replyTo.length === 0) return [];
      return [{ kind: 'send', to: dispatch.replyTo, envelope: envelopeWith({ callResponse: { callId: dispatch.runId, error: errorToWire(error) } }, { responseTo: dispatch.replyRequestId, sender: this.host.id }) }];
    }
    return this.again(dispatch, error, address, survivors);
  }

  /** An async run that did not finish: dispatched again (`attemptsMax` at most), or its error is its result. */
  again(dispatch: Dispatch, error: LfaasError, address: string, previous: readonly string[] = []): Effect[] {
    if (dispatch.attempt >= this.options.attemptsMax) {
      dispatch.finished = true;
      this.host.runs.delete(dispatch.runId);
      return this.writeFailure(dispatch, error);
    }
    dispatch.attempt++;
    dispatch.finished = false;
    this.host.counters.redispatched++;
    const record = runRecordOf(dispatch, this.host.boot, 'running', address, this.host.now());
    return [
      ...this.host.kvs({ op: 'put', key: executionKey(dispatch.runId), value: Lww.write(this.host.clock, runRecordValue(record)), ack: 'local' }, () => []),
      ...this.host.dispatch(dispatch, (failure) => this.waitForRoom({ dispatch, previous, cause: error }, failure), previous),
    ];
  }

  /**
   * An async run to dispatch again that no executor has room for (none known, or all past
   * capacity): at least once, it waits in the retry list, placed again at each check, until its
   * deadline (its timeout after acceptance, plus the grace); then, or when the list is full, the
   * SCHED_NO_CAPACITY is its result.
   */
  waitForRoom(retry: Retry, failure: LfaasError): Effect[] {
    const dispatch = retry.dispatch;
    const untilMs = dispatch.acceptedAtMs + dispatch.timeoutMs + RUN_GRACE_MS;
    if (this.host.now() >= untilMs || this.retries.size >= this.options.retriesMax) {
      this.drop(dispatch.runId);
      this.host.counters.retriesExpired++;
      dispatch.finished = true;
      this.host.runs.delete(dispatch.runId);
      return this.writeFailure(dispatch, new LfaasError(failure.code, `run ${dispatch.runId} found no executor with room by its deadline (${failure.message}); it was to go again after: ${retry.cause.message}`));
    }
    this.retries.set(dispatch.runId, retry);
    // Counted once per wait (a placement that fails again keeps it waiting).
    if (!this.waiting.has(dispatch.runId)) {
      this.waiting.add(dispatch.runId);
      this.host.counters.retriesQueued++;
    }
    dispatch.finished = false;
    this.host.runs.set(dispatch.runId, dispatch);
    return [];
  }

  /** One more placement of each async run waiting for room (check period). */
  retryWaiting(): Effect[] {
    if (this.retries.size === 0) return [];
    const waiting = [...this.retries.values()];
    this.retries.clear();
    const effects: Effect[] = [];
    for (const retry of waiting) {
      const placed = this.host.dispatch(retry.dispatch, (failure) => this.waitForRoom(retry, failure), retry.previous);
      if (!this.retries.has(retry.dispatch.runId) && !retry.dispatch.finished && this.waiting.delete(retry.dispatch.runId)) this.host.counters.retriesDispatched++;
      effects.push(...placed);
    }
    return effects;
  }

  /**
   * An async call that cannot run: its error is its result; once written, the run is done. A
   * failed write leaves it in this boot's index, where the orphan check finds it again.
   */
  writeFailure(dispatch: Dispatch, error: LfaasError): Effect[] {
    const record = { ok: false, code: error.code, message: error.message };
    this.host.settling.add(dispatch.runId);
    return this.host.kvs({ op: 'put', key: dispatch.resultKey, value: new Priority(dispatch.attempt, record), ack: 'replicated' }, (failure) => {
      if (this.host.runs.has(dispatch.runId)) {
        this.host.settling.delete(dispatch.runId);
        return [];
      }
      if (failure === undefined) return this.host.settled(dispatch);
      this.host.settling.delete(dispatch.runId);
      return [];
    });
  }
}
