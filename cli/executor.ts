/**
 * `lfaas executor`: one executor as its own process. It owns every socket (its machine's, its
 * KVS client's, and the one it asks other executors on) and the cache; user functions run in the
 * runtime pool's sandbox processes (or, at isolation `none`, its threads), which hold no sockets.
 * At start it detects the strongest isolation level the machine allows and runs at it, unless
 * `isolation` names one (a weaker one with a warning); the level is logged and exported as
 * `lfaas_executor_isolation_level`. Prometheus metrics on `metricsPort`, read from the machine's,
 * pool's and cache's counters at each scrape.
 */
import { randomBytes } from 'node:crypto';
import { DISCOVERY_REFRESH_MS, KvsClient, ServiceFollower, discoverSchedulers } from '../client/index.js';
import { startMetricsServer } from '../kvs/index.js';
import type { MetricSample, Readiness } from '../kvs/index.js';
import { CounterIncrements, ExecutorCache, ExecutorHost, ExecutorNode, FunctionLogBuffer, ISOLATION_LEVELS, InferenceService, RuntimePool, detectIsolation, functionMetricSamples, isolationRank } from '../executor/index.js';
import type { IsolationLevel } from '../executor/index.js';
import { Rpc, bindTransport, readChunkedModel, runMachine, systemClock } from '../protocol/index.js';
import { defaultMlDir } from './ml-install.js';
import { wireCountersOf, wireSamples, zapSamples } from './wire-metrics.js';
import { announceReady, guardProcess, logError, stopOnSignals } from './process.js';
import { roleLog, setLogNode } from './log.js';
import { startTracing } from './tracing.js';
import { advertised } from './advertise.js';
import { roleSecurity } from './security.js';
import type { SecurityOptions } from './security.js';

export interface ExecutorProcessOptions extends SecurityOptions {
  readonly host: string;
  /** The host other machines reach this role at (default: `host`; docs/multi-host.md). */
  readonly advertise?: string;
  readonly port: number;
  readonly routing: readonly string[];
  /** Empty: discovered from the routing nodes and followed as they change (client/discovery.ts). */
  readonly schedulers: readonly string[];
  /** Worker threads at most (runtime slots). */
  readonly workers: number;
  /** Unspecialised workers started ahead of calls. */
  readonly prewarm: number;
  /** The memory class of prewarmed workers. */
  readonly memoryMb: number;
  readonly cacheBytes: number;
  readonly statusPeriodMs: number;
  /** -1: no metrics server; 0: an ephemeral port. */
  readonly metricsPort: number;
  /** The isolation level asked for (default: the strongest the machine allows). */
  readonly isolation?: IsolationLevel;
  /** Prewarm along DAGs and prefetch run keys (default on; off for comparisons). */
  readonly dagPrewarm?: boolean;
  readonly prefetch?: boolean;
  /** Every keep-alive window divided by this (default 1; benchmarks: 60). */
  readonly keepAliveTimeScale?: number;
  /** Stems waiting at most, over all memory classes and owners (default: half the runtimes). */
  readonly stemsMax?: number;
  /** Where onnxruntime-node is installed, for ctx.infer (default: cli's defaultMlDir()). */
  readonly mlDir?: string;
  /** Test hook: KVS pushes reach the cache this much later (stale caches, for consistency tests). */
  readonly pushDelayMs?: number;
}

type Counters<T extends { readonly counters: object }> = Readonly<Record<keyof T['counters'], readonly [name: string, help: string]>>;

const NODE_COUNTERS: Counters<ExecutorNode> = {
  schedules: ['lfaas_executor_schedules_total', 'Schedules (runs placed here) received.'],
  duplicates: ['lfaas_executor_duplicate_schedules_total', 'Schedules received again for a run already here (ignored).'],
  runs: ['lfaas_executor_runs_total', 'Runs started here (a schedule accepted, one or more of its functions placed here).'],
  answered: ['lfaas_executor_answered_total', 'Runs answered from here (their sink function here finished or failed).'],
  timeouts: ['lfaas_executor_run_timeouts_total', 'Runs whose deadline passed here (answered EXEC_TIMEOUT).'],
  refused: ['lfaas_executor_refused_total', 'Schedules refused (no room here, or not acceptable).'],
  triggersSent: ['lfaas_executor_triggers_sent_total', 'Triggers sent to other executors.'],
  triggersLocal: ['lfaas_executor_triggers_local_total', 'Triggers delivered to a function of the run on this executor.'],
  early: ['lfaas_executor_early_triggers_total', 'Triggers that arrived before their run\'s schedule (held until it came).'],
  prewarms: ['lfaas_executor_prewarms_total', 'Functions of DAG runs prepared when their schedule arrived, before their parents\' triggers.'],
};

