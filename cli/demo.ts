/**
 * The demos `npm start` (`lfaas up --demo`) runs against the local cluster, through functions
 * deployed from examples/functions/ (bundled from their TypeScript sources by esbuild):
 *
 * 1. A shared counter: several clients call a function incrementing one key, concurrently.
 *    `counter-increment` merges a Counter lattice (every increment kept); `naive-increment` does a
 *    read-modify-write of a plain value (a last-writer-wins register: concurrent updates overwrite
 *    each other). Each key is then read back from every replica, and the lost updates printed.
 * 2. The DAG `square(increment(x))`, built with the typed builder and called for x = 1..5 and once
 *    asynchronously (its result delivered through the KVS).
 * 3. The sandbox: `escape-attempt` tries a constructor chain to `process`, the `process` global,
 *    prototype pollution and an endless loop; each ends in a typed error or nothing, and the
 *    executor serves the next call.
 * 4. Owners: tokens for alice and bob (signed with the cluster's token key); each deploys
 *    `read-key` in its namespace and writes a key there; bob's reads of alice's key, calls of
 *    her function and his function's read of her key are refused, hers work.
 * 5. The monitor and a hot key: one key is read far more than the others; the monitor (the
 *    cluster's own with --autoscale, else one the demo starts, with a low threshold) replicates it
 *    on every node and every shard of each, then, once the reads stop and it cools, puts it back;
 *    its events are printed from the KVS's event log (what `lfaas events` shows).
 * 6-8. Cold starts, Retwis and prediction serving (their own files).
 * 9. Around a function (developer-demo.ts): a call through the HTTP ingress, a thrown error's
 *    stack mapped to its `.ts` lines, its logs, an async call cancelled, the invocations listing.
 * 10. Operations (operations-demo.ts): a DAG call traced from the client through every hop and
 *    read back from the dashboard's trace store, an executor's per-function metrics, and every
 *    role's /healthz and /readyz.
 *
 * cli/ may not import examples/ (test/architecture.test.ts), so the function modules are found on
 * disk: beside the sources from `cli/*.ts`, and from `dist/cli/*.js` in the repository the build
 * ran in (the TypeScript sources, else their compiled `.js` under dist/examples/).
 */
import { Counter, HybridClock, LatticeFaas, LfaasError, Lww, dag } from '../client/index.js';
import { DEFAULT_POLICY, policyWith } from '../monitor/index.js';
import type { MonitorEvent } from '../monitor/index.js';
import { createToken } from '../protocol/index.js';
import { readTokenKeys } from './keys-commands.js';
import { readEvents, startMonitor } from './monitor.js';
import { predictDemo } from './predict-demo.js';
import { developerDemo } from './developer-demo.js';
import { operationsDemo } from './operations-demo.js';
import type { OperationsEndpoints } from './operations-demo.js';
import { exampleFunctionPath } from './example-paths.js';
import { roleSecurity } from './security.js';

const CLIENTS = 4;
const HOUR_MS = 3_600_000;
const CALLS = 25;

/**
 * Runs the demos (the client presents LFAAS_TOKEN, the admin token); `keys` (the cluster's keys
 * folder, with its token signing key) makes the owners' tokens of demo 4. Resolves with whether
 * every result was right.
 */
/** The demos by name, in the order `lfaas up --demo` runs them all. */
export const DEMO_NAMES = ['counter', 'dag', 'sandbox', 'owners', 'hotkey', 'coldstart', 'retwis', 'predict', 'developer', 'operations'] as const;
export type DemoName = (typeof DEMO_NAMES)[number];

