/**
 * Executors killed (SIGKILL, by pid) in the middle of calls, over real processes: a routing
 * node, a storage node, one scheduler that declares an executor dead after 500 ms without a
 * heartbeat, and executors started one at a time, so which executor runs a call is known (the
 * only one alive) and each kill is deterministic.
 *
 * - A sync call and a sync DAG call whose executor dies are answered EXEC_LOST by the scheduler
 *   once the heartbeats stop, not by their own 30 s timeout (EXEC_TIMEOUT) and never a hang.
 * - Async calls (and an async DAG call) are at least once: their executor dies, another one is
 *   there, every future resolves with its own right result, dispatched again (the execution
 *   record's attempt is 2), and each function counted its executions in the KVS (a Counter merge
 *   per execution: at least 2 for the ones that were cut, at least 1 always).
 *
 * How a test knows a function is running before it kills: the function's first act is that
 * Counter merge, acknowledged by the storage node before the function goes on, and the test
 * waits for the count. Lost triggers are left to the simulation (no clean way to drop one
 * message between two real processes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatticeFaas } from '../client/index.js';
import type { CallFuture } from '../client/index.js';
import { ErrorCode, LfaasError } from '../lattices/index.js';
import { bindTransport, decodeEnvelope, executionKey } from '../protocol/index.js';
import type { NodeTransport, PbTypes } from '../protocol/index.js';
import { FaasCluster, eventually, isAlive, startProcess } from './cluster.js';
import { rejection } from './wire-faults.js';
import type { RoleProcess } from './cluster.js';

/**
 * `(key, slowMs, value, ctx)`: counts this execution under `key` (a Counter increment by a writer
 * of its own), then sleeps `slowMs` if it is the first execution counted there (0 ms when it runs
 * again: a re-dispatch is quick), and returns `value`. The Counter's bytes are built by hand (the
 * lattice library needs Buffer, which a function's context lacks): msgpack
 * `[10 (Counter), [[writer, 1]], []]`, the encoding `Counter.ZERO.increment(writer, 1)` has.
 */
const COUNTED = `module.exports = async (key, slowMs, value, ctx) => {
  const writer = 'x-' + Math.random().toString(36).slice(2, 14);
  const name = new TextEncoder().encode(writer);
  const bytes = Uint8Array.from([0x93, 0x0a, 0x91, 0x92, 0xa0 | name.length, ...name, 0x01, 0x90]);
  await ctx.merge(key, { type: 10, encode: () => bytes });
  const executions = await ctx.get(key);
  if (executions <= 1) await new Promise((r) => setTimeout(r, slowMs));
  return value;
};`;

