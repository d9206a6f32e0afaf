/**
 * The runtime pool's keep-alive bookkeeping: one policy (executor/keepalive-policy.ts) per
 * function version, the idle times it learns from, and the prewarms it plans.
 *
 * - The time from a call's arrival to the next call's is recorded per function version, across
 *   the pool's runtimes. `fixed` keeps a realm `keepAliveMs` after its last use (15 minutes by
 *   default); `adaptive` (Shahrad et al.'s hybrid histogram) may answer a prewarm window: the
 *   pool then unloads the function's idle realms once its call finishes, and this prepares it
 *   again at the call's arrival + prewarmMs, through `prewarm` (one timer, for the earliest such
 *   deadline; the pool's sweep calls {@link KeepAlives.runDue} as a backstop).
 * - `timeScale` divides every window and multiplies every idle time (benchmarks run a minute in a
 *   second).
 * - Bounded: at most {@link FUNCTION_STATES_MAX} versions, the least recently called forgotten.
 */
import { keepAlivePolicy } from './keepalive-policy.js';
import type { HybridOptions, KeepAlivePolicy, KeepAliveWindows } from './keepalive-policy.js';

/** A realm's keep-alive when its function names none (fixed policy). */
export const DEFAULT_KEEP_ALIVE_MS = 15 * 60_000;
/** Function versions whose keep-alive state is kept. */
const FUNCTION_STATES_MAX = 1024;

/** What keep-alive needs of a function version (the pool's `FunctionCode` has it). */
export interface KeepAliveSubject {
  readonly id: string;
  readonly keepAlivePolicy?: 'fixed' | 'adaptive';
  readonly keepAliveMs?: number;
}

/** A function's keep-alive as the pool applies it (real milliseconds: the time scale applied). */
export interface KeepAliveState {
  readonly policy: 'fixed' | 'adaptive';
  /** > 0: its realms are unloaded after a call and it is prepared again this long after the call's arrival. */
  readonly prewarmMs: number;
  /** How long a realm stays loaded unused (after the prewarm, if any). */
  readonly keepAliveMs: number;
  /** When its last call arrived (epoch ms), if one did. */
  readonly lastCallMs: number | undefined;
}

export interface KeepAlivesOptions<F extends KeepAliveSubject> {
  /** Every window divided by this, idle times multiplied (default 1). */
  readonly timeScale: number;
  /** The adaptive policy's histogram, in unscaled time. */
  readonly adaptive?: HybridOptions;
  /** A planned prewarm is due: prepare `fn` (unless it is loaded already). */
  prewarm(fn: F): void;
}

interface FunctionState<F> {
  /** Its latest code, what a prewarm prepares (kept for the `adaptive` policy only). */
  fn: F | undefined;
  readonly kind: 'fixed' | 'adaptive';
  readonly fixedMs: number;
  readonly policy: KeepAlivePolicy;
  lastCallMs: number | undefined;
  /** The policy's windows after the last call, scaled to real time. */
  windows: KeepAliveWindows;
  /** When the policy prepares it again (undefined: nothing planned). */
  repinAtMs: number | undefined;
}

export class KeepAlives<F extends KeepAliveSubject> {
  /** By function version, least recently called first. */
  private readonly functions = new Map<string, FunctionState<F>>();
  /** Functions with a prewarm planned, and the one timer for the earliest. */
  private readonly pending = new Set<FunctionState<F>>();
  private timer: NodeJS.Timeout | undefined;
  private timerAtMs = Number.POSITIVE_INFINITY;
  private closed = false;

  constructor(private readonly options: KeepAlivesOptions<F>) {
    if (!(options.timeScale > 0) || !Number.isFinite(options.timeScale)) throw new RangeError(`a keep-alive time scale of ${options.timeScale}`);
  }

  /**
   * `fn` was handed to the pool (its state made, or made anew if its policy changed, and now the
   * most recently used); `call`: a call, not a prepare, so its idle time is recorded and a
   * prewarm planned if its policy answers one.
   */
  touched(fn: F, call: boolean, nowMs: number): void {
    const state = this.stateOf(fn);
    if (call) this.callArrived(state, nowMs);
  }

  /** How long an unused realm of function version `id` stays loaded (real ms). */
  keepAliveMs(id: string): number {
    return this.functions.get(id)?.windows.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS / this.options.timeScale;
  }