export async function runDemos(routing: readonly string[], schedulers: readonly string[], keys: string, monitorRunning = false, only?: DemoName, ingress?: string, operations: OperationsEndpoints = {}): Promise<boolean> {
  const faas = await LatticeFaas.connect({ routing, schedulers });
  const demos: Record<DemoName, () => Promise<boolean>> = {
    counter: () => sharedCounterDemo(faas, routing, schedulers),
    dag: () => dagDemo(faas),
    sandbox: () => sandboxDemo(faas),
    owners: () => ownersDemo(routing, schedulers, keys),
    hotkey: () => hotKeyDemo(faas, routing, keys, monitorRunning),
    coldstart: () => coldStartDemo(faas),
    retwis: () => retwisDemo(faas),
    // Skipped in the full run unless the ML packages are installed; named, it installs them.
    predict: () => predictDemo(faas, only === 'predict'),
    developer: () => developerDemo(faas, ingress),
    operations: () => operationsDemo(faas, operations),
  };
  try {
    let ok = true;
    for (const name of only === undefined ? DEMO_NAMES : [only]) ok = (await demos[name]()) && ok;
    return ok;
  } finally {
    await faas.close();
  }
}

async function sharedCounterDemo(faas: LatticeFaas, routing: readonly string[], schedulers: readonly string[]): Promise<boolean> {
  const run = Date.now().toString(36);
  const counterKey = `demo:${run}:counter`;
  const naiveKey = `demo:${run}:naive`;
  const counterIncrement = await faas.register<(key: string) => Promise<number>>('counter-increment', exampleFunctionPath('counter-increment'));
  const naiveIncrement = await faas.register<(key: string) => Promise<number>>('naive-increment', exampleFunctionPath('naive-increment'));
  console.log(`\ndemo 1: a shared counter through functions: ${CLIENTS} clients x ${CALLS} calls each, concurrently`);
  console.log(`  deployed counter-increment v${counterIncrement.version} (ctx.increment: a Counter lattice, one writer per executor) and naive-increment v${naiveIncrement.version} (ctx.get, then ctx.put of value + 1)`);
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => LatticeFaas.connect({ routing, schedulers })));
  try {
    for (const [handle, key] of [
      [counterIncrement, counterKey],
      [naiveIncrement, naiveKey],
    ] as const) {
      await Promise.all(
        clients.map(async (client) => {
          for (let call = 0; call < CALLS; call++) await client.call(handle, [key]);
        }),
      );
    }
  } finally {
    await Promise.all(clients.map((client) => client.close()));
  }
  const expected = CLIENTS * CALLS;
  const replicas = await faas.kvs.replicasOf(counterKey);
  const counter = (await faas.kvs.getAll<Counter>(counterKey))?.reveal();
  const naive = (await faas.kvs.getAll<Lww<number>>(naiveKey))?.reveal() as number | undefined;
  const lost = (value: number | undefined): number => expected - Number(value ?? 0);
  console.log(`\n  function (value)                        value   expected  lost updates   (merged over ${replicas.length} replicas)`);
  console.log(`  counter-increment (Counter lattice)     ${String(counter).padEnd(7)} ${String(expected).padEnd(9)} ${lost(counter)}`);
  console.log(`  naive-increment (read-modify-write)     ${String(naive).padEnd(7)} ${String(expected).padEnd(9)} ${lost(naive)}`);
  // The naive value can lose updates, never gain them (a sync call runs at most once).
  const ok = counter === expected && typeof naive === 'number' && naive >= 1 && naive <= expected;
  console.log(
    ok
      ? `\n  counter-increment kept all ${expected} increments; naive-increment's read-modify-write lost ${lost(naive)} concurrent updates.`
      : `\n  wrong: the Counter holds ${String(counter)} (expected ${expected}), the naive value ${String(naive)} (expected 1 to ${expected}): this is a bug`,
  );
  return ok;
}

