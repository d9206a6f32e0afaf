/**
 * `http`: our HTTP ingress (`lfaas ingress`, its own process, in front of a local cluster:
 * routing node, one storage node, one scheduler, two executors) against Restate's ingress, on the
 * same two calls: a no-op (returns its argument) and f(g(x)) = square(increment(x)) (our DAG; in
 * Restate a handler making two durable service calls, bench/restate-peer.ts). Both are called
 * over HTTP/1.1 with JSON bodies through a keep-alive agent (node:http), in the same run:
 * sequential latency (p50, p99; 2000 calls each, 300 with --quick) in alternating rounds so both
 * see the same machine, then throughput with 8 calls in flight. For reference, rows of the same
 * calls through our SDK over the cluster's transport (no HTTP): the ingress's own cost is the difference.
 */
import { Agent, request } from 'node:http';
import { startRole, stopChildren } from '../cli/index.js';
import type { Started } from '../cli/index.js';
import { startFaasBenchCluster } from './faas-cluster.js';
import type { FaasBenchCluster } from './faas-cluster.js';
import type { Benchmark } from './harness/benchmark.js';
import { closedLoop } from './harness/load.js';
import { watchMachineLoad } from './harness/machine-load.js';
import { withProcessCpu } from './harness/process-cpu.js';
import { latencyPlot, publish } from './harness/report.js';
import type { Row, Target } from './harness/report.js';
import { summarise } from './harness/stats.js';
import { startRestate } from './restate-peer.js';

const CALL_TIMEOUT_MS = 30_000;
const IN_FLIGHT = 8;

interface Reply {
  readonly status: number;
  readonly body: string;
}