const HOST_COUNTERS: Counters<ExecutorHost> = {
  warms: ['lfaas_executor_warms_total', 'Prewarms carried out (code fetched, a runtime specialised, keys prefetched).'],
  warmFailures: ['lfaas_executor_warm_failures_total', 'Prewarms that could not prepare their function (the run itself fetched again).'],
  prefetched: ['lfaas_executor_prefetched_keys_total', 'Keys read into the cache when their run was scheduled (ref arguments and declared reads).'],
  prefetchFailures: ['lfaas_executor_prefetch_failures_total', 'Prefetch reads that failed (the run read the key itself).'],
  prefetchUsed: ['lfaas_executor_prefetch_used_total', 'Prefetched keys their run then read.'],
  prefetchRefused: ['lfaas_executor_prefetch_refused_total', 'Keys not prefetched: out of the function\'s reach.'],
  codeFetches: ['lfaas_executor_code_fetches_total', 'Function records (code and limits) read from the KVS.'],
};

/** Seconds spent in each stage of the cold starts so far (a cold call's split: code fetch, runtime start, bundle evaluation, first call). */
interface ColdStageSeconds {
  code_fetch: number;
  runtime: number;
  evaluate: number;
  first_call: number;
}

const POOL_COUNTERS: Counters<RuntimePool> = {
  calls: ['lfaas_executor_pool_calls_total', 'Calls handed to the runtime pool.'],
  warm: ['lfaas_executor_pool_warm_starts_total', 'Calls that found their function loaded in a worker (a warm start).'],
  cold: ['lfaas_executor_pool_cold_starts_total', 'Calls that loaded their function first (a cold start).'],
  timeouts: ['lfaas_executor_pool_timeouts_total', 'Calls stopped at their function\'s timeout (EXEC_TIMEOUT).'],
  outOfMemory: ['lfaas_executor_pool_out_of_memory_total', 'Calls whose worker ran out of memory (EXEC_OUT_OF_MEMORY).'],
  replaced: ['lfaas_executor_pool_workers_replaced_total', 'Workers ended and replaced (after a timeout, out of memory, or a crash).'],
  unloaded: ['lfaas_executor_pool_unloaded_total', 'Function contexts unloaded after their keep-alive.'],
  idleEnded: ['lfaas_executor_pool_idle_ended_total', 'Idle runtimes ended (cold owners\' processes, surplus stems).'],
  logRecords: ['lfaas_executor_pool_log_records_total', 'Log records functions wrote (console.log, ctx.log).'],
  spawned: ['lfaas_executor_pool_runtimes_started_total', 'Runtimes (sandbox processes or threads) started.'],
  protocolBroken: ['lfaas_executor_pool_protocol_broken_total', 'Sandbox processes ended for breaking the runtime protocol.'],
  stemHits: ['lfaas_executor_pool_stem_hits_total', 'Cold starts that needed a fresh runtime and found a stem waiting.'],
  stemMisses: ['lfaas_executor_pool_stem_misses_total', 'Cold starts that waited for a runtime started for them.'],
  stemsRefilled: ['lfaas_executor_pool_stems_refilled_total', 'Stems started to refill the stem pools (per memory class and owner, to targets that follow the rate of cold starts).'],
  preparesDropped: ['lfaas_executor_pool_prepares_dropped_total', 'Prepares dropped: every runtime of the function\'s owner was busy, and a new process would have made the trigger wait for its start.'],
  prewarmed: ['lfaas_executor_pool_prewarmed_total', 'Functions prepared again by their adaptive keep-alive policy just before their next call was expected.'],
};

