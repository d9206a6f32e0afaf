/**
 * A FaaS cluster for benchmarks: a routing node, one storage node, one scheduler and executors as
 * their own processes (the built CLI), and an SDK client, with the functions the benches call
 * registered, one owner's (`bench/`): `bench/noop` (returns its argument), `bench/increment`,
 * `bench/square` and the DAG `bench/square-of-increment` = square(increment(x)). The executors run at the isolation level asked for
 * (default: the strongest the machine allows); the level they report is `isolation`. Secure
 * (encrypted, keys in the data folder) as a cluster runs by default, or plain with `insecure` (every
 * role `--insecure`; the client sees addresses without keys and talks plain). Stopped by pid.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LatticeFaas, dag } from '../client/index.js';
import type { DagHandle, FunctionHandle } from '../client/index.js';
import { startRole, stopChildren, waitForRing } from '../cli/index.js';
import type { Started } from '../cli/index.js';
import type { IsolationLevel } from '../executor/index.js';
import { benchKeys } from './kvs-cluster.js';

export interface FaasBenchCluster {
  readonly faas: LatticeFaas;
  readonly processes: readonly Started[];
  readonly noop: FunctionHandle<(x: number) => number>;
  readonly compose: DagHandle<{ 'bench/increment': [number] }, number>;
  /** The executors' pids (their CPU use is read from /proc). */
  readonly executorPids: readonly number[];
  readonly schedulerPid: number;
  /** The isolation level the executors run their functions at (from their ready lines). */
  readonly isolation: string;
  /** 'encrypted' (the default: TLS-PSK on the node:net transport, CURVE on ZeroMQ) or 'plain' (`--insecure`). */
  readonly security: 'encrypted' | 'plain';
  /** Where another client connects (see `LatticeFaas.connect`), with this token (the cluster's admin token; none when insecure). */
  readonly routingAddress: string;
  readonly schedulerAddress: string;
  readonly token: string | undefined;
  /** The executors' runtime pool counters, summed over the executors (read from their metrics). */
  poolCounters(): Promise<PoolCounters>;
  stop(): Promise<void>;
}

/** Runtime pool counters of the executors (Prometheus series of cli/executor.ts), summed. */
export interface PoolCounters {
  /** Runtimes started (sandbox processes or threads). */
  readonly runtimesStarted: number;
  /** Calls that loaded their function first. */
  readonly coldStarts: number;
  readonly warmStarts: number;
  /** Idle runtimes ended (cold owners' processes, surplus stems). */
  readonly idleEnded: number;
  /** Runtimes ended and replaced (timeout, out of memory, crash). */
  readonly replaced: number;
  readonly timeouts: number;
}

const POOL_SERIES: Readonly<Record<keyof PoolCounters, string>> = {
  runtimesStarted: 'lfaas_executor_pool_runtimes_started_total',
  coldStarts: 'lfaas_executor_pool_cold_starts_total',
  warmStarts: 'lfaas_executor_pool_warm_starts_total',
  idleEnded: 'lfaas_executor_pool_idle_ended_total',
  replaced: 'lfaas_executor_pool_workers_replaced_total',
  timeouts: 'lfaas_executor_pool_timeouts_total',
};

/** GET http://127.0.0.1:<port>/metrics, bounded in time. */
export function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = get({ host: '127.0.0.1', port, path: '/metrics', timeout: 2000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        if (body.length < 4_000_000) body += chunk;
      });
      response.on('end', () => resolve(body));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`metrics of 127.0.0.1:${port}: no answer in 2 s`)));
    request.on('error', reject);
  });
}

/** Sums the pool counters over the executors' metrics endpoints. */
async function readPoolCounters(ports: readonly number[]): Promise<PoolCounters> {
  const totals: Record<string, number> = Object.fromEntries(Object.keys(POOL_SERIES).map((key) => [key, 0]));
  for (const text of await Promise.all(ports.map(scrape))) {
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      for (const [key, series] of Object.entries(POOL_SERIES)) {
        if (line.startsWith(`${series}{`) || line.startsWith(`${series} `)) totals[key]! += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
      }
    }
  }
  return totals as unknown as PoolCounters;
}

/**
 * `schedulerArgs`: extra `lfaas scheduler` flags (none by default), e.g. `--pin-executors 0` so that
 * a function registered later is prepared nowhere and its first call is cold.
 */
