/**
 * The scheduler machine (DESIGN.md §7): the clients' entry point. Several may run; they share
 * the registry through the KVS (protocol/faas-records.ts) and each learns the executors from
 * their heartbeats. Sans-I/O: every KVS access is a `task` ({@link SchedulerTask}) its shell
 * carries out (a KvsClient in a process, a simulated KVS in the simulator).
 *
 * - Registry: `registerFunction` numbers versions (1, 2, ...; immutable), stores code and
 *   metadata, points the name at its latest version, and pins the function on executors
 *   (`prepare`: code fetched and a runtime specialised before the first call). `registerDag`
 *   checks the DAG (scheduler/dag.ts), stores it and pins its functions. List, describe, delete.
 *   What a scheduler has read of the registry it keeps for `registryTtlMs`, refreshing in the
 *   background after that, so the call path does not wait for the KVS.
 * - Calls: a call is a run of one function, a DAG call a run of several. The scheduler places
 *   each function (scheduler/placement.ts), sends the schedule to each executor it chose, and
 *   is done: executors trigger each other, and the sink answers the client. An async call is
 *   first recorded in the KVS, then accepted, and its result is written under its result key.
 * - Failures: executors heartbeat every ~100 ms with the last dispatch they received and the
 *   runs still running. A run an executor acknowledged and no longer lists has finished. An
 *   executor silent for `executorTimeoutMs` is dead: each sync run it held is answered EXEC_LOST
 *   at once (no waiting for the client's timeout), each async run is dispatched again (at least
 *   once, `attemptsMax` at most; the result write is idempotent).
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
import { ErrorCode, GSet, HybridClock, LfaasError, Lww, Max, Priority, ensureLfaasError } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';
import {
  DAGS_KEY,
  FUNCTIONS_KEY,
  NAME_PATTERN,
  dagKey,
  dagRecordOf,
  envelopeWith,
  errorToWire,
  executionKey,
  functionIndexKey,
  functionKey,
  functionRecordOf,
  resultKeyOf,
} from '../protocol/index.js';
import type { DagRecord, Effect, Envelope, FunctionRecord, Machine, MachineInput, PbTypes, Random } from '../protocol/index.js';
import { dagShape } from './dag.js';
import type { DagShape } from './dag.js';
import { DefaultPlacement } from './placement.js';
import type { ExecutorView, PlacementPolicy } from './placement.js';

/** The KVS work a scheduler hands its shell. */
export type SchedulerTask =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'getMany'; readonly keys: readonly string[] }
  | { readonly op: 'put'; readonly key: string; readonly value: AnyLattice; readonly ack: 'local' | 'durable' | 'replicated' }
  | { readonly op: 'delete'; readonly keys: readonly string[] };

export interface SchedulerOptions {
  readonly address: string;
  readonly random: Random;
  readonly placement?: PlacementPolicy;
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
}

const CHECK = 'check';
const CODE_BYTES_MAX = 4 * 1024 * 1024;
const VERSIONS_LISTED_MAX = 100;
/** Sync and DAG runs are given this much more than their functions' time before they are forgotten. */
const RUN_GRACE_MS = 5000;

interface FunctionMeta {
  readonly name: string;
  readonly version: number;
  readonly memoryMb: number;
  readonly timeoutMs: number;
  readonly keepAliveMs: number;
  readonly codeBytes: number;
  readonly registeredAtMs: number;
}

interface FunctionEntry {
  latest: number;
  readonly versions: Map<number, FunctionMeta>;
  fetchedAtMs: number;
  refreshing: boolean;
}

interface PlannedFunction {
  readonly name: string;
  readonly version: number;
  readonly args: PbTypes.IArgument[];
  readonly successors: readonly string[];
  readonly parents: number;
  /** Its parents in edge order: the order of their results in its arguments. */
  readonly parentNames: readonly string[];
  readonly prefer: string | undefined;
  readonly keys: readonly string[];
}

/** A run this scheduler dispatched and has not seen finish. */
interface Dispatch {
  readonly runId: string;
  readonly dag: string;
  readonly functions: readonly PlannedFunction[];
  readonly consistency: number;
  readonly timeoutMs: number;
  /** Sync: where the sink answers. */
  readonly replyTo: string;
  readonly replyRequestId: number;
  /** Async: where the result goes. */
  readonly resultKey: string;
  readonly traceId: string;
  attempt: number;
  /** Async: when the call was accepted (its re-dispatches wait for room until its timeout after this, plus the grace). */
  acceptedAtMs: number;
  /** Executor -> the dispatch sequence number it got this run under. */
  readonly seqs: Map<string, number>;
  deadlineMs: number;
  finished: boolean;
}

type Continuation = (error: LfaasError | undefined, result: unknown) => Effect[];

/** An executor as this scheduler knows it: one boot of it. */
interface ExecutorEntry extends ExecutorView {
  /** Its heartbeats' `executor_id` (`<address>#<nonce>`, or the address alone). */
  readonly incarnation: string;
}

