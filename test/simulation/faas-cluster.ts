/**
 * A simulated FaaS cluster for fault tests: the real SchedulerNode and
 * ExecutorNode machines in one deterministic Simulation, with
 * - a simulated KVS ({@link SimulatedKvs}): one in-memory map of lattices that the schedulers'
 *   tasks and the executors' result writes share, each access answered after a seeded virtual
 *   delay;
 * - executors that can be restarted (each boot reports its own incarnation, `boot<n>`, as a
 *   process's random nonce would; `incarnations: false` turns that off) and added later
 *   ({@link FaasSim.addExecutor}); schedulers that can be restarted too (each boot `boot<n>`: a
 *   new owner of async runs, which takes its previous boot's over);
 * - a simulated executor host ({@link SimulatedHost}): the executor's MachineTasks, running plain
 *   JS functions from a registry by name (the registered code is ignored; the registration itself
 *   goes through the scheduler for real and the host reads the record back from the KVS), after a
 *   seeded virtual run time, with the function's timeout;
 * - a client machine ({@link FaasClient}) that registers functions and DAGs with a scheduler, then
 *   sends calls at planned times and records every answer by request id, with its own deadline
 *   per request (like the SDK's Rpc timeout);
 * - a log of the frames the network dropped ({@link DropLog}), so a test can tell an error that a
 *   lost message explains from one nothing explains.
 *
 * Every callback runs from a virtual-clock timer, never a promise: the simulation stays
 * synchronous and a run is a pure function of its seed.
 */
import { ErrorCode, LfaasError, Priority, decodeLattice, ensureLfaasError } from '../../lattices/index.js';
import type { AnyLattice } from '../../lattices/index.js';
import { decodeEnvelope, decodeValue, encodeValue, envelopeWith, errorCodeFromWire, functionKey, functionRecordOf, resultKeyOf } from '../../protocol/index.js';
import type { Effect, Envelope, Machine, MachineInput, MachineTasks, PbTypes, Random } from '../../protocol/index.js';
import { ExecutorNode } from '../../executor/index.js';
import type { ExecutorTask, HostStatus, RunOutcome } from '../../executor/index.js';
import { SchedulerNode } from '../../scheduler/index.js';
import type { SchedulerOptions, SchedulerTask } from '../../scheduler/index.js';
import type { Simulation } from '../simulator/simulation.js';

/** A virtual duration range, drawn uniformly. */
export interface DelayRange {
  readonly min: number;
  readonly max: number;
}

function draw(random: Random, range: DelayRange): number {
  return range.max > range.min ? range.min + random.int(range.max - range.min + 1) : range.min;
}

// ---- the KVS ---------------------------------------------------------------------------------

/**
 * The KVS as one map of lattices: a put merges, a get returns a copy (decoded from the encoding,
 * so a value that does not encode fails here as it would on the wire). Each access happens after
 * a seeded delay on the virtual clock.
 */
export class SimulatedKvs {
  readonly data = new Map<string, AnyLattice>();
  readonly counters = { gets: 0, puts: 0, deletes: 0 };

  constructor(
    private readonly sim: Simulation,
    private readonly random: Random,
    private readonly delayMs: DelayRange = { min: 1, max: 4 },
  ) {}

  get(key: string): AnyLattice | undefined {
    this.counters.gets++;
    const value = this.data.get(key);
    return value === undefined ? undefined : decodeLattice(value.encode());
  }

  merge(key: string, value: AnyLattice): void {
    this.counters.puts++;
    const copy = decodeLattice(value.encode());
    const existing = this.data.get(key);
    if (existing !== undefined && existing.type !== copy.type) throw new LfaasError(ErrorCode.KVS_LATTICE_MISMATCH, `${key} holds type ${existing.type}, not ${copy.type}`);
    this.data.set(key, existing === undefined ? copy : (existing.merge(copy) as AnyLattice));
  }

