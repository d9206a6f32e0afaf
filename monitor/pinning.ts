/**
 * Function pinning: how many executors keep each function warm, in proportion to its call rate.
 *
 * Registration pins every function on `base` executors (the schedulers' `pinExecutors`, 2).
 * A function called faster than those can take wants more: placement prefers executors where the
 * function is warm, so a hot function pinned on two executors keeps its calls on those two while
 * others idle, and a call that spills over pays a cold start. So the monitor sums each function's
 * call rate over the executors' reports and sets its pin count; the schedulers prepare it on that
 * many executors (scheduler/pins.ts), and placement spreads its calls over them.
 *
 * The rule (defaults in parentheses, all settable, `policy.ts` holds them with the others):
 * - wanted = ceil(rate / `perExecutorRate` (50 calls/s)), at least `base` (2), at most the
 *   executors known (never below `base`);
 * - a count rises to the wanted one when that stays above it for `upSustainMs` (2 s), in 3 of 4
 *   looks and the latest (the other policies' hysteresis): promptly, a hot function pays cold
 *   starts meanwhile;
 * - it falls only when the rate stays low for `downSustainMs` (30 s): low means the lower count
 *   would serve the rate at 3/4 of `perExecutorRate` (a band, so a rate near a boundary does not
 *   flap), and it falls to the highest such count seen over that window; a cold function goes
 *   back to `base` this way;
 * - after each change of a function's count, `graceMs` (5 s) in which nothing more is decided
 *   for it (the new executors warm up, its calls spread);
 * - a function not called for `idleMs` gets count 0 (no executor is asked to keep it; the warm
 *   runtimes end by their keep-alive) and goes back to `base` at its next call; 0 (the default)
 *   turns this off: a function pinned at registration stays pinned;
 * - at most `functionsMax` (1,024) functions tracked (the hottest of each look; the ones at
 *   `base` make room first).
 * A function's count only changes through a decision, and each decision becomes an event.
 */

export interface PinPolicy {
  /** Executors every function is pinned on anyway (the schedulers' default). */
  readonly base: number;
  /** Calls per second of one function that one executor is counted to serve. */
  readonly perExecutorRate: number;
  readonly upSustainMs: number;
  readonly downSustainMs: number;
  /** After a change of a function's count, how long nothing more is decided for it. */
  readonly graceMs: number;
  /** A function not called this long gets count 0 (0: never). */
  readonly idleMs: number;
  readonly functionsMax: number;
}

export const DEFAULT_PIN_POLICY: PinPolicy = { base: 2, perExecutorRate: 50, upSustainMs: 2000, downSustainMs: 30_000, graceMs: 5000, idleMs: 0, functionsMax: 1024 };

/** One function's calls over the cluster (summed over the executors' reports). */
export interface FunctionRateView {
  readonly name: string;
  /** Calls per second. */
  readonly rate: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

/** A function's pin count changed. */
export interface PinChange {
  readonly name: string;
  readonly count: number;
  readonly from: number;
  readonly reason: string;
}

/** A falling count must serve the rate at this share of `perExecutorRate`. */
const DOWN_SHARE = 0.75;
/** Below this rate (calls/s) a function counts as not called (executors report nothing below it). */
const ACTIVE_RATE = 0.01;
/** A condition holds over a window when it held in this share of the looks in it. */
const HELD_SHARE = 0.75;
const SAMPLES_MAX = 1000;

interface Sample {
  readonly atMs: number;
  readonly up: boolean;
  readonly down: boolean;
  readonly target: number;
  readonly downTarget: number;
}

interface FunctionState {
  count: number;
  changedMs: number;
  activeMs: number;
  samples: Sample[];
}

export class Pinner {
  private readonly states = new Map<string, FunctionState>();

  constructor(readonly policy: PinPolicy = DEFAULT_PIN_POLICY) {}

  /** The counts that differ from `base`: what the schedulers are sent (the others are their default). */
  counts(): { name: string; count: number }[] {
    const out: { name: string; count: number }[] = [];
    for (const [name, state] of this.states) if (state.count !== this.policy.base) out.push({ name, count: state.count });
    return out;
  }

  /** A function's count now (`base` when untracked). */
  countOf(name: string): number {
    return this.states.get(name)?.count ?? this.policy.base;
  }