/** One POST through a keep-alive agent; retried once when a kept-alive socket was closed by the server. */
function postOnce(agent: Agent, port: number, path: string, body: string, headers: Record<string, string>): Promise<Reply & { reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, agent, headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), reused: req.reusedSocket });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`POST ${path}: no answer in ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(Object.assign(error, { reused: req.reusedSocket }));
    });
    req.end(body);
  });
}

async function post(agent: Agent, port: number, path: string, body: string, headers: Record<string, string>): Promise<Reply> {
  try {
    return await postOnce(agent, port, path, body, headers);
  } catch (error) {
    if ((error as { reused?: boolean }).reused !== true || (error as { code?: string }).code !== 'ECONNRESET') throw error;
    return postOnce(agent, port, path, body, headers);
  }
}

interface Case {
  readonly system: string;
  readonly test: 'noop call' | 'square(increment(x))';
  readonly run: () => Promise<unknown>;
  readonly pids: readonly number[];
  readonly failures: { count: number; messages: string[] };
  samples: number[];
  serverCores: number[];
}

function counted(system: string, test: Case['test'], pids: readonly number[], call: () => Promise<unknown>): Case {
  const failures = { count: 0, messages: [] as string[] };
  return {
    system,
    test,
    pids,
    failures,
    samples: [],
    serverCores: [],
    run: () =>
      call().catch((error: unknown) => {
        failures.count++;
        if (failures.messages.length < 3) failures.messages.push(String((error as Error).message).slice(0, 300));
      }),
  };
}

const OURS = 'lattice-faas ingress (HTTP)';
const OURS_SDK = 'lattice-faas SDK (no HTTP)';
const RESTATE = 'restate ingress (HTTP)';

export const httpBenchmark: Benchmark = async (options) => {
  const machineLoad = watchMachineLoad();
  const calls = options.quick ? 300 : 2000;
  const rounds = options.quick ? 1 : 2;
  const warmUpMs = options.quick ? 1000 : 3000;
  const throughputMs = options.quick ? 2000 : 5000;
  const notes: string[] = [
    'our side: `lfaas ingress` (its own process) in front of a local cluster (routing node, 1 storage node, 1 scheduler, 2 executors with 4 workers each, default isolation), all on 127.0.0.1 sharing the 2 cores with the client; the ingress acts with the caller\'s admin token (Authorization: Bearer)',
    'our calls: POST /v1/functions/bench/noop/call [x] and POST /v1/dags/bench/square-of-increment/call {"bench/increment":[x]}; Restate\'s: POST /LatticeBench/noop x and POST /LatticeBench/compose x (two durable service calls); JSON bodies, node:http keep-alive agents on both sides',
    `sequential: ${calls} calls per case over ${rounds} alternating round(s), each case warmed up ${warmUpMs / 1000} s before each round; throughput: ${IN_FLIGHT} calls in flight for ${throughputMs / 1000} s per case`,
    `serverCores: the CPU of the system's processes and their descendants (ours: scheduler, executors with their sandbox processes, and the ingress; Restate: its server and the deployment) during the sequential measurement`,
    'the SDK rows are the same calls through our TypeScript SDK over the cluster\'s transport (node:net, TLS-PSK), no HTTP: the ingress costs the difference (one more process hop, HTTP parsing, JSON)',
  ];
  let cluster: FaasBenchCluster | undefined;
  let ingress: Started | undefined;
  let restate: Awaited<ReturnType<typeof startRestate>>;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const rows: Row[] = [];
  try {
    cluster = await startFaasBenchCluster({ executors: 2, workers: 4 });
    const [routing, , scheduler] = cluster.processes;
    const spawnArgs = scheduler!.child.spawnargs;
    const keys = spawnArgs[spawnArgs.indexOf('--keys') + 1]!;
    ingress = await startRole(['ingress', '--keys', keys, '--routing', String(routing!.ready['address']), '--schedulers', String(scheduler!.ready['address']), '--port', '0'], 'ingress');
    const port = Number(ingress.ready['port']);
    const token = process.env['LFAAS_TOKEN'] ?? '';
    const auth = { authorization: `Bearer ${token}` };
    const ourCall = async (path: string, body: string, expected: number): Promise<void> => {
      const reply = await post(agent, port, path, body, auth);
      if (reply.status !== 200 || Number(reply.body) !== expected) throw new Error(`${path} answered ${reply.status}: ${reply.body.slice(0, 200)}`);
    };
    restate = await startRestate((line) => notes.push(line));
    if (restate === undefined) notes.push('Restate could not be started (see above): its rows are missing');
    else notes.push(`restate version: ${restate.version}`);
    const faas = cluster.faas;
    const noop = cluster.noop;
    const compose = cluster.compose;
    const ourPids = [...cluster.executorPids, cluster.schedulerPid, ingress.child.pid!];
    let x = 0;
    const cases: Case[] = [
      counted(OURS, 'noop call', ourPids, () => {
        const value = x++;
        return ourCall('/v1/functions/bench/noop/call', `[${value}]`, value);
      }),
      counted(OURS, 'square(increment(x))', ourPids, () => {
        const value = x++ % 1000;
        return ourCall('/v1/dags/bench/square-of-increment/call', `{"bench/increment":[${value}]}`, (value + 1) ** 2);
      }),
      counted(OURS_SDK, 'noop call', ourPids.slice(0, -1), () => faas.call(noop, [x++])),
      counted(OURS_SDK, 'square(increment(x))', ourPids.slice(0, -1), () => faas.callDag(compose, { 'bench/increment': [x++ % 1000] })),
    ];
    const peer = restate;
    if (peer !== undefined) {
      cases.push(counted(RESTATE, 'noop call', peer.pids, () => peer.noop(x++)));
      cases.push(counted(RESTATE, 'square(increment(x))', peer.pids, () => peer.compose(x++ % 1000)));
    }
    for (const item of cases) await closedLoop(item.run, { inFlight: 1, durationMs: 2000, maxOperations: 200 });
    for (let round = 0; round < rounds; round++) {
      for (const item of cases) {
        await closedLoop(item.run, { inFlight: 1, durationMs: warmUpMs, maxOperations: 100_000 });
        const { result, cores } = await withProcessCpu(item.pids, () => closedLoop(item.run, { inFlight: 1, durationMs: 120_000, maxOperations: Math.ceil(calls / rounds) }));
        item.samples.push(...result.latenciesMs);
        item.serverCores.push(cores);
      }
    }
    const throughput = new Map<Case, number>();
    for (const item of cases) {
      await closedLoop(item.run, { inFlight: IN_FLIGHT, durationMs: 1000, maxOperations: 100_000 });
      throughput.set(item, (await closedLoop(item.run, { inFlight: IN_FLIGHT, durationMs: throughputMs, maxOperations: 1_000_000 })).perSecond);
    }
    for (const item of cases) {
      const summary = summarise(item.samples);
      const mean = item.serverCores.reduce((a, b) => a + b, 0) / Math.max(1, item.serverCores.length);
      rows.push({ system: item.system, test: item.test, calls: summary.count, failed: item.failures.count, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, meanMs: summary.meanMs, [`perSecond${IN_FLIGHT}`]: throughput.get(item) ?? 0, serverCores: mean });
      if (item.failures.count > 0) notes.push(`FAILED CALLS: ${item.system} ${item.test}: ${item.failures.count} (warm-ups included), first: ${item.failures.messages.join(' | ')}`);
    }
  } finally {
    agent.destroy();
    await restate?.stop().catch(() => undefined);
    if (ingress !== undefined) await stopChildren([ingress.child]);
    await cluster?.stop();
  }
  const value = (system: string, test: string, field: string): number | undefined => {
    const row = rows.find((candidate) => candidate['system'] === system && candidate['test'] === test);
    return row === undefined ? undefined : Number(row[field]);
  };
  const ratios: Record<string, number> = {};
  const targets: Target[] = [];
  const tests = [
    ['noop', 'noop call'],
    ['compose', 'square(increment(x))'],
  ] as const;
  for (const [short, test] of tests) {
    const ours = value(OURS, test, 'p50Ms');
    const sdk = value(OURS_SDK, test, 'p50Ms');
    if (ours !== undefined && sdk !== undefined) ratios[`${short}_p50_ingress_over_sdk`] = ours / sdk;
    const theirs = value(RESTATE, test, 'p50Ms');
    if (ours === undefined || theirs === undefined) continue;
    ratios[`${short}_p50_restate_over_ours`] = theirs / ours;
    ratios[`${short}_p99_restate_over_ours`] = value(RESTATE, test, 'p99Ms')! / value(OURS, test, 'p99Ms')!;
    ratios[`${short}_throughput_ours_over_restate`] = value(OURS, test, `perSecond${IN_FLIGHT}`)! / value(RESTATE, test, `perSecond${IN_FLIGHT}`)!;
    targets.push({ name: `ingress ${short === 'noop' ? 'no-op' : 'f(g(x))'} p50 below Restate's (ms)`, target: `< ${theirs.toFixed(3)}`, value: ours, met: ours < theirs });
  }
  if (targets.length === 0) notes.push('no targets: Restate did not run, so there is nothing to compare with');
  notes.push(machineLoad.summary());
  await publish('http', options, {
    rows,
    ratios,
    targets,
    notes,
    plot: latencyPlot('http: sequential call latency over HTTP (ms, log scale)', rows, (row) => String(row['system'])),
  });
};
