/**
 * The runtime pool's cold starts timed in stages: the runtime's creation (the part of its start
 * the call waited for; 0 with a ready stem), the bundle's evaluation (a cold call is sent as a
 * load, then the call: the `loaded` answer ends the evaluation) and the first call. The latest
 * COLD_SAMPLES_MAX are kept (`RuntimePool.coldStages()`), and each is handed to the pool's
 * `onColdStart` (the executor exports them).
 */

/** One cold start, in stages (ms). */
export interface ColdStartStages {
  /** The runtime's creation the call waited for: spawn (or the call's arrival, if later) to ready; 0 when a ready runtime was taken. */
  readonly runtimeMs: number;
  /** The bundle's evaluation: the load posted (or the runtime ready, if later) to its `loaded` answer. */
  readonly evaluateMs: number;
  /** The first call: posted to its answer (a result or the function's error). */
  readonly callMs: number;
  /** The runtime existed when the call arrived (a stem, or at `process` its owner's runtime); false: one was started for it. */
  readonly stem: boolean;
  readonly functionId: string;
}

/** When each step of one cold start happened (performance.now()); `readyAt` undefined: the runtime had not said ready. */
export interface ColdStartTimes {
  readonly spawnedAt: number;
  readonly readyAt: number | undefined;
  readonly arrivedAt: number;
  readonly postedAt: number;
  readonly loadedAt: number;
  readonly answeredAt: number;
}

/** Cold starts whose stages are kept for `latest()`. */
const COLD_SAMPLES_MAX = 256;

/**
 * The latest cold starts' stages.
 *
 * @example
 * const coldStarts = new ColdStarts((stages) => histogram.record(stages.runtimeMs));
 * coldStarts.record(times, true, 'alice/resize@3');
 */
export class ColdStarts {
  private readonly samples: ColdStartStages[] = [];

  constructor(private readonly onColdStart: ((stages: ColdStartStages) => void) | undefined) {}

  /** A cold start's stages, from its times: kept and handed to `onColdStart`. */
  record(times: ColdStartTimes, stem: boolean, functionId: string): void {
    const { spawnedAt, arrivedAt, postedAt, loadedAt, answeredAt } = times;
    const readyAt = times.readyAt ?? postedAt;
    const stages: ColdStartStages = {
      runtimeMs: Math.max(0, readyAt - Math.max(spawnedAt, arrivedAt)),
      evaluateMs: Math.max(0, loadedAt - Math.max(postedAt, readyAt)),
      callMs: Math.max(0, answeredAt - loadedAt),
      stem,
      functionId,
    };
    this.samples.push(stages);
    if (this.samples.length > COLD_SAMPLES_MAX) this.samples.shift();
    try {
      this.onColdStart?.(stages);
    } catch {
      // An exporter's failure is not the call's.
    }
  }

  /** The stages of the latest cold starts (at most COLD_SAMPLES_MAX, oldest first). */
  latest(): ColdStartStages[] {
    return [...this.samples];
  }
}
