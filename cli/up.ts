/**
 * `lfaas up`: a local cluster as child processes on 127.0.0.1: one routing node, N storage nodes
 * (each with its shards and lmdb environments under the data folder), schedulers, executors and
 * the HTTP ingress, on fixed ports (up-ports.ts: routing 7100, schedulers 7200..., executors
 * 7300..., storage 7400..., HTTP 7080, the dashboard 7081, started first so that it receives
 * every role's spans; `--base-port` moves them all). A port already taken fails
 * at once, naming it and its holder.
 *
 * Ready means every role answers real requests: each storage shard a GET sent to it directly, the
 * routing node a lookup, each scheduler a call run by an executor, each executor an echo, the
 * ingress GET /v1/health. Then `up` writes `.lfaas/cluster.json` in the folder it runs in (the
 * addresses with their keys, the ingress URL, the keys folder, the admin token, its pid;
 * client/cluster-file.ts), which every `lfaas` command and `connect()` read when given no address,
 * and removes it when it stops. With `--demo` it runs the demos (cli/demo.ts) and stops. Every
 * child runs under the supervisor (supervisor.ts): one that exits unasked is started again on its
 * ports. Children are stopped by pid on exit, Ctrl-C or SIGTERM, and stop themselves if this
 * process dies (their stdin closes).
 */
import type { IsolationLevel } from '../executor/index.js';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, resolve } from 'node:path';
import { ADMIN_TOKEN_FILE, keysInit } from './keys-commands.js';
import { LocalProvider } from './local-provider.js';
import { startMonitor } from './monitor.js';
import type { RunningMonitor } from './monitor.js';
import { roleSecurity } from './security.js';
import type { SupervisedRole } from './supervisor.js';
import type { AutoscalePolicy } from '../monitor/index.js';
import { CLUSTER_FILE, ErrorCode, LatticeFaas, isLfaasError, isRetryable, processAlive, readClusterFile, removeClusterFile, writeClusterFile } from '../client/index.js';
import type { ClusterFile } from '../client/index.js';
import { Rpc, bindTransport, clientKeyPair, clientToken, systemClock, transportKind } from '../protocol/index.js';
import { checkPortsFree, plannedPorts, portLayout } from './up-ports.js';
import type { PortOptions } from './up-ports.js';
import { runDemos } from './demo.js';
import type { DemoName } from './demo.js';
import { waitForShards } from './ring-ready.js';
import { UsageError } from './exit-codes.js';
import { stopChildren } from './role-process.js';
import type { Started } from './role-process.js';
import { Supervisor, portOf } from './supervisor.js';

export interface UpOptions {
  readonly nodes: number;
  readonly shards: number;
  readonly replication: number;
  readonly data: string;
  /** The ports (up-ports.ts); absent: the defaults from 7100. */
  readonly ports?: Omit<PortOptions, 'shards'>;
  /** The ready report as one JSON line on stdout; the progress lines go to stderr. */
  readonly json?: boolean;
  /** Where `.lfaas/cluster.json` goes (default: the working directory). */
  readonly projectFolder?: string;
  /** Run every demo (true), or the one named, then stop. */
  readonly demo: boolean | DemoName;
  readonly gossipPeriodMs: number;
  /** Each shard's memory budget for entries (MiB; the storage node's default when unset). */
  readonly shardMemoryMb?: number;
  readonly schedulers: number;
  readonly executors: number;
  /** How executors isolate functions (default: the strongest the machine allows). */
  readonly isolation?: IsolationLevel;
  /**
   * Run the monitor and the local node provider: storage nodes and executors are added and
   * removed between these bounds (the cluster starts at `nodes` and `executors`).
   */
  readonly autoscale?: {
    readonly policy: AutoscalePolicy;
    readonly periodMs?: number;
  };
}

