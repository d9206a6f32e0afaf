/**
 * Direct dispatch, the client's side: a sync call whose run one executor ran alone earns a short
 * lease (the scheduler's `leaseMs`, 1 s by default) to send the same function or DAG straight to
 * that executor as a `Schedule`, saving the hop through the scheduler.
 *
 * - Leases are kept per call key (function, version, consistency; or DAG, consistency), at most
 *   16 executors per key; a call takes the live lease whose executor has the fewest of this
 *   client's calls in flight. A registration drops the leases of its name; a busy executor
 *   (SCHED_NO_CAPACITY: nothing ran) loses its leases and the call goes through a scheduler.
 * - Executors are watched while direct calls are in flight: pinged every 250 ms, one that misses
 *   four pings in a row fails them all with EXEC_LOST (and loses its leases), as the scheduler
 *   would, so a dead executor costs about a second, not the call's timeout.
 * - Which executor runs each direct call in flight, where a cancel of it goes too.
 */
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { pb } from '../protocol/index.js';
import type { PbTypes, Rpc } from '../protocol/index.js';

/** A lease on an executor for one function (at one version) or one DAG. */
interface DirectLease {
  readonly executor: string;
  readonly expiresAtMs: number;
  readonly lease: PbTypes.ILease;
}

/** An executor with direct calls in flight, and its failure detector. */
interface ExecutorWatch {
  inFlight: number;
  readonly rejects: Set<(error: LfaasError) => void>;
  misses: number;
  pinging: boolean;
  timer: NodeJS.Timeout | undefined;
}

const PING_PERIOD_MS = 250;
const PING_MISSES_MAX = 4;
const LEASES_PER_KEY_MAX = 16;

/** The client counters direct dispatch moves. */
export interface DirectCounters {
  direct: number;
  leases: number;
  executorsLost: number;
}

export interface DirectCallsOptions {
  /** Off: no lease is taken, every call goes through a scheduler. */
  readonly enabled: boolean;
  /** Extra time beyond a call's own timeout before the client gives up on an answer. */
  readonly answerSlackMs: number;
  /** A call's budget when neither the call nor the lease names one. */
  readonly defaultTimeoutMs: number;
}

export class DirectCalls {
  private readonly leases = new Map<string, DirectLease[]>();
  private readonly watched = new Map<string, ExecutorWatch>();
  /** Direct calls in flight: call id -> the executor running it. */
  private readonly running = new Map<string, string>();
  private closed = false;

  constructor(
    private readonly rpc: Rpc,
    private readonly counters: DirectCounters,
    private readonly options: DirectCallsOptions,
  ) {}

  /**
   * Sends the run straight to a leased executor, if this client holds a live lease for `key`;
   * resolves with the executor's answer, or undefined when the call must go through a scheduler.
   */
  async send(key: string, callId: string, args: Record<string, PbTypes.IArguments>, consistency: number, timeoutMs: number | undefined, trace = ''): Promise<PbTypes.ICallResponse | undefined> {
    if (!this.options.enabled) return undefined;
    const held = this.leaseOf(key);
    if (held === undefined) return undefined;
    const lease = held.lease;
    // Arguments for a function the run lacks: the scheduler refuses those (EXEC_BAD_VALUE).
    const leased = new Set((lease.functions ?? []).map((fn) => fn.name ?? ''));
    if (Object.keys(args).some((name) => !leased.has(name))) return undefined;
    const schedule: PbTypes.ISchedule = {
      runId: callId,
      dag: lease.dag ?? '',
      functions: (lease.functions ?? []).map((fn) => ({ name: fn.name ?? '', version: fn.version ?? 0, executor: held.executor, successors: fn.successors ?? [], parents: fn.parents ?? 0, parentNames: fn.parentNames ?? [], args: args[fn.name ?? '']?.args ?? [] })),
      consistency,
      timeoutMs: timeoutMs || lease.timeoutMs || this.options.defaultTimeoutMs,
      // The caller's span (client/trace-spans.ts): the executor's run span is its child.
      ...(trace.length > 0 ? { traceId: trace } : {}),
    };
    this.running.set(callId, held.executor);
    const response = (await this.watchedRequest(held.executor, { schedule }, (schedule.timeoutMs ?? this.options.defaultTimeoutMs) + this.options.answerSlackMs).finally(() => this.running.delete(callId))).callResponse;
    // Refused (the executor is busy): nothing ran; the scheduler places it.
    if (response?.error?.code === pb.ErrorCode.SCHED_NO_CAPACITY) {
      this.drop((_key, entry) => entry.executor === held.executor);
      return undefined;
    }
    this.counters.direct++;
    return response ?? undefined;
  }

