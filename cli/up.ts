/**
 * `lfaas up`: a local cluster as child processes on 127.0.0.1: one routing node, N storage nodes
 * (each with its shards and lmdb environments under the data folder), schedulers and executors.
 * Once the executors have reported to the schedulers, prints where everything is and the `export`
 * lines for the other commands; with `--demo` runs the demos (cli/demo.ts) and stops. Children are stopped by pid
 * on exit, Ctrl-C or SIGTERM, and stop themselves if this process dies (their stdin closes).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, LatticeFaas, isLfaasError, isRetryable } from '../client/index.js';
import { runDemos } from './demo.js';
import { freePorts } from './free-port.js';
import { waitForRing } from './ring-ready.js';

export interface UpOptions {
  readonly nodes: number;
  readonly shards: number;
  readonly replication: number;
  readonly data: string;
  readonly demo: boolean;
  readonly gossipPeriodMs: number;
  readonly schedulers: number;
  readonly executors: number;
}

/** The compiled CLI beside this module; from the TypeScript sources (tests), the built one. */
const main = existsSync(fileURLToPath(new URL('./main.js', import.meta.url)))
  ? fileURLToPath(new URL('./main.js', import.meta.url))
  : fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

export interface Started {
  readonly child: ChildProcess;
  readonly ready: Record<string, unknown>;
}

export interface StartRoleOptions {
  /** Collect the child's stderr lines here (and put them in errors) instead of inheriting it. */
  readonly stderr?: string[];
  readonly readyTimeoutMs?: number;
}

/** Spawns `lfaas <args>` and waits for its `ready <json>` line (10 s by default). */
export async function startRole(args: readonly string[], name: string, options: StartRoleOptions = {}): Promise<Started> {
  const captured = options.stderr;
  const child = spawn(process.execPath, [main, ...args], { stdio: ['pipe', 'pipe', captured === undefined ? 'inherit' : 'pipe'], env: { ...process.env, LFAAS_CHILD: '1' } });
  if (captured !== undefined) createInterface({ input: child.stderr! }).on('line', (line) => captured.push(line));
  const timeoutMs = options.readyTimeoutMs ?? 10_000;
  const tail = (): string => (captured === undefined || captured.length === 0 ? '' : `: ${captured.join('\n')}`);
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<Record<string, unknown>>((resolveReady, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not start within ${timeoutMs} ms${tail()}`));
    }, timeoutMs);
    lines.on('line', (line) => {
      if (!line.startsWith('ready ')) return;
      clearTimeout(timer);
      resolveReady(JSON.parse(line.slice('ready '.length)) as Record<string, unknown>);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with code ${code} before it was ready${tail()}`));
    });
  });
  return { child, ready };
}

/** Stops children by pid: SIGTERM, then SIGKILL after 3 s; waits for each to exit. */
export async function stopChildren(children: readonly ChildProcess[], signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return done();
          const kill = (how: NodeJS.Signals): void => {
            try {
              process.kill(child.pid!, how);
            } catch {
              // Already gone.
            }
          };
          // After SIGKILL, give up waiting after 2 s more (a zombie never reports its exit here).
          const timer = setTimeout(() => {
            kill('SIGKILL');
            setTimeout(done, 2000).unref();
          }, 3000);
          child.once('exit', () => {
            clearTimeout(timer);
            done();
          });
          kill(signal);
        }),
    ),
  );
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

/**
 * Waits for roles started together and adds each started child to `children`, also when another
 * failed (then throws its error): a child left out would never be stopped, and its open pipes
 * would keep this process from exiting.
 */
async function startedAll(children: ChildProcess[], starts: readonly Promise<Started>[]): Promise<Started[]> {
  const settled = await Promise.allSettled(starts);
  for (const result of settled) if (result.status === 'fulfilled') children.push(result.value.child);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<Started>).value);
}

/** The no-op function waitForExecutors calls. */
const PROBE = 'lfaas-up-probe';