const CACHE_COUNTERS: Counters<ExecutorCache> = {
  hits: ['lfaas_executor_cache_hits_total', 'Reads answered from the cache.'],
  misses: ['lfaas_executor_cache_misses_total', 'Reads that went to the KVS.'],
  absentHits: ['lfaas_executor_cache_absent_hits_total', 'Reads of keys known to hold no value, answered from the cache.'],
  pushes: ['lfaas_executor_cache_pushes_total', 'Updates the KVS pushed to the cache (subscriptions).'],
  writes: ['lfaas_executor_cache_writes_total', 'Writes through the cache.'],
  evictions: ['lfaas_executor_cache_evictions_total', 'Keys evicted from the cache.'],
};

const INCREMENT_COUNTERS: Counters<CounterIncrements> = {
  increments: ['lfaas_executor_increments_total', 'ctx.increment calls that added to a Counter.'],
  writes: ['lfaas_executor_increment_writes_total', 'KVS writes of Counters by ctx.increment (the increments of concurrent calls share one).'],
  retriesSkipped: ['lfaas_executor_increment_retries_skipped_total', 'Increments of a retried call not added again.'],
  failures: ['lfaas_executor_increment_write_failures_total', 'Counter writes that failed (their calls failed).'],
};

const INFERENCE_COUNTERS: Counters<InferenceService> = {
  modelLoads: ['lfaas_executor_model_loads_total', 'Models loaded into an inference session (ctx.infer).'],
  inferences: ['lfaas_executor_inferences_total', 'ctx.infer runs that answered outputs.'],
  failures: ['lfaas_executor_inference_failures_total', 'ctx.infer requests that failed.'],
  processStarts: ['lfaas_executor_inference_process_starts_total', 'Inference processes started.'],
  processCrashes: ['lfaas_executor_inference_process_crashes_total', 'Inference processes that died or were killed after a timeout.'],
};

function counterSamples<T extends Record<string, number>>(counters: T, names: Readonly<Record<keyof T, readonly [string, string]>>, labels: Readonly<Record<string, string>>): MetricSample[] {
  return Object.entries(names).map(([field, [name, help]]) => ({ name, help, type: 'counter', value: counters[field as keyof T] ?? 0, labels }));
}

/** The executor's series at this moment, each labelled with its address. */
function executorSamples(parts: { node: ExecutorNode; pool: RuntimePool; cache: ExecutorCache; host: ExecutorHost; inference: InferenceService; stages: ColdStageSeconds }, node: string): MetricSample[] {
  const labels = { node };
  const gauge = (name: string, help: string, value: number): MetricSample => ({ name, help, type: 'gauge', value, labels });
  return [
    ...counterSamples(parts.node.counters, NODE_COUNTERS, labels),
    ...counterSamples(parts.pool.counters, POOL_COUNTERS, labels),
    ...counterSamples(parts.cache.counters, CACHE_COUNTERS, labels),
    ...counterSamples(parts.host.counters, HOST_COUNTERS, labels),
    ...counterSamples(parts.host.increments.counters, INCREMENT_COUNTERS, labels),
    ...counterSamples({ ...parts.inference.counters }, INFERENCE_COUNTERS, labels),
    ...(['code_fetch', 'runtime', 'evaluate', 'first_call'] as const).map((stage): MetricSample => ({ name: 'lfaas_executor_cold_start_seconds_total', help: 'Time spent in each stage of cold starts: code_fetch (the function\'s record read from the KVS), runtime (a runtime started until ready; 0 for a stem), evaluate (the bundle evaluated in the runtime), first_call (the call in the new realm).', type: 'counter', value: stage === 'code_fetch' ? parts.host.codeFetchMs / 1000 : parts.stages[stage], labels: { ...labels, stage } })),
    ...parts.pool.stemTargets().map((target): MetricSample => ({ name: 'lfaas_executor_pool_stem_target', help: 'Stems kept waiting per memory class (and per owner with recent cold starts): a floor plus the rate of cold starts times the time a stem takes to start.', type: 'gauge', value: target.target, labels: { ...labels, memory_mb: String(target.memoryMb), owner: target.owner ?? '' } })),
    gauge('lfaas_executor_runs_in_progress', 'Runs in progress here.', parts.node.runCount),
    gauge('lfaas_executor_pool_workers', 'Runtimes running (sandbox processes or threads).', parts.pool.size),
    gauge('lfaas_executor_pool_capacity', 'Runtimes at most (runtime slots).', parts.pool.capacity),
    ...ISOLATION_LEVELS.map((level): MetricSample => ({ name: 'lfaas_executor_isolation_level', help: 'The isolation level the runtimes run at (1 for the level in force; rank: none 0, process 1, bwrap 2).', type: 'gauge', value: parts.pool.isolation === level ? 1 : 0, labels: { ...labels, level, rank: String(isolationRank(level)) } })),
    gauge('lfaas_executor_pool_load', 'Calls running or queued in the pool.', parts.pool.load),
    gauge('lfaas_executor_warm_functions', 'Function versions loaded in some worker.', parts.pool.warmFunctions().length),
    gauge('lfaas_executor_cache_bytes', 'Bytes the cache holds.', parts.cache.bytes),
    gauge('lfaas_executor_cache_keys', 'Keys the cache holds.', parts.cache.keys().length),
    gauge('lfaas_executor_mailboxes', 'Open mailboxes (ctx.send / ctx.recv) of the runs here.', parts.host.mailboxes.size),
  ];
}