  /** The executor running direct call `callId` now, if it is one. */
  executorOf(callId: string): string | undefined {
    return this.running.get(callId);
  }

  /** Keeps the lease a scheduler's answer granted for `key`. */
  take(key: string, lease: PbTypes.ILease | null | undefined): void {
    if (!this.options.enabled || lease === undefined || lease === null || !lease.executor || !lease.leaseMs) return;
    this.counters.leases++;
    const entries = (this.leases.get(key) ?? []).filter((entry) => entry.executor !== lease.executor).slice(-(LEASES_PER_KEY_MAX - 1));
    entries.push({ executor: lease.executor, expiresAtMs: Date.now() + lease.leaseMs, lease });
    this.leases.set(key, entries);
  }

  /** Drops the leases `drop` names. */
  drop(drop: (key: string, entry: DirectLease) => boolean): void {
    for (const [key, entries] of this.leases) {
      const kept = entries.filter((entry) => !drop(key, entry));
      if (kept.length === 0) this.leases.delete(key);
      else this.leases.set(key, kept);
    }
  }

  close(): void {
    this.closed = true;
    for (const watch of this.watched.values()) clearInterval(watch.timer);
    this.watched.clear();
  }

  private leaseOf(key: string): DirectLease | undefined {
    const entries = this.leases.get(key);
    if (entries === undefined) return undefined;
    const now = Date.now();
    const live = entries.filter((entry) => entry.expiresAtMs > now);
    if (live.length === 0) {
      this.leases.delete(key);
      return undefined;
    }
    if (live.length !== entries.length) this.leases.set(key, live);
    // The executor with the fewest of this client's calls in flight.
    let best = live[0]!;
    for (const entry of live) if ((this.watched.get(entry.executor)?.inFlight ?? 0) < (this.watched.get(best.executor)?.inFlight ?? 0)) best = entry;
    return best;
  }

  /** A request to an executor, watched while it is in flight. */
  private watchedRequest(executor: string, body: PbTypes.IEnvelope, timeoutMs: number): Promise<PbTypes.Envelope> {
    let watch = this.watched.get(executor);
    if (watch === undefined) {
      watch = { inFlight: 0, rejects: new Set(), misses: 0, pinging: false, timer: undefined };
      this.watched.set(executor, watch);
    }
    const entry = watch;
    entry.inFlight++;
    if (entry.timer === undefined) {
      entry.misses = 0;
      entry.timer = setInterval(() => this.ping(executor, entry), PING_PERIOD_MS);
      entry.timer.unref();
    }
    return new Promise<PbTypes.Envelope>((resolve, reject) => {
      entry.rejects.add(reject);
      this.rpc
        .request(executor, body, { timeoutMs })
        .then(resolve, reject)
        .finally(() => {
          entry.rejects.delete(reject);
          entry.inFlight--;
          if (entry.inFlight === 0) {
            clearInterval(entry.timer);
            entry.timer = undefined;
          }
        });
    });
  }

  private ping(executor: string, watch: ExecutorWatch): void {
    if (watch.pinging || this.closed) return;
    watch.pinging = true;
    this.rpc.request(executor, { echo: {} }, { timeoutMs: PING_PERIOD_MS * 2 }).then(
      () => {
        watch.pinging = false;
        watch.misses = 0;
      },
      () => {
        watch.pinging = false;
        if (++watch.misses < PING_MISSES_MAX) return;
        this.counters.executorsLost++;
        clearInterval(watch.timer);
        watch.timer = undefined;
        this.watched.delete(executor);
        this.drop((_key, entry) => entry.executor === executor);
        const error = new LfaasError(ErrorCode.EXEC_LOST, `executor ${executor} stopped answering`);
        for (const reject of watch.rejects) reject(error);
        watch.rejects.clear();
      },
    );
  }
}
