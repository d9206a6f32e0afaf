/**
 * Escape attempts against the function sandbox, at the strongest isolation level this machine
 * allows (`bwrap` if detected, else `process`). Each technique is a function of its own (a fresh
 * realm) run through one {@link RuntimePool}; each function RETURNS what its technique obtained
 * (a verdict on the object it reached: `HOST:process`, `HOST:require`... for a host object, its
 * `typeof` otherwise), so a real escape changes the assertion: no test here passes whatever the
 * sandbox does. Where a technique cannot even be written (an `import()`, a direct `eval`), the call
 * must fail with a typed error, and the test says which.
 *
 * The second wall (the process: permission model, user, namespaces, with the realm assumed broken)
 * is test/escape-second-wall.test.ts.
 *
 * The last test checks that the executor (this test process) was not affected by any of it.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectIsolation } from '../executor/index.js';
import { RuntimePool } from '../executor/index.js';
import type { FunctionCode, FunctionHost } from '../executor/index.js';
import { HybridClock, LfaasError, Lww } from '../lattices/index.js';
import type { AnyLattice } from '../lattices/index.js';

const detected = await detectIsolation();
const level: 'process' | 'bwrap' = detected.level === 'bwrap' ? 'bwrap' : 'process';
const OWNER = 'escape';
/** A flag a technique tries to set in the executor: it must stay unset here. */
const HOST_FLAG = '__lfaasEscapeFlag';
/** A value only this process's environment holds: no function output may contain it. */
const ENV_MARKER = `lfaas-escape-marker-${process.pid}-${Math.random().toString(36).slice(2)}`;
process.env['LFAAS_ESCAPE_MARKER'] = ENV_MARKER;
afterAll(() => {
  delete process.env['LFAAS_ESCAPE_MARKER'];
});

// Snapshots of the executor's realm, taken before any function runs.
const objectProtoKeys = Reflect.ownKeys(Object.prototype).map(String).sort();
const arrayProtoKeys = Reflect.ownKeys(Array.prototype).map(String).sort();
const functionProtoKeys = Reflect.ownKeys(Function.prototype).map(String).sort();
const { push: originalPush } = Array.prototype;
const { then: originalThen } = Promise.prototype;
const { toString: originalToString } = Object.prototype;

/**
 * Prepended to every function: how a function reports what it reached.
 *
 * - `verdict(x)`: `HOST:...` if `x` is (or holds) something of Node's (the process object, a
 *   require function, a Node global object, the fs module), else `typeof x`.
 * - `attempt(f)`: the verdict of `f()`, or `threw:<name>`.
 * - `evaluate(C)`: uses `C` as a code evaluator (`C('return process')()`, and its async and
 *   generator kinds) on a few sources and gives the verdict of each result.
 * - `walk(x)`: every constructor reachable from `x` through `.constructor` and prototypes, each
 *   used as an evaluator: `[{ name, results }]`.
 * - `graph(roots)`: a breadth-first walk of every object reachable from the roots (own keys,
 *   accessors, prototypes): how many, which are host objects, which are not frozen.
 */
const PRELUDE = String.raw`
const isHostProcess = (x) => {
  try {
    return (typeof x === 'object' || typeof x === 'function') && x !== null &&
      (typeof x.pid === 'number' || typeof x.getBuiltinModule === 'function' || typeof x.binding === 'function' || typeof x.dlopen === 'function' || typeof x.kill === 'function');
  } catch (e) { return false; }
};
const verdict = (x) => {
  try {
    if (isHostProcess(x)) return 'HOST:process';
    if ((typeof x === 'object' || typeof x === 'function') && x !== null) {
      if (typeof x.cache === 'object' && typeof x.resolve === 'function') return 'HOST:require';
      if (isHostProcess(x.process)) return 'HOST:global-with-process';
      if (typeof x.require === 'function') return 'HOST:global-with-require';
      if (typeof x.readFileSync === 'function' || typeof x.openSync === 'function') return 'HOST:fs';
      if (typeof x.connect === 'function' && typeof x.createServer === 'function') return 'HOST:net';
      if (typeof x.execSync === 'function' || typeof x.spawnSync === 'function') return 'HOST:child_process';
    }
    return x === null ? 'null' : typeof x;
  } catch (e) { return 'threw:' + (e && e.name); }
};
const nameOf = (e) => { try { return 'threw:' + String(e && e.name); } catch (err) { return 'threw:?'; } };
const attempt = (f) => { try { return verdict(f()); } catch (e) { return nameOf(e); } };
const attemptAsync = async (f) => { try { return verdict(await f()); } catch (e) { return nameOf(e); } };
const SOURCES = ['return process', 'return globalThis', 'return this', 'return typeof require === "function" ? require : module'];
const evaluate = async (C) => {
  const out = [];
  for (const source of SOURCES) {
    try {
      const made = C(source);
      let value = typeof made === 'function' ? made() : made;
      if (value && typeof value === 'object' && typeof value.next === 'function') {
        const step = value.next();
        value = step && typeof step.then === 'function' ? (await step).value : step.value;
      }
      if (value instanceof Promise) value = await value;
      out.push(verdict(value));
    } catch (e) { out.push(nameOf(e)); }
  }
  return out;
};
const constructorsOf = (root) => {
  const found = [];
  const seen = new Set();
  const visit = (v, depth) => {
    if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v) || depth > 8) return;
    seen.add(v);
    let c; try { c = v.constructor; } catch (e) { c = undefined; }
    if (typeof c === 'function' && !found.includes(c)) found.push(c);
    let p; try { p = Object.getPrototypeOf(v); } catch (e) { p = undefined; }
    visit(c, depth + 1);
    visit(p, depth + 1);
  };
  visit(root === null || root === undefined ? root : Object(root), 0);
  return found;
};
const walk = async (root) => {
  const report = [];
  for (const C of constructorsOf(root)) {
    let name; try { name = String(C.name); } catch (e) { name = '?'; }
    report.push({ name, results: await evaluate(C) });
  }
  return { root: verdict(root), report };
};
const graph = (roots, limit) => {
  const seen = new Set();
  const queue = roots.slice();
  const hosts = [];
  const unfrozen = [];
  let count = 0;
  while (queue.length > 0 && count < (limit || 20000)) {
    const [path, v] = queue.shift();
    if (v === null || (typeof v !== 'object' && typeof v !== 'function') || seen.has(v)) continue;
    seen.add(v);
    count++;
    const seenAs = verdict(v);
    if (seenAs.startsWith('HOST:')) hosts.push(path + ' ' + seenAs);
    if (!Object.isFrozen(v)) unfrozen.push(path);
    let keys = [];
    try { keys = Reflect.ownKeys(v); } catch (e) { keys = []; }
    for (const key of keys) {
      let d;
      try { d = Reflect.getOwnPropertyDescriptor(v, key); } catch (e) { continue; }
      if (!d) continue;
      const name = path + '.' + String(key);
      if ('value' in d) queue.push([name, d.value]);
      if (d.get) queue.push([name + '<get>', d.get]);
      if (d.set) queue.push([name + '<set>', d.set]);
    }
    let p;
    try { p = Reflect.getPrototypeOf(v); } catch (e) { p = null; }
    queue.push([path + '.__proto__', p]);
  }
  return { count, hosts, unfrozen };
};
const INSPECT = Symbol.for('nodejs.util.inspect.custom');
`;