async function dagDemo(faas: LatticeFaas): Promise<boolean> {
  const increment = await faas.register<(x: number) => number, 'increment'>('increment', exampleFunctionPath('increment'));
  const square = await faas.register<(x: number) => number, 'square'>('square', exampleFunctionPath('square'));
  const composed = await faas.registerDag(dag('square-of-increment').fn(increment).fn(square, ['increment']).build());
  console.log(`\ndemo 2: the DAG square(increment(x)): dag('square-of-increment').fn(increment).fn(square, ['increment'])`);
  console.log('\n  x  square(increment(x))  expected');
  let ok = true;
  for (let x = 1; x <= 5; x++) {
    const result = await faas.callDag(composed, { increment: [x] });
    const expected = (x + 1) ** 2;
    ok &&= result === expected;
    console.log(`  ${x}  ${String(result).padEnd(20)}  ${expected}${result === expected ? '' : '   WRONG'}`);
  }
  const future = await faas.callDagAsync(composed, { increment: [6] });
  const asyncResult = await future.result({ timeoutMs: 30_000 });
  ok &&= asyncResult === 49;
  console.log(`  6  ${String(asyncResult).padEnd(20)}  49${asyncResult === 49 ? '' : '   WRONG'}   (callDagAsync: the result arrived through the KVS, key ${future.resultKey})`);
  console.log(ok ? '\n  every DAG result is right.' : '\n  a DAG result is wrong: this is a bug');
  return ok;
}

async function sandboxDemo(faas: LatticeFaas): Promise<boolean> {
  const attempt = await faas.register<(technique: string) => unknown, 'escape-attempt'>('escape-attempt', exampleFunctionPath('escape-attempt'), { timeoutMs: 500 });
  console.log('\ndemo 3: a function tries to leave its sandbox (examples/functions/escape-attempt.ts)\n');
  const cases: ReadonlyArray<readonly [technique: string, shown: string, expected: (outcome: string) => boolean]> = [
    ['constructor-chain', "setTimeout.constructor.constructor('return process')()", (outcome) => outcome.startsWith('EXEC_USER_ERROR')],
    ['process-global', 'typeof globalThis.process', (outcome) => outcome === '"undefined"'],
    ['prototype-pollution', 'Object.prototype.owned = true', (outcome) => outcome.startsWith('EXEC_USER_ERROR')],
    ['spin', 'for (;;) {} (timeout 500 ms)', (outcome) => outcome.startsWith('EXEC_TIMEOUT')],
  ];
  let ok = true;
  for (const [technique, shown, expected] of cases) {
    let outcome: string;
    try {
      outcome = JSON.stringify(await faas.call(attempt, [technique]));
    } catch (error) {
      outcome = error instanceof LfaasError ? `${error.code}: ${error.message}` : String(error);
    }
    const right = expected(outcome);
    ok &&= right;
    console.log(`  ${shown.padEnd(58)} -> ${outcome.slice(0, 90)}${right ? '' : '   UNEXPECTED'}`);
  }
  const after = await faas.call('square', [7]);
  ok &&= after === 49;
  console.log(`  then square(7) = ${after}${after === 49 ? '' : '   WRONG'}: the executor serves on.`);
  console.log(ok ? '\n  every attempt ended in a typed error or nothing.' : '\n  an attempt did something unexpected: this is a bug');
  return ok;
}

