/**
 * The FaaS core over real processes (a routing node, a storage node, two schedulers, two
 * executors, all from the built CLI): registration with numbered versions, calls with plain and
 * `ref(key)` arguments, a function's own KVS access through `ctx`, async calls whose future
 * resolves and whose result lands under `lfaas/result/<callId>`, `ctx.increment` from both executors,
 * `ctx.infer`'s typed refusals, linear and diamond DAGs with
 * per-function arguments, list/describe/delete of functions and DAGs, `ctx.send`/`ctx.recv`
 * between two functions of one DAG run, two schedulers sharing one registry, and a TypeScript
 * module registered from a file path (bundled with esbuild).
 *
 * Most tests talk to the first scheduler only: a scheduler serves names from its registry cache
 * for `registryTtlMs` (stale while revalidating), so "the latest version" is only immediate on
 * the scheduler that registered it. The shared-registry test goes through both on purpose.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LatticeFaas, dag, ref } from '../client/index.js';
import type { FunctionHandle } from '../client/index.js';
import { Counter, HybridClock, LatticeType, Lww } from '../lattices/index.js';
import { decodeValue, resultKeyOf, resultRecordOf } from '../protocol/index.js';
import { FaasCluster, eventually, untilServing } from './cluster.js';
import { code, rejection } from './wire-faults.js';

describe('FaaS calls over real processes', () => {
  const cluster = new FaasCluster();
  const writer = new HybridClock('faas-calls-test', () => Date.now());
  const dir = mkdtempSync(join(tmpdir(), 'lfaas-faas-calls-'));
  /** Talks to the first scheduler only. */
  let faas: LatticeFaas;
  const others: LatticeFaas[] = [];

  beforeAll(async () => {
    await cluster.startAll({ nodes: 1, schedulers: 2, executors: 2, workers: 2 });
    faas = await LatticeFaas.connect({ routing: cluster.routingAddresses, schedulers: [cluster.schedulerAddresses[0]!] });
    await untilServing(faas);
  }, 60_000);

  afterAll(async () => {
    await faas?.close();
    await Promise.all(others.map((client) => client.close()));
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('numbers versions: a call without a version runs the latest, { version: 1 } runs v1', async () => {
    const v1 = await faas.register('versioned', code('() => "one"'));
    const v2 = await faas.register('versioned', code('() => "two"'));
    expect(v1).toEqual({ name: 'versioned', version: 1 });
    expect(v2).toEqual({ name: 'versioned', version: 2 });
    expect(await faas.call('versioned')).toBe('two');
    expect(await faas.call('versioned', [], { version: 1 })).toBe('one');
    expect(await faas.call(v1)).toBe('one');
    expect(await faas.call(v2)).toBe('two');
    expect(await faas.call(faas.function('versioned'))).toBe('two');
  });

  it('passes arguments (numbers, strings, nested objects, arrays, null) and returns structured results', async () => {
    const add = await faas.register<(a: number, b: number) => number>('add', code('(a, b) => a + b'));
    expect(await faas.call(add, [2, 3])).toBe(5);
    const echo = await faas.register('echo', code('(...args) => ({ count: args.length - 1, args: args.slice(0, -1) })'));
    const nested = { text: 'héllo', list: [1, 2.5, -3], deep: { flag: true, none: null } };
    expect(await faas.call(echo, ['s', 7, nested, [1, [2, [3]]], null])).toEqual({ count: 5, args: ['s', 7, nested, [1, [2, [3]]], null] });
    const bytes = await faas.call(echo, [Uint8Array.of(1, 2, 3)]);
    expect(Buffer.from((bytes as { args: Uint8Array[] }).args[0]!)).toEqual(Buffer.from([1, 2, 3]));
  });

  it('resolves ref(key) arguments from the KVS before the function runs', async () => {
    await faas.kvs.put('calls/ref/config', Lww.write(writer, { base: 40, label: 'forty' }), { ack: 'replicated' });
    await faas.kvs.put('calls/ref/step', Lww.write(writer, 2), { ack: 'replicated' });
    const sum = await faas.register('ref-sum', code('(config, step, suffix) => `${config.label}+${step}=${config.base + step}${suffix}`'));
    expect(await faas.call(sum, [ref('calls/ref/config'), ref('calls/ref/step'), '!'])).toBe('forty+2=42!');
    // A missing key is null to the function.
    const missing = await faas.register('ref-missing', code('(value) => value === null ? "null" : typeof value'));
    expect(await faas.call(missing, [ref(`calls/ref/never-written-${Date.now()}`)])).toBe('null');
  });

  it('lets a function use the KVS through ctx: its put is visible to the client', async () => {
    const store = await faas.register(
      'ctx-store',
      code('async (key, value, ctx) => { await ctx.put(key, value); const back = await ctx.get(key); return { back, callId: ctx.callId, fn: ctx.functionName }; }'),
    );
    const key = `calls/ctx/${Date.now()}`;
    const answer = (await faas.call(store, [key, { written: 'by a function', n: 3 }])) as { back: unknown; callId: string; fn: string };
    expect(answer.back).toEqual({ written: 'by a function', n: 3 });
    expect(answer.fn).toBe('ctx-store');
    expect(answer.callId.length).toBeGreaterThan(0);
    let seen: unknown;
    const visible = await eventually(async () => {
      seen = (await faas.kvs.get(key))?.reveal();
      const value = seen as { written?: unknown; n?: unknown } | undefined;
      return value?.written === 'by a function' && value.n === 3;
    }, 10_000);
    expect(visible, `the client read ${JSON.stringify(seen)}`).toBe(true);
  });

  it('a function merging into a key its executor never read, then reading it, sees the whole value', async () => {
    // A Counter the client wrote (5), incremented by a function (+1, bytes of
    // Counter.ZERO.increment(writer, 1) built by hand: a function's context has no Buffer for the
    // lattice library), read back by the same function: 6, not just its own increment.
    const key = `calls/ctx/counter-${Date.now()}`;
    await faas.kvs.put(key, Counter.ZERO.increment('client', 5), { ack: 'replicated' });
    const bump = await faas.register(
      'ctx-bump',
      code(`async (key, ctx) => {
        const name = new TextEncoder().encode('fn-' + Math.random().toString(36).slice(2, 12));
        const bytes = Uint8Array.from([0x93, 0x0a, 0x91, 0x92, 0xa0 | name.length, ...name, 0x01, 0x90]);
        await ctx.merge(key, { type: ${LatticeType.Counter}, encode: () => bytes });
        return ctx.get(key);
      }`),
    );
    expect(await faas.call(bump, [key])).toBe(6);
    expect(await faas.call(bump, [key])).toBe(7);
    expect((await faas.kvs.get(key))?.reveal()).toBe(7);
  });

  it('ctx.increment: concurrent calls on both executors lose no increment, and the Counter holds one writer per executor', async () => {
    const bump = await faas.register<(key: string, amount: number) => Promise<number>>('bump', code('(key, amount, ctx) => ctx.increment(key, amount)'));
    const amounts = Array.from({ length: 60 }, (_, index) => (index % 6 === 5 ? -2 : 1));
    // Six at a time: the cluster has 4 runtime slots, and admission refuses beyond 2 calls per slot.
    const answers: unknown[] = [];
    for (let at = 0; at < amounts.length; at += 6) answers.push(...(await Promise.all(amounts.slice(at, at + 6).map((amount) => faas.call(bump, ['calls:hot', amount])))));
    for (const answer of answers) expect(typeof answer).toBe('number');
    const counter = await faas.kvs.getAll<Counter>('calls:hot');
    expect(counter?.reveal()).toBe(amounts.reduce((sum, amount) => sum + amount, 0));
    // Writers: at most one per executor (2), however many calls.
    expect(new Set([...counter!.increments.keys(), ...counter!.decrements.keys()]).size).toBeLessThanOrEqual(2);
    // Typed refusals: a fractional amount (in the sandbox), a key of another type (in the executor).
    expect(await rejection(faas.call(bump, ['calls:hot', 0.5]))).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    await faas.kvs.put('calls:text', Lww.write(writer, 'text'), { ack: 'replicated' });
    expect(await rejection(faas.call(bump, ['calls:text', 1]))).toMatchObject({ code: 'KVS_LATTICE_MISMATCH' });
  });

  it('ctx.infer refuses malformed tensors and a missing model with typed errors', async () => {
    const infer = await faas.register('infer-any', code('(modelKey, feeds, ctx) => ctx.infer(modelKey, feeds)'));
    const image = { type: 'float32', dims: [1, 2], data: new Uint8Array(8) };
    expect(await rejection(faas.call(infer, ['models/none', { data: image }]))).toMatchObject({ code: 'KVS_KEY_NOT_FOUND' });
    // Shape and bytes disagree; an unknown element type; not a tensor at all.
    expect(await rejection(faas.call(infer, ['models/none', { data: { ...image, dims: [1, 3] } }]))).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    expect(await rejection(faas.call(infer, ['models/none', { data: { ...image, type: 'float128' } }]))).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    expect(await rejection(faas.call(infer, ['models/none', 'not feeds']))).toMatchObject({ code: 'EXEC_BAD_VALUE' });
  });

  it('callAsync: the future resolves and the result is stored under lfaas/result/<callId>', async () => {
    const slowAdd = await faas.register<(a: number, b: number) => Promise<number>>('slow-add', code('async (a, b) => { await new Promise((r) => setTimeout(r, 200)); return a + b; }'));
    const future = await faas.callAsync(slowAdd, [20, 22]);
    expect(future.resultKey).toBe(resultKeyOf(future.callId));
    expect(future.resultKey).toBe(`lfaas/result/${future.callId}`);
    expect(await future.result({ timeoutMs: 20_000 })).toBe(42);
    const record = resultRecordOf(await faas.kvs.get(future.resultKey));
    expect(record?.ok).toBe(true);
    expect(decodeValue((record as { value: Uint8Array }).value)).toBe(42);
    // Several at once, each with its own result.
    const futures = await Promise.all([1, 2, 3, 4].map((n) => faas.callAsync(slowAdd, [n, 100])));
    expect(await Promise.all(futures.map((f) => f.result({ timeoutMs: 20_000 })))).toEqual([101, 102, 103, 104]);
    // An async call that fails: its future rejects with the typed error, stored the same way.
    const failing = await faas.register('async-fails', code('() => { throw new Error("async failure"); }'));
    const bad = await faas.callAsync(failing, []);
    const error = await rejection(bad.result({ timeoutMs: 20_000 }));
    expect(error.code).toBe('EXEC_USER_ERROR');
    expect(error.message).toContain('async failure');
    const stored = resultRecordOf(await faas.kvs.get(bad.resultKey));
    expect(stored).toMatchObject({ ok: false, code: 'EXEC_USER_ERROR' });
  });

  it('runs a linear DAG: each result feeds the next function, per-function args after it', async () => {
    const inc = await faas.register<(x: number) => number, 'inc'>('inc', code('(x) => x + 1'));
    const times = await faas.register<(x: number, by: number) => number, 'times'>('times', code('(x, by) => x * by'));
    const show = await faas.register<(x: number, unit: string) => string, 'show'>('show', code('(x, unit) => `${x} ${unit}`'));
    const linear = await faas.registerDag(dag('linear').fn(inc).fn(times, ['inc']).fn(show, ['times']).build());
    expect(await faas.callDag(linear, { inc: [3], times: [10], show: ['apples'] })).toBe('40 apples');
    expect(await faas.callDag(linear, { inc: [-1], times: [5], show: ['pears'] })).toBe('0 pears');
    // Async, through the KVS.
    const future = await faas.callDagAsync(linear, { inc: [1], times: [3], show: ['kiwis'] });
    expect(await future.result({ timeoutMs: 20_000 })).toBe('6 kiwis');
  });

  it('runs a diamond DAG: the sink gets both parents\' results first, in edge order, then its own args', async () => {
    const a = await faas.register<(x: number) => number, 'da'>('da', code('(x) => x + 1'));
    const b = await faas.register<(fromA: number, tag: string) => string, 'db'>('db', code('(fromA, tag) => `b:${fromA}:${tag}`'));
    const c = await faas.register<(fromA: number, times: number) => number, 'dc'>('dc', code('(fromA, times) => fromA * times'));
    const d = await faas.register<(fromB: string, fromC: number, last: string) => { b: string; c: number; last: string }, 'dd'>('dd', code('(fromB, fromC, last) => ({ b: fromB, c: fromC, last })'));
    const diamond = await faas.registerDag(dag('diamond').fn(a).fn(b, ['da']).fn(c, ['da']).fn(d, ['db', 'dc']).build());
    expect(await faas.callDag(diamond, { da: [1], db: ['x'], dc: [10], dd: ['end'] })).toEqual({ b: 'b:2:x', c: 20, last: 'end' });
    // The same functions, the sink's parents listed the other way round: its arguments follow.
    const e = await faas.register<(fromC: number, fromB: string) => string, 'de'>('de', code('(fromC, fromB) => `${typeof fromC}:${fromC}|${typeof fromB}:${fromB}`'));
    const reversed = await faas.registerDag(dag('diamond-reversed').fn(a).fn(b, ['da']).fn(c, ['da']).fn(e, ['dc', 'db']).build());
    expect(await faas.callDag(reversed, { da: [2], db: ['y'], dc: [2] })).toBe('number:6|string:b:3:y');
  });

  it('lists, describes and deletes functions and DAGs', async () => {
    await faas.register('listed', code('() => 1'), { memoryMb: 64, timeoutMs: 4000, keepAliveMs: 30_000 });
    await faas.register('listed', code('() => 2'), { memoryMb: 96, timeoutMs: 5000, keepAliveMs: 30_000 });
    await faas.register('listed-helper', code('(x) => x'));
    const info = await faas.describe('listed');
    expect(info).toMatchObject({ name: 'listed', latest: 2, versions: [1, 2], memoryMb: 96, timeoutMs: 5000, keepAliveMs: 30_000 });
    expect(info.codeBytes).toBe(Buffer.byteLength('module.exports = () => 2;'));
    expect(info.registeredAtMs).toBeGreaterThan(0);
    const names = (await faas.functions()).map((fn) => fn.name);
    expect(names).toEqual(expect.arrayContaining(['listed', 'listed-helper', 'versioned', 'ping']));
    expect(await faas.functions('listed')).toHaveLength(1);

    const listedDag = await faas.registerDag(dag('listed-dag').fn(faas.function<() => number, 'listed'>('listed')).fn(faas.function<(x: number) => number, 'listed-helper'>('listed-helper'), ['listed']).build());
    expect(await faas.dags('listed-dag')).toEqual([{ name: 'listed-dag', functions: ['listed', 'listed-helper'], edges: [['listed', 'listed-helper']] }]);
    expect((await faas.dags()).map((spec) => spec.name)).toEqual(expect.arrayContaining(['listed-dag', 'linear', 'diamond']));
    expect(await faas.callDag(listedDag, {})).toBe(2);

    // One version deleted: calling it is GONE (or not found); the name means the version left.
    await faas.deleteFunction('listed', 1);
    const gone = await rejection(faas.call('listed', [], { version: 1 }));
    expect(['GONE', 'SCHED_FUNCTION_NOT_FOUND']).toContain(gone.code);
    expect(await faas.call('listed')).toBe(2);
    expect((await faas.describe('listed')).versions).toEqual([2]);
    // The newest version deleted: the name falls back to the newest version left.
    await faas.register('listed', code('() => 3'));
    expect(await faas.call('listed')).toBe(3);
    await faas.deleteFunction('listed', 3);
    expect(await faas.call('listed')).toBe(2);

    // Every version deleted: not found, to calls, describe and the list.
    await faas.deleteFunction('listed');
    expect((await rejection(faas.call('listed'))).code).toBe('SCHED_FUNCTION_NOT_FOUND');
    expect((await rejection(faas.call('listed', [], { version: 2 }))).code).toMatch(/^(GONE|SCHED_FUNCTION_NOT_FOUND)$/);
    expect((await rejection(faas.describe('listed'))).code).toBe('SCHED_FUNCTION_NOT_FOUND');
    expect((await faas.functions()).map((fn) => fn.name)).not.toContain('listed');
    expect((await rejection(faas.deleteFunction('listed'))).code).toBe('SCHED_FUNCTION_NOT_FOUND');

    // A DAG deleted: not listed, not callable.
    await faas.deleteDag('listed-dag');
    expect((await rejection(faas.dags('listed-dag'))).code).toBe('SCHED_DAG_NOT_FOUND');
    expect((await faas.dags()).map((spec) => spec.name)).not.toContain('listed-dag');
    expect((await rejection(faas.callDag('listed-dag', {}))).code).toBe('SCHED_DAG_NOT_FOUND');
  });

  it('ctx.send / ctx.recv: a message from one function to another of the same DAG run', async () => {
    const sender = await faas.register<(ctx: unknown) => Promise<string>, 'msg-a'>('msg-a', code('async (ctx) => { await ctx.send("msg-b", { from: ctx.functionName, run: ctx.callId, n: 7 }); return "sent"; }'));
    const receiver = await faas.register<(ctx: unknown) => Promise<{ got: unknown; run: string }>, 'msg-b'>('msg-b', code('async (ctx) => { const got = await ctx.recv({ timeoutMs: 10000 }); return { got, run: ctx.callId }; }'));
    const sink = await faas.register<(a: string, b: { got: unknown; run: string }) => { a: string; b: { got: unknown; run: string } }, 'msg-c'>('msg-c', code('(a, b) => ({ a, b })'));
    const messaging = await faas.registerDag(dag('messaging').fn(sender).fn(receiver).fn(sink, ['msg-a', 'msg-b']).build());
    for (let round = 0; round < 3; round++) {
      const result = (await faas.callDag(messaging, {}, { timeoutMs: 20_000 })) as { a: string; b: { got: { from: string; run: string; n: number }; run: string } };
      expect(result.a).toBe('sent');
      expect(result.b.got).toEqual({ from: 'msg-a', run: result.b.run, n: 7 });
    }
  });

  it('two schedulers share one registry: register through one, call through the other', async () => {
    const [first, second] = cluster.schedulerAddresses;
    const viaFirst = await LatticeFaas.connect({ routing: cluster.routingAddresses, schedulers: [first!] });
    others.push(viaFirst);
    const viaSecond = await LatticeFaas.connect({ routing: cluster.routingAddresses, schedulers: [second!] });
    others.push(viaSecond);
    const shared = await viaFirst.register('shared-fn', code('(x) => `shared:${x}`'));
    // The second scheduler learns executors from their heartbeats; wait until it places calls.
    let last: unknown;
    const served = await eventually(async () => {
      try {
        last = await viaSecond.call(shared, ['hi'], { timeoutMs: 3000 });
        return true;
      } catch (error) {
        last = error;
        return false;
      }
    }, 15_000);
    expect(served, String(last)).toBe(true);
    expect(last).toBe('shared:hi');
    // Versions are numbered across schedulers: the second registers v2, the first calls it by number.
    const v2 = await viaSecond.register('shared-fn', code('(x) => `v2:${x}`'));
    expect(v2.version).toBe(2);
    expect(await viaFirst.call('shared-fn', ['a'], { version: 2 })).toBe('v2:a');
    expect(await viaSecond.call('shared-fn', ['b'])).toBe('v2:b');
    // A DAG registered through one is callable through the other; so are lists.
    await viaFirst.registerDag(dag('shared-dag').fn(shared).build());
    expect(await viaSecond.callDag('shared-dag', { 'shared-fn': ['c'] })).toBe('v2:c');
    expect((await viaSecond.describe('shared-fn')).versions).toEqual([1, 2]);
    expect((await viaSecond.dags('shared-dag'))[0]?.functions).toEqual(['shared-fn']);
  });

  it('registers a TypeScript module from a file path (bundled with esbuild, local import included)', async () => {
    writeFileSync(join(dir, 'shout-helper.ts'), 'export const shout = (text: string): string => `${text.toUpperCase()}!`;\n');
    const entry = join(dir, 'greet.ts');
    writeFileSync(
      entry,
      [
        "import { shout } from './shout-helper';",
        'interface Greeting { readonly text: string; readonly length: number }',
        'export default async function greet(name: string, ctx: { functionName: string }): Promise<Greeting> {',
        '  const text: string = shout(`hello ${name} from ${ctx.functionName}`);',
        '  return { text, length: text.length };',
        '}',
        '',
      ].join('\n'),
    );
    const greet: FunctionHandle = await faas.register('ts-greet', entry);
    expect(greet.version).toBe(1);
    expect(await faas.call(greet, ['ada'])).toEqual({ text: 'HELLO ADA FROM TS-GREET!', length: 24 });
    expect((await faas.describe('ts-greet')).codeBytes).toBeGreaterThan(0);
  });
});
