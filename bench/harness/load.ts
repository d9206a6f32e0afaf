/**
 * A closed-loop load driver: keeps `inFlight` operations outstanding until `durationMs` or
 * `maxOperations` is reached, whichever comes first (both bound the loop).
 */
export interface LoadResult {
  readonly operations: number;
  readonly elapsedMs: number;
  readonly perSecond: number;
  readonly latenciesMs: number[];
  /** CPU time of this process during the run, as a share of one core (1 = one core busy). */
  readonly cpuCores: number;
}

export async function closedLoop(operation: () => Promise<unknown>, options: { inFlight: number; durationMs: number; maxOperations: number }): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  const deadline = start + options.durationMs;
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < options.maxOperations && performance.now() < deadline) {
      started++;
      const t0 = performance.now();
      await operation();
      latenciesMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  return {
    operations: latenciesMs.length,
    elapsedMs,
    perSecond: (latenciesMs.length * 1000) / elapsedMs,
    latenciesMs,
    cpuCores: (cpu.user + cpu.system) / 1000 / elapsedMs,
  };
}

/** Results are kept here so the JIT cannot drop an operation whose result is unused. */
export let sink: unknown;

/** Runs a synchronous operation repeatedly for about `durationMs`; returns operations per second. */
export function opsPerSecond(operation: () => unknown, durationMs: number): number {
  // Warm up so the JIT has settled before the clock starts.
  for (let i = 0; i < 10_000; i++) sink = operation();
  let count = 0;
  const start = performance.now();
  let now = start;
  const end = start + durationMs;
  while (now < end) {
    for (let i = 0; i < 1000; i++) sink = operation();
    count += 1000;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}