  delete(key: string): void {
    this.counters.deletes++;
    this.data.delete(key);
  }

  /** Runs `work` after a seeded KVS delay. */
  later(work: () => void): void {
    this.sim.clock.setTimer(draw(this.random, this.delayMs), work);
  }

  /** The scheduler's tasks on this KVS (what KvsTasks does on a real one). */
  schedulerTasks(): MachineTasks {
    return {
      run: (task, done) =>
        this.later(() => {
          let result: unknown;
          try {
            result = this.perform(task as SchedulerTask);
          } catch (error) {
            done(ensureLfaasError(error));
            return;
          }
          done(undefined, result);
        }),
    };
  }

  private perform(task: SchedulerTask): unknown {
    switch (task.op) {
      case 'get':
        return this.get(task.key);
      case 'getMany':
        return task.keys.map((key) => this.get(key));
      case 'put':
        this.merge(task.key, task.value);
        return undefined;
      case 'delete':
        for (const key of task.keys) this.delete(key);
        return undefined;
    }
  }
}

// ---- the executor host -----------------------------------------------------------------------

/** A function the simulated host runs by name. */
export interface SimFunction {
  readonly fn: (...args: unknown[]) => unknown;
  /** Its virtual run time (default 1-10 ms); beyond its timeout the call fails EXEC_TIMEOUT. */
  readonly runMs?: DelayRange;
  /** Its registered timeout (default 60 s). */
  readonly timeoutMs?: number;
}

export type FunctionRegistry = ReadonlyMap<string, SimFunction>;

/**
 * The executor's MachineTasks in the simulator: `run` looks the function's record up in the KVS
 * (registered for real), runs the registry's function of that name after a seeded virtual run
 * time and answers its msgpack result; `writeResult` merges the Priority record into the KVS;
 * `status` reports warm functions and load. A crashed host (its machine no longer up) finishes
 * nothing: its pending work is dropped, as a killed process's would be.
 */
export class SimulatedHost implements MachineTasks {
  private readonly warm = new Set<string>();
  private running = 0;
  readonly counters = { runs: 0, userErrors: 0, timeouts: 0, resultWrites: 0 };

  constructor(
    private readonly sim: Simulation,
    private readonly kvs: SimulatedKvs,
    private readonly registry: FunctionRegistry,
    private readonly random: Random,
    /** Whether this host's process is still alive (false after a crash or restart). */
    private readonly alive: () => boolean,
    private readonly capacity = 8,
  ) {}

  run(task: unknown, done: (error: Error | undefined, result?: unknown) => void): void {
    const after = (delayMs: number, work: () => void): void =>
      void this.sim.clock.setTimer(delayMs, () => {
        if (this.alive()) work();
      });
    const t = task as ExecutorTask;
    switch (t.op) {
      case 'run':
        this.runFunction(t, after, done);
        return;
      case 'status': {
        const status: HostStatus = { warm: [...this.warm].sort(), keys: [], capacity: this.capacity, load: this.running };
        after(0, () => done(undefined, status));
        return;
      }
      case 'prepare':
        after(draw(this.random, { min: 1, max: 3 }), () => {
          for (const ref of t.functions) this.warm.add(`${ref.name}@${ref.version}`);
          done(undefined);
        });
        return;
      case 'warm':
        after(draw(this.random, { min: 1, max: 3 }), () => {
          this.warm.add(`${t.name}@${t.version}`);
          done(undefined);
        });
        return;
      case 'writeResult':
        this.kvs.later(() => {
          if (!this.alive()) return;
          const record = t.value !== undefined ? { ok: true, value: t.value } : { ok: false, code: t.error?.code ?? ErrorCode.INTERNAL, message: t.error?.message ?? '' };
          try {
            this.kvs.merge(t.key, new Priority(t.attempt, record));
          } catch (error) {
            done(ensureLfaasError(error));
            return;
          }
          this.counters.resultWrites++;
          done(undefined);
        });
        return;
      case 'pinned':
      case 'deliver':
      case 'endRun':
      case 'cancel':
        after(0, () => done(undefined));
        return;
    }
  }

