/**
 * The executor machine: it runs the functions that schedules place on it and
 * triggers their successors directly, executor to executor. Sans-I/O: running a function,
 * reading the KVS and every other slow thing is a `task` its shell's host carries out
 * (`ExecutorHost` in a process, a simulated host in the simulator).
 *
 * - `schedule`: a run (one function, or a DAG) with the executor of each function. This executor
 *   starts its functions that wait for no parent, and each of the others once a trigger from
 *   every parent has arrived (triggers that arrive before their schedule wait, bounded).
 * - A function's result goes to each successor as a `trigger` (to itself without a message when
 *   the successor is placed here). A failure travels the same way as an error trigger, so the
 *   sink, and only the sink, answers: `reply_to` (sync) or the result key (async).
 * - A DAG run has a deadline (its `timeout_ms`): a sink still waiting then answers EXEC_TIMEOUT,
 *   so a lost trigger or a dead upstream executor never hangs a call.
 * - Every `statusPeriodMs` it tells each scheduler its load, warm functions, cached keys, its
 *   hottest functions' call rates and latencies (executor/function-load.ts: the monitor pins a
 *   function on executors in proportion to its rate), the
 *   last dispatch it received from that scheduler and which of its runs still run here: the
 *   scheduler's failure detector and at-least-once re-dispatch rest on these heartbeats. The
 *   status names this boot of the executor: `executor_id` is `<address>#<incarnation>`, the
 *   incarnation a nonce its process draws at start (option `incarnation`; this machine draws no
 *   randomness or time of its own). A scheduler that sees a new incarnation at a known address
 *   knows the executor restarted, even faster than its failure timeout, and fails the runs the
 *   old boot held at once.
 * - Prewarm along the DAG: a schedule names every function of the run with its executor at once,
 *   so when it arrives, each function placed here that waits for its parents' triggers is warmed
 *   (a `warm` task: its code fetched, a runtime specialised, its keys prefetched) while its
 *   parents run; the trigger then finds a warm runtime with its data in the cache. Root
 *   functions start at once (their `run` task prefetches their keys beside the code fetch).
 * - `invocationMessage` (ctx.send between invocations), `versionRequest` (a run's pinned version,
 *   asked by a downstream executor), `prepare` (pinning), `runFinished` (a repeatable-read or
 *   causal run is over: drop its versions).
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { SpanKind, endSpan, envelopeWith, errorCodeFromWire, errorToWire, pb, resultKeyOf, setSpanAttributes, startSpanFrom, traceFieldOf } from '../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes, Span } from '../protocol/index.js';
import type { ExecutorTask, HostStatus, RunOutcome } from './host.js';
import type { ConsistencyMode } from './run-scope.js';
import { FunctionLoads } from './function-load.js';
import { executorFunctionMetrics, runCode } from './function-metrics.js';
import { InvocationTable, invocationToWire, outcomeState } from './invocations.js';
import type { LogQuery } from './function-logs.js';

export interface ExecutorNodeOptions {
  /** This executor's address (its transport's). */
  readonly address: string;
  /** Schedulers to report to from the start (others are learnt from their schedules). */
  readonly schedulers?: readonly string[];
  readonly statusPeriodMs?: number;
  /** Runs held at most; beyond, new schedules are refused with SCHED_NO_CAPACITY. */
  readonly runsMax?: number;
  /** Runs with triggers waiting for their schedule, at most. */
  readonly earlyRunsMax?: number;
  /** How long such triggers wait. */
  readonly earlyTriggerMs?: number;
  readonly schedulersMax?: number;
  /** Above this load per runtime slot, direct calls are refused (SCHED_NO_CAPACITY: go through a scheduler). */
  readonly directLoadMax?: number;
  /** Calls per runtime slot (running and queued) at which a sync one-function call is refused here (2). */
  readonly overloadMax?: number;
  /** Above this load per runtime slot, no lease is granted. */
  readonly leaseLoadMax?: number;
  /**
   * This boot's nonce, different at every start of the process (random or time-based; the
   * process draws it). Heartbeats report `<address>#<incarnation>` as `executor_id`. Without
   * one, `executor_id` is the address alone and a scheduler cannot tell a quick restart.
   */
  readonly incarnation?: string;
  /** Prewarm along the DAG (default true; off for comparisons): see {@link ExecutorNode}. */
  readonly dagPrewarm?: boolean;
}

const STATUS = 'status';
/** The trace field of a trigger waiting for its schedule (tracing; gone with the trigger). */
const earlyTraces = new WeakMap<PbTypes.ITrigger, string>();
const RUN_TIMER = 'run:';
/**
 * Functions in one schedule, at most: a DAG has at most 64 (scheduler/dag.ts, DAG_FUNCTIONS_MAX),
 * and a schedule names each of its functions once. A longer one is refused (EXEC_BAD_VALUE): one
 * frame must not buy unbounded work.
 */
