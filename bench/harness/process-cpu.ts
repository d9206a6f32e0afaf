/** CPU time of other processes (the servers under test), read from /proc on Linux. */
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds of a process so far; 0 where /proc cannot be read. */
export function processCpuSeconds(pid: number): number {
  try {
    // Fields after the command (which may contain spaces, so split after its closing paren).
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Measures the cores a set of processes used while `work` ran. */
export async function withProcessCpu<T>(pids: readonly number[], work: () => Promise<T>): Promise<{ result: T; cores: number }> {
  const before = pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  const start = performance.now();
  const result = await work();
  const seconds = (performance.now() - start) / 1000;
  const after = pids.reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
  return { result, cores: seconds > 0 ? (after - before) / seconds : 0 };
}
