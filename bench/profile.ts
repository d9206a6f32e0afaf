/**
 * `profile`: where the microseconds of one request go, on the client and on every server process.
 * Runs the KVS (`get`, `put`: 8 B values, one storage node of 2 shard threads) or the FaaS (`noop`,
 * `compose`: two executors of 4 runtimes) as they run by default (CURVE on, isolation the machine's strongest),
 * drives a closed loop at each in-flight level, and over exactly that window takes:
 * - per-thread CPU (/proc/<pid>/task/<tid>/stat) of every process, in microseconds per request;
 * - V8 CPU profiles of the client and of every role's JavaScript threads (the roles profile
 *   themselves on SIGUSR2 under LFAAS_CPU_PROFILE_DIR, cli/cpu-profile.ts), as self time per part
 *   (our files, each library, Node, the garbage collector) in microseconds per request.
 * `npm run bench -- profile [get|put|get1k|put1k|noop|compose ...] [--quick]` (default: get and noop; 1k: 1 KiB values). The
 * raw profiles are kept under bench/results/profiles/ for Chrome DevTools (not committed).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HybridClock, Lww } from '../lattices/index.js';
import type { Benchmark } from './harness/benchmark.js';
import { summariseProfile } from './harness/cpu-profile-summary.js';
import type { CpuProfile } from './harness/cpu-profile-summary.js';
import { closedLoop } from './harness/load.js';
import { publish } from './harness/report.js';
import type { Row } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { sampleThreads, threadsBetween } from './harness/thread-cpu.js';
import { startFaasBenchCluster } from './faas-cluster.js';
import { startBenchCluster } from './kvs-cluster.js';

const CASES = ['get', 'put', 'get1k', 'put1k', 'noop', 'compose'] as const;
type Case = (typeof CASES)[number];

/** What a case runs: its processes (pid -> role), the operation, and how to stop. */
interface Subject {
  readonly roles: ReadonlyMap<number, string>;
  readonly operation: () => Promise<unknown>;
  readonly inFlight: readonly number[];
  stop(): Promise<void>;
}

async function startSubject(which: Case): Promise<Subject> {
  if (which === 'get' || which === 'put' || which === 'get1k' || which === 'put1k') {
    const cluster = await startBenchCluster({ nodes: 1, shards: 2, replication: 1 });
    const clock = new HybridClock('bench', () => Date.now());
    const bytes = new Uint8Array(which.endsWith('1k') ? 1024 : 8).fill(7);
    await Promise.all(Array.from({ length: 1000 }, (_, k) => cluster.client.put(`key-${k}`, Lww.write(clock, bytes))));
    let n = 0;
    const operation = which.startsWith('get') ? () => cluster.client.get(`key-${n++ % 1000}`) : () => cluster.client.put(`key-${n++ % 1000}`, Lww.write(clock, bytes));
    return { roles: new Map(cluster.processes.map((p, i) => [p.child.pid!, i === 0 ? 'routing' : 'kvs'])), operation, inFlight: [1, 50], stop: () => cluster.stop() };
  }
  // As the compose and concurrency benches run it: two executors of four runtimes each.
  const cluster = await startFaasBenchCluster({ executors: 2, workers: 4 });
  const roles = new Map<number, string>(cluster.processes.map((p) => [p.child.pid!, 'storage']));
  roles.set(cluster.processes[0]!.child.pid!, 'routing');
  roles.set(cluster.schedulerPid, 'scheduler');
  for (const pid of cluster.executorPids) roles.set(pid, 'executor');
  let n = 0;
  const operation = which === 'noop' ? () => cluster.faas.call(cluster.noop, [n++]) : () => cluster.faas.callDag(cluster.compose, { 'bench/increment': [n++] });
  return { roles, operation, inFlight: [1, 8], stop: () => cluster.stop() };
}

/** Sends SIGUSR2 (profile on/off) to each role process. */
function toggleProfiles(pids: readonly number[]): void {
  for (const pid of pids) process.kill(pid, 'SIGUSR2');
}