  private runFunction(task: Extract<ExecutorTask, { op: 'run' }>, after: (delayMs: number, work: () => void) => void, done: (error: Error | undefined, result?: unknown) => void): void {
    this.counters.runs++;
    let record;
    try {
      record = functionRecordOf(this.kvs.get(functionKey(task.name, task.version)));
    } catch (error) {
      after(0, () => done(ensureLfaasError(error)));
      return;
    }
    const spec = this.registry.get(task.name);
    if (record === undefined || spec === undefined) {
      after(1, () => done(new LfaasError(ErrorCode.SCHED_FUNCTION_NOT_FOUND, `function ${task.name}@${task.version} is not registered`)));
      return;
    }
    this.warm.add(`${task.name}@${task.version}`);
    const timeoutMs = Math.max(1, Math.min(record.timeoutMs, task.timeoutMs));
    const runMs = draw(this.random, spec.runMs ?? { min: 1, max: 10 });
    this.running++;
    if (runMs > timeoutMs) {
      after(timeoutMs, () => {
        this.running--;
        this.counters.timeouts++;
        done(new LfaasError(ErrorCode.EXEC_TIMEOUT, `${task.name}@${task.version} did not finish in ${timeoutMs} ms`));
      });
      return;
    }
    after(runMs, () => {
      this.running--;
      let outcome: RunOutcome;
      try {
        const args = [...task.upstream.map((bytes) => decodeValue(bytes)), ...task.args.map((argument) => (argument.value ? decodeValue(argument.value) : null))];
        let value: unknown;
        try {
          value = spec.fn(...args);
        } catch (error) {
          this.counters.userErrors++;
          throw new LfaasError(ErrorCode.EXEC_USER_ERROR, `${task.name}: ${error instanceof Error ? error.message : String(error)}`);
        }
        outcome = { value: encodeValue(value), cut: [] };
      } catch (error) {
        done(ensureLfaasError(error));
        return;
      }
      done(undefined, outcome);
    });
  }
}

// ---- the network log -------------------------------------------------------------------------

/** A frame the network dropped when it was sent. */
export interface DroppedFrame {
  readonly atMs: number;
  /** Sender and receiver addresses (`mem://name`). */
  readonly from: string;
  readonly to: string;
  readonly body: string;
  readonly requestId: number;
  readonly responseTo: number;
  /** The run (call id) it belongs to, when it names one. */
  readonly runId: string;
  /** A schedule's attempt (0 for other frames). */
  readonly attempt: number;
}

/**
 * Records the frames the network drops at send time (loss; not frames to a crashed machine).
 * It only observes: the network draws its randomness exactly as without it.
 */
export class DropLog {
  readonly frames: DroppedFrame[] = [];

  constructor(sim: Simulation) {
    const network = sim.network as unknown as { transmit(from: string, to: string, frame: Uint8Array): void };
    const transmit = network.transmit.bind(network);
    network.transmit = (from, to, frame) => {
      const before = sim.network.counters.dropped;
      transmit(from, to, frame);
      if (sim.network.counters.dropped === before) return;
      const envelope = decodeEnvelope(frame);
      const runId =
        envelope.schedule?.runId ?? envelope.trigger?.runId ?? envelope.callResponse?.callId ?? envelope.callRequest?.callId ?? envelope.dagCall?.callId ?? '';
      this.frames.push({ atMs: sim.clock.now(), from: sim.address(from), to: sim.address(to), body: envelope.body ?? '', requestId: Number(envelope.requestId), responseTo: Number(envelope.responseTo), runId, attempt: envelope.schedule?.attempt ?? 0 });
    };
  }

