/**
 * `lfaas up`: a local cluster as child processes on 127.0.0.1: one routing node, N storage nodes
 * (each with its shards and lmdb environments under the data folder), schedulers and executors.
 * Once the executors have reported to the schedulers, prints where everything is and the `export`
 * lines for the other commands; with `--demo` runs the demos (cli/demo.ts) and stops. Every child
 * runs under the supervisor (supervisor.ts): one that exits unasked is started again on its ports.
 * Children are stopped by pid on exit, Ctrl-C or SIGTERM, and stop themselves if this process dies
 * (their stdin closes).
 */
import type { IsolationLevel } from '../executor/index.js';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ADMIN_TOKEN_FILE, keysInit } from './keys-commands.js';
import { LocalProvider } from './local-provider.js';
import { startMonitor } from './monitor.js';
import type { RunningMonitor } from './monitor.js';
import { roleSecurity } from './security.js';
import type { SupervisedRole } from './supervisor.js';
import type { AutoscalePolicy } from '../monitor/index.js';
import { ErrorCode, LatticeFaas, isLfaasError, isRetryable } from '../client/index.js';
import { runDemos } from './demo.js';
import type { DemoName } from './demo.js';
import { freePorts } from './free-port.js';
import { waitForRing } from './ring-ready.js';
import { stopChildren } from './role-process.js';
import type { Started } from './role-process.js';
import { Supervisor, portOf } from './supervisor.js';

