/**
 * Admission refusals of a scheduler: a function's concurrency limit (the runs of it this
 * scheduler dispatched and has not seen finish), and SCHED_NO_CAPACITY when no executor has room,
 * each with its retry-after hint.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { admissionLoadOf } from './placement.js';
import type { ExecutorView } from './placement.js';
import type { Dispatch } from './run-books.js';

/**
 * The runs of each function with a concurrency limit, pruned as they finish.
 *
 * @example
 * ```ts
 * const limits = new ConcurrencyLimits((dispatch) => runs.get(dispatch.runId) === dispatch);
 * limits.refusal(dispatch, 100); // undefined: under every limit
 * limits.add(dispatch);
 * ```
 */
export class ConcurrencyLimits {
  private readonly running = new Map<string, Set<Dispatch>>();

  /** `current`: whether a dispatch is still the scheduler's run of its id. */
  constructor(private readonly current: (dispatch: Dispatch) => boolean) {}

  /** Counts `dispatch` against the limits of its functions. */
  add(dispatch: Dispatch): void {
    for (const fn of dispatch.functions) if (fn.concurrencyLimit > 0) this.runsOf(fn.name).add(dispatch);
  }

  /**
   * SCHED_NO_CAPACITY when a function of the run already runs as many calls as its concurrency
   * limit allows (a finished run is dropped from the count here), with `retryAfterMs` as the hint.
   */
  refusal(dispatch: Dispatch, retryAfterMs: number): LfaasError | undefined {
    for (const fn of dispatch.functions) {
      if (fn.concurrencyLimit === 0) continue;
      const runs = this.runsOf(fn.name);
      for (const run of runs) if (run.finished || !this.current(run) || run.seqs.size === 0) runs.delete(run);
      runs.delete(dispatch);
      if (runs.size >= fn.concurrencyLimit) {
        return new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `${fn.name} runs ${runs.size} calls at once, its concurrency limit; retry in ${retryAfterMs} ms`, { retryAfterMs });
      }
    }
    return undefined;
  }

  private runsOf(name: string): Set<Dispatch> {
    let runs = this.running.get(name);
    if (runs === undefined) this.running.set(name, (runs = new Set()));
    return runs;
  }
}

/**
 * SCHED_NO_CAPACITY with its retry-after hint: one check period (when the executors' next
 * reports have come in) per slot's worth of queue beyond the least loaded executor's room, at
 * most 2 s; with no executor at all, the executor timeout (one may be starting).
 */
export function noCapacity(alive: readonly ExecutorView[], options: { checkPeriodMs: number; executorTimeoutMs: number; overloadMax: number }): LfaasError {
  if (alive.length === 0) return new LfaasError(ErrorCode.SCHED_NO_CAPACITY, 'no executor has joined', { retryAfterMs: options.executorTimeoutMs });
  const least = Math.min(...alive.map(admissionLoadOf));
  const retryAfterMs = Math.min(2000, options.checkPeriodMs * Math.max(1, Math.ceil(least - options.overloadMax + 1)));
  return new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `every executor is saturated (the least loaded has ${least.toFixed(2)} calls per slot); retry in ${retryAfterMs} ms`, { retryAfterMs });
}