export const SCHEDULE_FUNCTIONS_MAX = 64;
/** A run's budget, at most: the longest a function may run (the registry's limit) or a DAG be given (the scheduler's). */
export const RUN_TIMEOUT_MAX_MS = 15 * 60_000;

const MODES: Readonly<Record<number, ConsistencyMode>> = {
  [pb.Consistency.REPEATABLE_READ]: 'repeatable-read',
  [pb.Consistency.CAUSAL]: 'causal',
};

interface FunctionState {
  readonly spec: PbTypes.IScheduledFunction;
  readonly name: string;
  /** Parent names in the DAG's order: the order of the upstream arguments. */
  readonly parents: readonly string[];
  readonly arrived: Map<string, Uint8Array>;
  readonly cuts: PbTypes.ICutEntry[];
  error: PbTypes.IError | undefined;
  started: boolean;
  /** When it started running (its latency is measured from here, its queue in the pool included). */
  startedAtMs: number;
  /** Tracing: the trace field its run (or the trigger that started it) carried, and its span while it runs. */
  trace: string;
  span: Span | undefined;
}

interface Run {
  readonly id: string;
  readonly schedule: PbTypes.ISchedule;
  /** The trace field of its schedule (protocol/trace-context.ts), '' for none. */
  readonly trace: string;
  readonly mode: ConsistencyMode;
  readonly scheduler: string;
  readonly functions: Map<string, FunctionState>;
  readonly placement: Record<string, string>;
  readonly sinkHere: boolean;
  readonly deadlineMs: number;
  /** It has a deadline timer: several functions, or one that waits for triggers. */
  readonly timed: boolean;
  remaining: number;
  answered: boolean;
}

interface SchedulerView {
  ackedSeq: number;
  readonly running: Set<string>;
  /** Given at start (`schedulers`): heartbeated for good. A view learnt from a schedule is not. */
  readonly configured: boolean;
  /** When its last schedule arrived. */
  lastScheduleMs: number;
}

/**
 * A scheduler learnt from a schedule (not configured) with nothing running here is forgotten after
 * this long without a schedule: its heartbeats stop. A schedule may name any address as its
 * scheduler; this executor must not heartbeat it ten times a second for good.
 */
export const LEARNT_SCHEDULER_IDLE_MS = 30_000;

type TaskDone =
  | { readonly kind: 'run'; readonly run: Run; readonly fn: FunctionState }
  | { readonly kind: 'status' }
  | { readonly kind: 'reply'; readonly request: Envelope; readonly as: 'done' | 'version' | 'logs' }
  | { readonly kind: 'ignore' };

/** The load a draining executor reports: past any scheduler's admission threshold. */
const DRAINING_LOAD = 1_000_000;

export class ExecutorNode implements Machine {
  readonly id: string;
  /** `<address>#<incarnation>`: this boot, as its heartbeats name it. */
  readonly executorId: string;
  private readonly runs = new Map<string, Run>();
  private readonly schedulers = new Map<string, SchedulerView>();
  private readonly early = new Map<string, { readonly triggers: PbTypes.ITrigger[]; readonly atMs: number }>();
  private readonly tasks = new Map<number, TaskDone>();
  private readonly recentMessages = new Set<string>();
  private nextToken = 1;
  private nowMs = 0;
  /** Running and queued calls per runtime slot, at the last status. */
  private loadShare = 0;
  /** Runtime slots, from the pool's last status (0 until the first). */
  private capacity = 0;
  /** Since the last status: the most runs held at once, and the calls refused for want of room. */
  private peakRuns = 0;
  private refusedSinceStatus = 0;
  /** Stopping: it reports itself saturated (no scheduler places anything here) while its runs finish. */
  private draining = false;
  /** Per function: call rate and recent latencies (reported in every status). */
  private readonly loads = new FunctionLoads();
  /** Per function and version: runs by outcome code, and their durations (lfaas_function_*; function-metrics.ts). */
  readonly functionMetrics = executorFunctionMetrics();
  /** The runs held here and lately finished, with their state (`invocationsRequest`). */
  readonly invocations = new InvocationTable();
  readonly counters = { schedules: 0, duplicates: 0, runs: 0, triggersSent: 0, triggersLocal: 0, answered: 0, timeouts: 0, refused: 0, early: 0, prewarms: 0 };

  constructor(private readonly options: ExecutorNodeOptions) {
    this.id = options.address;
    this.executorId = options.incarnation ? `${options.address}#${options.incarnation}` : options.address;
    for (const scheduler of options.schedulers ?? []) this.schedulers.set(scheduler, { ackedSeq: 0, running: new Set(), configured: true, lastScheduleMs: 0 });
  }