/** The function log buffer's series (docs/observability-logs.md): what it holds, and what it dropped or cut. */
function functionLogSamples(logs: FunctionLogBuffer, node: string): MetricSample[] {
  const labels = { node };
  return [
    { name: 'lfaas_executor_function_log_records', help: 'Function log records kept for readers (lfaas logs).', type: 'gauge', value: logs.size, labels },
    { name: 'lfaas_executor_function_log_bytes', help: 'Characters of function log text kept for readers (plus a fixed cost per record).', type: 'gauge', value: logs.byteCount, labels },
    { name: 'lfaas_executor_function_log_dropped_total', help: 'Function log records dropped, the oldest first, beyond the buffer\'s bounds.', type: 'counter', value: logs.counters.dropped, labels },
    { name: 'lfaas_executor_function_log_cut_total', help: 'Function log records whose text or fields were cut to their bound.', type: 'counter', value: logs.counters.cut, labels },
  ];
}

/** Ready while its runtime pool has slots and it is not draining. */
function executorReadiness(pool: RuntimePool, stopping: { readonly now: boolean }): Readiness {
  if (stopping.now) return { ready: false, reason: 'draining: the executor is stopping' };
  return pool.capacity > 0 ? { ready: true, reason: `${pool.capacity} runtime slots, isolation ${pool.isolation}` } : { ready: false, reason: 'the runtime pool has no slots' };
}

/** How long a stopping executor waits for the runs it holds. */
const DRAIN_MAX_MS = 10_000;
/** How long an executor started without --schedulers waits for the routing nodes to list one. */
const DISCOVERY_WAIT_MS = 120_000;