interface Walk {
  readonly root: string;
  readonly report: ReadonlyArray<{ readonly name: string; readonly results: readonly string[] }>;
}
interface Graph {
  readonly count: number;
  readonly hosts: readonly string[];
  readonly unfrozen: readonly string[];
}

/** Every function of this file: a fresh id (so a fresh realm), the one owner, generous limits unless told. */
function fnCode(name: string, body: string, options: { owner?: string; timeoutMs?: number; memoryMb?: number } = {}): FunctionCode {
  return { id: `esc-${name}@1`, code: `${PRELUDE}\nmodule.exports = ${body};\n`, memoryMb: options.memoryMb ?? 64, timeoutMs: options.timeoutMs ?? 5000, owner: options.owner ?? OWNER };
}

/** No host object anywhere in what a function returned. */
function expectNoHost(value: unknown): void {
  expect(JSON.stringify(value) ?? '').not.toMatch(/HOST:/);
  expect(JSON.stringify(value) ?? '').not.toContain(ENV_MARKER);
}

/** A constructor walk reached code evaluators, and every one of them refused (or stayed inside the compartment). */
function expectInertWalk(value: unknown, root: string): void {
  const walked = value as Walk;
  expectNoHost(walked);
  expect(walked.root).toBe(root);
  const evaluators = walked.report.filter((entry) => /Function$/.test(entry.name));
  expect(evaluators.length, JSON.stringify(walked.report)).toBeGreaterThan(0);
  for (const entry of evaluators) expect(entry.results, entry.name).toEqual(['threw:TypeError', 'threw:TypeError', 'threw:TypeError', 'threw:TypeError']);
}

/**
 * What a refused attempt to reach something of Node's gives: an unknown global reads as undefined
 * in a compartment (so calling it is a TypeError), an inert evaluator throws a TypeError, code that
 * cannot be evaluated a SyntaxError. A host object would give `HOST:...`, anything else of the
 * compartment its type: both fail.
 */
const REFUSED = /^(undefined|threw:(TypeError|ReferenceError|SyntaxError))$/;
function expectRefused(values: unknown): void {
  expectNoHost(values);
  expect(Array.isArray(values)).toBe(true);
  for (const value of values as unknown[]) expect(value).toMatch(REFUSED);
}

