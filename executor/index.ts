/**
 * Executors: the executor machine (runs, triggers, heartbeats), its host (the runtime pool of sandbox processes, the
 * cache, the run scopes of the consistency modes, the mailboxes between invocations), and the
 * pieces on their own for tests and tools.
 */
export { ExecutorNode } from './executor-node.js';
export type { ExecutorNodeOptions } from './executor-node.js';
export { ExecutorHost } from './host.js';
export type { ExecutorHostOptions, ExecutorTask, RunOutcome, HostStatus } from './host.js';
export { RuntimePool } from './runtime-pool.js';
export type { FunctionCode, FunctionHost, RuntimePoolOptions } from './runtime-pool.js';
export type { Runtime, RuntimeExit } from './runtimes.js';
export { answerHostAsk } from './host-asks.js';
export type { Invocation } from '../sandbox/index.js';
export { processTree, treeResidentBytes } from './process-tree.js';
export { ISOLATION_LEVELS, detectIsolation, isIsolationLevel, isolationRank, sandboxCommand } from './isolation.js';
export type { DetectedIsolation, IsolationLevel, SandboxCommand } from './isolation.js';
export { ExecutorCache } from './cache.js';
export type { CacheBackend, ExecutorCacheOptions } from './cache.js';
export { CounterIncrements, INCREMENT_AMOUNT_MAX } from './increments.js';
export { RunScope } from './run-scope.js';
export type { ConsistencyMode, ScopeEnvironment } from './run-scope.js';
export { Mailboxes } from './mailboxes.js';
export type { MailboxOptions } from './mailboxes.js';
export { FixedKeepAlive, HybridHistogramKeepAlive, keepAlivePolicy, replayGap } from './keepalive-policy.js';
export type { HybridOptions, KeepAlivePolicy, KeepAliveSpec, KeepAliveWindows } from './keepalive-policy.js';
export { FunctionLogBuffer, LOG_QUERY_LIMIT_MAX, boundText, nameMatches } from './function-logs.js';
export type { FunctionLogBufferOptions, KeptLogRecord, LogQuery, NewLogRecord } from './function-logs.js';
export { InvocationTable, INVOCATION_QUERY_LIMIT_MAX, invocationMatches } from './invocations.js';
export type { InvocationEntry, InvocationMode, InvocationQuery, InvocationStateName } from './invocations.js';
export { InferenceService } from './inference.js';
export type { InferenceCounters, InferenceServiceOptions } from './inference.js';
export { ML_PACKAGES, SESSION_OPTIONS, fromOrtTensor, loadOnnxRuntime, mlPackageInstalled, requireMlPackage, toOrtTensor } from './onnx-runtime.js';
export type { OnnxRuntime, OrtSession, OrtSessionOptions, OrtTensor } from './onnx-runtime.js';
export { FUNCTION_METRIC_NAMES, executorFunctionMetrics, functionMetricSamples, runCode } from './function-metrics.js';
