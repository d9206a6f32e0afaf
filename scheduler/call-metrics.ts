/**
 * The scheduler's per-function metrics: the calls it schedules (one-function calls sent to it;
 * a leased client's direct calls never reach it, the executors count those), each counted by
 * function, version and outcome code (`OK`: dispatched to an executor or, async, accepted; else
 * the ErrorCode it answered: FN_NOT_FOUND, SCHED_NO_CAPACITY...), and the dispatch latency of
 * those dispatched (from the call's arrival to its schedule sent: the registry read, when not
 * cached, and placement), in seconds. Data structure: kvs/function-call-metrics.ts.
 */
import { FunctionCallMetrics } from '../kvs/index.js';
import type { MetricSample } from '../kvs/index.js';
import { errorCodeFromWire } from '../protocol/index.js';
import type { Effect } from '../protocol/index.js';

/** The families the scheduler's call metrics are shown as. */
export const SCHEDULER_CALL_METRIC_NAMES = {
  calls: 'lfaas_scheduler_calls_total',
  callsHelp: 'Function calls this scheduler answered or dispatched, by function, version and outcome code (OK: dispatched or, async, accepted).',
  duration: 'lfaas_scheduler_dispatch_duration_seconds',
  durationHelp: 'From a function call\'s arrival to its dispatch to an executor (registry read and placement), in seconds.',
} as const;

export function schedulerCallMetrics(functionsMax?: number): FunctionCallMetrics {
  return new FunctionCallMetrics(functionsMax === undefined ? {} : { functionsMax });
}

/**
 * The outcome of a call from the effects its handling produced: the code of an error answer to
 * `callId` among them, else `OK`.
 */
export function callOutcome(effects: readonly Effect[], callId: string): string {
  for (const effect of effects) {
    if (effect.kind !== 'send') continue;
    const response = effect.envelope.callResponse;
    if (response?.error && (response.callId ?? '') === callId) return errorCodeFromWire(response.error.code ?? 0);
  }
  return 'OK';
}

/** The series of `metrics`, labelled with the scheduler's `node`. */
export function schedulerCallSamples(metrics: FunctionCallMetrics, node: string): MetricSample[] {
  return metrics.samples(SCHEDULER_CALL_METRIC_NAMES, { node });
}
