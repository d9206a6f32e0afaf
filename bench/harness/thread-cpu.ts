/**
 * CPU time per OS thread of process trees, from /proc/<pid>/task/<tid>/stat: which thread of
 * which process (the main JavaScript thread `node`, ZeroMQ's `ZMQbg/IO/0`, libuv's pool, V8's
 * helpers, a storage node's shard workers) spends a request's microseconds.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { processTree } from '../../executor/index.js';

const TICKS_PER_SECOND = 100;

/** One thread's CPU seconds so far. */
export interface ThreadSample {
  readonly pid: number;
  readonly tid: number;
  /** The thread's name (`comm`). */
  readonly name: string;
  readonly seconds: number;
}

/** CPU seconds of every thread of every process under `roots`, keyed by `pid/tid`. */
export function sampleThreads(roots: readonly number[]): Map<string, ThreadSample> {
  const sample = new Map<string, ThreadSample>();
  for (const root of roots) {
    for (const pid of processTree(root)) {
      let tids: string[];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue;
      }
      for (const tid of tids) {
        try {
          const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
          const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
          sample.set(`${pid}/${tid}`, { pid, tid: Number(tid), name, seconds: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND });
        } catch {
          // The thread ended between the listing and the read.
        }
      }
    }
  }
  return sample;
}

/** CPU seconds each thread used between two samples (threads started meanwhile: all of theirs). */
export function threadsBetween(before: ReadonlyMap<string, ThreadSample>, after: ReadonlyMap<string, ThreadSample>): ThreadSample[] {
  const used: ThreadSample[] = [];
  for (const [key, end] of after) {
    const seconds = end.seconds - (before.get(key)?.seconds ?? 0);
    if (seconds > 0) used.push({ ...end, seconds });
  }
  return used.sort((a, b) => b.seconds - a.seconds);
}