  /** Dropped frames of run `runId` (its call, schedules, triggers, answers) and answers to `requestId` at `client`. */
  of(runId: string, client: string, requestId: number): DroppedFrame[] {
    return this.frames.filter((frame) => frame.runId === runId || (frame.to === client && frame.responseTo === requestId) || (frame.from === client && frame.requestId === requestId));
  }
}

// ---- the client ------------------------------------------------------------------------------

/** What a client asks. */
export type ClientCall =
  | { readonly kind: 'call'; readonly fn: string; readonly args: readonly unknown[]; readonly timeoutMs: number; readonly async: boolean }
  | { readonly kind: 'dag'; readonly dag: string; readonly args: Readonly<Record<string, readonly unknown[]>>; readonly timeoutMs: number; readonly async: boolean };

/** A DAG as the SDK's builder makes it: a function's parents' results are its first arguments, in the edges' order. */
export interface SimDag {
  readonly name: string;
  readonly functions: readonly string[];
  readonly edges: readonly (readonly [string, string])[];
}

export type SetupStep = { readonly kind: 'function'; readonly name: string; readonly timeoutMs: number } | { readonly kind: 'dag'; readonly dag: SimDag };

/** An answer (or the lack of one). */
export type CallOutcome =
  | { readonly kind: 'result'; readonly value: unknown }
  | { readonly kind: 'error'; readonly code: ErrorCode; readonly message: string }
  /** An async call recorded by the scheduler. */
  | { readonly kind: 'accepted' }
  /** The client's own deadline passed (TRANSPORT_TIMEOUT, as the SDK's Rpc would reject). */
  | { readonly kind: 'timeout' };

export interface PlannedCall {
  /** After the setup, when the client sends it. */
  readonly atMs: number;
  readonly call: ClientCall;
}

export interface CallRecord {
  readonly index: number;
  readonly call: ClientCall;
  readonly callId: string;
  /** Of the latest attempt (a call refused SCHED_NO_CAPACITY with a hint is sent again). */
  requestId: number;
  scheduler: string;
  /** Times it was refused SCHED_NO_CAPACITY with a retry-after hint and sent again after it. */
  capacityRetries: number;
  /** Its answer is such a refusal, after the retries ran out (or the deadline left no room for one). */
  refusedSaturated?: boolean;
  readonly sentAtMs: number;
  /** When the client stops waiting for the latest attempt's answer. */
  deadlineMs: number;
  /** The call's own budget from its first send: a refused call is sent again only within it (as the SDK). */
  readonly budgetEndMs: number;
  /** The first answer, or the timeout. */
  outcome: CallOutcome | undefined;
  endedAtMs: number | undefined;
  /** Every answer that arrived, late and duplicate ones included. */
  readonly answers: CallOutcome[];
  readonly resultKey: string;
}

export interface FaasClientOptions {
  readonly address: string;
  readonly schedulers: readonly string[];
  readonly setup: readonly SetupStep[];
  readonly calls: readonly PlannedCall[];
  /** Waited before the setup (executors heartbeat in). */
  readonly startDelayMs?: number;
  /** A setup request's deadline; it is sent again after it (at most `setupAttemptsMax` times). */
  readonly setupTimeoutMs?: number;
  readonly setupAttemptsMax?: number;
  /** Beyond a call's own timeout, how long the client waits for its answer. */
  readonly answerSlackMs?: number;
  /** The deadline of an async call's acceptance. */
  readonly acceptTimeoutMs?: number;
  /** As the SDK: a sync call refused SCHED_NO_CAPACITY with a hint is sent again after it, this many times at most. */
  readonly capacityRetriesMax?: number;
}

const DEADLINE = 'deadline:';
const CALL = 'call:';
const RETRY = 'retry:';

/**
 * The client: waits, registers every setup step in order through a scheduler (each request with
 * a deadline, resent on timeout), then sends each planned call at its time, round-robin over the
 * schedulers, and records what comes back.
 */