async function ownersDemo(routing: readonly string[], schedulers: readonly string[], keys: string): Promise<boolean> {
  const signing = readTokenKeys(keys, true);
  const tokenOf = (owner: string): string => createToken(signing, { owner, rights: ['deploy', 'call', 'read', 'write'], ttlSeconds: 600 });
  const alice = await LatticeFaas.connect({ routing, schedulers, token: tokenOf('alice') });
  const bob = await LatticeFaas.connect({ routing, schedulers, token: tokenOf('bob') });
  try {
    console.log('\ndemo 4: owners: tokens for alice and bob (lfaas token create); each owner\'s names live in its namespace\n');
    await alice.kvs.put('alice/diary', Lww.write(new HybridClock('demo', () => Date.now()), 'dear diary'), { ack: 'replicated' });
    await alice.register('alice/read-key', exampleFunctionPath('read-key'));
    await bob.register('bob/read-key', exampleFunctionPath('read-key'));
    const attempt = async (what: string, action: () => Promise<unknown>, expected: (outcome: string) => boolean): Promise<boolean> => {
      let outcome: string;
      try {
        outcome = JSON.stringify(await action());
      } catch (error) {
        outcome = error instanceof LfaasError ? error.code : String(error);
      }
      const right = expected(outcome);
      console.log(`  ${what.padEnd(58)} -> ${outcome.slice(0, 60)}${right ? '' : '   UNEXPECTED'}`);
      return right;
    };
    const results = [
      await attempt("alice: kvs get alice/diary", async () => (await alice.kvs.get('alice/diary'))?.reveal(), (o) => o === '"dear diary"'),
      await attempt("alice: call alice/read-key('alice/diary')", () => alice.call('alice/read-key', ['alice/diary']), (o) => o === '"dear diary"'),
      await attempt("bob:   kvs get alice/diary", async () => (await bob.kvs.get('alice/diary'))?.reveal(), (o) => o === 'UNAUTHORISED'),
      await attempt("bob:   kvs put alice/diary", () => bob.kvs.put('alice/diary', Lww.write(new HybridClock('bob', () => Date.now()), 'bob was here')), (o) => o === 'UNAUTHORISED'),
      await attempt("bob:   call alice/read-key('alice/diary')", () => bob.call('alice/read-key', ['alice/diary']), (o) => o === 'UNAUTHORISED'),
      await attempt("bob:   call bob/read-key('alice/diary') (runs as bob)", () => bob.call('bob/read-key', ['alice/diary']), (o) => o === '"UNAUTHORISED"'),
      await attempt("bob:   list alice's functions", () => bob.functions('alice/'), (o) => o === 'UNAUTHORISED'),
      await attempt("alice: kvs get alice/diary again (unchanged)", async () => (await alice.kvs.get('alice/diary'))?.reveal(), (o) => o === '"dear diary"'),
    ];
    const ok = results.every(Boolean);
    console.log(ok ? '\n  each owner reached only its own namespace.' : '\n  an owner reached another\'s namespace, or not its own: this is a bug');
    return ok;
  } finally {
    await alice.close();
    await bob.close();
  }
}

/** Polls (every 200 ms, at most `timeoutMs`) until `condition` holds; whether it did. */
async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return condition();
}

