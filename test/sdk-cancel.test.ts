/**
 * Cancellation over real processes (a routing node, a storage node, a scheduler, an executor with
 * one runtime, from the built CLI): an `AbortSignal` on `call`, `callDag`, `callAsync` and
 * `future.result()` rejects at once with CALL_ABORTED and cancels the run on the cluster, where
 * the function sees `ctx.signal` aborted; `faas.cancel(callId)` and `future.cancel()` end a
 * running call with EXEC_CANCELLED (an async call's result record says so, and it is not run
 * again); a runaway function's runtime is replaced; a finished or unknown call is a no-op; only
 * the call's owner may cancel it. No assertion on timing: every wait is bounded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, LatticeFaas, dag } from '../client/index.js';
import { readTokenKeys } from '../cli/index.js';
import { createToken, resultKeyOf, resultRecordOf } from '../protocol/index.js';
import { FaasCluster, eventually, testKeysFolder, untilServing } from './cluster.js';
import { rejection } from './wire-faults.js';

/** Marks `tag` started, waits for its `ctx.signal`, then counts the abort (the realm keeps the count). */
const WAITER = `
let aborted = 0;
module.exports = async (mode, tag, ctx) => {
  if (mode === 'count') return aborted;
  await ctx.put(tag, 'started');
  await new Promise((resolve) => { if (ctx.signal.aborted) resolve(); else ctx.signal.addEventListener('abort', resolve); });
  aborted++;
  return 'finished';
};`;