export async function runExecutor(options: ExecutorProcessOptions): Promise<void> {
  guardProcess('executor');
  const security = roleSecurity('executor', options);
  const transport = await bindTransport({ host: options.host, ...advertised(options), port: options.port, keyPair: security.keyPair });
  setLogNode(transport.address);
  await startTracing({ role: 'executor', node: transport.address });
  // A function's ctx waits on these reads: on a loaded machine, a 1 s attempt is too short.
  const kvs = await KvsClient.connect({ routing: options.routing, host: options.host, ...advertised(options), requestTimeoutMs: 2000, keyPair: security.keyPair, token: '' });
  if ((options.pushDelayMs ?? 0) > 0) roleLog().warn({ pushDelayMs: options.pushDelayMs }, `WARNING: --push-delay-ms ${options.pushDelayMs}: this executor's cache applies the KVS's updates ${options.pushDelayMs} ms late (a test hook: it reads stale values)`);
  const cache = new ExecutorCache(kvs, { bytesMax: options.cacheBytes, pushDelayMs: options.pushDelayMs ?? 0 });
  const isolation = await chooseIsolation(options.isolation);
  const stages: ColdStageSeconds = { code_fetch: 0, runtime: 0, evaluate: 0, first_call: 0 };
  // What functions log, kept for `lfaas logs` (docs/observability-logs.md): bounded, in memory.
  const functionLogs = new FunctionLogBuffer();
  const pool = new RuntimePool({
    isolation,
    onFunctionLog: (record) => {
      const at = record.fnId.lastIndexOf('@');
      functionLogs.add({ timeMs: Date.now(), function: at > 0 ? record.fnId.slice(0, at) : record.fnId, version: at > 0 ? Number(record.fnId.slice(at + 1)) || 0 : 0, callId: record.runId, level: record.level, text: record.text, ...(record.fields === undefined ? {} : { fields: record.fields }) });
    },
    prewarm: options.prewarm,
    workersMax: options.workers,
    memoryMb: options.memoryMb,
    keepAliveTimeScale: options.keepAliveTimeScale ?? 1,
    ...(options.stemsMax === undefined ? {} : { stemsMax: options.stemsMax }),
    onColdStart: (split) => {
      stages.runtime += split.runtimeMs / 1000;
      stages.evaluate += split.evaluateMs / 1000;
      stages.first_call += split.callMs / 1000;
    },
  });
  await pool.ready();
  const peers = new Rpc(await bindTransport({ host: options.host, ...advertised(options), port: 0, keyPair: security.keyPair }), systemClock);
  const schedulers = options.schedulers.length > 0 ? [...options.schedulers] : await discoverSchedulers(peers, options.routing, Date.now() + DISCOVERY_WAIT_MS);
  // ctx.infer: models read through the cache (chunked, see protocol/models.ts), run by onnxruntime in
  // a child process forked on first use; without the ML folder a call of infer fails, typed.
  const inference = new InferenceService({ mlDir: options.mlDir ?? defaultMlDir(), isolation, readModel: (key) => readChunkedModel(async (chunk) => (await cache.get(chunk))?.reveal(), key) });
  const host = new ExecutorHost({ self: transport.address, pool, cache, kvs, rpc: peers, prefetch: options.prefetch !== false, inference, functionLogs });
  // A nonce per boot: schedulers tell a restart at this address from its heartbeats' executor_id,
  // even one faster than their failure timeout.
  const incarnation = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
  const executor = new ExecutorNode({ address: transport.address, schedulers, statusPeriodMs: options.statusPeriodMs, incarnation, dagPrewarm: options.dagPrewarm !== false });
  const shell = runMachine(executor, transport, systemClock, { tasks: host, onError: logError(`executor ${transport.address}`), ...security.shell });
  const stopping = { now: false };
  const metrics = options.metricsPort < 0 ? undefined : await startMetricsServer({ host: options.host, port: options.metricsPort, samples: () => [...executorSamples({ node: executor, pool, cache, host, inference, stages }, transport.address), ...wireSamples(wireCountersOf(shell, transport), { node: transport.address }), ...zapSamples({ node: transport.address }), ...functionLogSamples(functionLogs, transport.address), ...functionMetricSamples(executor.functionMetrics, transport.address)], ready: () => executorReadiness(pool, stopping) });
  const follower = options.schedulers.length > 0 ? undefined : new ServiceFollower(peers, options.routing, schedulers, 'schedulers', DISCOVERY_REFRESH_MS, (list) => executor.setSchedulers(list));
  announceReady({ role: 'executor', address: transport.address, pid: process.pid, workers: options.workers, isolation, metricsPort: metrics?.port ?? null });
  stopOnSignals(async () => {
    stopping.now = true;
    // Drain: schedulers stop placing here at the next report; the runs held finish (10 s at most).
    follower?.stop();
    executor.drain();
    for (let waited = 0; executor.runCount > 0 && waited < DRAIN_MAX_MS; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    await shell.stop();
    await metrics?.close();
    await pool.close();
    await inference.close();
    cache.close();
    await peers.close();
    await peers.transport.close();
    await kvs.close();
  }, 'executor');
}

/** The level to run at: the one asked for, or the strongest available; says which and why on stderr. */
async function chooseIsolation(asked: IsolationLevel | undefined): Promise<IsolationLevel> {
  const detected = await detectIsolation();
  const level = asked ?? detected.level;
  const line = (text: string): void => roleLog().warn(text);
  if (asked !== undefined && isolationRank(asked) > isolationRank(detected.level)) throw new Error(`isolation ${asked} was asked for, but this machine allows at most ${detected.level}: ${detected.reason}`);
  if (level === 'none') line('WARNING: isolation none: functions run in threads of the executor with no wall between them and this process; for one trusted owner\'s development only');
  else if (isolationRank(level) < isolationRank(detected.level)) line(`WARNING: isolation ${level} was asked for; this machine allows ${detected.level}`);
  roleLog().info({ detected: detected.level, reason: detected.reason }, `isolation ${level}`);
  return level;
}