export class FaasClient implements Machine {
  readonly id: string;
  readonly records: CallRecord[] = [];
  readonly setupErrors: string[] = [];
  /** Virtual time the setup finished (undefined until it did). */
  setupDoneAtMs: number | undefined;
  private readonly byRequest = new Map<number, CallRecord>();
  private step = 0;
  private stepAttempts = 0;
  private stepRequest = 0;
  private nextRequestId = 1;
  private nextScheduler = 0;
  private nowMs = 0;

  constructor(private readonly options: FaasClientOptions) {
    this.id = options.address;
  }

  handle(input: MachineInput, nowMs: number): readonly Effect[] {
    this.nowMs = nowMs;
    switch (input.kind) {
      case 'start':
        return [{ kind: 'timer', timer: 'setup', delayMs: this.options.startDelayMs ?? 300 }];
      case 'timer':
        return this.onTimer(input.timer);
      case 'message':
        return this.onMessage(input.envelope);
      case 'taskDone':
      case 'persisted':
        return [];
    }
  }

  private onTimer(timer: string): Effect[] {
    if (timer === 'setup') return this.sendStep();
    if (timer.startsWith(CALL)) return this.sendCall(Number(timer.slice(CALL.length)));
    if (timer.startsWith(RETRY)) {
      const record = this.byRequest.get(Number(timer.slice(RETRY.length)));
      return record === undefined ? [] : this.resend(record);
    }
    if (timer.startsWith(DEADLINE)) {
      const requestId = Number(timer.slice(DEADLINE.length));
      if (requestId === this.stepRequest) {
        this.stepRequest = 0;
        if (this.stepAttempts >= (this.options.setupAttemptsMax ?? 10)) {
          this.setupErrors.push(`step ${this.step}: no answer after ${this.stepAttempts} attempts`);
          return this.nextStep();
        }
        return this.sendStep();
      }
      const record = this.byRequest.get(requestId);
      if (record !== undefined && record.outcome === undefined) {
        record.outcome = { kind: 'timeout' };
        record.endedAtMs = this.nowMs;
      }
    }
    return [];
  }

  private scheduler(): string {
    const schedulers = this.options.schedulers;
    return schedulers[this.nextScheduler++ % schedulers.length]!;
  }

  private sendStep(): Effect[] {
    const step = this.options.setup[this.step];
    if (step === undefined) {
      this.setupDoneAtMs = this.nowMs;
      return this.options.calls.map((planned, i): Effect => ({ kind: 'timer', timer: CALL + i, delayMs: planned.atMs }));
    }
    this.stepAttempts++;
    const requestId = this.nextRequestId++;
    this.stepRequest = requestId;
    const body: PbTypes.IEnvelope =
      step.kind === 'function'
        ? { registerFunction: { spec: { name: step.name, code: Buffer.from(`/* ${step.name}: run by the simulated host */`, 'utf8'), memoryMb: 64, timeoutMs: step.timeoutMs, keepAliveMs: 60_000 } } }
        : { registerDag: { spec: { name: step.dag.name, functions: [...step.dag.functions], edges: step.dag.edges.map(([from, to]) => ({ fromFunction: from, toFunction: to })) } } };
    return [
      { kind: 'send', to: this.scheduler(), envelope: envelopeWith(body, { requestId, replyTo: this.id, sender: this.id }) },
      { kind: 'timer', timer: DEADLINE + requestId, delayMs: this.options.setupTimeoutMs ?? 500 },
    ];
  }

  private nextStep(): Effect[] {
    this.step++;
    this.stepAttempts = 0;
    return this.sendStep();
  }

