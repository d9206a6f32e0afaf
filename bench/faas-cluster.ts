/**
 * A FaaS cluster for benchmarks: a routing node, one storage node, one scheduler and executors as
 * their own processes (the built CLI), and an SDK client, with the functions the benches call
 * registered: `noop` (returns its argument), `increment`, `square` and the DAG
 * `square-of-increment` = square(increment(x)). Stopped by pid.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LatticeFaas, dag } from '../client/index.js';
import type { DagHandle, FunctionHandle } from '../client/index.js';
import { startRole, stopChildren, waitForRing } from '../cli/index.js';
import type { Started } from '../cli/index.js';

export interface FaasBenchCluster {
  readonly faas: LatticeFaas;
  readonly processes: readonly Started[];
  readonly noop: FunctionHandle<(x: number) => number>;
  readonly compose: DagHandle<{ increment: [number] }, number>;
  /** The executors' pids (their CPU use is read from /proc). */
  readonly executorPids: readonly number[];
  readonly schedulerPid: number;
  stop(): Promise<void>;
}

export async function startFaasBenchCluster(options: { executors: number; workers: number }): Promise<FaasBenchCluster> {
  const data = mkdtempSync(join(tmpdir(), 'lfaas-bench-'));
  const processes: Started[] = [];
  let faas: LatticeFaas | undefined;
  const stop = async (): Promise<void> => {
    await faas?.close();
    await stopChildren(processes.map((started) => started.child));
    rmSync(data, { recursive: true, force: true });
  };
  try {
    const routing = await startRole(['routing', '--global', '1'], 'routing');
    processes.push(routing);
    const routingAddress = String(routing.ready['address']);
    const node = await startRole(['kvs', '--id', 'bench-0', '--routing', routingAddress, '--shards', '1', '--data', data, '--metrics-port', '-1', '--threads', 'off'], 'storage node');
    processes.push(node);
    await waitForRing([routingAddress], node.ready['shards'] as string[]);
    const scheduler = await startRole(['scheduler', '--routing', routingAddress], 'scheduler');
    processes.push(scheduler);
    const schedulerAddress = String(scheduler.ready['address']);
    const executors = await Promise.all(
      Array.from({ length: options.executors }, (_, n) =>
        startRole(['executor', '--routing', routingAddress, '--schedulers', schedulerAddress, '--workers', String(options.workers), '--prewarm', String(options.workers)], `executor ${n}`),
      ),
    );
    processes.push(...executors);
    faas = await LatticeFaas.connect({ routing: [routingAddress], schedulers: [schedulerAddress] });
    const noop = await faas.register<(x: number) => number, 'noop'>('noop', { code: 'module.exports = (x) => x;' });
    const increment = await faas.register<(x: number) => number, 'increment'>('increment', { code: 'module.exports = (x) => x + 1;' });
    const square = await faas.register<(x: number) => number, 'square'>('square', { code: 'module.exports = (y) => y * y;' });
    const compose = await faas.registerDag(dag('square-of-increment').fn(increment).fn(square, ['increment']).build());
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
    return { faas, processes, noop, compose, executorPids: executors.map((e) => e.child.pid!), schedulerPid: scheduler.child.pid!, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