/** An async run to dispatch again once an executor has room. */
interface Retry {
  readonly dispatch: Dispatch;
  /** The earlier attempt's live executors (see `dispatch`). */
  readonly previous: readonly string[];
  /** Why it is dispatched again. */
  readonly cause: LfaasError;
}

export class SchedulerNode implements Machine {
  readonly id: string;
  private readonly executors = new Map<string, ExecutorEntry>();
  /** Addresses whose executor left the view (timed out or restarted): its last boot and next dispatch sequence number. */
  private readonly departed = new Map<string, { readonly incarnation: string; readonly nextSeq: number }>();
  /** Boots a newer boot of their address replaced: their late heartbeats are ignored. */
  private readonly retired = new Set<string>();
  /** Async runs waiting for room to be dispatched again (see `again`), by run id. */
  private readonly retries = new Map<string, Retry>();
  private readonly functions = new Map<string, FunctionEntry>();
  private readonly dags = new Map<string, { readonly record: DagRecord; readonly shape: DagShape; fetchedAtMs: number }>();
  private readonly lookups = new Map<string, ((error: LfaasError | undefined) => Effect[])[]>();
  private readonly registering = new Map<string, (() => Effect[])[]>();
  private readonly continuations = new Map<number, Continuation>();
  private readonly runs = new Map<string, Dispatch>();
  private readonly placement: PlacementPolicy;
  private readonly clock: HybridClock;
  private nextToken = 1;
  private nowMs = 0;
  readonly counters = { calls: 0, dagCalls: 0, asyncCalls: 0, dispatched: 0, completed: 0, lost: 0, redispatched: 0, noCapacity: 0, registered: 0, executorsLost: 0, executorsRestarted: 0, retriesQueued: 0, retriesDispatched: 0, retriesExpired: 0 };

  constructor(private readonly options: SchedulerOptions) {
    this.id = options.address;
    this.placement = options.placement ?? new DefaultPlacement();
    this.clock = new HybridClock(options.address, () => this.nowMs);
  }

  /** Executors alive as far as this scheduler knows. */
  executorAddresses(): string[] {
    return [...this.executors.keys()];
  }

  get runCount(): number {
    return this.runs.size;
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    this.nowMs = Math.max(this.nowMs, nowMs);
    switch (input.kind) {
      case 'start':
        return [{ kind: 'timer', timer: CHECK, delayMs: this.options.checkPeriodMs ?? 100 }];
      case 'timer':
        return input.timer === CHECK ? [...this.check(), { kind: 'timer', timer: CHECK, delayMs: this.options.checkPeriodMs ?? 100 }] : [];
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
      case 'executorStatus':
        return this.onStatus(envelope.executorStatus!);
      case 'registerFunction':
        return this.onRegisterFunction(envelope, envelope.registerFunction!.spec!);
      case 'registerDag':
        return this.onRegisterDag(envelope, envelope.registerDag!.spec!);
      case 'listFunctions':
        return this.onListFunctions(envelope, envelope.listFunctions!.name ?? '');
      case 'deleteFunction':
        return this.onDeleteFunction(envelope, envelope.deleteFunction!.name ?? '', envelope.deleteFunction!.version ?? 0);
      case 'listDags':
        return this.onListDags(envelope, envelope.listDags!.name ?? '');
      case 'deleteDag':
        return this.onDeleteDag(envelope, envelope.deleteDag!.name ?? '');
      case 'echo':
        return this.reply(envelope, { echo: { payload: envelope.echo?.payload ?? null } });
      default:
        return this.replyError(envelope, new LfaasError(ErrorCode.PROTO_UNKNOWN_MESSAGE, `a scheduler does not handle ${envelope.body ?? 'nothing'}`));
    }
  }

  // ---- calls ---------------------------------------------------------------------------------

  private onCall(envelope: Envelope, request: PbTypes.ICallRequest): Effect[] {
    this.counters.calls++;
    const callId = request.callId ?? '';
    const name = request.function ?? '';
    return this.withFunction(name, request.version ?? 0, (error, meta) => {
      if (error !== undefined) return this.callFailed(envelope, callId, error);
      const args = request.args ?? [];
      const planned: PlannedFunction = { name, version: meta!.version, args, successors: [], parents: 0, parentNames: [], prefer: undefined, keys: referencedKeys(args) };
      return this.startRun(envelope, {
        runId: callId,
        dag: '',
        functions: [planned],
        consistency: request.consistency ?? 0,
        timeoutMs: request.timeoutMs || meta!.timeoutMs,
        async: request.async ?? false,
        resultKey: request.resultKey ?? '',
      });
    });
  }

