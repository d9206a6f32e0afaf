/**
 * The scheduler machine: the clients' entry point. Several may run; they share
 * the registry through the KVS (protocol/faas-records.ts) and each learns the executors from
 * their heartbeats. Sans-I/O: every KVS access is a `task` ({@link SchedulerTask}) its shell
 * carries out (a KvsClient in a process, a simulated KVS in the simulator).
 *
 * - Registry (scheduler/registry.ts): functions with numbered immutable versions and DAGs, in
 *   the KVS; registration pins functions on executors (`prepare`: code fetched and a runtime
 *   specialised before the first call); list, describe, delete. This machine routes those
 *   messages to it and does its I/O. How many executors hold a pin is the monitor's call
 *   (`pinCounts`, see scheduler/pins.ts), the default `pinExecutors` otherwise; which ones,
 *   scheduler/pinning.ts. Cancels: scheduler/cancel.ts; idempotent calls: idempotent-starts.ts;
 *   concurrency limits and no-capacity refusals: admission.ts.
 * - The monitor's view (`clusterStatsRequest`): each executor's last status, with its hottest
 *   functions' call rates and latencies (executors measure them: leased calls skip this
 *   scheduler).
 * - Calls: a call is a run of one function, a DAG call a run of several. The scheduler places
 *   each function (scheduler/placement.ts), sends the schedule to each executor it chose, and
 *   is done: executors trigger each other, and the sink answers the client. An async call is
 *   first recorded in the KVS (its execution record: everything a dispatch needs, this boot its
 *   owner; scheduler/execution-records.ts) and indexed under this boot, then accepted, and its
 *   result is written under its result key; then the record says done and it leaves the index.
 * - Leases and takeover (scheduler/takeover.ts): this boot (`<address>#<incarnation>`, the nonce
 *   its process draws) renews one lease record every `leaseRenewMs` and registers in the set of
 *   known boots before it accepts an async call. Every `takeoverPeriodMs` a bounded pass reads the
 *   boots and their leases; a boot whose lease has not changed for `leaseTimeoutMs` (as this
 *   scheduler observes it; at once for a previous boot at this address) is dead, and its pending
 *   runs are claimed (the record names this boot, attempt + 1) and dispatched here like accepted
 *   calls, a bounded batch per pass. Two schedulers may claim one run at once: at least once, the
 *   result key keeps the first attempt's result. Every value read back is checked; a malformed one
 *   is skipped and counted. A boot's dispatch numbers start at its start time x 1,024, above any
 *   its address's previous boot sent (an executor's acked_seq spans the boots).
 * - Failures: executors heartbeat every ~100 ms with the last dispatch they received and the
 *   runs still running. A run an executor acknowledged and no longer lists has finished. An
 *   executor silent for `executorTimeoutMs` is dead: each sync run it held is answered EXEC_LOST
 *   at once (no waiting for the client's timeout), each async run is dispatched again (at least
 *   once, `attemptsMax` at most; the result write is idempotent; scheduler/async-retries.ts).
 * - Restarts: a heartbeat names one boot of its executor (`executor_id` = `<address>#<nonce>`).
 *   A heartbeat from a known address with another boot means the executor restarted, maybe
 *   faster than `executorTimeoutMs`: the old boot is dead at once (its runs fail or go again as
 *   above; an async re-dispatch also goes to the new boot, to replace an earlier attempt it may
 *   have received after it started) and the new one starts with a fresh view. Late heartbeats
 *   of a replaced boot are ignored. Dispatch sequence numbers to an address go on across its
 *   boots (and across a timeout), so an `acked_seq` never acknowledges a later dispatch.
 * - Admission: when no executor has room, a call fails fast with SCHED_NO_CAPACITY (a sync
 *   call, and an async call's first dispatch). An async run dispatched again (its executor died)
 *   that finds no room waits instead, in a bounded list (`retriesMax`): each check period it is
 *   placed again, until its deadline (its timeout after acceptance, plus a grace), when
 *   SCHED_NO_CAPACITY becomes its result.
 */
import { ErrorCode, HybridClock, LfaasError, Lww, ensureLfaasError } from '../lattices/index.js';
import { NAME_PATTERN, endSpan, envelopeWith, spanFailed, errorToWire, executionKey, resultKeyOf, setSpanAttributes, startSpanFrom, traceFieldOf } from '../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, PbTypes, Random, Span } from '../protocol/index.js';
import type { Continuation, SchedulerTask } from './kvs-tasks.js';
import { Registry } from './registry.js';
import { CallChains } from './call-chains.js';
import { ConcurrencyLimits, noCapacity } from './admission.js';
import { DefaultPlacement, loadOf } from './placement.js';
import type { ExecutorView, PlacementPolicy } from './placement.js';
import { CALL_ID_BYTES_MAX, argumentToWire, encodeRunRecord, isCallId, runRecordValue } from './execution-records.js';
import type { RunRecord } from './execution-records.js';
import { RUN_GRACE_MS, runRecordOf } from './run-books.js';
import type { Dispatch, ExecutorEntry, PlannedFunction } from './run-books.js';
import { AsyncRetries } from './async-retries.js';
import { Pinning } from './pinning.js';
import { cancelRun } from './cancel.js';
import { IdempotentStarts } from './idempotent-starts.js';
import { Takeover, doneRecord, newTakeoverCounters } from './takeover.js';
import { schedulerInvocations } from './invocations.js';
import { callOutcome, schedulerCallMetrics } from './call-metrics.js';
import { functionLoadsOf } from './function-loads.js';

