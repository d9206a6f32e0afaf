/**
 * Placement: which executor runs a function of a call. A policy behind an
 * interface, away from the request path's bookkeeping, so others can be tried and tested alone.
 *
 * The default policy, in order:
 * 1. skip executors above `utilisationMax` (0.7) of their runtime slots (see {@link loadOf});
 *   when every executor is above it, take the least loaded one unless even that one is at
 *   `overloadMax` (2: every slot busy and as many calls again queued) or past it: then no
 *   capacity, and the caller fails fast with SCHED_NO_CAPACITY and a retry-after hint (the
 *   scale-out signal);
 * 2. of those, prefer executors with a warm runtime for the function;
 * 3. then the ones caching most of the call's referenced keys;
 * 4. then the executor of the function's parent, if it is among them (its trigger stays local);
 * 5. then, for spreading with some randomness, the less loaded of two picked at random.
 */
import type { Random } from '../protocol/index.js';

/** What a scheduler knows of one executor. */
export interface ExecutorView {
  readonly address: string;
  lastHeardMs: number;
  /** Its running and queued calls per runtime slot, as it last reported (above 1: a queue). */
  utilisation: number;
  /** Calls per slot that wanted to run over its last period (held at once, plus refused). */
  demand?: number;
  capacity: number;
  /** Runs this scheduler placed on it since its last report (not in `utilisation` yet). */
  sentSinceStatus: number;
  warm: ReadonlySet<string>;
  keys: ReadonlySet<string>;
  /** Runs this scheduler sent it that it has not reported finished. */
  readonly outstanding: Map<string, unknown>;
  nextSeq: number;
}

export interface PlacementRequest {
  /** `name@version`. */
  readonly functionId: string;
  /** The keys the call's arguments refer to. */
  readonly keys: readonly string[];
  /** The executor of a parent in the DAG. */
  readonly prefer?: string;
}

export interface PlacementPolicy {
  /** The executor to run the function on, or undefined when none has room. */
  place(request: PlacementRequest, executors: readonly ExecutorView[], random: Random): ExecutorView | undefined;
}

export interface DefaultPlacementOptions {
  readonly utilisationMax?: number;
  readonly overloadMax?: number;
}

/**
 * The load of an executor per runtime slot: running and queued calls as it last reported (at most
 * a heartbeat period old). Not this scheduler's count of runs in flight there: sync runs are
 * answered by the executor straight to the client, so the scheduler learns they finished only at
 * the next heartbeat, and at thousands of calls a second that count would be mostly finished runs.
 */
export function loadOf(view: ExecutorView): number {
  return view.utilisation;
}

/**
 * The load admission judges: the reported one plus the runs placed there since the report, at
 * most one slot's worth each (most of them may have finished already: sync runs finish without
 * telling the scheduler). The executor itself refuses what finds it saturated.
 */
export function admissionLoadOf(view: ExecutorView): number {
  const capacity = Math.max(1, view.capacity);
  return view.utilisation + Math.min(view.sentSinceStatus, capacity) / capacity;
}

export class DefaultPlacement implements PlacementPolicy {
  private readonly utilisationMax: number;
  private readonly overloadMax: number;

  constructor(options: DefaultPlacementOptions = {}) {
    this.utilisationMax = options.utilisationMax ?? 0.7;
    this.overloadMax = options.overloadMax ?? 2;
  }

  place(request: PlacementRequest, executors: readonly ExecutorView[], random: Random): ExecutorView | undefined {
    if (executors.length === 0) return undefined;
    let candidates = executors.filter((view) => loadOf(view) <= this.utilisationMax);
    if (candidates.length === 0) {
      let least = executors[0]!;
      for (const view of executors) if (loadOf(view) < loadOf(least)) least = view;
      if (admissionLoadOf(least) >= this.overloadMax) return undefined;
      candidates = [least];
    }
    const warm = candidates.filter((view) => view.warm.has(request.functionId));
    if (warm.length > 0) candidates = warm;
    if (request.keys.length > 0) {
      let best = -1;
      let holding: ExecutorView[] = [];
      for (const view of candidates) {
        let held = 0;
        for (const key of request.keys) if (view.keys.has(key)) held++;
        if (held > best) {
          best = held;
          holding = [view];
        } else if (held === best) holding.push(view);
      }
      candidates = holding;
    }
    if (request.prefer !== undefined) {
      const parent = candidates.find((view) => view.address === request.prefer);
      if (parent !== undefined) return parent;
    }
    if (candidates.length === 1) return candidates[0];
    const first = candidates[random.int(candidates.length)]!;
    const second = candidates[random.int(candidates.length)]!;
    return loadOf(second) < loadOf(first) ? second : first;
  }
}
