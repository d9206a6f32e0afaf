/**
 * How busy the machine was during a benchmark, and how much of that was the benchmark: the
 * machine's CPU time (/proc/stat) against this process's and its descendants' (the clusters,
 * peers and sandbox processes it started, sampled every second: a process that lived less than
 * that may be missed). Other work on the machine (another build or test run) shows as the
 * difference; it is said in the notes because it moves every figure.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { sampleTreeCpu } from './process-cpu.js';

const TICKS_PER_SECOND = 100;
const SAMPLE_PERIOD_MS = 1000;

/** Busy and total CPU seconds of the machine so far (all cores); undefined where /proc/stat cannot be read. */
function machineCpuSeconds(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'latin1').split('\n').find((candidate) => candidate.startsWith('cpu '));
    if (line === undefined) return undefined;
    // user nice system idle iowait irq softirq steal
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND };
  } catch {
    return undefined;
  }
}

export interface LoadWatch {
  /** Stops watching; a sentence for the notes: the machine's busy cores over the run, this benchmark's share, the load averages at both ends. */
  summary(): string;
}

/** Starts watching the machine's load; `summary()` describes it from the start until now. */
export function watchMachineLoad(): LoadWatch {
  const startMachine = machineCpuSeconds();
  const startLoad = os.loadavg()[0] ?? 0;
  const start = performance.now();
  // Per process: its CPU when first seen (0 if it started after the watch did) and when last seen.
  const first = sampleTreeCpu([process.pid]);
  const last = new Map(first);
  const sample = (): void => {
    for (const [key, seconds] of sampleTreeCpu([process.pid])) {
      if (!first.has(key)) first.set(key, 0);
      last.set(key, seconds);
    }
  };
  const timer = setInterval(sample, SAMPLE_PERIOD_MS);
  timer.unref();
  return {
    summary(): string {
      clearInterval(timer);
      sample();
      const seconds = (performance.now() - start) / 1000;
      const endMachine = machineCpuSeconds();
      let ownSeconds = 0;
      for (const [key, end] of last) ownSeconds += Math.max(0, end - (first.get(key) ?? 0));
      const own = ownSeconds / seconds;
      const loads = `1-minute load average ${startLoad.toFixed(2)} at the start, ${(os.loadavg()[0] ?? 0).toFixed(2)} at the end`;
      if (startMachine === undefined || endMachine === undefined) return `machine load: ${loads}; this benchmark's processes used ${own.toFixed(2)} cores`;
      const busy = (endMachine.busy - startMachine.busy) / seconds;
      return `machine load over the ${seconds.toFixed(0)} s run: ${busy.toFixed(2)} of ${os.cpus().length} cores busy, of which this benchmark's processes ${own.toFixed(2)} (sampled each second) and the rest ${Math.max(0, busy - own).toFixed(2)} (other work on the machine, the kernel, and this benchmark's processes that lived less than a second); ${loads}`;
    },
  };
}
