/**
 * The executor's per-function metrics: every run of a function here (scheduled, or sent straight
 * here by a leased client, which no scheduler sees) is counted by outcome code and timed, from
 * the moment it started (its wait in the runtime pool included) to its result. The data
 * structure is kvs/function-call-metrics.ts (bounded label cardinality); this file names the
 * families and says what a run's code is.
 */
import { isLfaasError } from '../lattices/index.js';
import { FunctionCallMetrics } from '../kvs/index.js';
import type { MetricSample } from '../kvs/index.js';

/** The families the executor's function metrics are shown as. */
export const FUNCTION_METRIC_NAMES = {
  calls: 'lfaas_function_calls_total',
  callsHelp: 'Runs of a function on this executor that ended, by outcome: code is OK or the ErrorCode it failed with (direct calls included).',
  duration: 'lfaas_function_duration_seconds',
  durationHelp: 'How long runs of a function took on this executor, from their start (pool queue included) to their result, in seconds.',
} as const;

/** The code a run ended with: `OK`, or its error's ErrorCode (`INTERNAL` for an untyped error). */
export function runCode(error: Error | undefined): string {
  if (error === undefined) return 'OK';
  return isLfaasError(error) ? error.code : 'INTERNAL';
}

/** A fresh set of per-function metrics for an executor (at most `functionsMax` functions tracked). */
export function executorFunctionMetrics(functionsMax?: number): FunctionCallMetrics {
  return new FunctionCallMetrics(functionsMax === undefined ? {} : { functionsMax });
}

/** The series of `metrics`, labelled with the executor's `node`. */
export function functionMetricSamples(metrics: FunctionCallMetrics, node: string): MetricSample[] {
  return metrics.samples(FUNCTION_METRIC_NAMES, { node });
}
