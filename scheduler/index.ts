/**
 * Schedulers: the scheduler machine (registry, placement, admission, dispatch, failure handling
 * of executors, leased execution records and takeover of a dead scheduler's async calls), its KVS
 * tasks, the placement policy and DAG validation.
 */
export { SchedulerNode } from './scheduler-node.js';
export type { SchedulerOptions } from './scheduler-node.js';
export { Registry } from './registry.js';
export type { FunctionMeta, RegistryHost } from './registry.js';
export { KvsTasks } from './kvs-tasks.js';
export { BOOTS_EPOCH_KEY, RUN_RECORD_BYTES_MAX, bootsKey, decodeRunRecord, indexKey, leaseKey, readIndex, readLease } from './execution-records.js';
export type { RecordedArgument, RecordedFunction, RunRecord, RunState } from './execution-records.js';
export type { TakeoverCounters } from './takeover.js';
export type { Continuation, SchedulerKvs, SchedulerTask } from './kvs-tasks.js';
export { DefaultPlacement, loadOf } from './placement.js';
export type { ExecutorView, PlacementPolicy, PlacementRequest, DefaultPlacementOptions } from './placement.js';
export { dagShape, DAG_FUNCTIONS_MAX } from './dag.js';
export type { DagShape } from './dag.js';
export { SCHEDULER_CALL_METRIC_NAMES, callOutcome, schedulerCallMetrics, schedulerCallSamples } from './call-metrics.js';