  /** One look: the functions' rates and the executors known; the counts that change. */
  decide(functions: readonly FunctionRateView[], executors: number, nowMs: number): PinChange[] {
    const policy = this.policy;
    const perExecutor = Math.max(1e-9, policy.perExecutorRate);
    const cap = Math.max(policy.base, executors);
    const clamp = (wanted: number): number => Math.min(cap, Math.max(policy.base, wanted));
    // The hottest first, at most functionsMax of them.
    const rates = new Map<string, FunctionRateView>();
    for (const view of [...functions].filter((view) => view.name.length > 0 && Number.isFinite(view.rate)).sort((a, b) => b.rate - a.rate)) {
      if (rates.size >= policy.functionsMax) break;
      if (!rates.has(view.name)) rates.set(view.name, view);
    }
    for (const [name, view] of rates) if (view.rate >= ACTIVE_RATE && !this.states.has(name)) this.track(name, nowMs);
    const changes: PinChange[] = [];
    for (const [name, state] of [...this.states]) {
      const view = rates.get(name);
      const rate = Math.max(0, view?.rate ?? 0);
      const active = rate >= ACTIVE_RATE;
      if (active) state.activeMs = nowMs;
      const change = (count: number, why: string): void => {
        changes.push({ name, count, from: state.count, reason: `${count} executors (was ${state.count}): ${why}` });
        state.count = count;
        state.changedMs = nowMs;
        state.samples = [];
      };
      const load = `${rate.toFixed(1)} calls/s${view?.p50Ms === undefined ? '' : `, p50 ${view.p50Ms.toFixed(1)} ms, p99 ${(view.p99Ms ?? 0).toFixed(1)} ms`}`;
      if (state.count === 0) {
        if (active) change(policy.base, `called again (${load})`);
        continue;
      }
      if (policy.idleMs > 0 && nowMs - state.activeMs >= policy.idleMs) {
        change(0, `not called for ${policy.idleMs} ms`);
        continue;
      }
      if (nowMs - state.changedMs < policy.graceMs) {
        state.samples = [];
        continue;
      }
      const target = clamp(Math.ceil(rate / perExecutor));
      const downTarget = clamp(Math.ceil(rate / (perExecutor * DOWN_SHARE)));
      state.samples.push({ atMs: nowMs, up: target > state.count, down: downTarget < state.count, target, downTarget });
      const keepMs = Math.max(policy.upSustainMs, policy.downSustainMs);
      while (state.samples.length > SAMPLES_MAX || (state.samples.length > 1 && state.samples[1]!.atMs <= nowMs - keepMs)) state.samples.shift();
      if (heldFor(state.samples, 'up', policy.upSustainMs, nowMs)) {
        change(target, `${load} for ${policy.upSustainMs} ms, ${policy.perExecutorRate} calls/s per executor`);
      } else if (heldFor(state.samples, 'down', policy.downSustainMs, nowMs)) {
        // The most the window needed (still below the count: the condition held in the latest look).
        let count = downTarget;
        for (const sample of state.samples) if (sample.atMs >= nowMs - policy.downSustainMs && sample.downTarget < state.count) count = Math.max(count, sample.downTarget);
        change(count, `${load}, low for ${policy.downSustainMs} ms`);
      }
      // Back at base and not called: nothing left to remember (unless idleness is timed).
      if (state.count === policy.base && !active && policy.idleMs === 0 && state.samples.every((sample) => !sample.up)) this.states.delete(name);
    }
    return changes;
  }

  /** Starts tracking a function (at `base`), making room by dropping one at `base` if full. */
  private track(name: string, nowMs: number): void {
    if (this.states.size >= this.policy.functionsMax) {
      let victim: string | undefined;
      let oldestMs = Infinity;
      for (const [other, state] of this.states) {
        if (state.count === this.policy.base && state.activeMs < oldestMs) {
          oldestMs = state.activeMs;
          victim = other;
        }
      }
      if (victim === undefined) return;
      this.states.delete(victim);
    }
    this.states.set(name, { count: this.policy.base, changedMs: -Infinity, activeMs: nowMs, samples: [] });
  }
}

/** Held for `sustainMs`: looked at for that long, holding in the latest look and in most looks of the window. */
function heldFor(samples: readonly Sample[], which: 'up' | 'down', sustainMs: number, nowMs: number): boolean {
  if (samples.length === 0 || !samples.at(-1)![which] || samples[0]!.atMs > nowMs - sustainMs) return false;
  let looks = 0;
  let held = 0;
  for (const sample of samples) {
    if (sample.atMs < nowMs - sustainMs) continue;
    looks++;
    if (sample[which]) held++;
  }
  return held >= HELD_SHARE * looks;
}