/** Settles a call: its value, or its typed error's code. */
async function settle(call: Promise<unknown>): Promise<{ value: unknown } | { code: string; message: string }> {
  try {
    return { value: await call };
  } catch (error) {
    expect(error).toBeInstanceOf(LfaasError);
    return { code: (error as LfaasError).code, message: (error as LfaasError).message };
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits until `condition` holds, polling, for at most `timeoutMs` (the assertion after it then fails). */
async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await sleep(10);
}

describe(`sandbox escape techniques (isolation ${level})`, () => {
  let pool: RuntimePool;
  const clock = new HybridClock('escape-test', () => Date.now());
  /** Every `put` the host saw: key, value and when. */
  const puts: Array<{ key: string; value: unknown; atMs: number }> = [];
  const host: FunctionHost = {
    get: async (key: string): Promise<AnyLattice | undefined> => (key === 'missing' ? undefined : Lww.write(clock, { key, nested: { list: [1, 2, 3] } })),
    put: async (key: string, value: unknown): Promise<void> => {
      puts.push({ key, value, atMs: Date.now() });
    },
    merge: async (): Promise<void> => {},
    delete: async (): Promise<void> => {},
    send: async (): Promise<void> => {},
    recv: async (): Promise<Uint8Array | undefined> => undefined,
  };
  const call = (name: string, body: string, args: readonly unknown[] = [], options: { owner?: string; timeoutMs?: number; memoryMb?: number } = {}): Promise<unknown> => pool.run(fnCode(name, body, options), args, host);

  beforeAll(async () => {
    pool = new RuntimePool({ isolation: level, prewarm: 2, workersMax: 4, memoryMb: 64, functionLogLevel: 'silent' });
    await pool.ready();
  });
  afterAll(async () => {
    await pool?.close();
  });

  // ---------------------------------------------------------------------------------------------
  // Constructor chains from every object handed in.

  it('ctx object: constructor chain', async () => {
    expectInertWalk(await call('ctx-object', '(ctx) => walk(ctx)'), 'object');
  });

  it('ctx.get: constructor chain (an async function of the runtime)', async () => {
    expectInertWalk(await call('ctx-get', '(ctx) => walk(ctx.get)'), 'function');
  });

  it('ctx.put: constructor chain', async () => {
    expectInertWalk(await call('ctx-put', '(ctx) => walk(ctx.put)'), 'function');
  });

  it('ctx.getMany: constructor chain, and of its null-prototype result', async () => {
    const result = (await call('ctx-getmany', "async (ctx) => [await walk(ctx.getMany), await walk(await ctx.getMany(['a'])), await walk((await ctx.getMany(['a'])).a)]")) as Walk[];
    expectInertWalk(result[0], 'function');
    expectNoHost(result[1]);
    expectInertWalk(result[2], 'object');
  });

  it('ctx.merge: constructor chain', async () => {
    expectInertWalk(await call('ctx-merge', '(ctx) => walk(ctx.merge)'), 'function');
  });

  it('ctx.delete: constructor chain', async () => {
    expectInertWalk(await call('ctx-delete', '(ctx) => walk(ctx.delete)'), 'function');
  });

  it('ctx.send: constructor chain', async () => {
    expectInertWalk(await call('ctx-send', '(ctx) => walk(ctx.send)'), 'function');
  });

  it('ctx.recv: constructor chain, and of what it answers', async () => {
    const result = (await call('ctx-recv', 'async (ctx) => [await walk(ctx.recv), verdict(await ctx.recv({ timeoutMs: 1 }))]')) as [Walk, string];
    expectInertWalk(result[0], 'function');
    expect(result[1]).toBe('undefined');
  });

  it('ctx.log and ctx.log.info: constructor chains', async () => {
    const result = (await call('ctx-log', 'async (ctx) => [await walk(ctx.log), await walk(ctx.log.info), verdict(ctx.log.info("hi"))]')) as [Walk, Walk, string];
    expectInertWalk(result[0], 'object');
    expectInertWalk(result[1], 'function');
    expect(result[2]).toBe('undefined');
  });

  it('ctx.signal, its accessors and addEventListener: constructor chains', async () => {
    const result = (await call(
      'ctx-signal',
      "async (ctx) => { const d = Object.getOwnPropertyDescriptor(ctx.signal, 'aborted'); return [await walk(ctx.signal), await walk(ctx.signal.addEventListener), await walk(d.get), verdict(ctx.signal.addEventListener('abort', () => {}))]; }",
    )) as [Walk, Walk, Walk, string];
    expectInertWalk(result[0], 'object');
    expectInertWalk(result[1], 'function');
    expectInertWalk(result[2], 'function');
    expect(result[3]).toBe('undefined');
  });

  it('an object argument: constructor chain', async () => {
    expectInertWalk(await call('arg-object', '(o) => walk(o)', [{ a: { b: [1] } }]), 'object');
  });

  it('an array argument: constructor chain', async () => {
    expectInertWalk(await call('arg-array', '(a) => walk(a)', [[1, 'two', { three: 3 }]]), 'object');
  });

  it('a Uint8Array argument (a Buffer inside): constructor chain reaches Buffer, which is hardened', async () => {
    const result = (await call('arg-bytes', '(b) => Promise.all([walk(b), b.constructor.name, Object.isFrozen(b.constructor), Object.isFrozen(b.constructor.prototype), walk(b.constructor.from)])', [new Uint8Array([1, 2, 3])])) as [Walk, string, boolean, boolean, Walk];
    expectInertWalk(result[0], 'object');
    expect(result.slice(1, 4)).toEqual(['Buffer', true, true]);
    expectInertWalk(result[4], 'function');
  });

  it('a lattice from ctx.getLattice: constructor chain of the instance and its methods', async () => {
    const result = (await call('lattice', "async (ctx) => { const l = await ctx.getLattice('k'); return [await walk(l), await walk(l.merge), await walk(l.value), Object.isFrozen(l.constructor)]; }")) as [Walk, Walk, Walk, boolean];
    expectInertWalk(result[0], 'object');
    expectInertWalk(result[1], 'function');
    expectInertWalk(result[2], 'object');
    expect(result[3]).toBe(true);
  });

  it('a plain object from ctx.get: constructor chain', async () => {
    const result = (await call('get-value', "async (ctx) => { const v = await ctx.get('k'); return [v.key, await walk(v), await walk(v.nested.list)]; }")) as [string, Walk, Walk];
    expect(result[0]).toBe('k');
    expectInertWalk(result[1], 'object');
    expectInertWalk(result[2], 'object');
  });

  it('an error thrown into the function (ctx.put("", 1): KVS_BAD_KEY): e.constructor.constructor', async () => {
    const result = (await call(
      'error-chain',
      "async (ctx) => { try { await ctx.put('', 1); return 'no error'; } catch (e) { return [e.code, await walk(e), attempt(() => e.constructor.constructor('return process')())]; } }",
    )) as [string, Walk, string];
    expect(result[0]).toBe('KVS_BAD_KEY');
    expectInertWalk(result[1], 'object');
    expect(result[2]).toBe('threw:TypeError');
  });

  it('a promise from ctx.get: ctx.get(k).constructor.constructor', async () => {
    const result = (await call('promise-chain', "async (ctx) => { const p = ctx.get('k'); const w = await walk(p); await p; return [w, attempt(() => p.constructor.constructor('return process')())]; }")) as [Walk, string];
    expectInertWalk(result[0], 'object');
    expect(result[1]).toBe('threw:TypeError');
  });

  it('a timer handle: setTimeout returns a number, not a Node Timeout; its constructor chain', async () => {
    const result = (await call('timer-handle', '() => { const t = setTimeout(() => {}, 1); clearTimeout(t); return Promise.all([typeof t, walk(t), attempt(() => t.constructor.constructor("return process")()), verdict(t.ref), verdict(t.unref)]); }')) as [string, Walk, string, string, string];
    expect(result[0]).toBe('number');
    expectInertWalk(result[1], 'number');
    expect(result.slice(2)).toEqual(['threw:TypeError', 'undefined', 'undefined']);
  });

  it("setTimeout.constructor.constructor('return process')()", async () => {
    const result = (await call('settimeout-chain', "() => Promise.all([attempt(() => setTimeout.constructor.constructor('return process')()), attempt(() => setTimeout.constructor('return process')()), walk(setTimeout), walk(setInterval), walk(queueMicrotask)])")) as [string, string, Walk, Walk, Walk];
    expect(result.slice(0, 2)).toEqual(['threw:TypeError', 'threw:TypeError']);
    for (const walked of result.slice(2)) expectInertWalk(walked, 'function');
  });

  it('this.constructor.constructor (this is undefined in a strict function; module-level this too)', async () => {
    const result = (await call(
      'this-chain',
      "(function () { const moduleThis = this; return function () { const self = this; return Promise.all([verdict(self), verdict(moduleThis), attempt(() => self.constructor.constructor('return process')()), walk(moduleThis)]); }; }).call(this)",
    )) as [string, string, string, Walk];
    expect(result.slice(0, 3)).toEqual(['undefined', 'undefined', 'threw:TypeError']);
    expectNoHost(result[3]);
  });

  it('console.log.constructor', async () => {
    const result = (await call('console-chain', "() => Promise.all([attempt(() => console.log.constructor('return process')()), walk(console.log), walk(console)])")) as [string, Walk, Walk];
    expect(result[0]).toBe('threw:TypeError');
    expectInertWalk(result[1], 'function');
    expectInertWalk(result[2], 'object');
  });

  it('module and exports objects: their constructors', async () => {
    const result = (await call('module-chain', "(() => { const m = module, x = exports; return () => Promise.all([walk(m), walk(x), attempt(() => m.constructor.constructor('return process')()), verdict(m.require), verdict(m.constructor._load)]); })()")) as [Walk, Walk, string, string, string];
    expectInertWalk(result[0], 'object');
    expectInertWalk(result[1], 'object');
    expect(result.slice(2)).toEqual(['threw:TypeError', 'undefined', 'undefined']);
  });

  it('structuredClone.constructor', async () => {
    const result = (await call('structuredclone-chain', "() => Promise.all([attempt(() => structuredClone.constructor('return process')()), walk(structuredClone), walk(structuredClone({ a: [1] }))])")) as [string, Walk, Walk];
    expect(result[0]).toBe('threw:TypeError');
    expectInertWalk(result[1], 'function');
    expectInertWalk(result[2], 'object');
  });

  it('TextEncoder / TextDecoder: constructors and instances', async () => {
    const result = (await call(
      'text-codecs',
      "() => Promise.all([attempt(() => TextEncoder.constructor('return process')()), walk(TextEncoder), walk(new TextDecoder()), walk(new TextEncoder().encode('x')), Object.isFrozen(TextEncoder.prototype), Object.isFrozen(TextDecoder)])",
    )) as [string, Walk, Walk, Walk, boolean, boolean];
    expect(result[0]).toBe('threw:TypeError');
    expectInertWalk(result[1], 'function');
    expectInertWalk(result[2], 'object');
    expectInertWalk(result[3], 'object');
    expect(result.slice(4)).toEqual([true, true]);
  });

  it('URL internals: constructor chains, static methods, the hidden context through its inspect hook', async () => {
    const result = (await call(
      'url-internals',
      `() => {
        const u = new URL('http://example.invalid/a?b=c');
        let seenContext = 'none';
        const options = { showHidden: true, depth: 3, stylize: (s) => s, customInspect: true, breakLength: 80, compact: 3, maxArrayLength: 10, maxStringLength: 100, seen: [], indentationLvl: 0, currentDepth: 0, budget: {} };
        let text = '';
        try { text = String(u[INSPECT](2, options)); } catch (e) { text = nameOf(e); }
        const objectUrl = attempt(() => URL.createObjectURL({}));
        return Promise.all([walk(u), walk(URL), walk(u.searchParams), walk(URLSearchParams), verdict(URL.createObjectURL), objectUrl, graph([['url', u], ['URL', URL], ['params', u.searchParams]]), text.includes('href')]);
      }`,
    )) as [Walk, Walk, Walk, Walk, string, string, Graph, boolean];
    expectInertWalk(result[0], 'object');
    expectInertWalk(result[1], 'function');
    expectInertWalk(result[2], 'object');
    expectInertWalk(result[3], 'function');
    expect(result[4]).toBe('function');
    // createObjectURL wants a Blob, which no function can make.
    expect(result[5]).toMatch(/^threw:/);
    expect(result[6].hosts).toEqual([]);
    expect(result[6].unfrozen).toEqual(['url', 'params']);
  });

  // ---------------------------------------------------------------------------------------------
  // V8's stack API.

  it('Error.prepareStackTrace: a function set there never gets CallSite objects (getThis/getFunction), and is not seen by another function', async () => {
    const result = (await call(
      'prepare-stack-trace',
      `() => {
        let callSites = 'never called';
        try {
          Error.prepareStackTrace = function lfaasMarker(error, sites) {
            callSites = Array.isArray(sites) ? sites.map((s) => { try { return [verdict(s.getThis && s.getThis()), verdict(s.getFunction && s.getFunction())].join(','); } catch (e) { return nameOf(e); } }).join(';') : verdict(sites);
            return 'prepared';
          };
        } catch (e) { callSites = 'set refused: ' + nameOf(e); }
        const stack = new Error('x').stack;
        let thrownStack;
        try { null.x; } catch (e) { thrownStack = e.stack; }
        return [typeof stack, stack === 'prepared', typeof thrownStack, callSites];
      }`,
    )) as [string, boolean, string, string];
    expectNoHost(result);
    expect(result.slice(0, 3)).toEqual(['string', false, 'string']);
    // Either the setter was refused or the function was never called: no CallSite reached it.
    expect(result[3]).toMatch(/^(never called|set refused: threw:\w+)$/);
    const other = (await call('prepare-stack-trace-reader', '() => { const p = Error.prepareStackTrace; return [typeof p, p === undefined ? "" : String(p.name)]; }')) as [string, string];
    expect(other[1]).not.toBe('lfaasMarker');
  });

  it('Error.captureStackTrace: no host frames objects, no structured stack', async () => {
    const result = (await call(
      'capture-stack-trace',
      "() => { const o = {}; const r = attempt(() => Error.captureStackTrace(o)); const d = Object.getOwnPropertyDescriptor(o, 'stack'); return Promise.all([r, typeof o.stack, d === undefined ? 'none' : verdict(d.get), walk(Error.captureStackTrace), attempt(() => Error.captureStackTrace.constructor('return process')())]); }",
    )) as [string, string, string, Walk, string];
    expect(result[0]).toMatch(/^(undefined|threw:\w+)$/);
    expect(['string', 'undefined']).toContain(result[1]);
    expect(['none', 'undefined', 'function']).toContain(result[2]);
    expectInertWalk(result[3], 'function');
    expect(result[4]).toBe('threw:TypeError');
  });

  it('the stack of a ctx failure shows runtime paths only: no executor path, no environment', async () => {
    const result = (await call('stack-leak', "async (ctx) => { try { await ctx.put('', 1); return 'no error'; } catch (e) { return [String(e.stack), String(new Error('mine').stack)]; } }")) as [string, string];
    for (const stack of result) {
      expect(stack).not.toContain(ENV_MARKER);
      expect(stack).not.toContain(fileURLToPath(new URL('..', import.meta.url)));
      expect(stack).not.toMatch(/HOST:/);
    }
    expect(result[0]).toContain('a key is a non-empty string');
  });

  // ---------------------------------------------------------------------------------------------
  // What a function returns: it is copied inside the sandbox; no code of the function runs here.

  it('Symbol.species on a returned array: the executor gets a plain copy', async () => {
    const result = await call(
      'species-array',
      `() => {
        const a = [1, 2, 3];
        class Evil extends Array { static get [Symbol.species]() { try { globalThis.${HOST_FLAG} = 'species'; } catch (e) {} return Evil; } }
        Object.defineProperty(a, 'constructor', { value: Evil });
        const b = Evil.from([4, 5]);
        return { a, b, mapped: b.map((x) => x * 2) };
      }`,
    );
    expect(result).toEqual({ a: [1, 2, 3], b: [4, 5], mapped: [8, 10] });
    expect(Object.getPrototypeOf((result as { b: unknown }).b)).toBe(Array.prototype);
    expect((globalThis as Record<string, unknown>)[HOST_FLAG]).toBeUndefined();
  });

  it('Symbol.species on a returned promise: resolved inside the sandbox', async () => {
    const outcome = await settle(
      call(
        'species-promise',
        `async () => {
          const p = Promise.resolve({ ok: 1 });
          const species = function (executor) { try { globalThis.${HOST_FLAG} = 'promise-species'; } catch (e) {} return new Promise(executor); };
          try { Object.defineProperty(p, 'constructor', { value: { [Symbol.species]: species } }); } catch (e) { return 'refused: ' + nameOf(e); }
          return p;
        }`,
      ),
    );
    expect(outcome).toEqual({ value: { ok: 1 } });
    expect((globalThis as Record<string, unknown>)[HOST_FLAG]).toBeUndefined();
  });

  it('getters, Symbol.toPrimitive, toJSON and then on a returned value run (if at all) in the sandbox', async () => {
    const getter = await call('getter-result', `() => ({ get x() { try { globalThis.${HOST_FLAG} = 'getter'; } catch (e) {} return 'copied in the sandbox'; } })`);
    expect(getter).toEqual({ x: 'copied in the sandbox' });
    expect(Object.getOwnPropertyDescriptor(getter, 'x')).toMatchObject({ value: 'copied in the sandbox' });
    const traps = await settle(
      call('traps-result', `() => ({ a: 1, [Symbol.toPrimitive]() { globalThis.${HOST_FLAG} = 'toPrimitive'; return 1; }, toJSON() { globalThis.${HOST_FLAG} = 'toJSON'; return {}; }, valueOf() { globalThis.${HOST_FLAG} = 'valueOf'; return 1; } })`),
    );
    // Functions inside a result cannot be sent: refused.
    expect(traps).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    const throwing = await settle(call('throwing-getter', "() => ({ get x() { throw new Error('from a getter'); } })"));
    expect(throwing).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    expect((globalThis as Record<string, unknown>)[HOST_FLAG]).toBeUndefined();
  });

  it('a returned Proxy: refused (EXEC_BAD_VALUE); its traps never run in the executor', async () => {
    const outcome = await settle(
      call('proxy-result', `() => new Proxy({ a: 1 }, { get(t, k) { try { globalThis.${HOST_FLAG} = 'proxy-get'; } catch (e) {} return Reflect.get(t, k); }, ownKeys(t) { return Reflect.ownKeys(t); }, getPrototypeOf() { return Object.prototype; } })`),
    );
    expect(outcome).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    // A proxy handed to ctx.put is refused too; the host never sees a put.
    const before = puts.length;
    const viaPut = await settle(call('proxy-put', "async (ctx) => ctx.put('proxied', new Proxy({}, { ownKeys() { return ['x']; } }))"));
    expect(viaPut).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    expect(puts.length).toBe(before);
    expect((globalThis as Record<string, unknown>)[HOST_FLAG]).toBeUndefined();
  });

  it('a returned thenable: resolved in the sandbox; one that never settles times out', async () => {
    const result = await call('thenable-result', `() => ({ then(resolve) { try { globalThis.${HOST_FLAG} = 'then'; } catch (e) {} resolve({ resolved: 'inside', then: undefined }); } })`);
    expect(result).toEqual({ resolved: 'inside' });
    const hanging = await settle(call('thenable-hang', '() => ({ then() {} })', [], { timeoutMs: 300 }));
    expect(hanging).toMatchObject({ code: 'EXEC_TIMEOUT' });
    expect((globalThis as Record<string, unknown>)[HOST_FLAG]).toBeUndefined();
  });

  // ---------------------------------------------------------------------------------------------
  // The module system and Node's globals.

  it("import('fs'): the module cannot load (SES rejects import expressions)", async () => {
    const outcome = await settle(call('import-fs', "async () => { const fs = await import('fs'); return verdict(fs); }"));
    expect(outcome).toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('import') });
    // Hidden from the source check: built at run time, it is rejected there.
    const hidden = await call('import-fs-hidden', "async () => Promise.all([attemptAsync(() => Function('return imp' + 'ort(\"fs\")')()), attemptAsync(() => new Compartment({}).import('fs'))])");
    expect(hidden).toEqual(['threw:SyntaxError', 'threw:TypeError']);
  });

  it("require('fs'): require does not exist, nor does module.require", async () => {
    const result = await call('require-fs', "function (x, ctx) { return [typeof require, attempt(() => require('fs')), verdict(module.require), attempt(() => module.constructor.createRequire('/')), verdict(globalThis.require)]; }");
    expectRefused(result);
    expect((result as string[])[0]).toBe('undefined');
  });

  it('process, process.binding, process.getBuiltinModule: none reachable', async () => {
    const result = await call(
      'process-global',
      "() => [typeof process, attempt(() => process.binding('fs')), attempt(() => process.getBuiltinModule('fs')), verdict(globalThis.process), verdict(Reflect.get(globalThis, 'process')), attempt(() => globalThis.constructor.constructor('return process')())]",
    );
    expectRefused(result);
    expect((result as string[])[0]).toBe('undefined');
  });

  it('globalThis walk: no Node or module-system names anywhere on the global object or its prototypes', async () => {
    const names = (await call('globals', "() => { const names = []; for (let o = globalThis; o !== null; o = Object.getPrototypeOf(o)) names.push(...Reflect.ownKeys(o).map(String)); return names; }")) as string[];
    expect(names).toContain('console');
    expect(names).toContain('setTimeout');
    const forbidden = ['process', 'require', 'Buffer', 'module', 'exports', '__filename', '__dirname', 'global', 'setImmediate', 'clearImmediate', 'fetch', 'WebSocket', 'XMLHttpRequest', 'Worker', 'SharedArrayBuffer', 'Atomics', 'WebAssembly', 'performance', 'navigator', 'Blob', 'EventTarget', 'MessageChannel', 'BroadcastChannel'];
    for (const name of forbidden) expect(names, name).not.toContain(name);
  });

  it('everything reachable from the globals, ctx and the arguments is frozen and holds no host object (Reflect walk)', async () => {
    const result = (await call(
      'graph',
      "(obj, bytes, ctx) => [graph(Object.getOwnPropertyNames(globalThis).filter((k) => k !== 'globalThis').map((k) => ['globalThis.' + k, globalThis[k]])), graph([['ctx', ctx], ['obj', obj], ['bytes', bytes]])]",
      [{ a: 1 }, new Uint8Array([1])],
    )) as [Graph, Graph];
    expect(result[0].count).toBeGreaterThan(200);
    expect(result[0].hosts).toEqual([]);
    // The compartment's own evaluators are its own (not shared); everything else is hardened.
    expect(result[0].unfrozen.filter((path) => !/^globalThis\.(eval|Function)$/.test(path))).toEqual([]);
    expect(result[1].count).toBeGreaterThan(50);
    expect(result[1].hosts).toEqual([]);
    // Only the function's own arguments are not frozen.
    expect(result[1].unfrozen).toEqual(['obj', 'bytes']);
  });

  it("Function('return this')() is not a host global object", async () => {
    const result = await call('function-this', "() => [attempt(() => Function('return this')()), attempt(() => Function('return globalThis')()), attempt(() => Function('return typeof process')()), Function('return globalThis')() === globalThis]");
    expect(result).toEqual(['undefined', 'object', 'string', true]);
    const typeofProcess = await call('function-this-2', "() => Function('return typeof process')()");
    expect(typeofProcess).toBe('undefined');
  });

  it('direct eval: rejected at load (SES), or confined to the compartment', async () => {
    const outcome = await settle(call('direct-eval', "() => [eval('typeof process'), verdict(eval('this')), verdict(eval('globalThis'))]"));
    if ('value' in outcome) expect(outcome.value).toEqual(['undefined', 'undefined', 'object']);
    else expect(outcome).toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('eval') });
  });

  it('indirect eval: confined to the compartment', async () => {
    const result = await call('indirect-eval', "() => { const e = eval; return [e('typeof process'), verdict(e('this')), verdict((0, e)('globalThis')), attempt(() => e('Function')('return process')())]; }");
    expect((result as string[]).slice(0, 3)).toEqual(['undefined', 'object', 'object']);
    expectRefused((result as string[]).slice(3));
  });

  it("new Function('return process'): confined to the compartment", async () => {
    const result = await call('new-function', "() => [attempt(() => new Function('return process')()), attempt(() => new Function('return globalThis.process')()), attempt(() => new Function('return (0, eval)(\"this\")')())]");
    expectRefused((result as string[]).slice(0, 2));
    expect((result as string[])[2]).toBe('object');
  });

  it("async function constructor: (async function(){}).constructor('return process')", async () => {
    const walked = await call('async-function-ctor', '() => walk(async function () {})');
    expectInertWalk(walked, 'function');
    const direct = await call('async-function-ctor-2', "async () => attemptAsync(() => (async function () {}).constructor('return process')())");
    expect(direct).toBe('threw:TypeError');
  });

  it('generator function constructor', async () => {
    const walked = await call('generator-ctor', '() => walk(function* () {})');
    expectInertWalk(walked, 'function');
    const direct = await call('generator-ctor-2', "() => attempt(() => (function* () {}).constructor('yield process')().next().value)");
    expect(direct).toBe('threw:TypeError');
  });

  it('async generator function constructor', async () => {
    const walked = await call('async-generator-ctor', '() => walk(async function* () {})');
    expectInertWalk(walked, 'function');
    const direct = await call('async-generator-ctor-2', "async () => attemptAsync(async () => (await (async function* () {}).constructor('yield process')().next()).value)");
    expect(direct).toBe('threw:TypeError');
  });

  it('a nested Compartment: no Node inside it either, and lockdown cannot run again', async () => {
    const result = await call(
      'nested-compartment',
      "() => { const c = new Compartment({ globals: { leak: 1 }, __options__: true }); return [c.evaluate('typeof process'), verdict(c.globalThis), verdict(c.evaluate('globalThis')), attempt(() => c.evaluate('Function(\"return process\")()')), attempt(() => lockdown()), attempt(() => c.evaluate('this.constructor.constructor(\"return process\")()'))]; }",
    );
    expect((result as string[]).slice(0, 3)).toEqual(['undefined', 'object', 'object']);
    expectRefused((result as string[]).slice(3));
    expect((result as string[])[4]).toBe('threw:TypeError');
  });

  // ---------------------------------------------------------------------------------------------
  // Resources.

  it('WebAssembly: absent (or a memory bomb fails with a typed error)', async () => {
    const outcome = await settle(
      call(
        'webassembly',
        "() => { if (typeof WebAssembly === 'undefined') return 'absent'; const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); for (let i = 0; i < 64; i++) { m.grow(512); new Uint8Array(m.buffer).fill(1); } return m.buffer.byteLength; }",
        [],
        { timeoutMs: 10_000 },
      ),
    );
    if ('value' in outcome) expect(outcome.value).toBe('absent');
    else expect(['EXEC_OUT_OF_MEMORY', 'EXEC_USER_ERROR']).toContain(outcome.code);
  });

  it('SharedArrayBuffer / Atomics.wait: absent (or a blocked wait ends in EXEC_TIMEOUT)', async () => {
    const outcome = await settle(
      call('shared-memory', "() => { if (typeof SharedArrayBuffer === 'undefined' && typeof Atomics === 'undefined') return 'absent'; return Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); }", [], { timeoutMs: 300 }),
    );
    if ('value' in outcome) expect(outcome.value).toBe('absent');
    else expect(outcome.code).toBe('EXEC_TIMEOUT');
  });

  it('deep recursion: EXEC_LIMIT', async () => {
    const outcome = await settle(call('recursion', '() => { const f = (n) => f(n + 1) + 1; return f(0); }'));
    expect(outcome).toMatchObject({ code: 'EXEC_LIMIT' });
  });

  it("a huge string ('x'.repeat(2 ** 29)): a typed error", async () => {
    const outcome = await settle(call('huge-string', "() => 'x'.repeat(2 ** 29).length"));
    expect(outcome).toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('Invalid string length') });
  });

  it('an ArrayBuffer memory bomb: EXEC_OUT_OF_MEMORY, the pool keeps serving', async () => {
    const outcome = await settle(call('buffer-bomb', '() => { const keep = []; for (let i = 0; i < 64; i++) { const a = new Uint8Array(32 * 1024 * 1024); a.fill(1); keep.push(a); } return keep.length; }', [], { timeoutMs: 20_000 }));
    expect(outcome).toMatchObject({ code: 'EXEC_OUT_OF_MEMORY' });
    expect(await call('after-bomb', '(x) => x + 1', [1])).toBe(2);
  });

  it('a synchronous loop: EXEC_TIMEOUT, and the executor keeps turning meanwhile; the runtime is replaced', async () => {
    await until(() => pool.load === 0, 5000);
    const replaced = pool.counters.replaced;
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    try {
      const outcome = await settle(call('spin', '() => { for (;;) {} }', [], { timeoutMs: 300 }));
      expect(outcome).toMatchObject({ code: 'EXEC_TIMEOUT' });
    } finally {
      clearInterval(ticker);
    }
    expect(ticks).toBeGreaterThan(5);
    await until(() => pool.counters.replaced > replaced, 5000);
    expect(pool.counters.replaced).toBe(replaced + 1);
  });

  it('a microtask loop left behind after returning: the call never answers (EXEC_TIMEOUT), the runtime is replaced', async () => {
    await until(() => pool.load === 0, 5000);
    await sleep(150);
    const replaced = pool.counters.replaced;
    const outcome = await settle(call('microtask-loop', "() => { const loop = () => Promise.resolve().then(loop); loop(); return 'returned'; }", [], { timeoutMs: 300 }));
    expect(outcome).toMatchObject({ code: 'EXEC_TIMEOUT' });
    // It never answers even the abort: ended after the grace, and replaced.
    await until(() => pool.counters.replaced > replaced, 5000);
    expect(pool.counters.replaced).toBe(replaced + 1);
    expect(await call('after-microtask-loop', '(x) => x - 1', [1])).toBe(0);
  });

  it('floods of timers and log records: EXEC_LIMIT even when caught', async () => {
    const timers = await settle(call('timer-flood', '() => { try { for (let i = 0; i < 2000; i++) setTimeout(() => {}, 1e6); } catch (e) {} return "caught"; }'));
    expect(timers).toMatchObject({ code: 'EXEC_LIMIT' });
    const logs = await settle(call('log-flood', '() => { try { for (let i = 0; i < 2000; i++) console.log("x"); } catch (e) {} return "caught"; }'));
    expect(logs).toMatchObject({ code: 'EXEC_LIMIT' });
  });

  it('crypto.getRandomValues bounds: 65537 bytes is refused; a typed array lying about its byteLength gets no more than the limit', async () => {
    const outcome = await settle(call('random-bound', '() => crypto.getRandomValues(new Uint8Array(65537)).length'));
    expect(outcome).toMatchObject({ code: 'EXEC_USER_ERROR', message: expect.stringContaining('65536') });
    expect(await call('random-ok', '() => crypto.getRandomValues(new Uint8Array(65536)).length')).toBe(65536);
    const lying = await call(
      'random-lying',
      "() => { class Fake extends Uint8Array { get byteLength() { return 16; } } const f = new Fake(1 << 22); try { crypto.getRandomValues(f); } catch (e) { return nameOf(e); } let filled = 0; for (let i = 0; i < f.length; i++) if (f[i] !== 0) filled++; return filled; }",
    );
    if (typeof lying === 'number') expect(lying).toBeLessThanOrEqual(65536);
    else expect(lying).toMatch(/^threw:/);
  });

  it('Date and Math exist and work (the start compartment\'s, frozen)', async () => {
    const before = Date.now();
    const result = (await call('date-math', "() => [Date.now(), Math.random(), new Date(0).toISOString(), Object.isFrozen(Date), Object.isFrozen(Math), attempt(() => { Math.random = () => 4; return Math.random(); })]")) as [number, number, string, boolean, boolean, string];
    expect(result[0]).toBeGreaterThanOrEqual(before - 1000);
    expect(result[0]).toBeLessThanOrEqual(Date.now() + 1000);
    expect(result[1]).toBeGreaterThanOrEqual(0);
    expect(result[1]).toBeLessThan(1);
    expect(result.slice(2)).toEqual(['1970-01-01T00:00:00.000Z', true, true, 'threw:TypeError']);
  });

  it('Buffer: no pooled memory (allocUnsafe is zeroed, from() owns its bytes), bounds-checked native slices', async () => {
    const result = (await call(
      'buffer-memory',
      "(b) => { const B = b.constructor; const u = B.allocUnsafe(1 << 16); let nonzero = 0; for (const x of u) if (x !== 0) nonzero++; const slices = ['hexSlice', 'latin1Slice', 'asciiSlice', 'utf8Slice', 'ucs2Slice', 'base64Slice'].map((m) => { try { return String(b[m](0, 1 << 20)).length; } catch (e) { return nameOf(e); } }); return [nonzero, u.buffer.byteLength, B.from('abc').buffer.byteLength, b.buffer.byteLength, slices]; }",
      [new Uint8Array([1, 2, 3])],
    )) as [number, number, number, number, Array<string | number>];
    expect(result.slice(0, 4)).toEqual([0, 1 << 16, 3, 3]);
    for (const slice of result[4]) expect(slice).toMatch(/^threw:/);
  });

  // ---------------------------------------------------------------------------------------------
  // Pollution and state shared between functions.

  it('Object.prototype pollution: refused, and a second function does not see it', async () => {
    const result = await call('pollute-object', "() => [attempt(() => { Object.prototype.polluted = 1; }), attempt(() => { ({}).__proto__.polluted = 1; }), attempt(() => { Object.defineProperty(Object.prototype, 'polluted', { value: 1 }); }), typeof ({}).polluted]");
    expect(result).toEqual(['threw:TypeError', 'threw:TypeError', 'threw:TypeError', 'undefined']);
    expect(await call('pollute-object-check', "() => [typeof ({}).polluted, 'polluted' in {}]")).toEqual(['undefined', false]);
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('Array.prototype.push override: refused, and a second function does not see it', async () => {
    const result = await call('pollute-array', "() => { const r = attempt(() => { Array.prototype.push = function () { return 'hijacked'; }; }); const a = []; return [r, a.push(1), a]; }");
    expect(result).toEqual(['threw:TypeError', 1, [1]]);
    expect(await call('pollute-array-check', '() => { const a = []; return [a.push(7), a, String(Array.prototype.push).includes("native code")]; }')).toEqual([1, [7], true]);
  });

  it('Promise.prototype.then override: refused, and a second function does not see it', async () => {
    const result = await call('pollute-promise', "async () => { const r = attempt(() => { Promise.prototype.then = function () { return 'hijacked'; }; }); return [r, await Promise.resolve(5)]; }");
    expect(result).toEqual(['threw:TypeError', 5]);
    expect(await call('pollute-promise-check', 'async () => [await Promise.resolve(6), String(Promise.prototype.then).includes("native code")]')).toEqual([6, true]);
  });

  it('a global set by one function (globalThis.leak) is not seen by another function of the same owner', async () => {
    expect(await call('global-writer', "() => { globalThis.leak = 'secret'; return globalThis.leak; }")).toBe('secret');
    expect(await call('global-reader', "() => [typeof globalThis.leak, typeof leak === 'undefined' ? 'undefined' : leak]")).toEqual(['undefined', 'undefined']);
  });

  it('a global set by one function is not seen by another owner\'s function', async () => {
    expect(await call('global-writer-2', "() => { globalThis.leak2 = 'secret'; return globalThis.leak2; }")).toBe('secret');
    expect(await call('global-reader-other-owner', '() => typeof globalThis.leak2', [], { owner: 'escape-other' })).toBe('undefined');
    expect(pool.owners()).toContain('escape-other');
  });

  it("Buffer's util.inspect hook: hands the function no mutable Node object shared with other functions", async () => {
    // Buffer.prototype[inspect.custom] formats extra properties with util.inspect, which calls
    // their own custom inspectors with util.inspect itself as the third argument.
    const leak = `(b) => { let inspect; b.extra = { [INSPECT]: (depth, options, inspectFn) => { inspect = inspectFn; return ''; } }; try { b[INSPECT](2, {}); } catch (e) { return { reached: nameOf(e) }; } if (inspect === undefined) return { reached: 'nothing' };`;
    const writer = (await call(
      'inspect-writer',
      `${leak} let wrote = 'refused'; try { inspect.lfaasLeak = 'from the writer'; inspect.styles.lfaasLeak = 'from the writer'; wrote = 'wrote'; } catch (e) { wrote = nameOf(e); } return { reached: verdict(inspect), frozen: Object.isFrozen(inspect) && Object.isFrozen(inspect.styles), wrote }; }`,
      [new Uint8Array([1])],
    )) as { reached: string; frozen?: boolean; wrote?: string };
    expectNoHost(writer);
    const reader = (await call('inspect-reader', `${leak} return { reached: verdict(inspect), seen: [String(inspect.lfaasLeak), String(inspect.styles && inspect.styles.lfaasLeak)] }; }`, [new Uint8Array([1])])) as { reached: string; seen?: string[] };
    expectNoHost(reader);
    // What one function wrote must not be readable by another: no channel between realms.
    if (reader.seen !== undefined) expect(reader.seen).toEqual(['undefined', 'undefined']);
    // And what it reached must be hardened like every other object handed in.
    if (writer.frozen !== undefined) expect(writer).toMatchObject({ frozen: true });
  });

  it('__proto__ tricks on arguments: refused or local; the executor gets a plain copy', async () => {
    const result = (await call(
      'proto-args',
      "(arg) => { const tries = [attempt(() => { arg.__proto__.polluted = 1; }), attempt(() => { arg.constructor.prototype.polluted = 1; }), attempt(() => { Object.setPrototypeOf(arg, { polluted: 1, evil() { return 'e'; } }); return arg; })]; return [tries, arg.polluted, arg]; }",
      [{ a: 1 }],
    )) as [string[], number, Record<string, unknown>];
    expect(result[0]).toEqual(['threw:TypeError', 'threw:TypeError', 'object']);
    // Only the function's own object changed, and the copy it returned has own data only.
    expect(result[1]).toBe(1);
    expect(result[2]).toEqual({ a: 1 });
    expect(Object.getPrototypeOf(result[2])).toBe(Object.prototype);
    const viaJson = await settle(call('proto-json', '() => JSON.parse(\'{"a": {"__proto__": {"polluted": 1}}}\')'));
    expect(viaJson).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    const before = puts.length;
    const viaPut = await settle(call('proto-put', "async (ctx) => ctx.put('k', JSON.parse('{\"__proto__\": {\"polluted\": 1}}'))"));
    expect(viaPut).toMatchObject({ code: 'EXEC_BAD_VALUE' });
    expect(puts.length).toBe(before);
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('log fields with __proto__ / constructor keys do not pollute the executor', async () => {
    expect(await call('log-proto', "(ctx) => { ctx.log.info(JSON.parse('{\"__proto__\": {\"polluted\": 1}, \"constructor\": {\"prototype\": {\"polluted\": 2}}, \"level\": 99}'), 'hi'); console.log({ __proto__: { polluted: 3 } }); return 'logged'; }")).toBe('logged');
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  // ---------------------------------------------------------------------------------------------
  // The host's resources.

  it('files: no way to fs (require, process.binding, getBuiltinModule, import)', async () => {
    const result = await call(
      'files',
      "async () => [attempt(() => require('fs').readFileSync('/etc/passwd', 'utf8')), attempt(() => process.binding('fs')), attempt(() => process.getBuiltinModule('node:fs')), await attemptAsync(() => Function('return imp' + 'ort(\"node:fs\")')()), await attemptAsync(() => new Compartment({}).import('node:fs'))]",
    );
    expectRefused(result);
  });

  it('sockets: no network API in reach; nothing connects to a listener of the executor', async () => {
    const server = createServer();
    const connections: Socket[] = [];
    server.on('connection', (socket) => {
      connections.push(socket);
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const result = await call(
        'sockets',
        "async (port) => [typeof fetch, typeof WebSocket, typeof XMLHttpRequest, attempt(() => require('net').connect(port, '127.0.0.1')), attempt(() => process.getBuiltinModule('net').connect(port, '127.0.0.1')), await attemptAsync(() => fetch('http://127.0.0.1:' + port)), attempt(() => new URL('http://127.0.0.1:' + port).searchParams.constructor('return process')())]",
        [port],
      );
      expectRefused(result);
      expect((result as string[]).slice(0, 3)).toEqual(['undefined', 'undefined', 'undefined']);
      await sleep(50);
      expect(connections.length).toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('process.exit, process.kill(process.pid, "SIGKILL"), signals: unreachable; the runtime stays', async () => {
    await sleep(150);
    const replaced = pool.counters.replaced;
    const result = await call('exit-kill', "() => [attempt(() => process.exit(1)), attempt(() => process.kill(process.pid, 'SIGKILL')), attempt(() => process.abort()), attempt(() => globalThis.process.reallyExit(1))]");
    expectRefused(result);
    expect(await call('after-exit', '(x) => x * 2', [21])).toBe(42);
    expect(pool.counters.replaced).toBe(replaced);
  });

  it('arguments.callee.caller: throws in strict code', async () => {
    const result = await call('callee', 'function () { return [attempt(() => arguments.callee), attempt(() => arguments.callee.caller)]; }');
    expect(result).toEqual(['threw:TypeError', 'threw:TypeError']);
  });

  it("Function.prototype.caller / fn.caller: no runtime function reached, even from callbacks the runtime calls", async () => {
    const result = await call(
      'caller',
      "async (ctx) => { const own = function f() { return attempt(() => f.caller); }; let inThen; await { then(resolve) { inThen = attempt(() => this.then.caller); resolve(); } }; let inTimer; await new Promise((r) => setTimeout(function t() { inTimer = attempt(() => t.caller); r(); }, 1)); const d = Object.getOwnPropertyDescriptor(Function.prototype, 'caller'); return [own(), inThen, inTimer, d === undefined ? 'no accessor' : attempt(() => d.get.call(own))]; }",
    );
    expect(result).toEqual(['undefined', 'undefined', 'undefined', 'no accessor']);
  });

  it('timers left behind: an interval set by a call never fires after the call returned', async () => {
    const key = 'leftover-interval';
    const result = await call('leftover-interval', `async (ctx) => { let n = 0; setInterval(() => { n++; ctx.put('${key}', n).catch(() => {}); }, 5); setTimeout(() => ctx.put('${key}', 'late').catch(() => {}), 100); await new Promise((r) => setTimeout(r, 60)); return n; }`);
    const endedAt = Date.now();
    const during = puts.filter((put) => put.key === key).length;
    // The interval did run during the call (the technique was live)...
    expect(result).toBeGreaterThan(0);
    expect(during).toBeGreaterThan(0);
    await sleep(200);
    // ...and nothing after it.
    expect(puts.filter((put) => put.key === key && put.atMs > endedAt)).toEqual([]);
    expect(puts.filter((put) => put.key === key).length).toBe(during);
  });

  // ---------------------------------------------------------------------------------------------

  it('the executor is unaffected: no polluted prototype, no new global, and a well-behaved function still runs', async () => {
    expect(Reflect.ownKeys(Object.prototype).map(String).sort()).toEqual(objectProtoKeys);
    expect(Reflect.ownKeys(Array.prototype).map(String).sort()).toEqual(arrayProtoKeys);
    expect(Reflect.ownKeys(Function.prototype).map(String).sort()).toEqual(functionProtoKeys);
    expect(Array.prototype.push).toBe(originalPush);
    expect(Promise.prototype.then).toBe(originalThen);
    expect(Object.prototype.toString).toBe(originalToString);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    for (const name of [HOST_FLAG, 'leak', 'leak2', 'polluted', 'lfaasLeak']) expect(Reflect.ownKeys(globalThis).map(String), name).not.toContain(name);
    expect(process.env['LFAAS_ESCAPE_MARKER']).toBe(ENV_MARKER);
    const result = await call('well-behaved', "async (name, ctx) => { await ctx.put('greeting', { hello: name }); const v = await ctx.get('k'); return { hello: name, read: v.key }; }", ['ada']);
    expect(result).toEqual({ hello: 'ada', read: 'k' });
    expect(puts.at(-1)).toMatchObject({ key: 'greeting', value: { hello: 'ada' } });
  });
});