/**
 * The storage side of a bench's FaaS cluster, secure as a cluster runs by default: keys made in
 * `data` (the bench's clients and readiness probes present the admin token, through
 * LFAAS_TOKEN), a routing node and one storage node of one shard; its processes go into `processes`.
 * With `insecure`, no keys (`keys` is '') and every role `--insecure`. `security`: the flags a role
 * started beside it takes (`--keys <folder>` or `--insecure`).
 */
export async function startBenchStorage(data: string, processes: Started[], options: { insecure?: boolean } = {}): Promise<{ keys: string; routingAddress: string; security: readonly string[] }> {
  const { keys, security } = benchKeys(data, options.insecure === true);
  const routing = await startRole(['routing', ...security, '--global', '1'], 'routing');
  processes.push(routing);
  const routingAddress = String(routing.ready['address']);
  const node = await startRole(['kvs', ...security, '--id', 'bench-0', '--routing', routingAddress, '--shards', '1', '--data', data, '--metrics-port', '-1', '--threads', 'off'], 'storage node');
  processes.push(node);
  await waitForRing([routingAddress], node.ready['shards'] as string[]);
  return { keys, routingAddress, security };
}

export async function startFaasBenchCluster(options: { executors: number; workers: number; isolation?: IsolationLevel; schedulerArgs?: readonly string[]; insecure?: boolean }): Promise<FaasBenchCluster> {
  const data = mkdtempSync(join(tmpdir(), 'lfaas-bench-'));
  const processes: Started[] = [];
  let faas: LatticeFaas | undefined;
  const stop = async (): Promise<void> => {
    await faas?.close();
    await stopChildren(processes.map((started) => started.child));
    rmSync(data, { recursive: true, force: true });
  };
  try {
    const { routingAddress, security } = await startBenchStorage(data, processes, { insecure: options.insecure === true });
    // This cluster's admin token (LFAAS_TOKEN is the last secure cluster's: another started later changes it).
    const token = options.insecure === true ? undefined : process.env['LFAAS_TOKEN'];
    const scheduler = await startRole(['scheduler', ...security, '--routing', routingAddress, ...(options.schedulerArgs ?? [])], 'scheduler');
    processes.push(scheduler);
    const schedulerAddress = String(scheduler.ready['address']);
    const executors = await Promise.all(
      Array.from({ length: options.executors }, (_, n) =>
        startRole(['executor', ...security, '--routing', routingAddress, '--schedulers', schedulerAddress, '--workers', String(options.workers), '--prewarm', String(options.workers), ...(options.isolation === undefined ? [] : ['--isolation', options.isolation])], `executor ${n}`),
      ),
    );
    processes.push(...executors);
    const levels = [...new Set(executors.map((executor) => String(executor.ready['isolation'])))];
    if (levels.length !== 1) throw new Error(`the executors run at different isolation levels: ${levels.join(', ')}`);
    const isolation = levels[0]!;
    const metricsPorts = executors.map((executor) => Number(executor.ready['metricsPort']));
    faas = await LatticeFaas.connect({ routing: [routingAddress], schedulers: [schedulerAddress] });
    // One owner's functions (the `bench/` namespace), as a user's DAG is: at `process` and `bwrap`
    // a sandbox process serves one owner, and a function in no namespace is its own owner, so
    // unnamespaced the DAG's two functions could not share a runtime and started runtimes under
    // load (9 in one 8-in-flight level) where the thread runtime started none.
    const noop = await faas.register<(x: number) => number, 'bench/noop'>('bench/noop', { code: 'module.exports = (x) => x;' });
    const increment = await faas.register<(x: number) => number, 'bench/increment'>('bench/increment', { code: 'module.exports = (x) => x + 1;' });
    const square = await faas.register<(x: number) => number, 'bench/square'>('bench/square', { code: 'module.exports = (y) => y * y;' });
    const compose = await faas.registerDag(dag('bench/square-of-increment').fn(increment).fn(square, ['bench/increment']).build());
    // Until every executor has reported to the scheduler (bounded): the first calls would all go to one.
    const client = faas;
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        await client.call(noop, [0]);
        break;
      } catch (error) {
        if ((error as { code?: string }).code !== 'SCHED_NO_CAPACITY') throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    return {
      faas,
      processes,
      noop,
      compose,
      executorPids: executors.map((e) => e.child.pid!),
      schedulerPid: scheduler.child.pid!,
      isolation,
      security: options.insecure === true ? 'plain' : 'encrypted',
      routingAddress,
      schedulerAddress,
      token,
      poolCounters: () => readPoolCounters(metricsPorts),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