async function hotKeyDemo(faas: LatticeFaas, routing: readonly string[], keys: string, monitorRunning: boolean): Promise<boolean> {
  const run = Date.now().toString(36);
  const hot = `demo:${run}:hot`;
  const clock = new HybridClock('demo', () => Date.now());
  // Without --autoscale, a monitor of the demo's own (no node provider; roles held where they are).
  const security = roleSecurity('monitor', { keys });
  const monitor = monitorRunning
    ? undefined
    : await startMonitor({
        name: `demo-${process.pid}`,
        keyPair: security.keyPair,
        shell: security.shell,
        routing,
        schedulers: [],
        // Hot keys only: the roles' conditions would have to hold for an hour.
        policy: policyWith({ hotKeys: { hotRateMin: 50, coolSustainMs: 3000, replicas: 3 }, storage: { upSustainMs: HOUR_MS, downSustainMs: HOUR_MS }, executor: { upSustainMs: HOUR_MS, downSustainMs: HOUR_MS } }, DEFAULT_POLICY),
        provider: undefined,
        periodMs: 500,
        log: () => {},
      });
  try {
    console.log(`\ndemo 5: a hot key: ${hot} is read 20 times for each read of one of 40 other keys; the monitor${monitorRunning ? '' : ' (one the demo starts: hot at 50 reads/s, cool after 3 s)'} replicates it on more nodes, then puts it back once cool\n`);
    await faas.kvs.put(hot, Lww.write(clock, 'hot'), { ack: 'replicated' });
    for (let i = 0; i < 40; i++) await faas.kvs.put(`demo:${run}:cold-${i}`, Lww.write(clock, i), { ack: 'replicated' });
    const before = (await faas.kvs.replicasOf(hot)).length;
    console.log(`  ${hot}: ${before} replica shards`);
    let reading = true;
    const reader = (async () => {
      for (let i = 0; reading && i < 200_000; i++) {
        await Promise.all([faas.kvs.get(hot), ...(i % 20 === 0 ? [faas.kvs.get(`demo:${run}:cold-${(i / 20) % 40}`)] : [])]);
      }
    })();
    const raised = await until(async () => (await faas.kvs.replicasOf(hot)).length > before, 20_000);
    reading = false;
    await reader;
    const during = (await faas.kvs.replicasOf(hot)).length;
    console.log(`  while read hundreds of times a second: ${during} replica shards (every node, every shard of each)${raised ? '' : '   UNEXPECTED (not raised within 20 s)'}`);
    let lowered = true;
    if (!monitorRunning) {
      console.log('  reads stopped; waiting for it to cool (shards\' access rates decay with a 10 s half-life: about 25 s)...');
      const stoppedMs = Date.now();
      lowered = await until(async () => (await faas.kvs.replicasOf(hot)).length === before, 60_000);
      console.log(`  cooled ${((Date.now() - stoppedMs) / 1000).toFixed(0)} s after the last read: ${(await faas.kvs.replicasOf(hot)).length} replica shards${lowered ? '' : '   UNEXPECTED (not lowered within 60 s)'}`);
    }
    // The monitor appends an action's event once the action returned: the ring may show the
    // change a moment before the log holds it. Wait (bounded) for every outcome expected.
    const expected = monitorRunning ? 1 : 2;
    const outcomes = async (): Promise<MonitorEvent[]> => (await readEvents(faas.kvs)).filter((event) => event.node === hot);
    await until(async () => (await outcomes()).filter((event) => event.kind === 'done').length >= expected, 10_000);
    const events = await outcomes();
    console.log('  the monitor\'s events about it (lfaas events):');
    for (const event of events) console.log(`    ${new Date(event.atMs).toISOString().slice(11, 23)}  ${event.kind} ${event.action ?? ''}: ${event.reason}`);
    const ok = raised && lowered && events.length > 0;
    if (!ok) console.log('\n  the hot key was not replicated and put back as expected: this is a bug');
    return ok;
  } finally {
    await monitor?.stop();
  }
}

/**
 * Demo 6: a DAG of three steps whose runtimes went cold (a 1 s keep-alive) is called once: its
 * first step loads from a stem cell while the executor prepares the other two (prewarm along the
 * DAG), so the cold call costs about one cold start more than a warm one, not three.
 */
async function coldStartDemo(faas: LatticeFaas): Promise<boolean> {
  const step = 'module.exports = (x) => { const end = Date.now() + 20; while (Date.now() < end) {} return x + 1; };';
  const options = { keepAliveMs: 1000, timeoutMs: 10_000 };
  const a = await faas.register('cold-a', { code: step }, options);
  const b = await faas.register('cold-b', { code: step }, options);
  const c = await faas.register('cold-c', { code: step }, options);
  const chain = await faas.registerDag(dag('cold-chain').fn(a).fn(b, ['cold-a']).fn(c, ['cold-b']).build());
  console.log('\ndemo 6: cold starts: the DAG cold-a -> cold-b -> cold-c (20 ms of work each), called once after its runtimes went cold (keep-alive 1 s)\n');
  // Registration prepared the functions on two executors; the 1 s keep-alive unloads them.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  let started = performance.now();
  const coldResult = await faas.callDag(chain, { 'cold-a': [0] });
  const coldMs = performance.now() - started;
  const warm: number[] = [];
  let ok = coldResult === 3;
  for (let i = 0; i < 5; i++) {
    started = performance.now();
    ok &&= (await faas.callDag(chain, { 'cold-a': [0] })) === 3;
    warm.push(performance.now() - started);
  }
  warm.sort((x, y) => x - y);
  console.log(`  cold call (cold-a loaded from a stem cell; cold-b and cold-c prepared while it ran):  ${coldMs.toFixed(1)} ms -> ${coldResult}`);
  console.log(`  warm calls, median of 5:                                                             ${warm[2]!.toFixed(1)} ms -> 3`);
  console.log(ok ? '\n  every cold-chain result is right (lfaas_executor_prewarms_total on the executors\' metrics counts the prepared steps).' : '\n  a cold-chain result is WRONG: this is a bug');
  return ok;
}