  private sendCall(index: number): Effect[] {
    const planned = this.options.calls[index];
    if (planned === undefined) return [];
    const call = planned.call;
    const callId = `${this.id.replace('mem://', '')}-${index}`;
    const resultKey = call.async ? resultKeyOf(callId) : '';
    const waitMs = call.async ? (this.options.acceptTimeoutMs ?? 1000) : call.timeoutMs + (this.options.answerSlackMs ?? 1000);
    const record: CallRecord = { index, call, callId, requestId: 0, scheduler: '', capacityRetries: 0, sentAtMs: this.nowMs, deadlineMs: this.nowMs + waitMs, budgetEndMs: this.nowMs + call.timeoutMs, outcome: undefined, endedAtMs: undefined, answers: [], resultKey };
    this.records.push(record);
    return this.resend(record);
  }

  /** Sends (again) the call of `record`, under a new request id, with the deadline left. */
  private resend(record: CallRecord): Effect[] {
    const { call, callId, resultKey } = record;
    const requestId = this.nextRequestId++;
    const encode = (args: readonly unknown[]): PbTypes.IArgument[] => args.map((arg) => ({ value: encodeValue(arg) }));
    const body: PbTypes.IEnvelope =
      call.kind === 'call'
        ? { callRequest: { callId, function: call.fn, args: encode(call.args), timeoutMs: call.timeoutMs, async: call.async, resultKey } }
        : { dagCall: { callId, dag: call.dag, args: Object.fromEntries(Object.entries(call.args).map(([name, args]) => [name, { args: encode(args) }])), timeoutMs: call.timeoutMs, async: call.async, resultKey } };
    // Each attempt waits as long as the first (the SDK's per-request timeout).
    if (record.requestId !== 0) record.deadlineMs = this.nowMs + call.timeoutMs + (this.options.answerSlackMs ?? 1000);
    record.requestId = requestId;
    record.scheduler = this.scheduler();
    this.byRequest.set(requestId, record);
    return [
      { kind: 'send', to: record.scheduler, envelope: envelopeWith(body, { requestId, replyTo: this.id, sender: this.id }) },
      { kind: 'timer', timer: DEADLINE + requestId, delayMs: Math.max(0, record.deadlineMs - this.nowMs) },
    ];
  }

  private onMessage(envelope: Envelope): Effect[] {
    const requestId = Number(envelope.responseTo);
    if (requestId !== 0 && requestId === this.stepRequest) return this.onStepAnswer(envelope, requestId);
    const record = this.byRequest.get(requestId);
    if (record === undefined) return [];
    const outcome = outcomeOf(envelope, record.call.async);
    // Refused with a retry-after hint (nothing ran): sent again after it, as the SDK does; the
    // refusal answered that attempt, not the call.
    const hint = envelope.callResponse?.error?.retryAfterMs ?? 0;
    if (record.outcome === undefined && requestId === record.requestId && !record.call.async && outcome.kind === 'error' && outcome.code === ErrorCode.SCHED_NO_CAPACITY && hint > 0 && record.capacityRetries < (this.options.capacityRetriesMax ?? 20) && this.nowMs + hint < record.budgetEndMs) {
      record.capacityRetries++;
      return [{ kind: 'cancelTimer', timer: DEADLINE + requestId }, { kind: 'timer', timer: RETRY + requestId, delayMs: hint }];
    }
    record.answers.push(outcome);
    if (record.outcome !== undefined || requestId !== record.requestId) return [];
    if (outcome.kind === 'error' && outcome.code === ErrorCode.SCHED_NO_CAPACITY && hint > 0) record.refusedSaturated = true;
    record.outcome = outcome;
    record.endedAtMs = this.nowMs;
    return [{ kind: 'cancelTimer', timer: DEADLINE + requestId }];
  }

  private onStepAnswer(envelope: Envelope, requestId: number): Effect[] {
    this.stepRequest = 0;
    const error = envelope.registerFunctionResponse?.error ?? envelope.done?.error ?? envelope.errorReply?.error;
    if (error?.code) this.setupErrors.push(`step ${this.step}: ${errorCodeFromWire(error.code)} ${error.message ?? ''}`);
    else if (envelope.body !== 'registerFunctionResponse' && envelope.body !== 'done') this.setupErrors.push(`step ${this.step}: unexpected ${envelope.body ?? 'nothing'}`);
    return [{ kind: 'cancelTimer', timer: DEADLINE + requestId }, ...this.nextStep()];
  }
}

