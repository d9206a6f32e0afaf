/**
 * A scheduler's part of `lfaas invocations` and `lfaas logs`: the async runs it holds queued
 * (dispatched again after their executor died, waiting for room), and the executors it knows alive,
 * which the client then asks for their runs and log records (docs/observability-logs.md). Running
 * and finished runs are the executors' to report: direct calls never pass a scheduler.
 */
import { pb } from '../protocol/index.js';
import type { PbTypes } from '../protocol/index.js';

/** What the scheduler knows of a queued run. */
export interface QueuedRun {
  readonly runId: string;
  readonly dag: string;
  readonly functions: readonly { readonly name: string }[];
  readonly acceptedAtMs: number;
}

/** Queued entries in one answer at most. */
const QUEUED_LISTED_MAX = 1000;

/** Whether a run is named by `name`: '' all, `alice/` its names and its own call ids, else the exact name. */
function matches(name: string, runName: string, runId: string): boolean {
  if (name === '') return true;
  if (name.endsWith('/')) return runName.startsWith(name) || runId.startsWith(name);
  return runName === name;
}

/** The `InvocationList` a scheduler answers: its queued runs that `request` names, and the live executors. */
export function schedulerInvocations(request: PbTypes.IInvocationsRequest, queued: Iterable<QueuedRun>, executors: readonly string[], self: string, nowMs: number): PbTypes.IInvocationList {
  const name = request.name ?? '';
  const limit = Math.min(QUEUED_LISTED_MAX, request.limit || QUEUED_LISTED_MAX);
  const invocations: PbTypes.IInvocationInfo[] = [];
  for (const run of queued) {
    if (invocations.length >= limit) break;
    const runName = run.dag || (run.functions[0]?.name ?? '');
    if (!matches(name, runName, run.runId)) continue;
    invocations.push({
      callId: run.runId,
      name: runName,
      dag: run.dag !== '',
      state: pb.InvocationState.INVOCATION_QUEUED,
      node: self,
      startedAtMs: Math.floor(run.acceptedAtMs),
      durationMs: Math.min(0xffff_ffff, Math.max(0, Math.round(nowMs - run.acceptedAtMs))),
      mode: 'async',
    });
  }
  return { invocations, executors: [...executors] };
}