  /**
   * Replaces the configured schedulers (discovery: the routing nodes list others now). New ones
   * are heartbeated from the next status on; one no longer listed is kept as if learnt from a
   * schedule (forgotten once idle), so the runs it placed here still report to it.
   */
  setSchedulers(addresses: readonly string[]): void {
    const wanted = new Set(addresses);
    for (const [address, view] of this.schedulers) if (view.configured && !wanted.has(address)) this.schedulers.set(address, { ...view, configured: false, lastScheduleMs: this.nowMs });
    for (const address of wanted) {
      const view = this.schedulers.get(address);
      if (view === undefined) this.schedulers.set(address, { ackedSeq: 0, running: new Set(), configured: true, lastScheduleMs: 0 });
      else if (!view.configured) this.schedulers.set(address, { ...view, configured: true });
    }
  }

  /** Runs in progress here (tests). */
  get runCount(): number {
    return this.runs.size;
  }

  /**
   * Starts draining (before the process stops): from its next report on, schedulers place nothing
   * here and leased direct calls are refused (the client goes through a scheduler), while the
   * runs it holds finish.
   */
  drain(): void {
    this.draining = true;
    this.loadShare = DRAINING_LOAD;
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    this.nowMs = Math.max(this.nowMs, nowMs);
    switch (input.kind) {
      case 'start':
        return [...this.task({ op: 'status' }, { kind: 'status' }), { kind: 'timer', timer: STATUS, delayMs: this.options.statusPeriodMs ?? 100 }];
      case 'timer':
        if (input.timer === STATUS) {
          this.sweepEarly();
          this.sweepSchedulers();
          return [...this.task({ op: 'status' }, { kind: 'status' }), { kind: 'timer', timer: STATUS, delayMs: this.options.statusPeriodMs ?? 100 }];
        }
        if (input.timer.startsWith(RUN_TIMER)) return this.onDeadline(input.timer.slice(RUN_TIMER.length));
        return [];
      case 'persisted':
        return [];
      case 'taskDone':
        return this.onTaskDone(input.token, input.result, input.error);
      case 'message':
        return this.onMessage(input.envelope);
    }
  }