describe('cancellation', () => {
  const cluster = new FaasCluster();
  let faas: LatticeFaas;
  let tags = 0;

  /** Resolves once the function marked `tag` started (bounded). */
  const started = async (tag: string): Promise<void> => {
    const ok = await eventually(async () => (await faas.kvs.get(tag)) !== undefined, 20_000);
    expect(ok).toBe(true);
  };
  const countOf = async (name: string): Promise<number> => (await faas.call(name, ['count', ''])) as number;

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 1, workers: 1 });
    faas = await LatticeFaas.connect({ routing: cluster.routingAddresses, schedulers: cluster.schedulerAddresses, directCalls: false });
    await untilServing(faas);
    await faas.register('sdk-waiter', { code: WAITER }, { timeoutMs: 60_000 });
    await faas.register('sdk-runaway', { code: 'module.exports = () => { for (;;) {} };' }, { timeoutMs: 60_000 });
  }, 90_000);

  afterAll(async () => {
    await faas?.close();
    await cluster.stop();
  }, 60_000);

  it('a sync call whose signal aborts rejects CALL_ABORTED at once, and the function sees ctx.signal aborted', async () => {
    const before = await countOf('sdk-waiter');
    const tag = `sdk-cancel/tag-${tags++}`;
    const controller = new AbortController();
    const call = faas.call('sdk-waiter', ['wait', tag], { signal: controller.signal });
    await started(tag);
    controller.abort(new Error('the user left'));
    const error = await rejection(call);
    expect(error.code).toBe(ErrorCode.CALL_ABORTED);
    expect((error.cause as Error).message).toBe('the user left');
    // The cancel reached the run: its function returned after its signal fired.
    expect(await eventually(async () => (await countOf('sdk-waiter')) === before + 1, 20_000)).toBe(true);
  }, 60_000);

  it('an already aborted signal sends nothing', async () => {
    const error = await rejection(faas.call('sdk-waiter', ['wait', 'sdk-cancel/never'], { signal: AbortSignal.abort() }));
    expect(error.code).toBe(ErrorCode.CALL_ABORTED);
    expect(await faas.kvs.get('sdk-cancel/never')).toBeUndefined();
  });

  it('future.cancel() ends a running async call: EXEC_CANCELLED in its result record; cancelling again is a no-op', async () => {
    const before = await countOf('sdk-waiter');
    const tag = `sdk-cancel/tag-${tags++}`;
    const future = await faas.callAsync('sdk-waiter', ['wait', tag]);
    await started(tag);
    expect(await future.cancel()).toBe(true);
    const error = await rejection(future.result({ timeoutMs: 20_000 }));
    expect(error.code).toBe(ErrorCode.EXEC_CANCELLED);
    const record = resultRecordOf((await faas.kvs.get(resultKeyOf(future.callId)))!);
    expect(record).toMatchObject({ ok: false, code: 'EXEC_CANCELLED' });
    expect(await eventually(async () => (await countOf('sdk-waiter')) === before + 1, 20_000)).toBe(true);
    // Finished: a no-op answer, not an error; and so is an id nobody used.
    expect(await faas.cancel(future.callId)).toBe(false);
    expect(await faas.cancel('no-such-call')).toBe(false);
    // Not dispatched again: the record stays cancelled.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(resultRecordOf((await faas.kvs.get(resultKeyOf(future.callId)))!)).toMatchObject({ ok: false, code: 'EXEC_CANCELLED' });
  }, 60_000);

  it('a signal on callAsync and on result() cancels the call', async () => {
    const tag = `sdk-cancel/tag-${tags++}`;
    const controller = new AbortController();
    const future = await faas.callAsync('sdk-waiter', ['wait', tag], { signal: controller.signal });
    await started(tag);
    const waiting = new AbortController();
    const wait = future.result({ signal: waiting.signal });
    waiting.abort();
    expect((await rejection(wait)).code).toBe(ErrorCode.CALL_ABORTED);
    expect((await rejection(future.result({ timeoutMs: 20_000 }))).code).toBe(ErrorCode.EXEC_CANCELLED);
    controller.abort();
  }, 60_000);

  it('a runaway function is ended: its runtime is replaced and the next call runs', async () => {
    const future = await faas.callAsync('sdk-runaway', []);
    // Bounded wait until a cancel finds it running (it may still be queued or starting).
    expect(await eventually(async () => faas.cancel(future.callId), 20_000)).toBe(true);
    expect((await rejection(future.result({ timeoutMs: 20_000 }))).code).toBe(ErrorCode.EXEC_CANCELLED);
    expect(await faas.call('ping')).toBe('pong');
  }, 60_000);

  it('a DAG call aborts too', async () => {
    await faas.register('sdk-first', { code: 'module.exports = (tag) => tag;' }, { timeoutMs: 60_000 });
    await faas.register('sdk-dag-waiter', { code: 'module.exports = async (tag, mode, ctx) => { await ctx.put(tag, "started"); await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve)); return "finished"; };' }, { timeoutMs: 60_000 });
    await faas.registerDag(dag('sdk-wait-dag').fn(faas.function<(tag: string) => string, 'sdk-first'>('sdk-first')).fn(faas.function<(tag: string, mode: string) => string, 'sdk-dag-waiter'>('sdk-dag-waiter'), ['sdk-first']).build());
    const tag = `sdk-cancel/tag-${tags++}`;
    const controller = new AbortController();
    const call = faas.callDag('sdk-wait-dag', { 'sdk-first': [tag], 'sdk-dag-waiter': ['wait'] }, { signal: controller.signal });
    await started(tag);
    controller.abort();
    expect((await rejection(call)).code).toBe(ErrorCode.CALL_ABORTED);
    expect(await faas.call('ping')).toBe('pong');
  }, 60_000);

  it('a direct call (leased executor) is cancelled at its executor', async () => {
    const direct = await LatticeFaas.connect({ routing: cluster.routingAddresses, schedulers: cluster.schedulerAddresses });
    try {
      const before = await countOf('sdk-waiter');
      // The first call through the scheduler earns the lease; the next goes straight to the executor.
      // (A lease is granted while the executor is not busy: bounded tries.)
      for (let tries = 0; tries < 20 && direct.counters.leases === 0; tries++) await direct.call('sdk-waiter', ['count', '']);
      expect(direct.counters.leases).toBeGreaterThan(0);
      const viaScheduler = direct.counters.viaScheduler;
      const tag = `sdk-cancel/tag-${tags++}`;
      const controller = new AbortController();
      const call = direct.call('sdk-waiter', ['wait', tag], { signal: controller.signal });
      await started(tag);
      expect(direct.counters.viaScheduler).toBe(viaScheduler);
      controller.abort();
      expect((await rejection(call)).code).toBe(ErrorCode.CALL_ABORTED);
      expect(await eventually(async () => (await countOf('sdk-waiter')) === before + 1, 20_000)).toBe(true);
    } finally {
      await direct.close();
    }
  }, 60_000);

  it('only the owner cancels a call: another owner is refused UNAUTHORISED', async () => {
    const keys = readTokenKeys(testKeysFolder(), true);
    const rights = ['deploy', 'call', 'read', 'write'] as const;
    const alice = await cluster.connect(createToken(keys, { owner: 'alice', rights: [...rights], ttlSeconds: 3600 }));
    const bob = await cluster.connect(createToken(keys, { owner: 'bob', rights: [...rights], ttlSeconds: 3600 }));
    try {
      await faas.register('alice/waiter', { code: WAITER }, { timeoutMs: 60_000 });
      // Running or still waiting for a runtime of alice's (runtimes are not shared between owners): either way it is cancelled.
      const future = await alice.callAsync('alice/waiter', ['wait', 'alice/started']);
      expect(future.callId.startsWith('alice/')).toBe(true);
      expect((await rejection(bob.cancel(future.callId))).code).toBe(ErrorCode.UNAUTHORISED);
      expect(await alice.cancel(future.callId)).toBe(true);
      expect((await rejection(future.result({ timeoutMs: 20_000 }))).code).toBe(ErrorCode.EXEC_CANCELLED);
    } finally {
      await alice.close();
      await bob.close();
    }
  }, 60_000);
});