export async function up(options: UpOptions): Promise<void> {
  const data = resolve(options.data);
  const [routingPort] = await freePorts(1);
  const children: ChildProcess[] = [];
  let stopping = false;
  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await stopChildren(children);
  };
  process.once('SIGINT', () => void stopAll().finally(() => process.exit(130)));
  process.once('SIGTERM', () => void stopAll().finally(() => process.exit(143)));

  try {
    const total = 1 + options.nodes + options.schedulers + options.executors;
    console.log(
      `lfaas up: 1 routing node + ${options.nodes} storage nodes x ${options.shards} shards + ${options.schedulers} scheduler${options.schedulers === 1 ? '' : 's'} + ${options.executors} executors on 127.0.0.1, replication factor ${options.replication}, data in ${data}`,
    );
    const routing = await startRole(['routing', '--port', String(routingPort), '--global', String(options.replication)], 'routing');
    children.push(routing.child);
    const routingAddress = String(routing.ready['address']);
    console.log(`  [1/${total}] routing  pid ${routing.child.pid}  ${routingAddress}`);
    const starts = await startedAll(
      children,
      Array.from({ length: options.nodes }, (_, n) =>
        startRole(
          ['kvs', '--id', `node-${n}`, '--routing', routingAddress, '--shards', String(options.shards), '--data', data, '--metrics-port', '0', '--gossip-period-ms', String(options.gossipPeriodMs), '--port', '0'],
          `storage node node-${n}`,
        ),
      ),
    );
    for (const [n, started] of starts.entries()) {
      const ready = started.ready;
      console.log(
        `  [${2 + n}/${total}] node-${n}   pid ${started.child.pid}  control ${String(ready['control'])}  shards ${(ready['shards'] as string[]).join(' ')}  metrics http://127.0.0.1:${String(ready['metricsPort'])}/metrics  (${String(ready['keys'])} keys reloaded)`,
      );
    }
    // Until every node has joined and the ring lists it: the schedulers keep their registry in the KVS.
    await waitForRing([routingAddress], starts.flatMap((started) => started.ready['shards'] as string[]));
    let index = 2 + options.nodes;
    const schedulerAddresses: string[] = [];
    for (let s = 0; s < options.schedulers; s++) {
      const scheduler = await startRole(['scheduler', '--routing', routingAddress], `scheduler ${s}`);
      children.push(scheduler.child);
      schedulerAddresses.push(String(scheduler.ready['address']));
      console.log(`  [${index++}/${total}] scheduler-${s}  pid ${scheduler.child.pid}  ${String(scheduler.ready['address'])}  metrics http://127.0.0.1:${String(scheduler.ready['metricsPort'])}/metrics`);
    }
    const executors = await startedAll(
      children,
      Array.from({ length: options.executors }, (_, e) =>
        startRole(['executor', '--routing', routingAddress, '--schedulers', schedulerAddresses.join(','), '--workers', '4', '--prewarm', '2'], `executor ${e}`),
      ),
    );
    for (const [e, executor] of executors.entries()) {
      console.log(`  [${index++}/${total}] executor-${e}   pid ${executor.child.pid}  ${String(executor.ready['address'])}  ${String(executor.ready['workers'])} workers  metrics http://127.0.0.1:${String(executor.ready['metricsPort'])}/metrics`);
    }
    await waitForExecutors([routingAddress], schedulerAddresses);
    const schedulerList = schedulerAddresses.join(',');
    console.log('\ncluster ready. For the other lfaas commands, in your shell:');
    console.log(`  export LFAAS_ROUTING=${routingAddress}`);
    console.log(`  export LFAAS_SCHEDULERS=${schedulerList}`);
    console.log("then try: lfaas deploy examples/functions/square.ts; lfaas call square 7; lfaas functions; lfaas kvs put greeting '\"hello\"'; lfaas kvs stat");
    if (options.demo) {
      const ok = await runDemos([routingAddress], schedulerAddresses);
      if (!ok) process.exitCode = 1;
      return;
    }
    console.log('running; Ctrl-C stops the cluster.');
    await new Promise<never>(() => {});
  } finally {
    await stopAll();
  }
}
