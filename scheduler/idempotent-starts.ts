/**
 * Idempotent async calls at the scheduler machine (client/idempotency.ts: the call's id is derived
 * from the owner, the function and the caller's key) run once: the call's execution record is
 * looked for first, and if one exists (running elsewhere, or finished: its result stays under its
 * result key) the call is accepted again without running. Starts of the same id while the record
 * is read wait for that read (64 at most per id, and `checksMax` ids at once), then go through the
 * start path again.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { executionKey } from '../protocol/index.js';
import type { Effect } from '../protocol/index.js';
import type { Continuation, SchedulerTask } from './kvs-tasks.js';

/** Starts of one id that may wait for its record's read, at most. */
const WAITERS_MAX = 64;

/** What becomes of one idempotent start, each way given by the scheduler. */
export interface IdempotentStart {
  /** Its record exists: the call is accepted, not run again. */
  accepted(): Effect[];
  /** No record (or its read failed: at least once): it runs, as a plain async call. */
  run(): Effect[];
  /** Another start of the id was reading the record: this one goes through the start path again after it. */
  again(): Effect[];
  /** It is refused (too many at once). */
  failed(error: LfaasError): Effect[];
}

/**
 * The record reads of idempotent starts in flight.
 *
 * @example
 * const starts = new IdempotentStarts((task, then) => machine.kvs(task, then), 100_000);
 * return starts.start(callId, { accepted, run, again, failed });
 */
export class IdempotentStarts {
  /** Idempotent async calls whose execution record is being read: the starts of the same id waiting for it. */
  private readonly checks = new Map<string, (() => Effect[])[]>();

  constructor(
    private readonly kvs: (task: SchedulerTask, then: Continuation) => Effect[],
    /** Ids whose record is read at once, at most. */
    private readonly checksMax: number,
  ) {}

  /** Starts the idempotent async call `callId`: its record is read first (or the read under way waited for). */
  start(callId: string, start: IdempotentStart): Effect[] {
    const waiting = this.checks.get(callId);
    if (waiting !== undefined) {
      if (waiting.length >= WAITERS_MAX) return start.failed(new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `call ${callId} is being started ${waiting.length} times at once`, { retryAfterMs: 100 }));
      waiting.push(() => start.again());
      return [];
    }
    if (this.checks.size >= this.checksMax) return start.failed(new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `${this.checks.size} idempotent calls being checked`, { retryAfterMs: 100 }));
    this.checks.set(callId, []);
    return this.kvs({ op: 'get', key: executionKey(callId) }, (error, value) => {
      const waiters = this.checks.get(callId) ?? [];
      this.checks.delete(callId);
      // Recorded before: accepted, not run again. (A failed read runs it: at least once.)
      const effects = error === undefined && value !== undefined ? start.accepted() : start.run();
      for (const again of waiters) effects.push(...again());
      return effects;
    });
  }
}