/** Waits (bounded) until `count` profiles are in `folder`. */
async function profilesIn(folder: string, count: number): Promise<string[]> {
  for (let i = 0; i < 50; i++) {
    const files = readdirSync(folder).filter((name) => name.endsWith('.cpuprofile'));
    if (files.length >= count) return files;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return readdirSync(folder).filter((name) => name.endsWith('.cpuprofile'));
}

export const profileBenchmark: Benchmark = async (options) => {
  const asked = options.args.filter((arg): arg is Case => (CASES as readonly string[]).includes(arg));
  const cases: readonly Case[] = asked.length > 0 ? asked : ['get', 'noop'];
  const durationMs = options.quick ? 1500 : 4000;
  const keep = join(options.resultsDir, 'profiles');
  const rows: Row[] = [];
  const notes: string[] = [
    'usPerOp: CPU microseconds per request (per-thread /proc counters, or V8 self time for parts), over the measured window only',
    'two windows per level: the first without profilers (rate, latency, CPU per thread), the second with every JavaScript thread profiled (parts; V8 samples every 1 ms)',
    'threads: node = a process\'s main JavaScript thread (a shard worker thread is also named node), ZMQbg/IO = ZeroMQ\'s I/O thread, libuv-worker / V8 helpers as named',
  ];
  for (const which of cases) {
    const folder = mkdtempSync(join(tmpdir(), 'lfaas-profile-'));
    process.env['LFAAS_CPU_PROFILE_DIR'] = folder;
    let subject: Subject;
    try {
      subject = await startSubject(which);
    } finally {
      delete process.env['LFAAS_CPU_PROFILE_DIR'];
    }
    try {
      const pids = [...subject.roles.keys()];
      for (const inFlight of subject.inFlight) {
        await closedLoop(subject.operation, { inFlight, durationMs: 500, maxOperations: 200_000 });
        // Window 1, no profiler running: latency, rate and CPU per thread.
        const before = sampleThreads([process.pid, ...pids]);
        const result = await closedLoop(subject.operation, { inFlight, durationMs, maxOperations: 10_000_000 });
        const after = sampleThreads([process.pid, ...pids]);
        // Window 2, every JavaScript thread profiled: where the busy time goes.
        const session = new Session();
        session.connect();
        await session.post('Profiler.enable');
        toggleProfiles(pids);
        await session.post('Profiler.start');
        const profiled = await closedLoop(subject.operation, { inFlight, durationMs, maxOperations: 10_000_000 });
        const { profile } = await session.post('Profiler.stop');
        session.disconnect();
        toggleProfiles(pids);
        const ops = result.operations;
        const latency = summarise(result.latenciesMs);
        const label = `${which} ${inFlight} in flight`;
        rows.push({ case: which, inFlight, kind: 'total', process: 'all', where: 'requests', usPerOp: 0, perSecond: result.perSecond, p50Ms: latency.p50Ms, p99Ms: latency.p99Ms });
        const roleOf = (pid: number): string => (pid === process.pid ? 'client' : (subject.roles.get(pid) ?? 'sandbox'));
        // Per thread: grouped by role and thread name.
        const byThread = new Map<string, number>();
        for (const thread of threadsBetween(before, after)) {
          const key = `${roleOf(thread.pid)}\t${thread.name}`;
          byThread.set(key, (byThread.get(key) ?? 0) + thread.seconds);
        }
        for (const [key, seconds] of [...byThread].sort((a, b) => b[1] - a[1])) {
          const [role, thread] = key.split('\t') as [string, string];
          rows.push({ case: which, inFlight, kind: 'thread', process: role, where: thread, usPerOp: (seconds * 1e6) / ops });
        }
        // Per part, from the profiles: the client's own, and each role thread's written on the second SIGUSR2.
        const windowFolder = join(folder, `${which}-${inFlight}`);
        mkdirSync(windowFolder, { recursive: true });
        const expected = pids.length + (which === 'noop' || which === 'compose' ? 0 : 2);
        const files = await profilesIn(folder, expected);
        writeFileSync(join(windowFolder, `client-${process.pid}-0-${inFlight}.cpuprofile`), JSON.stringify(profile));
        const profiles: [string, CpuProfile][] = [['client', profile as unknown as CpuProfile]];
        for (const file of files) {
          renameSync(join(folder, file), join(windowFolder, file));
          const pid = Number(file.split('-').at(-3));
          const thread = Number(file.split('-').at(-2));
          profiles.push([`${subject.roles.get(pid) ?? file}${thread === 0 ? '' : ` thread ${thread}`}`, JSON.parse(readFileSync(join(windowFolder, file), 'utf8')) as CpuProfile]);
        }
        const profiledOps = profiled.operations;
        writeFileSync(join(windowFolder, 'window.json'), JSON.stringify({ operations: profiledOps, durationMs }));
        for (const [who, threadProfile] of profiles) {
          const summary = summariseProfile(threadProfile);
          rows.push({ case: which, inFlight, kind: 'js busy', process: who, where: 'all', usPerOp: summary.busyMicros / profiledOps });
          for (const part of summary.parts.slice(0, options.quick ? 8 : 14)) rows.push({ case: which, inFlight, kind: 'js part', process: who, where: part.name, usPerOp: part.micros / profiledOps });
          for (const fn of summary.functions.slice(0, 8)) rows.push({ case: which, inFlight, kind: 'js function', process: who, where: fn.name, usPerOp: fn.micros / profiledOps });
        }
        if (existsSync(keep) || !options.quick) {
          mkdirSync(join(keep, `${which}-${inFlight}`), { recursive: true });
          for (const file of readdirSync(windowFolder)) renameSync(join(windowFolder, file), join(keep, `${which}-${inFlight}`, file));
        }
        console.error(`profile: ${label}: ${Math.round(result.perSecond)}/s, p50 ${latency.p50Ms} ms`);
      }
    } finally {
      await subject.stop();
      rmSync(folder, { recursive: true, force: true });
    }
  }
  await publish('profile', options, {
    rows,
    ratios: {},
    targets: [],
    notes,
    plot: {
      rows: rows.filter((row) => row['kind'] === 'thread').map((row) => ({ ...row, case: `${String(row['case'])} x${String(row['inFlight'])}`, who: `${String(row['process'])} ${String(row['where'])}` })),
      spec: {
        title: 'profile: CPU microseconds per request, by process and thread',
        width: 460,
        height: 260,
        mark: 'bar',
        encoding: {
          y: { field: 'case', type: 'nominal', title: null },
          x: { field: 'usPerOp', type: 'quantitative', title: 'CPU us per request', stack: 'zero' },
          color: { field: 'who', type: 'nominal' },
        },
      },
    },
  });
};