  /** Whether function version `id` has a prewarm planned still ahead (its idle realms may be unloaded until then). */
  prewarmAhead(id: string, nowMs: number): boolean {
    const atMs = this.functions.get(id)?.repinAtMs;
    return atMs !== undefined && nowMs < atMs;
  }

  /** Every function version's keep-alive as applied now (real ms), by `name@version`. */
  windows(): Map<string, KeepAliveState> {
    const out = new Map<string, KeepAliveState>();
    for (const [id, state] of this.functions) out.set(id, { policy: state.kind, prewarmMs: state.windows.prewarmMs, keepAliveMs: state.windows.keepAliveMs, lastCallMs: state.lastCallMs });
    return out;
  }

  /** Hands the due prewarms to `prewarm` (unless their window has passed). */
  runDue(nowMs: number): void {
    if (this.closed || this.timerAtMs > nowMs) return;
    this.run(nowMs);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.pending.clear();
  }

  private stateOf(fn: F): FunctionState<F> {
    const kind = fn.keepAlivePolicy === 'adaptive' ? 'adaptive' : 'fixed';
    const fixedMs = fn.keepAliveMs !== undefined && Number.isFinite(fn.keepAliveMs) && fn.keepAliveMs >= 0 ? fn.keepAliveMs : DEFAULT_KEEP_ALIVE_MS;
    let state = this.functions.get(fn.id);
    if (state !== undefined) {
      this.functions.delete(fn.id);
      if (state.kind === kind && (kind === 'adaptive' || state.fixedMs === fixedMs)) state.fn = kind === 'adaptive' ? fn : undefined;
      else {
        this.pending.delete(state);
        state = this.newState(fn, kind, fixedMs, state.lastCallMs);
      }
    } else state = this.newState(fn, kind, fixedMs, undefined);
    this.functions.set(fn.id, state);
    if (this.functions.size > FUNCTION_STATES_MAX) {
      const oldest = this.functions.keys().next().value!;
      this.pending.delete(this.functions.get(oldest)!);
      this.functions.delete(oldest);
    }
    return state;
  }

  private newState(fn: F, kind: 'fixed' | 'adaptive', fixedMs: number, lastCallMs: number | undefined): FunctionState<F> {
    const policy = kind === 'fixed' ? keepAlivePolicy({ kind: 'fixed', keepAliveMs: fixedMs }) : keepAlivePolicy({ kind: 'adaptive', options: this.options.adaptive ?? {} });
    return { fn: kind === 'adaptive' ? fn : undefined, kind, fixedMs, policy, lastCallMs, windows: this.scaled(policy.windows()), repinAtMs: undefined };
  }

  private scaled(windows: KeepAliveWindows): KeepAliveWindows {
    return { prewarmMs: windows.prewarmMs / this.options.timeScale, keepAliveMs: windows.keepAliveMs / this.options.timeScale };
  }

  private callArrived(state: FunctionState<F>, nowMs: number): void {
    if (state.lastCallMs !== undefined) state.policy.recordIdle(Math.max(0, nowMs - state.lastCallMs) * this.options.timeScale);
    state.lastCallMs = nowMs;
    state.windows = this.scaled(state.policy.windows());
    if (state.windows.prewarmMs > 0) {
      state.repinAtMs = nowMs + state.windows.prewarmMs;
      this.pending.add(state);
      this.arm(state.repinAtMs);
    } else {
      state.repinAtMs = undefined;
      this.pending.delete(state);
    }
  }

  /** One timer, for the earliest planned prewarm. */
  private arm(atMs: number): void {
    if (this.closed || (this.timer !== undefined && this.timerAtMs <= atMs)) return;
    clearTimeout(this.timer);
    this.timerAtMs = atMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAtMs = Number.POSITIVE_INFINITY;
      this.run(Date.now());
    }, Math.max(1, atMs - Date.now()));
    this.timer.unref();
  }

  private run(nowMs: number): void {
    if (this.closed) return;
    let next = Number.POSITIVE_INFINITY;
    for (const state of this.pending) {
      const atMs = state.repinAtMs;
      if (atMs === undefined) {
        this.pending.delete(state);
        continue;
      }
      if (atMs > nowMs) {
        next = Math.min(next, atMs);
        continue;
      }
      this.pending.delete(state);
      state.repinAtMs = undefined;
      if (nowMs > atMs + state.windows.keepAliveMs || state.fn === undefined) continue;
      this.options.prewarm(state.fn);
    }
    if (next < Number.POSITIVE_INFINITY) this.arm(next);
  }
}