/**
 * Waits (bounded, 10 s) until executors have reported to every scheduler: calls a no-op function
 * (registered for this, deleted after) through each scheduler while the call fails with
 * SCHED_NO_CAPACITY (no executor heard from yet), or with another retryable error or EXEC_TIMEOUT
 * (a first call on a loaded machine: the no-op is safe to run again). One answered call proves
 * that one executor reported; the others started at the same time and heartbeat every 100 ms.
 *
 * @example
 * ```ts
 * await waitForExecutors(['tcp://127.0.0.1:7100'], ['tcp://127.0.0.1:7200']);
 * // calls through the scheduler now find an executor
 * ```
 */
export async function waitForExecutors(routing: readonly string[], schedulers: readonly string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const faas = await LatticeFaas.connect({ routing, schedulers, connectTimeoutMs: Math.max(2000, Math.min(10_000, deadline - Date.now())) });
  try {
    const probe = await faas.register(PROBE, { code: 'module.exports = () => null;' }, { timeoutMs: 5000 });
    for (const scheduler of schedulers) {
      const one = await LatticeFaas.connect({ routing, schedulers: [scheduler], connectTimeoutMs: Math.max(2000, Math.min(10_000, deadline - Date.now())) });
      try {
        for (let attempt = 0; ; attempt++) {
          try {
            await one.call(probe, [], { timeoutMs: Math.max(100, Math.min(3000, deadline - Date.now())) });
            break;
          } catch (error) {
            const again = isLfaasError(error) && (isRetryable(error.code) || error.code === ErrorCode.EXEC_TIMEOUT);
            if (!again || attempt >= 200 || Date.now() >= deadline) throw error;
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      } finally {
        await one.close();
      }
    }
  } finally {
    await faas.deleteFunction(PROBE).catch(() => {});
    await faas.close();
  }
}

/** Waits for roles started together; throws the first failure once all have settled (none is left unstopped). */
async function startedAll(starts: readonly Promise<Started>[]): Promise<Started[]> {
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<Started>).value);
}

/** The no-op function waitForExecutors calls. */
const PROBE = 'lfaas-up-probe';

/** Echo answered by each of `addresses` (executors, schedulers): bounded, retried until `timeoutMs`. */
async function waitForEchoes(addresses: readonly string[], timeoutMs: number): Promise<void> {
  if (addresses.length === 0) return;
  const transport = await bindTransport({ keyPair: clientKeyPair(addresses) });
  const token = clientToken(undefined);
  const rpc = new Rpc(transport, systemClock, token === undefined ? {} : { token });
  const deadline = Date.now() + timeoutMs;
  try {
    await Promise.all(
      addresses.map(async (address) => {
        for (let attempt = 0; ; attempt++) {
          try {
            await rpc.request(address, { echo: {} }, { timeoutMs: Math.max(200, Math.min(2000, deadline - Date.now())) });
            return;
          } catch (error) {
            if (attempt >= 50 || Date.now() >= deadline) throw new Error(`${address} did not answer an echo within ${timeoutMs} ms`, { cause: error });
          }
        }
      }),
    );
  } finally {
    await rpc.close();
    await transport.close();
  }
}

