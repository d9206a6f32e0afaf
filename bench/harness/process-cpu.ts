/**
 * CPU time of other processes (the servers under test) and of their descendants (an executor's
 * sandbox processes: bubblewrap, its namespace init, node), read from /proc on Linux.
 */
import { readFileSync } from 'node:fs';
import { processTree } from '../../executor/index.js';

const TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat after the command (which may contain spaces: split after its closing paren). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of a process so far (all its threads, ended ones included); 0 where /proc cannot be read. */
export function processCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  return fields === undefined ? 0 : (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * CPU seconds so far of every process of the trees under `roots`, keyed by pid and start time (a
 * pid reused meanwhile is another process). Own time only: a child's time is its own entry.
 */
export function sampleTreeCpu(roots: readonly number[]): Map<string, number> {
  const sample = new Map<string, number>();
  for (const root of roots) {
    for (const pid of processTree(root)) {
      const fields = statFields(pid);
      if (fields !== undefined) sample.set(`${pid}:${fields[19]}`, (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND);
    }
  }
  return sample;
}

/** CPU seconds used between two samples: by processes alive at both, the difference; by processes started meanwhile, all of it. */
export function cpuBetween(before: ReadonlyMap<string, number>, after: ReadonlyMap<string, number>): number {
  let used = 0;
  for (const [key, end] of after) used += Math.max(0, end - (before.get(key) ?? 0));
  return used;
}

/**
 * Measures the cores a set of processes and their descendants used while `work` ran. The trees
 * are sampled at the start and at the end, and with `sampleEveryMs` also in between (on this
 * process's event loop: a read of /proc per process each time, so only where a short stall of
 * the client does not matter): a process seen at the start counts its time since, one started
 * meanwhile all of its time up to when it was last seen. A process that ends between two samples
 * loses its time since the last one (without `sampleEveryMs`, since the start: fine where
 * runtimes live through the measurement, an undercount where they are started and ended in it).
 */
export async function withProcessCpu<T>(pids: readonly number[], work: () => Promise<T>, options: { sampleEveryMs?: number } = {}): Promise<{ result: T; cores: number }> {
  const first = sampleTreeCpu(pids);
  const last = new Map(first);
  const sample = (): void => {
    for (const [key, seconds] of sampleTreeCpu(pids)) {
      if (!first.has(key)) first.set(key, 0);
      last.set(key, seconds);
    }
  };
  const timer = options.sampleEveryMs === undefined ? undefined : setInterval(sample, options.sampleEveryMs);
  const start = performance.now();
  let result: T;
  try {
    result = await work();
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - start) / 1000;
  sample();
  return { result, cores: seconds > 0 ? cpuBetween(first, last) / seconds : 0 };
}
