/**
 * SDK ergonomics over real processes (a routing node, a storage node, a scheduler, two executors,
 * from the built CLI): `await using` closes clients, `kvs.watch`/`faas.watch` iterate a key's
 * values (ending on break, abort and close), `faas.attach(callId)` follows an async call another
 * process started, idempotency keys run a call once for every start of it (concurrent starts,
 * starts from two clients, a retry after it finished, a sync call), and `faas.fn<F>()` calls a
 * function as a typed callable. No assertion on timing: every wait is bounded.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, HybridClock, KvsClient, LatticeFaas, Lww, dag } from '../client/index.js';
import { FaasCluster, untilServing } from './cluster.js';
import { rejection } from './wire-faults.js';

const run = promisify(execFile);
const CLIENT_ENTRY = fileURLToPath(new URL('../dist/client/index.js', import.meta.url));

describe('SDK ergonomics', () => {
  const cluster = new FaasCluster();
  const writer = new HybridClock('sdk-ergonomics-test', () => Date.now());
  const dir = mkdtempSync(join(tmpdir(), 'lfaas-sdk-'));
  let faas: LatticeFaas;

  beforeAll(async () => {
    // Two schedulers: idempotent starts from clients that list them in other orders must meet at one.
    await cluster.startAll({ nodes: 1, schedulers: 2, executors: 2, workers: 2 });
    faas = await cluster.connect();
    await untilServing(faas);
    await faas.register('sdk-square', { code: 'module.exports = (x) => x * x;' }, { timeoutMs: 10_000 });
    // Counts its runs per tag in the KVS: what "ran once" is checked against.
    await faas.register('sdk-once', { code: 'module.exports = async (tag, value, ctx) => ({ runs: await ctx.increment(tag), doubled: value * 2 });' }, { timeoutMs: 10_000 });
    // Slow enough that a call is still running when another process attaches to it.
    await faas.register('sdk-slow-square', { code: 'module.exports = (x) => new Promise((resolve) => setTimeout(() => resolve(x * x), 1500));' }, { timeoutMs: 10_000 });
  }, 90_000);

  afterAll(async () => {
    await faas?.close();
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('await using closes a client at the end of its scope', async () => {
    let escaped: LatticeFaas | undefined;
    {
      await using client = await cluster.connect();
      escaped = client;
      expect(await client.call('sdk-square', [3])).toBe(9);
    }
    expect((await rejection(escaped.call('sdk-square', [3]))).code).toBe(ErrorCode.TRANSPORT_CLOSED);
    let kvsEscaped: KvsClient | undefined;
    {
      await using kvs = await KvsClient.connect({ routing: cluster.routingAddresses });
      kvsEscaped = kvs;
      await kvs.put('sdk/dispose', Lww.write(writer, 1));
    }
    expect((await rejection(kvsEscaped.get('sdk/dispose'))).code).toBe(ErrorCode.TRANSPORT_CLOSED);
  }, 30_000);

  it('kvs.watch yields the value now, then updates (merged while the loop is busy), until break', async () => {
    const key = 'sdk/watch/counter';
    await faas.kvs.put(key, Lww.write(writer, 0), { ack: 'replicated' });
    const seen: number[] = [];
    const writing = (async () => {
      for (let value = 1; value <= 5; value++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        await faas.kvs.put(key, Lww.write(writer, value), { ack: 'replicated' });
      }
    })();
    for await (const value of faas.watch(key, { signal: AbortSignal.timeout(20_000) })) {
      seen.push(value.reveal() as number);
      if (seen.at(-1) === 5) break;
    }
    await writing;
    expect(seen.at(-1)).toBe(5);
    // In order (an Lww merge keeps the latest write), and never more values than were written.
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(seen.length).toBeLessThanOrEqual(6);
  }, 30_000);

  it('a watch ends when its signal aborts and when its client closes', async () => {
    const controller = new AbortController();
    const watching = (async () => {
      const values: unknown[] = [];
      for await (const value of faas.kvs.watch('sdk/watch/never-written', { signal: controller.signal })) values.push(value);
      return values;
    })();
    setTimeout(() => controller.abort(), 100);
    expect(await watching).toEqual([]);

    const kvs = await KvsClient.connect({ routing: cluster.routingAddresses });
    await kvs.put('sdk/watch/closing', Lww.write(writer, 'here'), { ack: 'replicated' });
    const values: unknown[] = [];
    const closing = (async () => {
      for await (const value of kvs.watch('sdk/watch/closing')) {
        values.push(value.reveal());
        await kvs.close();
      }
    })();
    await closing;
    expect(values).toEqual(['here']);
  }, 30_000);

  it('attach follows an async call another process started, by its id', async () => {
    const script = join(dir, 'start-call.mjs');
    writeFileSync(
      script,
      `import { LatticeFaas } from ${JSON.stringify(CLIENT_ENTRY)};
const [routing, schedulers] = process.argv.slice(2);
const faas = await LatticeFaas.connect({ routing: routing.split(','), schedulers: schedulers.split(',') });
const future = await faas.callAsync('sdk-slow-square', [12]);
console.log(JSON.stringify({ callId: future.callId }));
await faas.close();
`,
    );
    const { stdout } = await run(process.execPath, [script, cluster.routingAddresses.join(','), cluster.schedulerAddresses.join(',')], { timeout: 30_000, env: process.env });
    const { callId } = JSON.parse(stdout.trim()) as { callId: string };
    const future = faas.attach<number>(callId);
    expect(future.callId).toBe(callId);
    expect(await future.result({ timeoutMs: 20_000 })).toBe(144);
    // Attached after it finished: the result is read at once.
    expect(await faas.attach<number>(callId).result({ timeoutMs: 20_000 })).toBe(144);
    // An id no call has: the wait is bounded by the caller.
    expect((await rejection(faas.attach('no-such-call').result({ timeoutMs: 300 }))).code).toBe(ErrorCode.TRANSPORT_TIMEOUT);
  }, 60_000);

  it('an idempotency key runs a call once: concurrent starts, a second client (its schedulers listed in the other order), a retry after it finished', async () => {
    const tag = `sdk/idem/runs-${Date.now()}`;
    const key = `order-${Date.now()}`;
    const other = await LatticeFaas.connect({ routing: cluster.routingAddresses, schedulers: [...cluster.schedulerAddresses].reverse() });
    try {
      const [first, second, third] = await Promise.all([
        faas.callAsync('sdk-once', [tag, 21], { idempotencyKey: key }),
        faas.callAsync('sdk-once', [tag, 21], { idempotencyKey: key }),
        other.callAsync('sdk-once', [tag, 21], { idempotencyKey: key }),
      ]);
      expect(second.callId).toBe(first.callId);
      expect(third.callId).toBe(first.callId);
      const results = await Promise.all([first, second, third].map((future) => future.result({ timeoutMs: 20_000 })));
      expect(results).toEqual([{ runs: 1, doubled: 42 }, { runs: 1, doubled: 42 }, { runs: 1, doubled: 42 }]);
      // After it finished: the same result, no second run.
      const retry = await other.callAsync('sdk-once', [tag, 21], { idempotencyKey: key });
      expect(await retry.result({ timeoutMs: 20_000 })).toEqual({ runs: 1, doubled: 42 });
      // First wins: other arguments under a used key get the first call's result.
      expect(await faas.call('sdk-once', [tag, 50], { idempotencyKey: key })).toEqual({ runs: 1, doubled: 42 });
      expect((await faas.kvs.get(tag))?.reveal()).toBe(1);
      // Another function, or another key: another call.
      expect(await faas.call('sdk-once', [tag, 1], { idempotencyKey: `${key}-b` })).toEqual({ runs: 2, doubled: 2 });
    } finally {
      await other.close();
    }
  }, 60_000);

  it('a sync call with an idempotency key runs once too', async () => {
    const tag = `sdk/idem/sync-${Date.now()}`;
    const options = { idempotencyKey: `sync-${Date.now()}` };
    const [a, b] = await Promise.all([faas.call('sdk-once', [tag, 4], options), faas.call('sdk-once', [tag, 4], options)]);
    expect(a).toEqual({ runs: 1, doubled: 8 });
    expect(b).toEqual(a);
    expect(await faas.call('sdk-once', [tag, 4], options)).toEqual(a);
    expect((await rejection(faas.call('sdk-once', [tag, 4], { idempotencyKey: '' }))).code).toBe(ErrorCode.EXEC_BAD_VALUE);
    // A DAG call with a key: once too (its key space is the DAG's, not its functions').
    await faas.registerDag(dag('sdk-once-dag').fn(faas.function<(tag: string, value: number) => { runs: number; doubled: number }, 'sdk-once'>('sdk-once')).build());
    const dagTag = `${tag}-dag`;
    const dagOptions = { idempotencyKey: options.idempotencyKey };
    const [first, second] = await Promise.all([faas.callDag('sdk-once-dag', { 'sdk-once': [dagTag, 5] }, dagOptions), faas.callDag('sdk-once-dag', { 'sdk-once': [dagTag, 5] }, dagOptions)]);
    expect(first).toEqual({ runs: 1, doubled: 10 });
    expect(second).toEqual(first);
  }, 60_000);

  it('a function that throws gives its caller its stack trace, mapped to its TypeScript source', async () => {
    const file = join(dir, 'thrower.ts');
    writeFileSync(
      file,
      [
        'function inner(value: number): number {',
        '  if (value > 1) {',
        '    throw new Error(`too big: ${value}`);',
        '  }',
        '  return value;',
        '}',
        '',
        'export default function thrower(value: number): number {',
        '  return inner(value) + 1;',
        '}',
        '',
      ].join('\n'),
    );
    await faas.register('sdk-thrower', file, { timeoutMs: 10_000 });
    const error = await rejection(faas.call('sdk-thrower', [5]));
    expect(error.code).toBe(ErrorCode.EXEC_USER_ERROR);
    expect(error.message).toContain('too big: 5');
    const stack = error.remoteStack ?? '';
    // The throw (line 3) in inner, called from thrower (line 9), in the .ts file itself.
    expect(stack).toMatch(/at inner \(\S*thrower\.ts:3:\d+\)/);
    expect(stack).toMatch(/at thrower \(\S*thrower\.ts:9:\d+\)/);
    // Only the function's frames: no path of the executor's host (its sandbox, Node's internals).
    expect(stack).not.toMatch(/node:internal|sandbox|dist\/|runtime\.js/);
    expect(stack.split('\n').length).toBeLessThanOrEqual(32);
    // Readable on the client's error too.
    expect(error.stack).toContain(stack);
    // The same through an async call's result.
    const future = await faas.callAsync('sdk-thrower', [7]);
    const asyncError = await rejection(future.result({ timeoutMs: 20_000 }));
    expect(asyncError.remoteStack ?? '').toMatch(/at inner \(\S*thrower\.ts:3:\d+\)/);
  }, 30_000);

  it('fn<F>() is a typed callable with .async, .with and .handle', async () => {
    const square = faas.fn<(x: number) => number, 'sdk-square'>('sdk-square');
    expect(await square(7)).toBe(49);
    const future = await square.async(8);
    expect(await future.result({ timeoutMs: 20_000 })).toBe(64);
    expect(square.handle).toEqual({ name: 'sdk-square', version: 0 });
    expect(await faas.call(square.handle, [9])).toBe(81);
    const aborted = square.with({ signal: AbortSignal.abort() });
    expect((await rejection(aborted(2))).code).toBe(ErrorCode.CALL_ABORTED);
  }, 30_000);
});