export interface SchedulerOptions {
  readonly address: string;
  readonly random: Random;
  readonly placement?: PlacementPolicy;
  /** Calls per runtime slot (running and queued) past which an executor has no room (2 by default). */
  readonly overloadMax?: number;
  readonly executorTimeoutMs?: number;
  readonly checkPeriodMs?: number;
  readonly registryTtlMs?: number;
  /** Dispatches of an async call at most (the first included). */
  readonly attemptsMax?: number;
  /** Executors each function is pinned on at registration. */
  readonly pinExecutors?: number;
  /** Runs in flight at most (SCHED_NO_CAPACITY beyond). */
  readonly runsMax?: number;
  readonly executorsMax?: number;
  /** How long a direct-dispatch lease lasts (0: no leases; every call comes through here). */
  readonly leaseMs?: number;
  /** Async runs waiting for an executor with room to be dispatched again, at most (beyond, SCHED_NO_CAPACITY is their result at once). */
  readonly retriesMax?: number;
  /**
   * This boot's nonce, different at every start of the process (the process draws it): the boot
   * is `<address>#<incarnation>`, which names the owner of its async runs, its lease and its index.
   * A scheduler restarted at the same address takes over its previous boot's runs at once.
   */
  readonly incarnation?: string;
  /** How often this boot's lease is renewed (300 ms). */
  readonly leaseRenewMs?: number;
  /** A lease unchanged this long, as this scheduler observes it, has expired (3 s). */
  readonly leaseTimeoutMs?: number;
  /** How often a takeover pass runs (500 ms). */
  readonly takeoverPeriodMs?: number;
  /** Records a takeover pass reads, at most (64), and their bytes (16 MiB; one record always). */
  readonly takeoverRecordsMax?: number;
  readonly takeoverBytesMax?: number;
  /** Async runs pending in this boot's index, at most (beyond, SCHED_NO_CAPACITY). */
  readonly asyncPendingMax?: number;
  /** How old the boots set's epoch must be before it moves on (60 s). */
  readonly bootsEpochMinMs?: number;
}

const CHECK = 'check';
const LEASE = 'lease';
const TAKEOVER = 'takeover';
/**
 * Dispatch sequence numbers of a boot start at its start time times this: a restarted scheduler's
 * sequence numbers are above every one its previous boot sent (fewer than 1,024 a millisecond), so
 * an executor's acked_seq for the address (kept across the scheduler's boots) never acknowledges a
 * schedule the new boot sent and the executor did not receive.
 */
const SEQS_PER_MS = 1024;

export class SchedulerNode implements Machine {
  readonly id: string;
  private readonly executors = new Map<string, ExecutorEntry>();
  /** Addresses whose executor left the view (timed out or restarted): its last boot and next dispatch sequence number. */
  private readonly departed = new Map<string, { readonly incarnation: string; readonly nextSeq: number }>();
  /** Boots a newer boot of their address replaced: their late heartbeats are ignored. */
  private readonly retired = new Set<string>();
  /** Async runs waiting for room to be dispatched again, lost runs and failure writes (async-retries.ts). */
  private readonly retries: AsyncRetries;
  private readonly registry: Registry;
  private readonly continuations = new Map<number, Continuation>();
  private readonly runs = new Map<string, Dispatch>();
  /** Per function with a concurrency limit, the runs of it this scheduler dispatched (admission.ts). */
  private readonly limits = new ConcurrencyLimits((dispatch) => this.runs.get(dispatch.runId) === dispatch);
  private readonly placement: PlacementPolicy;
  private readonly overloadMax: number;
  /** Which executors pinned functions are prepared on (pinning.ts). */
  private readonly pinning: Pinning;
  private readonly clock: HybridClock;
  private nextToken = 1;
  private nowMs = 0;
  /** This boot: `<address>#<incarnation>` (the address alone without an incarnation). */
  readonly boot: string;
  private readonly takeover: Takeover;
  /** Async runs out of `runs` whose result is being checked or written (then they leave the index). */
  private readonly settling = new Set<string>();
  /** Idempotent async calls whose execution record is being read (idempotent-starts.ts). */
  private readonly idempotentStarts: IdempotentStarts;
  private seqBase = 1;
  /** Per function and version: the calls scheduled here by outcome code, and their dispatch latency (call-metrics.ts). */
  readonly callMetrics = schedulerCallMetrics();
  readonly counters = {
    calls: 0,
    dagCalls: 0,
    asyncCalls: 0,
    dispatched: 0,
    completed: 0,
    lost: 0,
    redispatched: 0,
    noCapacity: 0,
    registered: 0,
    executorsLost: 0,
    executorsRestarted: 0,
    retriesQueued: 0,
    retriesDispatched: 0,
    retriesExpired: 0,
    pinsSent: 0,
    pinCountsReceived: 0,
    pinCountsRefused: 0,
    chainPrepares: 0,
    ...newTakeoverCounters(),
  };
  /** Which function usually follows which (DAG edges, callers' consecutive calls): prepared ahead. */
  private readonly chains = new CallChains();