/** GET <ingress>/v1/health answered 200, retried until `timeoutMs`. */
async function waitForIngress(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (let attempt = 0; attempt < 200 && Date.now() < deadline; attempt++) {
    try {
      const response = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(Math.max(200, Math.min(2000, deadline - Date.now()))) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the HTTP ingress at ${url} did not answer GET /v1/health within ${timeoutMs} ms (${last})`);
}

/** Whether this build has the dashboard command and its page (cli/dashboard.js, dist/dashboard-web). */
function dashboardAvailable(): boolean {
  return existsSync(fileURLToPath(new URL('./dashboard.js', import.meta.url))) && existsSync(fileURLToPath(new URL('../dashboard-web/index.html', import.meta.url)));
}

/** The metrics server URL (`http://127.0.0.1:<port>`) of each named role that serves one, from its current ready report. */
function metricsUrlsOf(supervisor: Supervisor, names: readonly string[]): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const name of names) {
    const port = supervisor.readyOf(name)?.['metricsPort'];
    if (typeof port === 'number') urls[name] = `http://127.0.0.1:${port}`;
  }
  return urls;
}

/** Whether this build has the HTTP ingress command (cli/ingress.js next to this file). */
function ingressAvailable(): boolean {
  return existsSync(fileURLToPath(new URL('./ingress.js', import.meta.url)));
}

/**
 * A state file already in the project folder: a live `up` owns the folder (refused, naming it);
 * a stale one (its `up` gone: a kill -9) is removed.
 */
function claimStateFile(path: string, log: (line: string) => void): void {
  if (!existsSync(path)) return;
  let file: ClusterFile | undefined;
  try {
    file = readClusterFile(path);
  } catch {
    file = undefined;
  }
  if (file !== undefined && file.pid !== process.pid && processAlive(file.pid)) {
    throw new UsageError(`up: a cluster from this folder is running already: lfaas up pid ${file.pid}, routing ${file.routing.join(',')} (${path}); stop it first, or run up in another folder with another --base-port`);
  }
  log(`  (removed the stale ${path}${file === undefined ? '' : ` of lfaas up pid ${file.pid}, which is gone`})`);
  rmSync(path, { force: true });
}

export async function up(options: UpOptions): Promise<void> {
  const data = resolve(options.data);
  const json = options.json === true;
  /** Progress: stdout, or stderr when stdout carries the JSON report. */
  const say = (line: string): void => {
    if (json) process.stderr.write(`${line}\n`);
    else console.log(line);
  };
  const statePath = join(resolve(options.projectFolder ?? process.cwd()), CLUSTER_FILE);
  claimStateFile(statePath, say);
  const withIngress = ingressAvailable() && options.ports?.httpPort !== 0;
  const withDashboard = dashboardAvailable() && options.ports?.dashboardPort !== 0;
  const layout = portLayout({ basePort: options.ports?.basePort ?? 7100, ...options.ports, shards: options.shards });
  // Every port is tried before anything starts: a taken one fails at once, naming its holder.
  await checkPortsFree(plannedPorts(layout, { nodes: options.nodes, schedulers: options.schedulers, executors: options.executors, ingress: withIngress, dashboard: withDashboard }));
  // The cluster's keys: made on the first start, kept with the data (restarts keep their addresses, which name the keys).
  const keys = join(data, 'keys');
  const firstStart = !existsSync(join(keys, 'members.json'));
  keysInit(keys);
  // This process's own clients (the readiness probes, the demos) present the admin token.
  const tokenFile = join(keys, ADMIN_TOKEN_FILE);
  const adminToken = readFileSync(tokenFile, 'utf8').trim();
  process.env['LFAAS_TOKEN'] = adminToken;
  // Functions' log records stay off this terminal (one pino line each per executor would drown
  // it): `lfaas logs --follow` shows them (docs/observability-logs.md). LFAAS_FUNCTION_LOG_LEVEL
  // set in the environment (info, debug...) brings them back to the executors' stderr.
  process.env['LFAAS_FUNCTION_LOG_LEVEL'] ??= 'silent';
  // The roles' own structured logs (cli/log.ts): warnings and worse only, unless LFAAS_LOG_LEVEL says.
  process.env['LFAAS_LOG_LEVEL'] ??= 'warn';
  // Every role runs under supervision: one that exits unasked (its crash guard after a bug, a
  // kill -9) is started again on the same ports and data.
  const supervisor = new Supervisor((line) => process.stderr.write(`${line}\n`));
  let monitor: RunningMonitor | undefined;
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    removeClusterFile(statePath, process.pid);
    supervisor.stopWatching();
    await monitor?.stop();
    await stopChildren(supervisor.children());
  };
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  process.once('SIGTERM', () => void stopAll().finally(() => process.exit(143)));

  try {
    const total = 1 + options.nodes + options.schedulers + options.executors + (withIngress ? 1 : 0);
    say(
      `lfaas up: 1 routing node + ${options.nodes} storage nodes x ${options.shards} shards + ${options.schedulers} scheduler${options.schedulers === 1 ? '' : 's'} + ${options.executors} executors${withIngress ? ' + the HTTP ingress' : ''} on 127.0.0.1, replication factor ${options.replication}, data in ${data}`,
    );
    // The dashboard first, so it receives every role's spans (they export to it: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
    // it reads the cluster's addresses from the state file once that is written.
    let dashboardUrl: string | undefined;
    if (withDashboard) {
      const dashboard = await supervisor.start({ name: 'dashboard', args: (last) => ['dashboard', '--keys', keys, '--state', statePath, '--port', last === undefined ? String(layout.dashboard) : String(last['port'])] });
      dashboardUrl = String(dashboard.ready['address']);
      process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] ??= `${dashboardUrl}/v1/traces`;
      say(`  dashboard  pid ${dashboard.child.pid}  ${dashboardUrl}  (spans: ${process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']})`);
    }
    const routing = await supervisor.start({ name: 'routing', args: (last) => ['routing', '--keys', keys, '--port', String(layout.routing), '--global', String(options.replication), '--metrics-port', String(last?.['metricsPort'] ?? 0)] });
    const routingAddress = String(routing.ready['address']);
    say(`  keys: ${keys}${firstStart ? ' (made now: a key pair per role, members.json lists them)' : ''}; every connection is encrypted (${transportKind() === 'net' ? 'TLS-PSK' : 'CURVE'}) and only those keys are members; every client presents an owner token (the admin token is ${tokenFile})`);
    say(`  [1/${total}] routing  pid ${routing.child.pid}  ${routingAddress}  metrics http://127.0.0.1:${String(routing.ready['metricsPort'])}/metrics`);
    /** A storage node: `--id` its name, the role's key unless it has one of its own; the first `nodes` on their fixed ports. */
    const storageRole = (name: string, keyName: string | undefined): SupervisedRole => {
      const index = /^node-(\d+)$/.exec(name)?.[1];
      const fixed = index !== undefined && Number(index) < options.nodes ? layout.storage(Number(index)) : undefined;
      return {
        name,
        args: (last) => [
          'kvs', '--keys', keys, ...(keyName === undefined ? [] : ['--key-name', keyName]), '--id', name, '--routing', routingAddress, '--shards', String(options.shards), '--data', data, '--gossip-period-ms', String(options.gossipPeriodMs),
          ...(options.shardMemoryMb === undefined ? [] : ['--shard-memory-mb', String(options.shardMemoryMb)]),
          ...(last === undefined
            ? fixed === undefined
              ? ['--port', '0', '--metrics-port', '0']
              : ['--port', String(fixed.control), '--shard-ports', fixed.shards.join(','), '--metrics-port', '0']
            : ['--port', portOf(last['control']), '--shard-ports', (last['shards'] as string[]).map(portOf).join(','), '--metrics-port', String(last['metricsPort'] ?? 0)]),
        ],
      };
    };
    const starts = await startedAll(Array.from({ length: options.nodes }, (_, n) => supervisor.start(storageRole(`node-${n}`, undefined))));
    for (const [n, started] of starts.entries()) {
      const ready = started.ready;
      say(
        `  [${2 + n}/${total}] node-${n}   pid ${started.child.pid}  control ${String(ready['control'])}  shards ${(ready['shards'] as string[]).join(' ')}  metrics http://127.0.0.1:${String(ready['metricsPort'])}/metrics  (${String(ready['keys'])} keys reloaded)`,
      );
    }
    // Until every node has joined, the ring lists it, and each shard answers a GET sent to it
    // directly (the schedulers keep their registry in the KVS). Bounded generously: on a loaded
    // machine the nodes take seconds to join.
    await waitForShards([routingAddress], starts.flatMap((started) => started.ready['shards'] as string[]), 30_000);
    let index = 2 + options.nodes;
    const schedulerAddresses: string[] = [];
    /** A restart binds the ports of the run before; a first start its fixed port (0: any). */
    const samePorts = (last: Readonly<Record<string, unknown>> | undefined, port: number): string[] =>
      last === undefined ? ['--port', String(port), '--metrics-port', '0'] : ['--port', portOf(last['address']), '--metrics-port', String(last['metricsPort'] ?? 0)];
    for (let s = 0; s < options.schedulers; s++) {
      const scheduler = await supervisor.start({ name: `scheduler-${s}`, args: (last) => ['scheduler', '--keys', keys, '--routing', routingAddress, ...samePorts(last, layout.scheduler(s))] });
      schedulerAddresses.push(String(scheduler.ready['address']));
      say(`  [${index++}/${total}] scheduler-${s}  pid ${scheduler.child.pid}  ${String(scheduler.ready['address'])}  metrics http://127.0.0.1:${String(scheduler.ready['metricsPort'])}/metrics`);
    }
    const executorRole = (name: string, keyName: string | undefined): SupervisedRole => {
      const position = /^executor-(\d+)$/.exec(name)?.[1];
      const port = position !== undefined && Number(position) < options.executors ? layout.executor(Number(position)) : 0;
      return {
        name,
        args: (last) => ['executor', '--keys', keys, ...(keyName === undefined ? [] : ['--key-name', keyName]), '--routing', routingAddress, '--schedulers', schedulerAddresses.join(','), '--workers', '4', '--prewarm', '2', ...(options.isolation === undefined ? [] : ['--isolation', options.isolation]), ...samePorts(last, port)],
      };
    };
    const executors = await startedAll(Array.from({ length: options.executors }, (_, e) => supervisor.start(executorRole(`executor-${e}`, undefined))));
    for (const [e, executor] of executors.entries()) {
      say(`  [${index++}/${total}] executor-${e}   pid ${executor.child.pid}  ${String(executor.ready['address'])}  ${String(executor.ready['workers'])} runtimes, isolation ${String(executor.ready['isolation'])}  metrics http://127.0.0.1:${String(executor.ready['metricsPort'])}/metrics`);
    }
    const schedulerList = schedulerAddresses.join(',');
    let ingressUrl: string | undefined;
    if (withIngress) {
      const ingress = await supervisor.start({
        name: 'ingress',
        args: (last) => ['ingress', '--keys', keys, '--routing', routingAddress, '--schedulers', schedulerList, '--port', last === undefined ? String(layout.http) : String(new URL(String(last['address'])).port), '--metrics-port', String(last?.['metricsPort'] ?? 0)],
      });
      ingressUrl = String(ingress.ready['address']);
      say(`  [${index++}/${total}] ingress  pid ${ingress.child.pid}  ${ingressUrl}  (HTTP: POST ${ingressUrl}/v1/functions/<name>/call with Authorization: Bearer <token>)  metrics http://127.0.0.1:${String(ingress.ready['metricsPort'])}/metrics`);
    }
    // Ready: every executor answers, each scheduler has heard from one (a call runs through it),
    // and the ingress answers its health check.
    await waitForEchoes(executors.map((executor) => String(executor.ready['address'])), 30_000);
    await waitForExecutors([routingAddress], schedulerAddresses, 30_000);
    if (ingressUrl !== undefined) await waitForIngress(ingressUrl, 30_000);
    const state: ClusterFile = {
      version: 1,
      routing: [routingAddress],
      schedulers: schedulerAddresses,
      ...(ingressUrl === undefined ? {} : { ingress: ingressUrl }),
      metrics: metricsUrlsOf(supervisor, ['routing', ...starts.map((_, n) => `node-${n}`), ...schedulerAddresses.map((_, s) => `scheduler-${s}`), ...executors.map((_, e) => `executor-${e}`), ...(ingressUrl === undefined ? [] : ['ingress'])]),
      ...(dashboardUrl === undefined ? {} : { dashboard: dashboardUrl }),
      keys,
      tokenFile,
      token: adminToken,
      data,
      pid: process.pid,
      startedAt: new Date().toISOString(),
    };
    writeClusterFile(statePath, state);
    // Every role's metrics server (/metrics, /healthz, /readyz), by role name, as they are now.
    const metricsUrls = state.metrics ?? {};
    if (json) {
      console.log(JSON.stringify({ ready: true, stateFile: statePath, routing: state.routing, schedulers: state.schedulers, ingress: ingressUrl ?? null, dashboard: dashboardUrl ?? null, metrics: metricsUrls, keys, tokenFile, data, pid: process.pid, startedAt: state.startedAt }));
    } else {
      console.log(`\ncluster ready; its addresses and admin token are in ${statePath}: every lfaas command run in ${resolve(options.projectFolder ?? process.cwd())} (or below) finds it there, no exports needed.`);
      if (ingressUrl !== undefined) console.log(`  HTTP ingress: ${ingressUrl}`);
      if (dashboardUrl !== undefined) console.log(`  dashboard ${dashboardUrl}/#token=${adminToken}`);
      console.log('  from elsewhere (another folder, another machine\'s shell):');
      console.log(`  export LFAAS_ROUTING=${routingAddress}`);
      console.log(`  export LFAAS_SCHEDULERS=${schedulerList}`);
      console.log(`  export LFAAS_TOKEN=$(cat ${tokenFile})`);
      console.log("then try: lfaas deploy examples/functions/square.ts; lfaas call square 7; lfaas functions; lfaas kvs put greeting '\"hello\"'; lfaas kvs stat");
      console.log('what functions log (console.log, ctx.log): lfaas logs --follow; recent and running calls: lfaas invocations');
      console.log(`an owner's token (its names live in alice/...): lfaas token create --keys ${keys} --owner alice --rights deploy,call,read,write --ttl 1d`);
    }
    if (options.autoscale !== undefined) {
      const provider = new LocalProvider({ supervisor, keys, routing: [routingAddress], roles: { storage: storageRole, executor: executorRole }, log: (line) => process.stderr.write(`${line}\n`) });
      starts.forEach((started, n) => provider.adopt('storage', `node-${n}`, started));
      executors.forEach((started, e) => provider.adopt('executor', `executor-${e}`, started));
      const security = roleSecurity('monitor', { keys });
      monitor = await startMonitor({
        name: `up-${process.pid}`,
        keyPair: security.keyPair,
        shell: security.shell,
        routing: [routingAddress],
        schedulers: schedulerAddresses,
        policy: options.autoscale.policy,
        provider,
        ...(options.autoscale.periodMs === undefined ? {} : { periodMs: options.autoscale.periodMs }),
        metricsPort: 0,
        log: (line) => process.stderr.write(`${line}\n`),
      });
      const { executor, storage } = options.autoscale.policy;
      say(`autoscaling: executors ${executor.min}..${executor.max}, storage nodes ${storage.min}..${storage.max} (the monitor's decisions: lfaas events; its metrics: http://127.0.0.1:${monitor.metricsPort}/metrics)`);
    }
    if (options.demo !== false) {
      const ok = await runDemos([routingAddress], schedulerAddresses, keys, monitor !== undefined, options.demo === true ? undefined : options.demo, ingressUrl, { ...(dashboardUrl === undefined ? {} : { dashboard: dashboardUrl }), metrics: metricsUrlsOf(supervisor, Object.keys(state.metrics ?? {})), token: adminToken });
      if (!ok) process.exitCode = 1;
      return;
    }
    say('running; Ctrl-C stops the cluster.');
    await new Promise<never>(() => {});
  } finally {
    await stopAll();
  }
}