export interface UpOptions {
  readonly nodes: number;
  readonly shards: number;
  readonly replication: number;
  readonly data: string;
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
  const faas = await LatticeFaas.connect({ routing, schedulers });
  try {
    const probe = await faas.register(PROBE, { code: 'module.exports = () => null;' }, { timeoutMs: 5000 });
    for (const scheduler of schedulers) {
      const one = await LatticeFaas.connect({ routing, schedulers: [scheduler] });
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

export async function up(options: UpOptions): Promise<void> {
  const data = resolve(options.data);
  // The cluster's keys: made on the first start, kept with the data (restarts keep their addresses, which name the keys).
  const keys = join(data, 'keys');
  const firstStart = !existsSync(join(keys, 'members.json'));
  keysInit(keys);
  // This process's own clients (the readiness probes, the demos) present the admin token.
  const adminToken = readFileSync(join(keys, ADMIN_TOKEN_FILE), 'utf8').trim();
  process.env['LFAAS_TOKEN'] = adminToken;
  const [routingPort] = await freePorts(1);
  // Every role runs under supervision: one that exits unasked (its crash guard after a bug, a
  // kill -9) is started again on the same ports and data.
  const supervisor = new Supervisor((line) => process.stderr.write(`${line}\n`));
  let monitor: RunningMonitor | undefined;
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    supervisor.stopWatching();
    await monitor?.stop();
    await stopChildren(supervisor.children());
  };
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  process.once('SIGTERM', () => void stopAll().finally(() => process.exit(143)));

  try {
    const total = 1 + options.nodes + options.schedulers + options.executors;
    console.log(
      `lfaas up: 1 routing node + ${options.nodes} storage nodes x ${options.shards} shards + ${options.schedulers} scheduler${options.schedulers === 1 ? '' : 's'} + ${options.executors} executors on 127.0.0.1, replication factor ${options.replication}, data in ${data}`,
    );
    const routing = await supervisor.start({ name: 'routing', args: () => ['routing', '--keys', keys, '--port', String(routingPort), '--global', String(options.replication)] });
    const routingAddress = String(routing.ready['address']);
    console.log(`  keys: ${keys}${firstStart ? ' (made now: a key pair per role, members.json lists them)' : ''}; every connection is encrypted (CURVE) and only those keys are members; every client presents an owner token (the admin token is ${join(keys, ADMIN_TOKEN_FILE)})`);
    console.log(`  [1/${total}] routing  pid ${routing.child.pid}  ${routingAddress}`);
    /** A storage node: `--id` its name, the role's key unless it has one of its own. */
    const storageRole = (name: string, keyName: string | undefined): SupervisedRole => ({
      name,
      args: (last) => [
        'kvs', '--keys', keys, ...(keyName === undefined ? [] : ['--key-name', keyName]), '--id', name, '--routing', routingAddress, '--shards', String(options.shards), '--data', data, '--gossip-period-ms', String(options.gossipPeriodMs),
        ...(options.shardMemoryMb === undefined ? [] : ['--shard-memory-mb', String(options.shardMemoryMb)]),
        ...(last === undefined
          ? ['--port', '0', '--metrics-port', '0']
          : ['--port', portOf(last['control']), '--shard-ports', (last['shards'] as string[]).map(portOf).join(','), '--metrics-port', String(last['metricsPort'] ?? 0)]),
      ],
    });
    const starts = await startedAll(Array.from({ length: options.nodes }, (_, n) => supervisor.start(storageRole(`node-${n}`, undefined))));
    for (const [n, started] of starts.entries()) {
      const ready = started.ready;
      console.log(
        `  [${2 + n}/${total}] node-${n}   pid ${started.child.pid}  control ${String(ready['control'])}  shards ${(ready['shards'] as string[]).join(' ')}  metrics http://127.0.0.1:${String(ready['metricsPort'])}/metrics  (${String(ready['keys'])} keys reloaded)`,
      );
    }
    // Until every node has joined and the ring lists it: the schedulers keep their registry in the KVS.
    // Bounded generously: on a loaded machine the nodes take seconds to join.
    await waitForRing([routingAddress], starts.flatMap((started) => started.ready['shards'] as string[]), 30_000);
    let index = 2 + options.nodes;
    const schedulerAddresses: string[] = [];
    /** A restart binds the ports of the run before. */
    const samePorts = (last: Readonly<Record<string, unknown>> | undefined): string[] =>
      last === undefined ? ['--port', '0', '--metrics-port', '0'] : ['--port', portOf(last['address']), '--metrics-port', String(last['metricsPort'] ?? 0)];
    for (let s = 0; s < options.schedulers; s++) {
      const scheduler = await supervisor.start({ name: `scheduler-${s}`, args: (last) => ['scheduler', '--keys', keys, '--routing', routingAddress, ...samePorts(last)] });
      schedulerAddresses.push(String(scheduler.ready['address']));
      console.log(`  [${index++}/${total}] scheduler-${s}  pid ${scheduler.child.pid}  ${String(scheduler.ready['address'])}  metrics http://127.0.0.1:${String(scheduler.ready['metricsPort'])}/metrics`);
    }
    const executorRole = (name: string, keyName: string | undefined): SupervisedRole => ({
      name,
      args: (last) => ['executor', '--keys', keys, ...(keyName === undefined ? [] : ['--key-name', keyName]), '--routing', routingAddress, '--schedulers', schedulerAddresses.join(','), '--workers', '4', '--prewarm', '2', ...(options.isolation === undefined ? [] : ['--isolation', options.isolation]), ...samePorts(last)],
    });
    const executors = await startedAll(Array.from({ length: options.executors }, (_, e) => supervisor.start(executorRole(`executor-${e}`, undefined))));
    for (const [e, executor] of executors.entries()) {
      console.log(`  [${index++}/${total}] executor-${e}   pid ${executor.child.pid}  ${String(executor.ready['address'])}  ${String(executor.ready['workers'])} runtimes, isolation ${String(executor.ready['isolation'])}  metrics http://127.0.0.1:${String(executor.ready['metricsPort'])}/metrics`);
    }
    await waitForExecutors([routingAddress], schedulerAddresses, 30_000);
    const schedulerList = schedulerAddresses.join(',');
    console.log('\ncluster ready. For the other lfaas commands, in your shell:');
    console.log(`  export LFAAS_ROUTING=${routingAddress}`);
    console.log(`  export LFAAS_SCHEDULERS=${schedulerList}`);
    console.log(`  export LFAAS_TOKEN=$(cat ${join(keys, ADMIN_TOKEN_FILE)})`);
    console.log("then try: lfaas deploy examples/functions/square.ts; lfaas call square 7; lfaas functions; lfaas kvs put greeting '\"hello\"'; lfaas kvs stat");
    console.log(`an owner's token (its names live in alice/...): lfaas token create --keys ${keys} --owner alice --rights deploy,call,read,write --ttl 1d`);
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
      console.log(`autoscaling: executors ${executor.min}..${executor.max}, storage nodes ${storage.min}..${storage.max} (the monitor's decisions: lfaas events; its metrics: http://127.0.0.1:${monitor.metricsPort}/metrics)`);
    }
    if (options.demo !== false) {
      const ok = await runDemos([routingAddress], schedulerAddresses, keys, monitor !== undefined, options.demo === true ? undefined : options.demo);
      if (!ok) process.exitCode = 1;
      return;
    }
    console.log('running; Ctrl-C stops the cluster.');
    await new Promise<never>(() => {});
  } finally {
    await stopAll();
  }
}