/**
 * Demo 7: Retwis (examples/retwis/, a Twitter clone on lattices): three users follow each other,
 * post and reply; ada's timeline is read in the causal mode, a reply shown with the post it
 * answers. The functions are registered from their modules (the CLI does not import examples/).
 */
async function retwisDemo(faas: LatticeFaas): Promise<boolean> {
  type Post = { id: string; author: string; text: string; replyTo: { author: string; text: string } | null };
  const names = { register: 'register-user', follow: 'follow', post: 'post', timeline: 'timeline' } as const;
  const handles = Object.fromEntries(
    await Promise.all(Object.entries(names).map(async ([role, file]) => [role, await faas.register(`retwis-${file === 'register-user' ? 'register' : file}`, exampleFunctionPath(file, 'retwis'), { timeoutMs: 10_000 })] as const)),
  ) as Record<keyof typeof names, { name: string; version: number }>;
  // Users of this run only (a data folder keeps earlier runs' users and posts).
  const run = Date.now().toString(36);
  const [ada, bob, cy] = ['ada', 'bob', 'cy'].map((name) => `${name}_${run}`) as [string, string, string];
  console.log(`\ndemo 7: Retwis (examples/retwis/): ${ada} follows ${bob} and ${cy}; they post, ${cy} replies to ${bob}; ${ada}'s timeline, read in the causal mode\n`);
  for (const [user, name] of [[ada, 'Ada'], [bob, 'Bob'], [cy, 'Cy']]) await faas.call(handles.register, [user, name]);
  await faas.call(handles.follow, [ada, bob]);
  await faas.call(handles.follow, [ada, cy]);
  const first = (await faas.call(handles.post, [bob, 'lattices merge', null])) as { id: string };
  await faas.call(handles.post, [cy, 'and never lose a write', first.id]);
  await faas.call(handles.post, [bob, 'functions share state', null]);
  // A post made on one executor reaches the other executors' caches a moment later (the
  // timeline leaves out what it cannot read yet): the read is repeated until all three show, for
  // a bounded time, and the wait is said. Causality is what is checked: a reply with its post.
  const expected = 'functions share state|and never lose a write|lattices merge';
  const started = performance.now();
  let timeline: { posts: Post[] };
  let reads = 0;
  do {
    if (reads > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    timeline = (await faas.call(handles.timeline, [ada, 10, null], { consistency: 'causal' })) as { posts: Post[] };
    reads++;
  } while (timeline.posts.map((post) => post.text).join('|') !== expected && performance.now() - started < 5000);
  for (const post of timeline.posts) console.log(`  ${post.author.padEnd(12)} ${post.text}${post.replyTo === null ? '' : `   (reply to ${post.replyTo.author}: "${post.replyTo.text}")`}`);
  if (reads > 1) console.log(`  (read ${reads} times over ${(performance.now() - started).toFixed(0)} ms: the last post reached the reading executor's cache after propagation)`);
  const texts = timeline.posts.map((post) => post.text);
  const ok = texts.join('|') === expected && timeline.posts[1]?.replyTo?.text === 'lattices merge';
  console.log(ok ? `\n  ${ada}'s timeline is right: newest first, the reply linked to its post.` : `\n  the timeline is WRONG: ${JSON.stringify(texts)}`);
  return ok;
}