function outcomeOf(envelope: Envelope, async: boolean): CallOutcome {
  const error = envelope.callResponse?.error ?? envelope.errorReply?.error;
  if (error?.code) return { kind: 'error', code: errorCodeFromWire(error.code), message: error.message ?? '' };
  if (envelope.body !== 'callResponse') return { kind: 'error', code: ErrorCode.INTERNAL, message: `unexpected ${envelope.body ?? 'nothing'}` };
  if (async) return { kind: 'accepted' };
  const bytes = envelope.callResponse!.result;
  try {
    return { kind: 'result', value: bytes === undefined || bytes === null || bytes.byteLength === 0 ? undefined : decodeValue(bytes) };
  } catch (error) {
    return { kind: 'error', code: ErrorCode.EXEC_BAD_VALUE, message: `undecodable result: ${String(error)}` };
  }
}

// ---- expected results ------------------------------------------------------------------------

export type Expected = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly code: ErrorCode };

/** A run time range beyond `timeoutMs` makes a function time out (when its run time always exceeds it). */
function timesOut(spec: SimFunction, budgetMs: number): boolean {
  const runMs = spec.runMs ?? { min: 1, max: 10 };
  return runMs.min > Math.min(budgetMs, spec.timeoutMs ?? 60_000);
}

function apply(spec: SimFunction, args: readonly unknown[]): Expected {
  try {
    // The value as it arrives: through the msgpack codec.
    return { ok: true, value: decodeValue(encodeValue(spec.fn(...args))) };
  } catch {
    return { ok: false, code: ErrorCode.EXEC_USER_ERROR };
  }
}

/**
 * What a call must answer, computed here from the registry alone (not from the code under test):
 * a DAG function gets its parents' results first, in the order of the edges into it (the SDK
 * builder's documented order), then its own arguments; a failure anywhere upstream is the answer.
 */
export function expectedOf(call: ClientCall, registry: FunctionRegistry, dags: ReadonlyMap<string, SimDag>): Expected {
  if (call.kind === 'call') {
    const spec = registry.get(call.fn);
    if (spec === undefined) return { ok: false, code: ErrorCode.SCHED_FUNCTION_NOT_FOUND };
    if (timesOut(spec, call.timeoutMs)) return { ok: false, code: ErrorCode.EXEC_TIMEOUT };
    return apply(spec, call.args);
  }
  const dag = dags.get(call.dag);
  if (dag === undefined) return { ok: false, code: ErrorCode.SCHED_DAG_NOT_FOUND };
  const memo = new Map<string, Expected>();
  const valueOf = (name: string): Expected => {
    const known = memo.get(name);
    if (known !== undefined) return known;
    const upstream: unknown[] = [];
    let failed: Expected | undefined;
    for (const [from, to] of dag.edges) {
      if (to !== name) continue;
      const parent = valueOf(from);
      if (!parent.ok) failed ??= parent;
      else upstream.push(parent.value);
    }
    const spec = registry.get(name)!;
    const result = failed ?? (timesOut(spec, call.timeoutMs) ? { ok: false as const, code: ErrorCode.EXEC_TIMEOUT } : apply(spec, [...upstream, ...(call.args[name] ?? [])]));
    memo.set(name, result);
    return result;
  };
  const sink = dag.functions.find((name) => !dag.edges.some(([from]) => from === name))!;
  return valueOf(sink);
}

// ---- the cluster -----------------------------------------------------------------------------