  constructor(private readonly options: SchedulerOptions) {
    this.id = options.address;
    this.overloadMax = options.overloadMax ?? 2;
    this.placement = options.placement ?? new DefaultPlacement({ overloadMax: this.overloadMax });
    this.clock = new HybridClock(options.address, () => this.nowMs);
    this.boot = options.incarnation ? `${options.address}#${options.incarnation}` : options.address;
    const attemptsMax = options.attemptsMax ?? 3;
    const now = (): number => this.nowMs;
    const kvs = (task: SchedulerTask, then: Continuation): Effect[] => this.kvs(task, then);
    const { id, boot, runs, settling, executors, counters, clock, placement } = this;
    this.retries = new AsyncRetries(
      { id, boot, runs, settling, executors, counters, clock, now, kvs, dispatch: (dispatch, onNoCapacity, previous) => this.dispatch(dispatch, onNoCapacity, previous), settled: (dispatch) => this.settled(dispatch) },
      { attemptsMax, retriesMax: options.retriesMax ?? 10_000 },
    );
    this.pinning = new Pinning(
      { id, executors, placement, random: options.random, counters, now, withFunction: (name, version, then) => this.registry.withFunction(name, version, then) },
      { count: options.pinExecutors ?? 2, overloadMax: this.overloadMax, executorsMax: options.executorsMax ?? 1024 },
    );
    this.idempotentStarts = new IdempotentStarts(kvs, options.runsMax ?? 100_000);
    this.takeover = new Takeover(
      {
        kvs: (task, then) => this.kvs(task, then),
        clock: this.clock,
        now: () => this.nowMs,
        counters: this.counters,
        holds: (callId) => this.runs.has(callId) || this.settling.has(callId),
        redispatch: (record) => this.redispatch(record),
      },
      {
        boot: this.boot,
        address: options.address,
        leaseRenewMs: options.leaseRenewMs ?? 300,
        leaseTimeoutMs: options.leaseTimeoutMs ?? 3000,
        periodMs: options.takeoverPeriodMs ?? 500,
        recordsPerPass: options.takeoverRecordsMax ?? 64,
        bytesPerPass: options.takeoverBytesMax ?? 16 * 1024 * 1024,
        claimAttemptsMax: 2 * attemptsMax,
        bootsEpochMinMs: options.bootsEpochMinMs ?? 60_000,
        waitersMax: 1024,
      },
    );
    this.registry = new Registry(
      {
        kvs: (task, then) => this.kvs(task, then),
        reply: (request, body) => this.reply(request, body),
        pin: (functions) => this.pinning.pin(functions),
        now: () => this.nowMs,
        clock: this.clock,
        registered: () => {
          this.counters.registered++;
        },
      },
      options.registryTtlMs ?? 1000,
    );
  }

  /** Executors alive as far as this scheduler knows. */
  executorAddresses(): string[] {
    return [...this.executors.keys()];
  }

  get runCount(): number {
    return this.runs.size;
  }

  /** Async runs in this boot's index: accepted or taken over, no result written yet. */
  get asyncPending(): number {
    return this.takeover.pendingCount;
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    this.nowMs = Math.max(this.nowMs, nowMs);
    switch (input.kind) {
      case 'start':
        this.seqBase = Math.floor(this.nowMs) * SEQS_PER_MS + 1;
        return [
          { kind: 'timer', timer: CHECK, delayMs: this.options.checkPeriodMs ?? 100 },
          { kind: 'timer', timer: LEASE, delayMs: this.options.leaseRenewMs ?? 300 },
          { kind: 'timer', timer: TAKEOVER, delayMs: this.options.takeoverPeriodMs ?? 500 },
          ...this.takeover.start(),
        ];
      case 'timer':
        switch (input.timer) {
          case CHECK:
            return [...this.check(), { kind: 'timer', timer: CHECK, delayMs: this.options.checkPeriodMs ?? 100 }];
          case LEASE:
            return [...this.takeover.onLeaseTimer(), { kind: 'timer', timer: LEASE, delayMs: this.options.leaseRenewMs ?? 300 }];
          case TAKEOVER:
            return [...this.takeover.onPassTimer(), { kind: 'timer', timer: TAKEOVER, delayMs: this.options.takeoverPeriodMs ?? 500 }];
          default:
            return [];
        }
      case 'persisted':
        return [];
      case 'taskDone': {
        const then = this.continuations.get(input.token);
        this.continuations.delete(input.token);
        if (then === undefined) return [];
        try {
          return then(input.error === undefined ? undefined : ensureLfaasError(input.error), input.result);
        } catch (error) {
          // A continuation that throws is a bug in a record we read; the request it served times out.
          return [];
        }
      }
      case 'message':
        try {
          return this.onMessage(input.envelope);
        } catch (error) {
          return this.replyError(input.envelope, ensureLfaasError(error));
        }
    }
  }