  private onMessage(envelope: Envelope): Effect[] {
    switch (envelope.body) {
      case 'schedule':
        return this.onSchedule(envelope.schedule!, envelope);
      case 'trigger':
        return this.onTrigger(envelope.trigger!, envelope.traceId);
      case 'invocationMessage': {
        const message = envelope.invocationMessage!;
        // A retried send (same request id) is delivered once.
        const id = `${envelope.replyTo}#${envelope.requestId}`;
        if (Number(envelope.requestId) !== 0 && this.recentMessages.has(id)) return this.reply(envelope, { done: {} });
        this.recentMessages.add(id);
        if (this.recentMessages.size > 10_000) this.recentMessages.delete(this.recentMessages.values().next().value!);
        return this.task({ op: 'deliver', runId: message.runId ?? '', target: message.targetFunction ?? '', payload: message.payload ?? new Uint8Array() }, { kind: 'reply', request: envelope, as: 'done' });
      }
      case 'versionRequest': {
        const request = envelope.versionRequest!;
        return this.task({ op: 'pinned', runId: request.runId ?? '', key: request.key ?? '', first: request.first === true }, { kind: 'reply', request: envelope, as: 'version' });
      }
      case 'prepare': {
        const functions = (envelope.prepare!.functions ?? []).map((ref) => ({ name: ref.name ?? '', version: ref.version ?? 0 }));
        return this.task({ op: 'prepare', functions }, Number(envelope.requestId) === 0 ? { kind: 'ignore' } : { kind: 'reply', request: envelope, as: 'done' });
      }
      case 'runFinished':
        return this.task({ op: 'endRun', runId: envelope.runFinished!.runId ?? '' }, { kind: 'ignore' });
      case 'cancelCall':
        return this.onCancel(envelope, envelope.cancelCall!.callId ?? '');
      case 'echo':
        return this.reply(envelope, { echo: { payload: envelope.echo?.payload ?? null } });
      case 'logsRequest': {
        // The records live in the host's buffer (its runtimes write them); the token allowed the name (owner-access.ts).
        const request = envelope.logsRequest!;
        const query: LogQuery = { name: request.name ?? '', sinceMs: Number(request.sinceMs ?? 0), callId: request.callId ?? '', afterSeq: Number(request.afterSeq ?? 0), limit: request.limit ?? 0 };
        return this.task({ op: 'logs', query }, { kind: 'reply', request: envelope, as: 'logs' });
      }
      case 'invocationsRequest': {
        const request = envelope.invocationsRequest!;
        const invocations = this.invocations.list({ name: request.name ?? '', runningOnly: request.runningOnly === true, limit: request.limit ?? 0 }, this.nowMs).map((entry) => invocationToWire(entry, this.id));
        return this.reply(envelope, { invocationList: { invocations } });
      }
      default:
        return this.reply(envelope, { errorReply: { error: errorToWire(new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, `an executor does not handle ${envelope.body ?? 'nothing'}`)) } });
    }
  }

  private onSchedule(schedule: PbTypes.ISchedule, envelope: Envelope): Effect[] {
    this.counters.schedules++;
    const sender = envelope.sender;
    const runId = schedule.runId ?? '';
    // A direct call (a client holding a lease): the schedule is the request, answered as one.
    const direct = !schedule.scheduler && !schedule.replyTo && !schedule.resultKey;
    if (direct) {
      if (Number(envelope.requestId) === 0 || envelope.replyTo.length === 0) return [];
      schedule.replyTo = envelope.replyTo;
      schedule.replyRequestId = Number(envelope.requestId);
      if (this.loadShare > (this.options.directLoadMax ?? 2)) {
        this.counters.refused++;
        return this.answerRefused(schedule, new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `executor ${this.id} is overloaded: go through a scheduler`));
      }
    }
    const scheduler = this.schedulerView(schedule.scheduler || sender);
    if (scheduler !== undefined) {
      scheduler.ackedSeq = Math.max(scheduler.ackedSeq, Number(schedule.dispatchSeq ?? 0));
      scheduler.lastScheduleMs = this.nowMs;
    }
    const existing = this.runs.get(runId);
    if (existing !== undefined) {
      if ((schedule.attempt || 1) <= (existing.schedule.attempt || 1)) {
        this.counters.duplicates++;
        return [];
      }
      // A re-dispatch (an executor of the run died): it replaces what is left here of the earlier
      // attempt, which would otherwise wait for the dead executor's triggers, time out, and write
      // EXEC_TIMEOUT as attempt 1 (the lower attempt wins the result key). The parents' results
      // that arrived stay (any attempt's result is the run's): replayed like early triggers.
      this.runs.delete(runId);
      this.schedulers.get(existing.scheduler)?.running.delete(runId);
      const carried = [...existing.functions.values()].flatMap((fn) =>
        [...fn.arrived].map(([source, value], i): PbTypes.ITrigger => ({ runId, sourceFunction: source, targetFunction: fn.name, value, ...(i === 0 ? { cut: fn.cuts } : {}) })),
      );
      if (carried.length > 0) this.early.set(runId, { triggers: carried, atMs: this.nowMs });
    }
    const all = schedule.functions ?? [];
    if (schedule.resultKey && schedule.resultKey !== resultKeyOf(runId)) {
      // A result goes under its own call's key only: named freely, it could overwrite any key,
      // a function's registry record among them.
      this.counters.refused++;
      const error = new LfaasError(ErrorCode.EXEC_BAD_VALUE, `an async run's result key is ${resultKeyOf(runId)}, not ${schedule.resultKey}`);
      // Answered to the caller if it named one; never written to the key it named.
      schedule.resultKey = '';
      return schedule.replyTo ? this.answerRefused(schedule, error) : [];
    }
    if (all.length > SCHEDULE_FUNCTIONS_MAX) {
      this.counters.refused++;
      return this.answerRefused(schedule, new LfaasError(ErrorCode.EXEC_BAD_VALUE, `a schedule of ${all.length} functions; at most ${SCHEDULE_FUNCTIONS_MAX}`));
    }
    const placement: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const fn of all) placement[fn.name ?? ''] = fn.executor ?? '';
    const local = all.filter((fn) => fn.executor === this.id);
    if (local.length === 0) return [];
    const sink = all.find((fn) => (fn.successors ?? []).length === 0);
    const sinkHere = sink !== undefined && sink.executor === this.id;
    if (this.runs.size >= (this.options.runsMax ?? 10_000)) {
      this.counters.refused++;
      if (!sinkHere) return [];
      return this.answerRefused(schedule, new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `executor ${this.id} holds ${this.runs.size} runs`));
    }
    // Admission where the load is known exactly: a sync call of one function that finds this
    // executor saturated (as many calls again queued as it has runtime slots) is refused at once,
    // nothing runs, with a retry-after hint; a scheduler's view of the load is up to a heartbeat old.
    const load = this.liveLoad();
    if (all.length === 1 && sinkHere && (schedule.replyTo ?? '') !== '' && load >= (this.options.overloadMax ?? 2)) {
      this.counters.refused++;
      this.refusedSinceStatus++;
      const retryAfterMs = Math.min(2000, (this.options.statusPeriodMs ?? 100) * Math.max(1, Math.ceil(load - (this.options.overloadMax ?? 2) + 1)));
      return this.answerRefused(schedule, new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `executor ${this.id} is saturated (${load.toFixed(2)} calls per runtime slot); retry in ${retryAfterMs} ms`, { retryAfterMs }));
    }
    // Each function's parents in the schedule's order, in one pass (not one pass per function).
    const parentsInOrder = new Map<string, string[]>();
    for (const other of all) {
      for (const successor of new Set(other.successors ?? [])) {
        let list = parentsInOrder.get(successor);
        if (list === undefined) parentsInOrder.set(successor, (list = []));
        list.push(other.name ?? '');
      }
    }
    const functions = new Map<string, FunctionState>();
    for (const fn of local) {
      const name = fn.name ?? '';
      // The parents' results are its first arguments in edge order (what the DAG builder types);
      // a schedule without names falls back to the schedule's own order.
      const named = fn.parentNames ?? [];
      const parents = named.length > 0 ? [...named] : (parentsInOrder.get(name) ?? []);
      functions.set(name, { spec: fn, name, parents, arrived: new Map(), cuts: [], error: undefined, started: false, startedAtMs: 0, trace: '', span: undefined });
    }
    // A run that waits for triggers has a deadline, even a run of one function (a schedule may
    // name parents that never send: without it, the run would hold its place here for good).
    const timed = all.length > 1 || [...functions.values()].some((fn) => fn.parents.length > 0);
    const timeoutMs = Math.min(schedule.timeoutMs ?? 0, RUN_TIMEOUT_MAX_MS);
    const run: Run = {
      id: runId,
      schedule,
      trace: schedule.traceId || envelope.traceId,
      mode: MODES[schedule.consistency ?? 0] ?? 'lww',
      scheduler: scheduler === undefined ? '' : schedule.scheduler || sender,
      functions,
      placement,
      sinkHere,
      deadlineMs: this.nowMs + timeoutMs,
      timed,
      remaining: functions.size,
      answered: false,
    };
    this.runs.set(runId, run);
    this.invocations.start({ callId: runId, name: schedule.dag || (all[0]?.name ?? ''), dag: (schedule.dag ?? '') !== '', mode: direct ? 'direct' : schedule.resultKey ? 'async' : 'sync' }, this.nowMs);
    this.peakRuns = Math.max(this.peakRuns, this.runs.size);
    this.counters.runs++;
    scheduler?.running.add(runId);
    const effects: Effect[] = [];
    if (timed) effects.push({ kind: 'timer', timer: RUN_TIMER + runId, delayMs: timeoutMs });
    const waiting = this.early.get(runId);
    this.early.delete(runId);
    for (const trigger of waiting?.triggers ?? []) effects.push(...this.deliverTrigger(run, trigger, earlyTraces.get(trigger) ?? ''));
    for (const fn of functions.values()) if (!fn.started && fn.parents.length === 0) effects.push(...this.startFunction(run, fn));
    if (this.options.dagPrewarm !== false) {
      for (const fn of functions.values()) {
        if (fn.started) continue;
        this.counters.prewarms++;
        effects.push(...this.task({ op: 'warm', runId, name: fn.name, version: fn.spec.version ?? 0, args: fn.spec.args ?? [] }, { kind: 'ignore' }));
      }
    }
    return effects;
  }

  private onTrigger(trigger: PbTypes.ITrigger, trace: string): Effect[] {
    const runId = trigger.runId ?? '';
    const run = this.runs.get(runId);
    if (run !== undefined) return this.deliverTrigger(run, trigger, trace);
    if (trace.length > 0) earlyTraces.set(trigger, trace);
    // Its schedule is still on its way: wait for it (bounded in runs, triggers and time).
    let waiting = this.early.get(runId);
    if (waiting === undefined) {
      if (this.early.size >= (this.options.earlyRunsMax ?? 10_000)) return [];
      waiting = { triggers: [], atMs: this.nowMs };
      this.early.set(runId, waiting);
    }
    if (waiting.triggers.length < 64) waiting.triggers.push(trigger);
    this.counters.early++;
    return [];
  }

  private deliverTrigger(run: Run, trigger: PbTypes.ITrigger, trace: string): Effect[] {
    const fn = run.functions.get(trigger.targetFunction ?? '');
    const source = trigger.sourceFunction ?? '';
    if (fn === undefined || fn.started || !fn.parents.includes(source)) return [];
    // The first parent's trigger carries the trace on: this function's span is its child.
    if (fn.trace.length === 0) fn.trace = trace;
    fn.arrived.set(source, trigger.value ?? new Uint8Array());
    for (const entry of trigger.cut ?? []) fn.cuts.push(entry);
    if (trigger.error?.code) fn.error ??= trigger.error;
    // A failed parent: no need to wait for the others, the error goes on at once.
    if (fn.error !== undefined || fn.arrived.size >= fn.parents.length) return this.startFunction(run, fn);
    return [];
  }

  private startFunction(run: Run, fn: FunctionState): Effect[] {
    fn.started = true;
    fn.startedAtMs = this.nowMs;
    if (fn.error !== undefined) return this.finishFunction(run, fn, { error: fn.error });
    // One span per function run (a no-op without an SDK), child of its trigger's or its schedule's.
    const span = startSpanFrom('lfaas.run', fn.trace || run.trace, SpanKind.INTERNAL);
    setSpanAttributes(span, () => ({ 'lfaas.function': fn.name, 'lfaas.version': fn.spec.version ?? 0, 'lfaas.call.id': run.id, 'lfaas.dag': run.schedule.dag ?? '', 'lfaas.consistency': run.mode, 'lfaas.executor': this.id }));
    fn.span = span;
    // Its KVS operations are spans only when it records (sampled): the host wraps nothing otherwise.
    const trace = span.isRecording() ? traceFieldOf(span) : '';
    const task: ExecutorTask = {
      op: 'run',
      runId: run.id,
      name: fn.name,
      version: fn.spec.version ?? 0,
      args: fn.spec.args ?? [],
      upstream: fn.parents.map((parent) => fn.arrived.get(parent)!),
      cut: fn.cuts,
      mode: run.mode,
      // Whole milliseconds: the clock has fractions, and vm timeouts take integers only.
      timeoutMs: Math.max(1, Math.ceil(run.deadlineMs - this.nowMs)),
      placement: run.placement,
      ...(trace.length > 0 ? { trace } : {}),
    };
    return this.task(task, { kind: 'run', run, fn });
  }

  private finishFunction(run: Run, fn: FunctionState, outcome: { value: Uint8Array; cut: PbTypes.ICutEntry[] } | { error: PbTypes.IError }): Effect[] {
    if (this.runs.get(run.id) !== run) return [];
    run.remaining--;
    const effects: Effect[] = [];
    const successors = fn.spec.successors ?? [];
    if (successors.length === 0) effects.push(...this.answer(run, outcome));
    // Every trigger carries the trace on (the function's span, else what it was started with).
    const trace = (fn.span === undefined ? '' : traceFieldOf(fn.span)) || fn.trace || run.trace;
    for (const target of successors) {
      const trigger: PbTypes.ITrigger =
        'error' in outcome
          ? { runId: run.id, sourceFunction: fn.name, targetFunction: target, error: outcome.error }
          : { runId: run.id, sourceFunction: fn.name, targetFunction: target, value: outcome.value, cut: outcome.cut };
      const executor = run.placement[target];
      if (executor === this.id) {
        this.counters.triggersLocal++;
        effects.push(...this.deliverTrigger(run, trigger, trace));
      } else if (executor !== undefined) {
        this.counters.triggersSent++;
        effects.push({ kind: 'send', to: executor, envelope: envelopeWith({ trigger }, { sender: this.id, ...(trace.length > 0 ? { traceId: trace } : {}) }) });
      }
    }
    if (run.remaining <= 0 && this.runs.get(run.id) === run) effects.push(...this.complete(run));
    return effects;
  }

  /** The sink's answer: to the client, or into the result key. */
  private answer(run: Run, outcome: { value: Uint8Array } | { error: PbTypes.IError }): Effect[] {
    if (run.answered) return [];
    run.answered = true;
    this.invocations.finish(run.id, outcomeState(outcome), this.nowMs);
    const effects = this.deliver(run.schedule, 'error' in outcome ? outcome : { ...outcome, ...this.leaseFor(run) });
    if (run.mode !== 'lww') {
      // The run's pinned versions may go now, here and on its other executors. (A run of one
      // function too: it has no deadline timer, so nothing else would drop its scope.)
      for (const executor of new Set(Object.values(run.placement))) {
        if (executor !== this.id) effects.push({ kind: 'send', to: executor, envelope: envelopeWith({ runFinished: { runId: run.id } }, { sender: this.id }) });
      }
      effects.push(...this.task({ op: 'endRun', runId: run.id }, { kind: 'ignore' }));
    }
    return effects;
  }

  /**
   * Direct dispatch: a sync run a scheduler sent, all of whose functions ran here, earns its
   * caller a lease to send the same run straight here for a while, unless this executor is busy.
   */
  private leaseFor(run: Run): { lease?: PbTypes.ILease } {
    const schedule = run.schedule;
    const leaseMs = schedule.leaseMs ?? 0;
    if (leaseMs === 0 || !schedule.scheduler || this.loadShare > (this.options.leaseLoadMax ?? 0.7)) return {};
    const functions = schedule.functions ?? [];
    if (functions.some((fn) => fn.executor !== this.id)) return {};
    return {
      lease: {
        executor: this.id,
        leaseMs,
        dag: schedule.dag ?? '',
        timeoutMs: schedule.timeoutMs ?? 0,
        functions: functions.map((fn) => ({ name: fn.name ?? '', version: fn.version ?? 0, executor: this.id, successors: fn.successors ?? [], parents: fn.parents ?? 0, parentNames: fn.parentNames ?? [] })),
      },
    };
  }

  /** Running and queued calls per runtime slot now: the runs held (0 until the pool's first status). */
  private liveLoad(): number {
    return this.capacity === 0 ? 0 : this.runs.size / this.capacity;
  }

  private answerRefused(schedule: PbTypes.ISchedule, error: LfaasError): Effect[] {
    return this.deliver(schedule, { error: errorToWire(error) });
  }

  /** A run's outcome to where its schedule says: the result key (async) or the caller (sync). */
  private deliver(schedule: PbTypes.ISchedule, outcome: { value: Uint8Array; lease?: PbTypes.ILease } | { error: PbTypes.IError }): Effect[] {
    this.counters.answered++;
    const runId = schedule.runId ?? '';
    if (schedule.resultKey) {
      const attempt = schedule.attempt || 1;
      const body: ExecutorTask =
        'error' in outcome
          ? { op: 'writeResult', key: schedule.resultKey, attempt, error: { code: errorCodeFromWire(outcome.error.code ?? 0), message: outcome.error.message ?? '', ...(outcome.error.stack ? { stack: outcome.error.stack } : {}) } }
          : { op: 'writeResult', key: schedule.resultKey, attempt, value: outcome.value };
      return this.task(body, { kind: 'ignore' });
    }
    if (!schedule.replyTo) return [];
    const response: PbTypes.ICallResponse = 'error' in outcome ? { callId: runId, error: outcome.error } : { callId: runId, result: outcome.value, ...(outcome.lease === undefined ? {} : { lease: outcome.lease }) };
    return [{ kind: 'send', to: schedule.replyTo, envelope: envelopeWith({ callResponse: response }, { responseTo: Number(schedule.replyRequestId ?? 0), sender: this.id, ...(schedule.traceId ? { traceId: schedule.traceId } : {}) }) }];
  }


  /** Every function of the run placed here has finished. */
  private complete(run: Run): Effect[] {
    this.runs.delete(run.id);
    // Not the sink (it answered): this executor's part of the run is done.
    this.invocations.finish(run.id, { state: 'succeeded' }, this.nowMs);
    this.schedulers.get(run.scheduler)?.running.delete(run.id);
    // A repeatable-read or causal run keeps its timer: at the deadline its versions are dropped
    // here even if the sink's runFinished never arrives.
    return run.timed && run.mode === 'lww' ? [{ kind: 'cancelTimer', timer: RUN_TIMER + run.id }] : [];
  }

  private onDeadline(runId: string): Effect[] {
    const run = this.runs.get(runId);
    if (run === undefined) return this.task({ op: 'endRun', runId }, { kind: 'ignore' });
    this.counters.timeouts++;
    const waitingFor = [...run.functions.values()].filter((fn) => !fn.started).map((fn) => `${fn.name} (has ${fn.arrived.size}/${fn.parents.length} triggers)`);
    const effects: Effect[] = [];
    if (run.sinkHere) {
      const error = new LfaasError(ErrorCode.EXEC_TIMEOUT, `run ${runId} did not finish in ${run.schedule.timeoutMs} ms${waitingFor.length > 0 ? `; waiting: ${waitingFor.join(', ')}` : ''}`);
      effects.push(...this.answer(run, { error: errorToWire(error) }));
    }
    this.runs.delete(runId);
    this.schedulers.get(run.scheduler)?.running.delete(runId);
    this.invocations.finish(runId, { state: 'timed-out', error: { code: ErrorCode.EXEC_TIMEOUT, message: `run ${runId} did not finish in ${run.schedule.timeoutMs} ms` } }, this.nowMs);
    effects.push(...this.task({ op: 'endRun', runId }, { kind: 'ignore' }));
    return effects;
  }

  /**
   * A cancel (from the scheduler that placed the run, or the client of a direct call; only the
   * call's owner gets here, owner-access.ts): the sink answers EXEC_CANCELLED now, as at a
   * deadline, and the run's functions running here are aborted (`ctx.signal`, then the runtime is
   * replaced if it does not settle within the pool's grace). A run not held here: `cancelled` false.
   */
  private onCancel(envelope: Envelope, runId: string): Effect[] {
    const run = this.runs.get(runId);
    if (run === undefined) return this.reply(envelope, { cancelCallResponse: { cancelled: false } });
    const effects: Effect[] = [];
    if (run.sinkHere) effects.push(...this.answer(run, { error: errorToWire(new LfaasError(ErrorCode.EXEC_CANCELLED, `run ${runId} was cancelled`)) }));
    this.runs.delete(runId);
    this.invocations.finish(runId, { state: 'cancelled', error: { code: ErrorCode.EXEC_CANCELLED, message: `run ${runId} was cancelled` } }, this.nowMs);
    this.schedulers.get(run.scheduler)?.running.delete(runId);
    if (run.timed) effects.push({ kind: 'cancelTimer', timer: RUN_TIMER + runId });
    effects.push(...this.task({ op: 'cancel', runId }, { kind: 'ignore' }), ...this.task({ op: 'endRun', runId }, { kind: 'ignore' }));
    effects.push(...this.reply(envelope, { cancelCallResponse: { cancelled: true } }));
    return effects;
  }

  private onTaskDone(token: number, result: unknown, error: Error | undefined): Effect[] {
    const pending = this.tasks.get(token);
    this.tasks.delete(token);
    if (pending === undefined) return [];
    switch (pending.kind) {
      case 'run': {
        // Every call that ran counts, failed ones too (they took a runtime all the same).
        this.loads.record(pending.fn.name, this.nowMs - pending.fn.startedAtMs, this.nowMs, error !== undefined);
        this.functionMetrics.record(pending.fn.name, pending.fn.spec.version ?? 0, runCode(error), this.nowMs - pending.fn.startedAtMs);
        const span = pending.fn.span;
        if (span !== undefined) {
          if (error === undefined) setSpanAttributes(span, () => ({ 'lfaas.cold': (result as RunOutcome).cold === true }));
          endSpan(span, error);
        }
        if (error !== undefined) return this.finishFunction(pending.run, pending.fn, { error: errorToWire(error) });
        const outcome = result as RunOutcome;
        return this.finishFunction(pending.run, pending.fn, { value: outcome.value, cut: outcome.cut });
      }
      case 'status':
        return error === undefined ? this.statusEffects(result as HostStatus) : [];
      case 'reply':
        if (pending.as === 'done') return this.reply(pending.request, { done: error === undefined ? {} : { error: errorToWire(error) } });
        if (pending.as === 'logs') return this.reply(pending.request, { logsReply: error === undefined ? { ...(result as PbTypes.ILogsReply), executorId: this.executorId } : { error: errorToWire(error) } });
        return this.reply(pending.request, { versionReply: error === undefined ? { payload: (result as Uint8Array | undefined) ?? new Uint8Array() } : { error: errorToWire(error) } });
      case 'ignore':
        return [];
    }
  }

  private statusEffects(status: HostStatus): Effect[] {
    this.capacity = status.capacity;
    // Two loads. Utilisation, what placement and admission read: the pool's running and queued
    // calls per slot now. Demand, what the monitor scales on: over the period, not one sample of
    // it (clients refused at once retry together after the same hint, so load comes in waves and
    // a sample between two waves read 0 while calls were turned away): the most runs held at once
    // since the last report, plus each call refused meanwhile.
    const capacity = Math.max(1, status.capacity);
    const demand = (Math.max(status.load, this.peakRuns) + this.refusedSinceStatus) / capacity;
    this.peakRuns = this.runs.size;
    this.refusedSinceStatus = 0;
    this.loadShare = this.draining ? DRAINING_LOAD : status.capacity > 0 ? status.load / capacity : 1;
    const effects: Effect[] = [];
    const functions = this.loads.report(this.nowMs);
    for (const [address, view] of this.schedulers) {
      const body: PbTypes.IExecutorStatus = {
        executorId: this.executorId,
        address: this.id,
        // Unclamped: above 1, calls wait in the executor's queue (the scheduler's admission reads it).
        utilisation: this.loadShare,
        demand: this.draining ? DRAINING_LOAD : demand,
        warmFunctions: status.warm,
        cachedKeys: status.keys,
        capacity: status.capacity,
        functions,
        stems: status.stems ?? 0,
        sentAtMs: Math.floor(this.nowMs),
        ackedSeq: view.ackedSeq,
        running: [...view.running],
      };
      effects.push({ kind: 'send', to: address, envelope: envelopeWith({ executorStatus: body }, { sender: this.id }) });
    }
    return effects;
  }

  private schedulerView(address: string): SchedulerView | undefined {
    if (address.length === 0) return undefined;
    let view = this.schedulers.get(address);
    if (view === undefined) {
      if (this.schedulers.size >= (this.options.schedulersMax ?? 64)) return undefined;
      view = { ackedSeq: 0, running: new Set(), configured: false, lastScheduleMs: this.nowMs };
      this.schedulers.set(address, view);
    }
    return view;
  }

  /** Forgets learnt schedulers idle for LEARNT_SCHEDULER_IDLE_MS (their heartbeats stop). */
  private sweepSchedulers(): void {
    for (const [address, view] of this.schedulers) {
      if (!view.configured && view.running.size === 0 && this.nowMs - view.lastScheduleMs > LEARNT_SCHEDULER_IDLE_MS) this.schedulers.delete(address);
    }
  }

  private sweepEarly(): void {
    const maxAgeMs = this.options.earlyTriggerMs ?? 60_000;
    for (const [runId, waiting] of this.early) if (this.nowMs - waiting.atMs > maxAgeMs) this.early.delete(runId);
  }

  private task(task: ExecutorTask, then: TaskDone): Effect[] {
    const token = this.nextToken++;
    this.tasks.set(token, then);
    return [{ kind: 'task', token, task }];
  }

  private reply(request: Envelope, body: PbTypes.IEnvelope): Effect[] {
    if (Number(request.requestId) === 0 || request.replyTo.length === 0) return [];
    return [{ kind: 'send', to: request.replyTo, envelope: envelopeWith(body, { responseTo: request.requestId, sender: this.id }) }];
  }
}
