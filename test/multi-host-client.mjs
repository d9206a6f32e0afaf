// The client of test/multi-host.test.ts, run on its own host (`ip netns exec <h7> node this.mjs
// <json>`): it knows only the routing node (LatticeFaas.connect({ routing }): the schedulers are
// discovered), waits for the cluster to look as the test says (executors a scheduler counts, storage
// nodes holding keys), then runs the shared-counter demo (N concurrent ctx.increment calls, the
// total read back exact) and the DAG square(increment(x)), and prints `result <json>`.
// Every wait is bounded by the budget the test gives.
const config = JSON.parse(process.argv[2]);
const { LatticeFaas, askServices, dag } = await import(config.client);
const { Rpc, bindTransport, generateKeyPair, systemClock } = await import(config.protocol);

const deadline = Date.now() + config.budgetMs;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (msg) => process.stderr.write(`client ${config.phase}: ${msg}\n`);

/** Polls `condition` every 200 ms until it holds or the budget is spent; returns whether it held. */
async function until(what, condition) {
  let last;
  for (let round = 0; Date.now() < deadline && round < 100_000; round++) {
    try {
      if (await condition()) return true;
    } catch (error) {
      last = error;
    }
    await sleep(200);
  }
  log(`gave up waiting for ${what}${last === undefined ? '' : `: ${last.message}`}`);
  return false;
}

const faas = await LatticeFaas.connect({ routing: config.routing, host: config.host, connectTimeoutMs: 10_000 });
const result = { phase: config.phase };
try {
  // The cluster as the test expects it: the scheduler counts the live executors, and every key's
  // replicas are on the live storage hosts only.
  result.executorsSeen = await until(`${config.executors} executors at the scheduler`, async () => {
    const text = await (await fetch(config.schedulerMetrics)).text();
    const line = text.split('\n').find((row) => row.startsWith('lfaas_scheduler_executors{') || row.startsWith('lfaas_scheduler_executors '));
    return line !== undefined && Number(line.split(' ').pop()) === config.executors;
  });
  // What the routing node lists (discovery), asked on a socket of the client's own.
  const rpc = new Rpc(await bindTransport({ host: config.host, port: 0, keyPair: generateKeyPair() }), systemClock);
  try {
    result.services = await askServices(rpc, config.routing);
  } finally {
    await rpc.close();
    await rpc.transport.close();
  }
  result.storageSeen = await until(`replicas on ${config.storageHosts.join(',')} only`, async () => {
    const replicas = await faas.kvs.replicasOf(`probe:${config.phase}`);
    const hosts = new Set(replicas.map((address) => new URL(address.replace(/#.*/, '')).hostname));
    return hosts.size === config.storageHosts.length && config.storageHosts.every((host) => hosts.has(host));
  });
  const increment = await faas.register('increment', config.functions.increment);
  const square = await faas.register('square', config.functions.square);
  const counter = await faas.register('counter-increment', config.functions.counter);
  const composed = await faas.registerDag(dag(`square-of-increment-${config.phase}`).fn(increment).fn(square, ['increment']).build());
  // Serving: a call placed on each side answers (warm-up; retried while runtimes start).
  result.serving = await until('square(3) = 9', async () => (await faas.call(square, [3], { timeoutMs: 5000 })) === 9);

  const key = `multi-host:${config.phase}:${Date.now().toString(36)}`;
  // As the demo: `lanes` callers at once, each making its calls one after another.
  result.callsFailed = [];
  await Promise.all(
    Array.from({ length: config.lanes }, async () => {
      for (let call = 0; call < config.calls / config.lanes; call++) {
        await faas.call(counter, [key], { timeoutMs: 15_000 }).catch((error) => result.callsFailed.push(String(error?.code ?? error)));
      }
    }),
  );
  result.expected = config.calls;
  await until(`the counter at ${config.calls}`, async () => Number((await faas.kvs.getAll(key))?.reveal()) >= config.calls);
  result.counter = Number((await faas.kvs.getAll(key))?.reveal());

  result.dag = [];
  for (let x = 1; x <= 4; x++) result.dag.push(await faas.callDag(composed, { increment: [x] }, { timeoutMs: 15_000 }));

  // Through the HTTP ingress (it found the scheduler through the routing node too).
  if (config.ingress !== undefined) {
    const response = await fetch(`${config.ingress}/v1/functions/square/call`, { method: 'POST', headers: { authorization: `Bearer ${process.env.LFAAS_TOKEN}`, 'content-type': 'application/json' }, body: '[5]' });
    result.ingress = response.status === 200 ? await response.json() : `${response.status} ${await response.text()}`;
  }
} catch (error) {
  result.error = `${error?.code ?? ''} ${error?.message ?? error}`;
} finally {
  await faas.close();
}
process.stdout.write(`result ${JSON.stringify(result)}\n`);
process.exit(0);