describe('executors killed mid-call', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;
  /** Hears the heartbeats of executors started with it among their schedulers. */
  let listener: NodeTransport;
  const statuses: PbTypes.IExecutorStatus[] = [];
  let keyCount = 0;

  const freshKey = (what: string): string => `faults/${what}/${Date.now()}-${keyCount++}`;
  const executions = async (key: string): Promise<number> => Number((await faas.kvs.get(key))?.reveal() ?? 0);

  /** The executors started and not killed. */
  const alive = (): RoleProcess[] => cluster.executors.filter((executor) => executor.child.exitCode === null && executor.child.signalCode === null);

  async function kill(executor: RoleProcess): Promise<void> {
    process.kill(executor.pid, 'SIGKILL');
    const gone = await eventually(() => executor.child.exitCode !== null || executor.child.signalCode !== null, 5000);
    expect(gone, `executor ${executor.pid} did not die`).toBe(true);
    expect(isAlive(executor.pid)).toBe(false);
  }

  /** Waits (bounded) until the scheduler places a call and it succeeds. */
  async function untilServing(): Promise<void> {
    let last: unknown;
    const served = await eventually(async () => {
      try {
        return (last = await faas.call('ping', [], { timeoutMs: 3000 })) === 'pong';
      } catch (error) {
        last = error;
        return false;
      }
    }, 15_000);
    expect(served, `no call served: ${String(last)}`).toBe(true);
  }

  /** Waits until `key` counts at least one execution: the function is running. */
  async function untilRunning(key: string): Promise<void> {
    expect(await eventually(async () => (await executions(key)) >= 1, 15_000), `nothing ran for ${key}`).toBe(true);
  }

  /**
   * Starts an executor that also heartbeats the test's listener, and waits (bounded) until the
   * scheduler knows it: registering a function pins it on the executors the scheduler knows
   * (a `prepare`), so once this executor's heartbeat lists a version registered after it
   * started as warm, the scheduler had heard it.
   */
  async function startExecutorKnownToScheduler(): Promise<RoleProcess> {
    const executor = await startProcess([
      'executor',
      '--routing',
      cluster.routingAddresses.join(','),
      '--schedulers',
      [...cluster.schedulerAddresses, listener.address].join(','),
      '--workers',
      '4',
      '--prewarm',
      '1',
      '--memory-mb',
      '128',
    ]);
    cluster.executors.push(executor);
    const address = String(executor.ready['address']);
    let known = false;
    for (let attempt = 0; attempt < 40 && !known; attempt++) {
      const probe = await faas.register('pin-probe', { code: 'module.exports = () => "probe";' });
      const id = `pin-probe@${probe.version}`;
      known = await eventually(() => statuses.some((status) => status.address === address && (status.warmFunctions ?? []).includes(id)), 500);
    }
    expect(known, `the scheduler never pinned a function on ${address}`).toBe(true);
    return executor;
  }

  beforeAll(async () => {
    listener = await bindTransport();
    listener.onFrame((frame) => {
      try {
        const envelope = decodeEnvelope(frame);
        if (envelope.executorStatus && statuses.length < 100_000) statuses.push(envelope.executorStatus);
      } catch {
        // Not a heartbeat.
      }
    });
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 1, workers: 4, executorTimeoutMs: 500 });
    faas = await cluster.connect();
    await faas.register('ping', { code: 'module.exports = () => "pong";' }, { timeoutMs: 5000 });
    await faas.register('counted', { code: COUNTED }, { timeoutMs: 60_000 });
    await faas.register('exclaim', { code: 'module.exports = (text) => `${text}!`;' });
    await faas.registerDag({ name: 'slow-then-exclaim', functions: ['counted', 'exclaim'], edges: [['counted', 'exclaim']] });
    await untilServing();
  }, 60_000);

  afterAll(async () => {
    await faas?.close();
    await listener?.close();
    await cluster.stop();
  }, 60_000);

  it('a sync call whose executor is killed is answered EXEC_LOST, well before its own 30 s timeout', async () => {
    const [executor] = alive();
    expect(alive()).toHaveLength(1);
    const key = freshKey('sync');
    const call = faas.call('counted', [key, 25_000, 'never returned'], { timeoutMs: 30_000 });
    call.catch(() => {});
    await untilRunning(key);
    await kill(executor!);
    // EXEC_LOST, not EXEC_TIMEOUT: the scheduler noticed the silence and answered for the dead.
    const error = await rejection(call);
    expect(error.code).toBe(ErrorCode.EXEC_LOST);
    await cluster.startExecutor(4);
    await untilServing();
    // The call is not run again (sync calls are at most once): one execution counted.
    expect(await executions(key)).toBe(1);
  });

  it('a DAG run whose executor is killed while its first function sleeps: EXEC_LOST, never a hang', async () => {
    expect(alive()).toHaveLength(1);
    const [executor] = alive();
    const key = freshKey('dag');
    const call = faas.callDag('slow-then-exclaim', { counted: [key, 5000, 'dag'] }, { timeoutMs: 30_000 });
    call.catch(() => {});
    await untilRunning(key);
    await kill(executor!);
    const error = await rejection(call);
    expect(error.code).toBe(ErrorCode.EXEC_LOST);
    await cluster.startExecutor(4);
    await untilServing();
    // The same DAG works on the new executor.
    expect(await faas.callDag('slow-then-exclaim', { counted: [freshKey('dag-after'), 0, 'again'] }, { timeoutMs: 30_000 })).toBe('again!');
  });

  it('an async call counts its executions in the KVS: at least once', async () => {
    const key = freshKey('async-once');
    const future = await faas.callAsync('counted', [key, 0, 'counted once']);
    expect(await future.result({ timeoutMs: 20_000 })).toBe('counted once');
    expect(await executions(key)).toBeGreaterThanOrEqual(1);
  });

  it('async calls whose executor is killed are dispatched again and every future resolves with its own result', async () => {
    expect(alive()).toHaveLength(1);
    const [doomed] = alive();
    // Three async calls and an async DAG call, all on the only executor, each sleeping 20 s the
    // first time it runs (quick when it runs again).
    const keys = [0, 1, 2].map((n) => freshKey(`async-${n}`));
    const futures: CallFuture<unknown>[] = [];
    for (const [n, key] of keys.entries()) futures.push(await faas.callAsync('counted', [key, 20_000, { n, answer: n * 10 }]));
    const dagKey = freshKey('async-dag');
    const dagFuture = await faas.callDagAsync('slow-then-exclaim', { counted: [dagKey, 20_000, 'async dag'] });
    for (const key of [...keys, dagKey]) await untilRunning(key);
    // Another executor, known to the scheduler before the first one dies: the calls have
    // somewhere to go when the first one is declared lost.
    await startExecutorKnownToScheduler();
    await kill(doomed!);
    const results = await Promise.all(futures.map((future) => future.result({ timeoutMs: 30_000 })));
    expect(results).toEqual([0, 1, 2].map((n) => ({ n, answer: n * 10 })));
    expect(await dagFuture.result({ timeoutMs: 30_000 })).toBe('async dag!');
    // At least once: each ran twice (cut, then again), and the execution records say attempt 2.
    for (const key of [...keys, dagKey]) expect(await executions(key), key).toBeGreaterThanOrEqual(2);
    for (const future of [...futures, dagFuture]) {
      const record = (await faas.kvs.get(executionKey(future.callId)))?.reveal() as { attempt?: number } | undefined;
      expect(record?.attempt, future.callId).toBeGreaterThanOrEqual(2);
    }
    await untilServing();
    for (const executor of alive()) expect(isAlive(executor.pid)).toBe(true);
    expect(isAlive(cluster.schedulers[0]!.pid)).toBe(true);
  });
});