  private onDagCall(envelope: Envelope, request: PbTypes.IDagCall): Effect[] {
    this.counters.dagCalls++;
    const callId = request.callId ?? '';
    return this.withDag(request.dag ?? '', (error, dag) => {
      if (error !== undefined) return this.callFailed(envelope, callId, error);
      const { record, shape } = dag!;
      const unknown = Object.keys(request.args ?? {}).filter((name) => !shape.successors.has(name));
      if (unknown.length > 0) return this.callFailed(envelope, callId, new LfaasError(ErrorCode.EXEC_BAD_VALUE, `DAG ${record.name} has no function ${unknown.join(', ')}`));
      return this.withFunctions(record.functions, (failure, metas) => {
        if (failure !== undefined) return this.callFailed(envelope, callId, failure);
        const functions = shape.order.map((name): PlannedFunction => {
          const args = request.args?.[name]?.args ?? [];
          return { name, version: metas!.get(name)!.version, args, successors: shape.successors.get(name)!, parents: shape.parents.get(name)!.length, parentNames: shape.parents.get(name)!, prefer: shape.parents.get(name)![0], keys: referencedKeys(args) };
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
        });
      });
    });
  }

  private startRun(envelope: Envelope, run: { runId: string; dag: string; functions: PlannedFunction[]; consistency: number; timeoutMs: number; async: boolean; resultKey: string }): Effect[] {
    const running = this.runs.get(run.runId);
    if (running !== undefined) {
      // The same request again (a duplicated frame, a retry with the same request id) runs once: a
      // sync call is answered by its sink; an async one is accepted again once it is recorded.
      if (!run.async && running.replyTo === envelope.replyTo && running.replyRequestId === Number(envelope.requestId)) return [];
      if (run.async && running.resultKey.length > 0 && running.resultKey === (run.resultKey || resultKeyOf(run.runId))) return running.deadlineMs === 0 ? [] : this.reply(envelope, { callResponse: { callId: run.runId } });
      return this.callFailed(envelope, run.runId, new LfaasError(ErrorCode.EXEC_BAD_VALUE, `call id ${run.runId} is already running`));
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
    this.counters.asyncCalls++;
    // At least once: the call is recorded before it is accepted.
    this.runs.set(dispatch.runId, dispatch);
    return this.kvs({ op: 'put', key: executionKey(dispatch.runId), value: this.executionRecord(dispatch, 'accepted', ''), ack: 'durable' }, (error) => {
      if (error !== undefined) {
        this.runs.delete(dispatch.runId);
        return this.callFailed(envelope, dispatch.runId, error);
      }
      this.runs.delete(dispatch.runId);
      dispatch.acceptedAtMs = this.nowMs;
      const effects = this.reply(envelope, { callResponse: { callId: dispatch.runId } });
      // Accepted means at least once: with no room now, it waits for room (until its deadline).
      effects.push(...this.dispatch(dispatch, (failure) => this.waitForRoom({ dispatch, previous: [], cause: failure }, failure)));
      return effects;
    });
  }

  /** Places every function of the run and sends the schedule to each executor chosen. */
  private dispatch(dispatch: Dispatch, onNoCapacity: (error: LfaasError) => Effect[], previous: readonly string[] = []): Effect[] {
    const alive = [...this.executors.values()];
    const chosen = new Map<string, ExecutorView>();
    const placed: PbTypes.IScheduledFunction[] = [];
    for (const fn of dispatch.functions) {
      const prefer = fn.prefer === undefined ? undefined : placed.find((other) => other.name === fn.prefer)?.executor ?? undefined;
      const view = this.placement.place({ functionId: `${fn.name}@${fn.version}`, keys: fn.keys, ...(prefer === undefined || prefer === null ? {} : { prefer }) }, alive, this.options.random);
      if (view === undefined) {
        this.counters.noCapacity++;
        return onNoCapacity(new LfaasError(ErrorCode.SCHED_NO_CAPACITY, alive.length === 0 ? 'no executor has joined' : `every executor is overloaded; retry in ${this.options.checkPeriodMs ?? 100} ms`));
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
    const effects: Effect[] = [];
    for (const view of chosen.values()) {
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
        traceId: dispatch.traceId,
        // Sync runs may earn their caller a direct-dispatch lease (see Lease in faas.proto).
        leaseMs: dispatch.replyTo.length > 0 ? (this.options.leaseMs ?? 1000) : 0,
      };
      effects.push({ kind: 'send', to: view.address, envelope: envelopeWith({ schedule }, { sender: this.id, ...(dispatch.traceId ? { traceId: dispatch.traceId } : {}) }) });
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
      view = { address, incarnation, lastHeardMs: this.nowMs, utilisation: 0, capacity: 1, warm: new Set(), keys: new Set(), outstanding: new Map(), nextSeq: before?.nextSeq ?? 1 };
      this.executors.set(address, view);
    }
    view.lastHeardMs = this.nowMs;
    view.utilisation = status.utilisation ?? 0;
    view.capacity = Math.max(1, status.capacity ?? 1);
    view.warm = new Set(status.warmFunctions ?? []);
    view.keys = new Set(status.cachedKeys ?? []);
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
    return effects;
  }

  /** An executor (one boot of it) leaves the view; its address's next sequence number is kept. */
  private forget(view: ExecutorEntry): void {
    this.executors.delete(view.address);
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
    for (const entry of [...view.outstanding.values()]) effects.push(...this.lost(entry as Dispatch, view.address, restarted));
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
    // At least once: every executor says the run is over, but a lost schedule (acknowledged by a
    // later one's sequence number) leaves no result. No result: dispatch it again.
    return this.kvs({ op: 'get', key: dispatch.resultKey }, (error, value) => {
      if ((error !== undefined || value === undefined) && !this.runs.has(dispatch.runId)) {
        return this.again(dispatch, new LfaasError(ErrorCode.EXEC_LOST, `run ${dispatch.runId} ended without a result after ${dispatch.attempt} attempts`), '');
      }
      return this.kvs({ op: 'put', key: executionKey(dispatch.runId), value: this.executionRecord(dispatch, 'done', ''), ack: 'local' }, () => []);
    });
  }

  /**
   * Dispatches again the async runs waiting for room; fails executors gone silent (their runs are
   * answered or dispatched again); forgets overdue runs.
   */
  private check(): Effect[] {
    const effects: Effect[] = this.retryWaiting();
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

  private lost(dispatch: Dispatch, address: string, restarted = false): Effect[] {
    if (dispatch.finished) return [];
    const survivors = [...dispatch.seqs.keys()].filter((other) => other !== address || restarted);
    for (const other of dispatch.seqs.keys()) if (other !== address) this.executors.get(other)?.outstanding.delete(dispatch.runId);
    dispatch.seqs.clear();
    this.counters.lost++;
    const error = new LfaasError(ErrorCode.EXEC_LOST, `executor ${address} stopped answering while running ${dispatch.runId}`);
    if (dispatch.resultKey.length === 0) {
      dispatch.finished = true;
      this.runs.delete(dispatch.runId);
      if (dispatch.replyTo.length === 0) return [];
      return [{ kind: 'send', to: dispatch.replyTo, envelope: envelopeWith({ callResponse: { callId: dispatch.runId, error: errorToWire(error) } }, { responseTo: dispatch.replyRequestId, sender: this.id }) }];
    }
    return this.again(dispatch, error, address, survivors);
  }

  /** An async run that did not finish: dispatched again (`attemptsMax` at most), or its error is its result. */
  private again(dispatch: Dispatch, error: LfaasError, address: string, previous: readonly string[] = []): Effect[] {
    if (dispatch.attempt >= (this.options.attemptsMax ?? 3)) {
      dispatch.finished = true;
      this.runs.delete(dispatch.runId);
      return this.writeFailure(dispatch, error);
    }
    dispatch.attempt++;
    dispatch.finished = false;
    this.counters.redispatched++;
    return [
      ...this.kvs({ op: 'put', key: executionKey(dispatch.runId), value: this.executionRecord(dispatch, 'running', address), ack: 'local' }, () => []),
      ...this.dispatch(dispatch, (failure) => {
        const effects = this.waitForRoom({ dispatch, previous, cause: error }, failure);
        if (this.retries.has(dispatch.runId)) this.counters.retriesQueued++;
        return effects;
      }, previous),
    ];
  }

  /**
   * An async run to dispatch again that no executor has room for (none known, or all past
   * capacity): at least once, it waits in the retry list, placed again at each check, until its
   * deadline (its timeout after acceptance, plus the grace); then, or when the list is full, the
   * SCHED_NO_CAPACITY is its result.
   */
  private waitForRoom(retry: Retry, failure: LfaasError): Effect[] {
    const dispatch = retry.dispatch;
    const untilMs = dispatch.acceptedAtMs + dispatch.timeoutMs + RUN_GRACE_MS;
    if (this.nowMs >= untilMs || this.retries.size >= (this.options.retriesMax ?? 10_000)) {
      this.retries.delete(dispatch.runId);
      this.counters.retriesExpired++;
      dispatch.finished = true;
      this.runs.delete(dispatch.runId);
      return this.writeFailure(dispatch, new LfaasError(failure.code, `run ${dispatch.runId} found no executor with room by its deadline (${failure.message}); it was to go again after: ${retry.cause.message}`));
    }
    this.retries.set(dispatch.runId, retry);
    dispatch.finished = false;
    this.runs.set(dispatch.runId, dispatch);
    return [];
  }

  /** One more placement of each async run waiting for room (check period). */
  private retryWaiting(): Effect[] {
    if (this.retries.size === 0) return [];
    const waiting = [...this.retries.values()];
    this.retries.clear();
    const effects: Effect[] = [];
    for (const retry of waiting) {
      const placed = this.dispatch(retry.dispatch, (failure) => this.waitForRoom(retry, failure), retry.previous);
      if (!this.retries.has(retry.dispatch.runId) && !retry.dispatch.finished) this.counters.retriesDispatched++;
      effects.push(...placed);
    }
    return effects;
  }

  /** An async call that cannot run: its error is its result. */
  private writeFailure(dispatch: Dispatch, error: LfaasError): Effect[] {
    const record = { ok: false, code: error.code, message: error.message };
    return this.kvs({ op: 'put', key: dispatch.resultKey, value: new Priority(dispatch.attempt, record), ack: 'replicated' }, () => []);
  }

  private executionRecord(dispatch: Dispatch, state: 'accepted' | 'running' | 'done', lostExecutor: string): Lww<unknown> {
    return Lww.write(this.clock, { callId: dispatch.runId, target: dispatch.dag || dispatch.functions[0]?.name || '', state, attempt: dispatch.attempt, executor: lostExecutor, atMs: Math.floor(this.nowMs) });
  }

  private callFailed(envelope: Envelope, callId: string, error: LfaasError): Effect[] {
    return this.reply(envelope, { callResponse: { callId, error: errorToWire(error) } });
  }

  // ---- the registry -------------------------------------------------------------------------

  /** Resolves a function version (0: the latest) from the registry cache or the KVS. */
  private withFunction(name: string, version: number, then: (error: LfaasError | undefined, meta: FunctionMeta | undefined) => Effect[]): Effect[] {
    if (!NAME_PATTERN.test(name)) return then(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `no function is named ${JSON.stringify(name)}`), undefined);
    const entry = this.functions.get(name);
    const known = entry?.versions.get(version === 0 ? entry.latest : version);
    if (entry !== undefined && known !== undefined) {
      const effects = then(undefined, known);
      // Stale while revalidating: the call goes on with what is known, a refresh runs behind it.
      if (version === 0 && this.nowMs - entry.fetchedAtMs > (this.options.registryTtlMs ?? 1000) && !entry.refreshing) {
        entry.refreshing = true;
        effects.push(...this.fetchFunction(name, 0, () => []));
      }
      return effects;
    }
    return this.fetchFunction(name, version, (error) => {
      if (error !== undefined) return then(error, undefined);
      const fresh = this.functions.get(name);
      const meta = fresh?.versions.get(version === 0 ? fresh.latest : version);
      if (meta === undefined) {
        const latest = fresh?.latest ?? 0;
        return then(
          version > 0 && version <= latest
            ? new LfaasError(ErrorCode.GONE, `version ${version} of ${name} was deleted`)
            : new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, version > 0 ? `${name} has no version ${version}` : `no function is named ${JSON.stringify(name)}`),
          undefined,
        );
      }
      return then(undefined, meta);
    });
  }

  private withFunctions(names: readonly string[], then: (error: LfaasError | undefined, metas: Map<string, FunctionMeta> | undefined) => Effect[]): Effect[] {
    const metas = new Map<string, FunctionMeta>();
    let left = names.length;
    let failed = false;
    const effects: Effect[] = [];
    for (const name of names) {
      effects.push(
        ...this.withFunction(name, 0, (error, meta) => {
          if (failed) return [];
          if (error !== undefined) {
            failed = true;
            return then(error, undefined);
          }
          metas.set(name, meta!);
          return --left === 0 ? then(undefined, metas) : [];
        }),
      );
    }
    return effects;
  }

  /** Reads a function's index and its newest versions (or one version) into the cache; waiters share one read. */
  private fetchFunction(name: string, version: number, then: (error: LfaasError | undefined) => Effect[]): Effect[] {
    const lookup = `${name}@${version}`;
    const waiting = this.lookups.get(lookup);
    if (waiting !== undefined) {
      waiting.push(then);
      return [];
    }
    this.lookups.set(lookup, [then]);
    const settle = (error: LfaasError | undefined): Effect[] => {
      const waiters = this.lookups.get(lookup) ?? [];
      this.lookups.delete(lookup);
      const entry = this.functions.get(name);
      if (entry !== undefined) entry.refreshing = false;
      return waiters.flatMap((waiter) => waiter(error));
    };
    if (version > 0) {
      return this.kvs({ op: 'get', key: functionKey(name, version) }, (error, value) => {
        if (error !== undefined) return settle(error);
        const record = functionRecordOf(value as AnyLattice | undefined);
        if (record !== undefined) this.remember(record, record.version);
        return settle(undefined);
      });
    }
    return this.kvs({ op: 'get', key: functionIndexKey(name) }, (error, value) => {
      if (error !== undefined) return settle(error);
      const latest = Number((value as AnyLattice | undefined)?.reveal() ?? 0);
      if (latest === 0) {
        this.functions.delete(name);
        return settle(undefined);
      }
      // The newest versions, newest first: the latest that still exists is the one a name means.
      const versions = Array.from({ length: Math.min(16, latest) }, (_, i) => latest - i);
      return this.kvs({ op: 'getMany', keys: versions.map((v) => functionKey(name, v)) }, (failure, values) => {
        if (failure !== undefined) return settle(failure);
        const records = (values as (AnyLattice | undefined)[]).map((entry) => functionRecordOf(entry));
        const newest = records.find((record) => record !== undefined);
        const entry = this.entryOf(name);
        entry.fetchedAtMs = this.nowMs;
        // Versions that are gone leave the cache.
        versions.forEach((v, i) => {
          if (records[i] === undefined) entry.versions.delete(v);
        });
        for (const record of records) if (record !== undefined) this.remember(record, newest?.version ?? 0);
        if (newest === undefined) entry.latest = 0;
        return settle(undefined);
      });
    });
  }

  private entryOf(name: string): FunctionEntry {
    let entry = this.functions.get(name);
    if (entry === undefined) {
      entry = { latest: 0, versions: new Map(), fetchedAtMs: this.nowMs, refreshing: false };
      this.functions.set(name, entry);
    }
    return entry;
  }

  private remember(record: FunctionRecord, latest: number): void {
    const entry = this.entryOf(record.name);
    entry.versions.set(record.version, {
      name: record.name,
      version: record.version,
      memoryMb: record.memoryMb,
      timeoutMs: record.timeoutMs,
      keepAliveMs: record.keepAliveMs,
      codeBytes: record.code.length,
      registeredAtMs: record.registeredAtMs,
    });
    if (latest > 0) entry.latest = latest;
  }

  private onRegisterFunction(envelope: Envelope, spec: PbTypes.IFunctionSpec): Effect[] {
    const name = spec.name ?? '';
    const code = Buffer.from(spec.code ?? new Uint8Array()).toString('utf8');
    const memoryMb = spec.memoryMb || 128;
    const timeoutMs = spec.timeoutMs || 60_000;
    const keepAliveMs = spec.keepAliveMs || 10 * 60_000;
    const problem = !NAME_PATTERN.test(name)
      ? `function name ${JSON.stringify(name)} must match ${NAME_PATTERN}`
      : code.length === 0 || code.length > CODE_BYTES_MAX
        ? `code must be 1 to ${CODE_BYTES_MAX} bytes`
        : memoryMb < 16 || memoryMb > 4096
          ? 'memoryMb must be 16 to 4096'
          : timeoutMs > 15 * 60_000
            ? 'timeoutMs must be at most 900000'
            : undefined;
    if (problem !== undefined) return this.reply(envelope, { registerFunctionResponse: { name, error: errorToWire(new LfaasError(ErrorCode.EXEC_BAD_VALUE, problem)) } });
    const record = (version: number): FunctionRecord => ({ name, version, code, memoryMb, timeoutMs, keepAliveMs, concurrency: spec.concurrency || 1, registeredAtMs: Math.floor(this.nowMs) });
    return this.serialised(name, () => this.register(envelope, name, record, 0));
  }

  /**
   * Versions are numbered without a coordinator: take the latest known + 1, write the version's
   * record as a Priority (the first registration of a number wins), then read it back; if another
   * scheduler's registration won the number, take the next one.
   */
  private register(envelope: Envelope, name: string, record: (version: number) => FunctionRecord, attempt: number): Effect[] {
    const fail = (error: LfaasError): Effect[] => [...this.reply(envelope, { registerFunctionResponse: { name, error: errorToWire(error) } }), ...this.release(name)];
    return this.kvs({ op: 'get', key: functionIndexKey(name) }, (error, index) => {
      if (error !== undefined) return fail(error);
      const latest = Math.max(Number((index as AnyLattice | undefined)?.reveal() ?? 0), this.functions.get(name)?.latest ?? 0);
      const mine = record(latest + 1 + attempt);
      const stamp = this.clock.tick();
      return this.kvs({ op: 'put', key: functionKey(name, mine.version), value: new Priority(stamp.wallMs * 1024 + (stamp.logical % 1024), mine), ack: 'replicated' }, (putError) => {
        if (putError !== undefined) return fail(putError);
        return this.kvs({ op: 'get', key: functionKey(name, mine.version) }, (readError, stored) => {
          if (readError !== undefined) return fail(readError);
          const winner = functionRecordOf(stored as AnyLattice | undefined);
          if (winner === undefined || winner.code !== mine.code || winner.registeredAtMs !== mine.registeredAtMs) {
            return attempt < 5 ? this.register(envelope, name, record, attempt + 1) : fail(new LfaasError(ErrorCode.TRANSPORT_BUSY, `concurrent registrations of ${name}; try again`));
          }
          return this.kvs({ op: 'put', key: functionIndexKey(name), value: new Max(mine.version), ack: 'replicated' }, (indexError) => {
            if (indexError !== undefined) return fail(indexError);
            return this.kvs({ op: 'put', key: FUNCTIONS_KEY, value: GSet.of(name), ack: 'replicated' }, (listError) => {
              if (listError !== undefined) return fail(listError);
              this.counters.registered++;
              this.remember(mine, mine.version);
              this.entryOf(name).fetchedAtMs = this.nowMs;
              return [...this.reply(envelope, { registerFunctionResponse: { name, version: mine.version } }), ...this.pin([{ name, version: mine.version }]), ...this.release(name)];
            });
          });
        });
      });
    });
  }

  /** Registrations of one name run one at a time on this scheduler. */
  private serialised(name: string, work: () => Effect[]): Effect[] {
    const queue = this.registering.get(name);
    if (queue !== undefined) {
      if (queue.length >= 100) return [];
      queue.push(work);
      return [];
    }
    this.registering.set(name, []);
    return work();
  }

  private release(name: string): Effect[] {
    const queue = this.registering.get(name);
    const next = queue?.shift();
    if (next === undefined) {
      this.registering.delete(name);
      return [];
    }
    return next();
  }

  /** Prefetching: the functions' code goes to executors, which specialise a runtime before any call. */
  private pin(functions: readonly { name: string; version: number }[]): Effect[] {
    const views = [...this.executors.values()];
    const effects: Effect[] = [];
    const count = Math.min(views.length, this.options.pinExecutors ?? 2);
    for (const fn of functions) {
      const chosen = new Set<ExecutorView>();
      for (let attempt = 0; chosen.size < count && attempt < count * 4; attempt++) {
        const view = this.placement.place({ functionId: `${fn.name}@${fn.version}`, keys: [] }, views.filter((v) => !chosen.has(v)), this.options.random);
        if (view === undefined) break;
        chosen.add(view);
      }
      for (const view of chosen) effects.push({ kind: 'send', to: view.address, envelope: envelopeWith({ prepare: { functions: [fn] } }, { sender: this.id }) });
    }
    return effects;
  }

  private withDag(name: string, then: (error: LfaasError | undefined, dag: { record: DagRecord; shape: DagShape } | undefined) => Effect[]): Effect[] {
    const cached = this.dags.get(name);
    if (cached !== undefined && this.nowMs - cached.fetchedAtMs <= (this.options.registryTtlMs ?? 1000)) return then(undefined, cached);
    if (!NAME_PATTERN.test(name)) return then(new LfaasError(ErrorCode.SCHED_DAG_NOT_FOUND, `no DAG is named ${JSON.stringify(name)}`), undefined);
    return this.kvs({ op: 'get', key: dagKey(name) }, (error, value) => {
      if (error !== undefined) return cached !== undefined ? then(undefined, cached) : then(error, undefined);
      const record = dagRecordOf(value as AnyLattice | undefined);
      if (record === undefined) {
        this.dags.delete(name);
        return then(new LfaasError(ErrorCode.SCHED_DAG_NOT_FOUND, `no DAG is named ${JSON.stringify(name)}`), undefined);
      }
      const dag = { record, shape: dagShape(record), fetchedAtMs: this.nowMs };
      this.dags.set(name, dag);
      return then(undefined, dag);
    });
  }

  private onRegisterDag(envelope: Envelope, spec: PbTypes.IDagSpec): Effect[] {
    const record: DagRecord = { name: spec.name ?? '', functions: spec.functions ?? [], edges: (spec.edges ?? []).map((edge) => [edge.fromFunction ?? '', edge.toFunction ?? ''] as const) };
    let shape: DagShape;
    try {
      shape = dagShape(record);
    } catch (error) {
      return this.reply(envelope, { done: { error: errorToWire(error) } });
    }
    return this.withFunctions(record.functions, (error, metas) => {
      if (error !== undefined) return this.reply(envelope, { done: { error: errorToWire(error) } });
      const value = Lww.write(this.clock, { name: record.name, functions: [...record.functions], edges: record.edges.map(([from, to]) => [from, to]) });
      return this.kvs({ op: 'put', key: dagKey(record.name), value, ack: 'replicated' }, (putError) => {
        if (putError !== undefined) return this.reply(envelope, { done: { error: errorToWire(putError) } });
        return this.kvs({ op: 'put', key: DAGS_KEY, value: GSet.of(record.name), ack: 'replicated' }, (listError) => {
          if (listError !== undefined) return this.reply(envelope, { done: { error: errorToWire(listError) } });
          this.dags.set(record.name, { record, shape, fetchedAtMs: this.nowMs });
          return [...this.reply(envelope, { done: {} }), ...this.pin([...metas!.values()].map((meta) => ({ name: meta.name, version: meta.version })))];
        });
      });
    });
  }

  private onListFunctions(envelope: Envelope, name: string): Effect[] {
    const fail = (error: LfaasError): Effect[] => this.reply(envelope, { functionList: { error: errorToWire(error) } });
    const describe = (names: readonly string[]): Effect[] =>
      this.kvs({ op: 'getMany', keys: names.map(functionIndexKey) }, (error, indexes) => {
        if (error !== undefined) return fail(error);
        const latests = (indexes as (AnyLattice | undefined)[]).map((value) => Number(value?.reveal() ?? 0));
        const keys: string[] = [];
        const owners: [number, number][] = [];
        latests.forEach((latest, n) => {
          for (let v = latest; v >= 1 && v > latest - VERSIONS_LISTED_MAX; v--) {
            keys.push(functionKey(names[n]!, v));
            owners.push([n, v]);
          }
        });
        if (keys.length === 0) return name.length > 0 ? fail(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `no function is named ${JSON.stringify(name)}`)) : this.reply(envelope, { functionList: { functions: [] } });
        return this.kvs({ op: 'getMany', keys }, (readError, values) => {
          if (readError !== undefined) return fail(readError);
          const infos = new Map<number, PbTypes.IFunctionInfo & { versions: number[] }>();
          (values as (AnyLattice | undefined)[]).forEach((value, i) => {
            const record = functionRecordOf(value);
            if (record === undefined) return;
            const [n, v] = owners[i]!;
            let info = infos.get(n);
            if (info === undefined) {
              info = { name: names[n]!, latest: v, versions: [], memoryMb: record.memoryMb, timeoutMs: record.timeoutMs, keepAliveMs: record.keepAliveMs, codeBytes: Buffer.byteLength(record.code), registeredAtMs: record.registeredAtMs };
              infos.set(n, info);
            }
            info.versions.unshift(v);
          });
          const functions = [...infos.entries()].sort(([a], [b]) => a - b).map(([, info]) => info);
          if (name.length > 0 && functions.length === 0) return fail(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `no function is named ${JSON.stringify(name)}`));
          return this.reply(envelope, { functionList: { functions } });
        });
      });
    if (name.length > 0) return describe([name]);
    return this.kvs({ op: 'get', key: FUNCTIONS_KEY }, (error, list) => {
      if (error !== undefined) return fail(error);
      const names = ((list as AnyLattice | undefined)?.reveal() as string[] | undefined) ?? [];
      return names.length === 0 ? this.reply(envelope, { functionList: { functions: [] } }) : describe([...names].sort().slice(0, 1000));
    });
  }

  private onDeleteFunction(envelope: Envelope, name: string, version: number): Effect[] {
    const done = (error?: LfaasError): Effect[] => this.reply(envelope, { done: error === undefined ? {} : { error: errorToWire(error) } });
    return this.kvs({ op: 'get', key: functionIndexKey(name) }, (error, index) => {
      if (error !== undefined) return done(error);
      const latest = Number((index as AnyLattice | undefined)?.reveal() ?? 0);
      if (latest === 0 || version > latest) return done(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, version > 0 ? `${name} has no version ${version}` : `no function is named ${JSON.stringify(name)}`));
      // The index (the highest number given) stays, also when every version goes: a later
      // registration takes the next number, never a deleted one, whose code executors may still hold.
      const keys = version > 0 ? [functionKey(name, version)] : Array.from({ length: latest }, (_, i) => functionKey(name, i + 1));
      const remove = (): Effect[] =>
        this.kvs({ op: 'delete', keys }, (deleteError) => {
          if (deleteError !== undefined) return done(deleteError);
          if (version > 0) {
            this.functions.get(name)?.versions.delete(version);
            // The name now means the newest version left: read it again at the next call.
            if (this.functions.get(name)?.latest === version) this.functions.delete(name);
          } else this.functions.delete(name);
          return done();
        });
      if (version > 0) return remove();
      // Every version: a name whose versions are all gone already is not found.
      return this.kvs({ op: 'getMany', keys }, (readError, values) => {
        if (readError !== undefined) return done(readError);
        if ((values as (AnyLattice | undefined)[]).every((value) => value === undefined)) return done(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `no function is named ${JSON.stringify(name)}`));
        return remove();
      });
    });
  }

  private onListDags(envelope: Envelope, name: string): Effect[] {
    const fail = (error: LfaasError): Effect[] => this.reply(envelope, { dagList: { error: errorToWire(error) } });
    const read = (names: readonly string[]): Effect[] =>
      this.kvs({ op: 'getMany', keys: names.map(dagKey) }, (error, values) => {
        if (error !== undefined) return fail(error);
        const dags = (values as (AnyLattice | undefined)[])
          .map((value) => dagRecordOf(value))
          .filter((record): record is DagRecord => record !== undefined)
          .map((record) => ({ name: record.name, functions: [...record.functions], edges: record.edges.map(([from, to]) => ({ fromFunction: from, toFunction: to })) }));
        if (name.length > 0 && dags.length === 0) return fail(new LfaasError(ErrorCode.SCHED_DAG_NOT_FOUND, `no DAG is named ${JSON.stringify(name)}`));
        return this.reply(envelope, { dagList: { dags } });
      });
    if (name.length > 0) return read([name]);
    return this.kvs({ op: 'get', key: DAGS_KEY }, (error, list) => {
      if (error !== undefined) return fail(error);
      const names = ((list as AnyLattice | undefined)?.reveal() as string[] | undefined) ?? [];
      return names.length === 0 ? this.reply(envelope, { dagList: { dags: [] } }) : read([...names].sort().slice(0, 1000));
    });
  }

  private onDeleteDag(envelope: Envelope, name: string): Effect[] {
    return this.kvs({ op: 'delete', keys: [dagKey(name)] }, (error) => {
      this.dags.delete(name);
      return this.reply(envelope, { done: error === undefined ? {} : { error: errorToWire(error) } });
    });
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