export interface FaasShape {
  readonly schedulers: number;
  readonly executors: number;
  readonly kvsDelayMs?: DelayRange;
  readonly scheduler?: Partial<Omit<SchedulerOptions, 'address' | 'random'>>;
  readonly statusPeriodMs?: number;
  /**
   * Whether each boot of an executor reports its own incarnation (`<address>#<boot>`, as the
   * process's random nonce would; default true). False: every boot reports its address alone.
   */
  readonly incarnations?: boolean;
  /** Runtime slots each executor reports (8 by default): fewer make the schedulers hold calls back. */
  readonly executorCapacity?: number;
}

export const schedulerName = (s: number): string => `sched${s}`;
export const executorName = (e: number): string => `exec${e}`;

export interface FaasSim {
  readonly sim: Simulation;
  readonly kvs: SimulatedKvs;
  readonly drops: DropLog;
  readonly schedulerIds: readonly string[];
  /** The executors, those added later included. */
  readonly executorIds: readonly string[];
  /** The current host of each executor (a restart makes a new one). */
  readonly hosts: Map<string, SimulatedHost>;
  scheduler(id: string): SchedulerNode | undefined;
  executor(id: string): ExecutorNode | undefined;
  /** Adds a client machine `id` and returns it. */
  addClient(id: string, options: Omit<FaasClientOptions, 'address' | 'schedulers'>): FaasClient;
  /** Adds (and starts) an executor machine `id` that reports to every scheduler. */
  addExecutor(id: string): void;
}

/** Builds schedulers, executors (each reporting to every scheduler) and the shared KVS in `sim`. */
export function buildFaasCluster(sim: Simulation, shape: FaasShape, registry: FunctionRegistry): FaasSim {
  const drops = new DropLog(sim);
  const kvs = new SimulatedKvs(sim, sim.random.fork(), shape.kvsDelayMs);
  const schedulerIds = Array.from({ length: shape.schedulers }, (_, s) => schedulerName(s));
  const executorIds = Array.from({ length: shape.executors }, (_, e) => executorName(e));
  const schedulerAddresses = schedulerIds.map((id) => sim.address(id));
  for (const id of schedulerIds) {
    const random = sim.random.fork();
    // Each boot's nonce, as for executors: a restarted scheduler is a new boot at the same address.
    let boots = 0;
    sim.add(
      id,
      () => {
        boots++;
        return { machine: new SchedulerNode({ address: sim.address(id), random: random.fork(), executorTimeoutMs: 600, incarnation: `boot${boots}`, ...shape.scheduler }), tasks: kvs.schedulerTasks() };
      },
      'scheduler',
    );
  }
  const hosts = new Map<string, SimulatedHost>();
  const addExecutor = (id: string): void => {
    const random = sim.random.fork();
    // Each boot's nonce: a count of boots, deterministic (a process draws a random one).
    let boots = 0;
    sim.add(id, () => {
      boots++;
      const host: SimulatedHost = new SimulatedHost(sim, kvs, registry, random.fork(), () => sim.isUp(id) && hosts.get(id) === host, shape.executorCapacity ?? 8);
      hosts.set(id, host);
      const options = {
        address: sim.address(id),
        schedulers: schedulerAddresses,
        ...(shape.statusPeriodMs === undefined ? {} : { statusPeriodMs: shape.statusPeriodMs }),
        ...(shape.incarnations === false ? {} : { incarnation: `boot${boots}` }),
      };
      return { machine: new ExecutorNode(options), tasks: host };
    }, 'executor');
  };
  for (const id of executorIds) addExecutor(id);
  return {
    sim,
    kvs,
    drops,
    schedulerIds,
    executorIds,
    hosts,
    scheduler: (id) => sim.machine<SchedulerNode>(id),
    executor: (id) => sim.machine<ExecutorNode>(id),
    addClient: (id, options) => {
      const client = new FaasClient({ ...options, address: sim.address(id), schedulers: schedulerAddresses });
      sim.add(id, () => client);
      return client;
    },
    addExecutor: (id) => {
      executorIds.push(id);
      addExecutor(id);
    },
  };
}