  private onMessage(envelope: Envelope): Effect[] {
    switch (envelope.body) {
      case 'callRequest':
        return this.onCall(envelope, envelope.callRequest!);
      case 'dagCall':
        return this.onDagCall(envelope, envelope.dagCall!);
      case 'cancelCall':
        return this.onCancel(envelope, envelope.cancelCall!.callId ?? '');
      case 'executorStatus':
        return this.onStatus(envelope.executorStatus!);
      case 'registerFunction':
        return this.registry.onRegisterFunction(envelope, envelope.registerFunction!.spec!);
      case 'registerDag':
        return this.registry.onRegisterDag(envelope, envelope.registerDag!.spec!);
      case 'clusterStatsRequest':
        // The monitor's view of the executors: each one this scheduler knows, with its load.
        return this.reply(envelope, {
          clusterStats: {
            executors: [...this.executors.values()].map((view) => ({ executorId: view.incarnation, address: view.address, utilisation: loadOf(view), demand: view.demand ?? loadOf(view), capacity: view.capacity, warmFunctions: [...view.warm], functions: view.functions, stems: view.stems ?? 0 })),
          },
        });
      case 'pinCounts':
        return this.pinning.onPinCounts(envelope.pinCounts!);
      case 'listFunctions':
        return this.registry.onListFunctions(envelope, envelope.listFunctions!.name ?? '');
      case 'deleteFunction':
        this.pinning.remove(envelope.deleteFunction!.name ?? '', envelope.deleteFunction!.version ?? 0);
        return this.registry.onDeleteFunction(envelope, envelope.deleteFunction!.name ?? '', envelope.deleteFunction!.version ?? 0);
      case 'listDags':
        return this.registry.onListDags(envelope, envelope.listDags!.name ?? '');
      case 'deleteDag':
        return this.registry.onDeleteDag(envelope, envelope.deleteDag!.name ?? '');
      case 'echo':
        return this.reply(envelope, { echo: { payload: envelope.echo?.payload ?? null } });
      // Logs and invocations: the executors alive (the client asks each), and the async runs queued here.
      case 'logsRequest':
        return this.reply(envelope, { logsReply: { executors: [...this.executors.keys()] } });
      case 'invocationsRequest':
        return this.reply(envelope, { invocationList: schedulerInvocations(envelope.invocationsRequest!, this.retries.waitingRuns(), [...this.executors.keys()], this.id, this.nowMs) });
      default:
        return this.replyError(envelope, new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, `a scheduler does not handle ${envelope.body ?? 'nothing'}`));
    }
  }

  // ---- calls ---------------------------------------------------------------------------------

  private onCall(envelope: Envelope, request: PbTypes.ICallRequest): Effect[] {
    this.counters.calls++;
    const callId = request.callId ?? '';
    const name = request.function ?? '';
    const arrivedAtMs = this.nowMs;
    return this.registry.withFunction(name, request.version ?? 0, (error, meta) => {
      if (error !== undefined) {
        this.callMetrics.record(name, request.version ?? 0, error.code);
        return this.callFailed(envelope, callId, error);
      }
      const args = request.args ?? [];
      const planned: PlannedFunction = { name, version: meta!.version, args, successors: [], parents: 0, parentNames: [], prefer: undefined, keys: referencedKeys(args), concurrencyLimit: meta!.concurrencyLimit };
      const ahead = this.prepareChain(envelope.replyTo, `${name}@${meta!.version}`);
      const started = this.startRun(envelope, {
        runId: callId,
        dag: '',
        functions: [planned],
        consistency: request.consistency ?? 0,
        timeoutMs: request.timeoutMs || meta!.timeoutMs,
        async: request.async ?? false,
        resultKey: request.resultKey ?? '',
        idempotent: request.idempotent === true,
      });
      const code = callOutcome(started, callId);
      this.callMetrics.record(name, meta!.version, code, code === 'OK' ? this.nowMs - arrivedAtMs : undefined);
      return [...ahead, ...started];
    });
  }

  /**
   * Chains of plain calls: `caller` calls `fnId` now; the functions that usually follow it (its
   * DAG successors, and what this caller's and others' next calls were) are prepared on the
   * executor placement would choose for each, unless it is warm for it already (placement then
   * prefers that executor for the next call). At most one prepare of a function per 2 s
   * (scheduler/call-chains.ts).
   */
  private prepareChain(caller: string, fnId: string): Effect[] {
    const alive = [...this.executors.values()];
    const where = (id: string): string | undefined => {
      const view = this.placement.place({ functionId: id, keys: [] }, alive, this.options.random) as ExecutorEntry | undefined;
      return view === undefined || view.warm.has(id) ? undefined : view.address;
    };
    return this.chains.prepareAfter(caller, fnId, this.nowMs, where).map(({ address, name, version }): Effect => {
      this.counters.chainPrepares++;
      return { kind: 'send', to: address, envelope: envelopeWith({ prepare: { functions: [{ name, version }] } }, { sender: this.id }) };
    });
  }

  private onDagCall(envelope: Envelope, request: PbTypes.IDagCall): Effect[] {
    this.counters.dagCalls++;
    const callId = request.callId ?? '';
    return this.registry.withDag(request.dag ?? '', (error, dag) => {
      if (error !== undefined) return this.callFailed(envelope, callId, error);
      const { record, shape } = dag!;
      const unknown = Object.keys(request.args ?? {}).filter((name) => !shape.successors.has(name));
      if (unknown.length > 0) return this.callFailed(envelope, callId, new LfaasError(ErrorCode.EXEC_BAD_VALUE, `DAG ${record.name} has no function ${unknown.join(', ')}`));
      return this.registry.withFunctions(record.functions, (failure, metas) => {
        if (failure !== undefined) return this.callFailed(envelope, callId, failure);
        for (const [from, successors] of shape.successors) for (const to of successors) this.chains.learnEdge(`${from}@${metas!.get(from)!.version}`, `${to}@${metas!.get(to)!.version}`);
        const functions = shape.order.map((name): PlannedFunction => {
          const args = request.args?.[name]?.args ?? [];
          const meta = metas!.get(name)!;
          return { name, version: meta.version, args, successors: shape.successors.get(name)!, parents: shape.parents.get(name)!.length, parentNames: shape.parents.get(name)!, prefer: shape.parents.get(name)![0], keys: referencedKeys(args), concurrencyLimit: meta.concurrencyLimit };
        });
        let timeoutMs = request.timeoutMs ?? 0;
        if (timeoutMs === 0) for (const meta of metas!.values()) timeoutMs += meta.timeoutMs;
        return this.startRun(envelope, {
          runId: callId,
          dag: record.name,
          functions,
          consistency: request.consistency ?? 0,
          timeoutMs: Math.min(timeoutMs, 15 * 60_000),
          async: request.async ?? false,
          resultKey: request.resultKey ?? '',
          idempotent: request.idempotent === true,
        });
      });
    });
  }

  private startRun(envelope: Envelope, run: { runId: string; dag: string; functions: PlannedFunction[]; consistency: number; timeoutMs: number; async: boolean; resultKey: string; idempotent?: boolean }): Effect[] {
    const running = this.runs.get(run.runId);
    // An idempotent async call (its id from the caller's key) started again while it runs here: accepted again at once.
    if (running !== undefined && run.async && run.idempotent === true && running.resultKey === resultKeyOf(run.runId)) return this.reply(envelope, { callResponse: { callId: run.runId } });
    if (running === undefined && run.async && run.idempotent === true) {
      return this.idempotentStarts.start(run.runId, {
        accepted: () => this.reply(envelope, { callResponse: { callId: run.runId } }),
        run: () => this.startRun(envelope, { ...run, idempotent: false }),
        again: () => this.startRun(envelope, run),
        failed: (error) => this.callFailed(envelope, run.runId, error),
      });
    }
    if (running !== undefined) {
      // The same request again (a duplicated frame, a retry with the same request id) runs once: a
      // sync call is answered by its sink; an async one is accepted again once it is recorded.
      if (!run.async && running.replyTo === envelope.replyTo && running.replyRequestId === Number(envelope.requestId)) return [];
      if (run.async && running.resultKey.length > 0 && running.resultKey === (run.resultKey || resultKeyOf(run.runId))) return running.deadlineMs === 0 ? [] : this.reply(envelope, { callResponse: { callId: run.runId } });
      return this.callFailed(envelope, run.runId, new LfaasError(ErrorCode.EXEC_BAD_VALUE, `call id ${run.runId} is already running`));
    }
    if (run.async && run.resultKey.length > 0 && run.resultKey !== resultKeyOf(run.runId)) {
      // A result goes under its own call's key only: named freely, it could overwrite any key,
      // a function's registry record among them.
      return this.callFailed(envelope, run.runId, new LfaasError(ErrorCode.EXEC_BAD_VALUE, `an async call's result key is ${resultKeyOf(run.runId)}, not ${run.resultKey}`));
    }
    if (this.runs.size >= (this.options.runsMax ?? 100_000)) {
      this.counters.noCapacity++;
      return this.callFailed(envelope, run.runId, new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `${this.runs.size} runs in flight`));
    }
    const dispatch: Dispatch = {
      runId: run.runId,
      dag: run.dag,
      functions: run.functions,
      consistency: run.consistency,
      timeoutMs: run.timeoutMs,
      replyTo: run.async ? '' : envelope.replyTo,
      replyRequestId: run.async ? 0 : Number(envelope.requestId),
      resultKey: run.async ? run.resultKey || resultKeyOf(run.runId) : '',
      traceId: envelope.traceId,
      attempt: 1,
      acceptedAtMs: this.nowMs,
      seqs: new Map(),
      deadlineMs: 0,
      finished: false,
    };
    if (!run.async) return this.dispatch(dispatch, (error) => this.callFailed(envelope, run.runId, error));
    // At least once: the call is recorded (everything a dispatch needs, this boot its owner) and
    // indexed under this boot before it is accepted; if this boot dies, another takes it over.
    if (!isCallId(dispatch.runId)) return this.callFailed(envelope, run.runId, new LfaasError(ErrorCode.EXEC_BAD_VALUE, `an async call's id must be 1 to ${CALL_ID_BYTES_MAX} bytes`));
    let encoded: { value: Lww; bytes: number };
    try {
      encoded = encodeRunRecord(this.clock, runRecordOf(dispatch, this.boot, 'accepted', '', this.nowMs));
    } catch (error) {
      return this.callFailed(envelope, run.runId, ensureLfaasError(error));
    }
    if (this.takeover.pendingCount >= (this.options.asyncPendingMax ?? 4096)) {
      this.counters.noCapacity++;
      const retryAfterMs = this.options.checkPeriodMs ?? 100;
      return this.callFailed(envelope, run.runId, new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `${this.takeover.pendingCount} async calls pending on this scheduler; retry in ${retryAfterMs} ms`, { retryAfterMs }));
    }
    this.counters.asyncCalls++;
    this.runs.set(dispatch.runId, dispatch);
    const record = (): Effect[] => {
      let left = 2;
      let failure: LfaasError | undefined;
      const written = (error: LfaasError | undefined): Effect[] => {
        failure ??= error;
        if (--left > 0) return [];
        this.runs.delete(dispatch.runId);
        if (failure !== undefined) return [...this.takeover.remove(dispatch.runId), ...this.callFailed(envelope, dispatch.runId, failure)];
        dispatch.acceptedAtMs = this.nowMs;
        const effects = this.reply(envelope, { callResponse: { callId: dispatch.runId } });
        // Cancelled while its record was written (onCancel wrote its result): accepted, never run.
        if (dispatch.finished) return effects;
        // Accepted means at least once: with no room now, it waits for room (until its deadline).
        effects.push(...this.dispatch(dispatch, (noRoom) => this.retries.waitForRoom({ dispatch, previous: [], cause: noRoom }, noRoom)));
        return effects;
      };
      return [...this.takeover.add(dispatch.runId, encoded.bytes, written), ...this.kvs({ op: 'put', key: executionKey(dispatch.runId), value: encoded.value, ack: 'durable' }, written)];
    };
    const effects = this.takeover.whenRegistered(record);
    if (effects !== undefined) return effects;
    this.runs.delete(dispatch.runId);
    this.counters.noCapacity++;
    const retryAfterMs = this.options.leaseRenewMs ?? 300;
    return this.callFailed(envelope, run.runId, new LfaasError(ErrorCode.SCHED_NO_CAPACITY, `scheduler ${this.boot} is starting (not yet registered for takeover); retry in ${retryAfterMs} ms`, { retryAfterMs }));
  }

  /** A cancel (cancel.ts): the run, if held here, is aborted and leaves the books; the canceller is answered whether it was. */
  private onCancel(envelope: Envelope, callId: string): Effect[] {
    const { cancelled, effects } = cancelRun({ id: this.id, runs: this.runs, executors: this.executors, retries: this.retries }, callId);
    return [...effects, ...this.reply(envelope, { cancelCallResponse: { cancelled } })];
  }

  /**
   * A run claimed from a dead boot (or adopted from this boot's own index), dispatched as an
   * accepted async call is: with no room, it waits for room until its deadline from now.
   */
  private redispatch(record: RunRecord): Effect[] {
    if (this.runs.has(record.callId) || this.settling.has(record.callId)) return [];
    const functions = record.functions.map((fn): PlannedFunction => {
      const args = fn.args.map(argumentToWire);
      return { name: fn.name, version: fn.version, args, successors: fn.successors, parents: fn.parents.length, parentNames: fn.parents, prefer: fn.parents[0], keys: referencedKeys(args), concurrencyLimit: fn.concurrencyLimit };
    });
    const dispatch: Dispatch = {
      runId: record.callId,
      dag: record.dag,
      functions,
      consistency: record.consistency,
      timeoutMs: record.timeoutMs,
      replyTo: '',
      replyRequestId: 0,
      resultKey: record.resultKey,
      traceId: record.traceId,
      attempt: record.attempt,
      acceptedAtMs: this.nowMs,
      seqs: new Map(),
      deadlineMs: 0,
      finished: false,
    };
    this.runs.set(dispatch.runId, dispatch);
    // Where the earlier attempt ran is not known here. A DAG's schedule goes to every live
    // executor, to replace what is left of the earlier attempt wherever it is (a part waiting for
    // a trigger that a replaced part will never send would write EXEC_TIMEOUT at its deadline, as
    // the lower attempt, which wins the result key). One function has no trigger to wait for.
    const previous = functions.length > 1 ? [...this.executors.keys()] : [];
    const cause = new LfaasError(ErrorCode.EXEC_LOST, `run ${record.callId} was taken over from a dead scheduler`);
    return this.dispatch(dispatch, (failure) => this.retries.waitForRoom({ dispatch, previous, cause }, failure), previous);
  }

  /** Places every function of the run and sends the schedule to each executor chosen. */
  private dispatch(dispatch: Dispatch, onNoCapacity: (error: LfaasError) => Effect[], previous: readonly string[] = []): Effect[] {
    // Tracing (protocol/trace-context.ts): the placement is a span, child of the caller's; the
    // executors' spans are its children (a no-op without an SDK).
    const span = startSpanFrom('lfaas.schedule', dispatch.traceId);
    setSpanAttributes(span, () => ({ 'lfaas.call.id': dispatch.runId, 'lfaas.dag': dispatch.dag, 'lfaas.function': dispatch.functions.length === 1 ? dispatch.functions[0]!.name : '', 'lfaas.attempt': dispatch.attempt, 'lfaas.async': dispatch.resultKey.length > 0 }));
    try {
      const effects = this.place(dispatch, onNoCapacity, previous, span);
      if (span.isRecording()) span.setAttribute('lfaas.executors', effects.filter((effect) => effect.kind === 'send' && effect.envelope.schedule).length);
      span.end();
      return effects;
    } catch (error) {
      endSpan(span, error);
      throw error;
    }
  }

  private place(dispatch: Dispatch, onNoCapacity: (error: LfaasError) => Effect[], previous: readonly string[], span: Span): Effect[] {
    const limited = this.limits.refusal(dispatch, this.options.checkPeriodMs ?? 100);
    if (limited !== undefined) {
      this.counters.noCapacity++;
      spanFailed(span, limited);
      return onNoCapacity(limited);
    }
    const alive = [...this.executors.values()];
    const chosen = new Map<string, ExecutorView>();
    const placed: PbTypes.IScheduledFunction[] = [];
    for (const fn of dispatch.functions) {
      const prefer = fn.prefer === undefined ? undefined : placed.find((other) => other.name === fn.prefer)?.executor ?? undefined;
      const view = this.placement.place({ functionId: `${fn.name}@${fn.version}`, keys: fn.keys, ...(prefer === undefined || prefer === null ? {} : { prefer }) }, alive, this.options.random);
      if (view === undefined) {
        this.counters.noCapacity++;
        const error = noCapacity(alive, { checkPeriodMs: this.options.checkPeriodMs ?? 100, executorTimeoutMs: this.options.executorTimeoutMs ?? 1000, overloadMax: this.overloadMax });
        spanFailed(span, error);
        return onNoCapacity(error);
      }
      chosen.set(view.address, view);
      placed.push({ name: fn.name, version: fn.version, executor: view.address, args: fn.args, successors: [...fn.successors], parents: fn.parents, parentNames: [...fn.parentNames] });
    }
    // A re-dispatch also goes to the live executors of the earlier attempt, even those it places
    // nothing on: the new attempt replaces what is left of the old one there, which would wait
    // for the dead executor's triggers and, at its deadline, write EXEC_TIMEOUT as the lower
    // attempt (which wins the result key over the new attempt's result).
    for (const address of previous) {
      const view = this.executors.get(address);
      if (view !== undefined) chosen.set(address, view);
    }
    dispatch.seqs.clear();
    dispatch.deadlineMs = this.nowMs + dispatch.timeoutMs + RUN_GRACE_MS;
    this.runs.set(dispatch.runId, dispatch);
    this.counters.dispatched++;
    this.limits.add(dispatch);
    const leaseMs = dispatch.replyTo.length > 0 && dispatch.functions.every((fn) => fn.concurrencyLimit === 0) ? (this.options.leaseMs ?? 1000) : 0;
    const effects: Effect[] = [];
    const traceId = traceFieldOf(span) || dispatch.traceId;
    for (const view of chosen.values()) {
      // One run more there until its next report: the functions of a run on one executor mostly
      // run one after the other (a chain), so the run counts once, not per function.
      if (placed.some((fn) => fn.executor === view.address)) view.sentSinceStatus++;
      const seq = view.nextSeq++;
      dispatch.seqs.set(view.address, seq);
      view.outstanding.set(dispatch.runId, dispatch);
      const schedule: PbTypes.ISchedule = {
        runId: dispatch.runId,
        dag: dispatch.dag,
        functions: placed,
        consistency: dispatch.consistency,
        replyTo: dispatch.replyTo,
        replyRequestId: dispatch.replyRequestId,
        resultKey: dispatch.resultKey,
        timeoutMs: dispatch.timeoutMs,
        scheduler: this.id,
        dispatchSeq: seq,
        attempt: dispatch.attempt,
        traceId,
        // Sync runs may earn their caller a direct-dispatch lease (see Lease in faas.proto); not
        // those of a function with a concurrency limit (its calls are counted here).
        leaseMs,
      };
      effects.push({ kind: 'send', to: view.address, envelope: envelopeWith({ schedule }, { sender: this.id, ...(traceId ? { traceId } : {}) }) });
    }
    return effects;
  }

  private onStatus(status: PbTypes.IExecutorStatus): Effect[] {
    const address = status.address ?? '';
    // One boot of the executor (an executor started without a nonce reports its address alone).
    const incarnation = status.executorId || address;
    if (this.retired.has(incarnation)) return [];
    let view = this.executors.get(address);
    let replaced: ExecutorEntry | undefined;
    if (view !== undefined && view.incarnation !== incarnation) {
      // It restarted, maybe faster than the failure timeout: the old boot is dead now. Its runs
      // are failed below, once the new boot is in the view (an async run may go to it).
      this.counters.executorsRestarted++;
      this.forget(view);
      replaced = view;
      view = undefined;
    }
    if (view === undefined) {
      if (this.executors.size >= (this.options.executorsMax ?? 1024)) return replaced === undefined ? [] : this.failRuns(replaced, false);
      const before = this.departed.get(address);
      this.departed.delete(address);
      if (before !== undefined && before.incarnation !== incarnation) this.retire(before.incarnation);
      // The sequence numbers go on from the last boot's: a schedule sent to that boot may yet
      // reach this one, whose acked_seq then counts it; restarting at 1 would let that acked_seq
      // acknowledge dispatches it never received.
      view = { address, incarnation, lastHeardMs: this.nowMs, utilisation: 0, capacity: 1, sentSinceStatus: 0, warm: new Set(), keys: new Set(), outstanding: new Map(), nextSeq: before?.nextSeq ?? this.seqBase, functions: [] };
      this.executors.set(address, view);
    }
    view.lastHeardMs = this.nowMs;
    view.utilisation = status.utilisation ?? 0;
    view.demand = status.demand ?? view.utilisation;
    view.capacity = Math.max(1, status.capacity ?? 1);
    view.sentSinceStatus = 0;
    view.warm = new Set(status.warmFunctions ?? []);
    view.keys = new Set(status.cachedKeys ?? []);
    view.functions = functionLoadsOf(status.functions ?? []);
    view.stems = status.stems ?? 0;
    const acked = Number(status.ackedSeq ?? 0);
    const running = new Set(status.running ?? []);
    const effects: Effect[] = [];
    for (const [runId, entry] of view.outstanding) {
      const dispatch = entry as Dispatch;
      const seq = dispatch.seqs.get(address) ?? Infinity;
      if (seq > acked || running.has(runId)) continue;
      view.outstanding.delete(runId);
      dispatch.seqs.delete(address);
      if (dispatch.seqs.size === 0 && !dispatch.finished) effects.push(...this.finished(dispatch));
    }
    if (replaced !== undefined) effects.push(...this.failRuns(replaced, true));
    effects.push(...this.pinning.due(view));
    return effects;
  }

  /** An executor (one boot of it) leaves the view; its address's next sequence number is kept. */
  private forget(view: ExecutorEntry): void {
    this.executors.delete(view.address);
    this.pinning.forget(view.incarnation);
    this.counters.executorsLost++;
    this.departed.delete(view.address);
    this.departed.set(view.address, { incarnation: view.incarnation, nextSeq: view.nextSeq });
    if (this.departed.size > (this.options.executorsMax ?? 1024)) this.departed.delete(this.departed.keys().next().value!);
  }

  /**
   * The runs a dead executor held: each sync run is answered EXEC_LOST, each async run dispatched
   * again. `restarted`: a new boot is at its address, which may have received a schedule sent to
   * the old one after it started: the re-dispatch goes there too, to replace that earlier attempt.
   */
  private failRuns(view: ExecutorEntry, restarted: boolean): Effect[] {
    const effects: Effect[] = [];
    for (const entry of [...view.outstanding.values()]) effects.push(...this.retries.lost(entry as Dispatch, view.address, restarted));
    view.outstanding.clear();
    return effects;
  }

  private retire(incarnation: string): void {
    this.retired.add(incarnation);
    if (this.retired.size > 4 * (this.options.executorsMax ?? 1024)) this.retired.delete(this.retired.values().next().value!);
  }

  private finished(dispatch: Dispatch): Effect[] {
    dispatch.finished = true;
    this.runs.delete(dispatch.runId);
    this.counters.completed++;
    if (dispatch.resultKey.length === 0) return [];
    this.settling.add(dispatch.runId);
    // At least once: every executor says the run is over, but a lost schedule (acknowledged by a
    // later one's sequence number) leaves no result. No result: dispatch it again.
    return this.kvs({ op: 'get', key: dispatch.resultKey }, (error, value) => {
      if (this.runs.has(dispatch.runId)) {
        this.settling.delete(dispatch.runId);
        return [];
      }
      if (error !== undefined || value === undefined) {
        this.settling.delete(dispatch.runId);
        return this.retries.again(dispatch, new LfaasError(ErrorCode.EXEC_LOST, `run ${dispatch.runId} ended without a result after ${dispatch.attempt} attempts`), '');
      }
      return this.settled(dispatch);
    });
  }

  /** An async run whose result is written: its record says done, and it leaves this boot's index. */
  private settled(dispatch: Dispatch): Effect[] {
    this.settling.delete(dispatch.runId);
    const done = doneRecord(runRecordOf(dispatch, this.boot, 'done', '', this.nowMs), Math.floor(this.nowMs));
    return [...this.kvs({ op: 'put', key: executionKey(dispatch.runId), value: Lww.write(this.clock, runRecordValue(done)), ack: 'local' }, () => []), ...this.takeover.remove(dispatch.runId)];
  }

  /**
   * Dispatches again the async runs waiting for room; fails executors gone silent (their runs are
   * answered or dispatched again); forgets overdue runs.
   */
  private check(): Effect[] {
    const effects: Effect[] = this.retries.retryWaiting();
    const timeoutMs = this.options.executorTimeoutMs ?? 1000;
    for (const view of [...this.executors.values()]) {
      if (this.nowMs - view.lastHeardMs <= timeoutMs) continue;
      this.forget(view);
      effects.push(...this.failRuns(view, false));
    }
    for (const dispatch of this.runs.values()) {
      // A run waiting for room has no executor to hear from: its wait has its own deadline.
      if (dispatch.deadlineMs === 0 || this.nowMs < dispatch.deadlineMs || dispatch.finished || this.retries.has(dispatch.runId)) continue;
      // Its executors are alive but never reported it finished: forget it (its sink has answered
      // or timed out by now). An async run's schedule may have been lost with no later dispatch
      // to acknowledge it: it is over, and dispatched again if it left no result.
      for (const address of dispatch.seqs.keys()) this.executors.get(address)?.outstanding.delete(dispatch.runId);
      dispatch.seqs.clear();
      if (dispatch.resultKey.length > 0) {
        effects.push(...this.finished(dispatch));
        continue;
      }
      dispatch.finished = true;
      this.runs.delete(dispatch.runId);
    }
    return effects;
  }

  private callFailed(envelope: Envelope, callId: string, error: LfaasError): Effect[] {
    return this.reply(envelope, { callResponse: { callId, error: errorToWire(error) } });
  }

  // ---- plumbing ------------------------------------------------------------------------------

  private kvs(task: SchedulerTask, then: Continuation): Effect[] {
    const token = this.nextToken++;
    this.continuations.set(token, then);
    return [{ kind: 'task', token, task }];
  }

  private reply(request: Envelope, body: PbTypes.IEnvelope): Effect[] {
    if (Number(request.requestId) === 0 || request.replyTo.length === 0) return [];
    return [{ kind: 'send', to: request.replyTo, envelope: envelopeWith(body, { responseTo: request.requestId, sender: this.id, ...(request.traceId ? { traceId: request.traceId } : {}) }) }];
  }

  private replyError(request: Envelope, error: LfaasError): Effect[] {
    return this.reply(request, { errorReply: { error: errorToWire(error) } });
  }
}

/** The KVS keys a call's `ref(key)` arguments name (for placement near the cache that holds them). */
function referencedKeys(args: readonly PbTypes.IArgument[]): string[] {
  const keys: string[] = [];
  for (const argument of args) if (argument.reference) keys.push(argument.reference);
  return keys;
}

