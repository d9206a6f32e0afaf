/**
 * Distributed tracing over real processes (docs/observability-tracing.md): every role of a
 * cluster exports its spans (sampled at 1) as OTLP/HTTP JSON to a receiver this test runs on
 * 127.0.0.1, and so does this test's client (its own provider, `startClientTracing`). A call of a
 * function that reads and writes keys, and a call of a 2-function DAG whose functions run on
 * different executors, each make ONE trace holding the client's span, the scheduler's, the
 * executors' runs of every function (the trigger carried the context on), and the function's KVS
 * reads and writes with their `cache.hit`. With tracing off (no endpoint), calls work and nothing
 * is exported.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dag } from '../client/index.js';
import type { LatticeFaas } from '../client/index.js';
import { startClientTracing } from '../cli/index.js';
import type { StopTracing } from '../cli/index.js';
import { CLI, FaasCluster, eventually, untilServing } from './cluster.js';
import { code } from './wire-faults.js';

interface ReceivedSpan {
  readonly service: string;
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly name: string;
  readonly attributes: Record<string, unknown>;
}

type OtlpValue = { stringValue?: string; boolValue?: boolean; intValue?: string | number; doubleValue?: number };
type OtlpAttribute = { key: string; value: OtlpValue };
interface OtlpBody {
  resourceSpans?: { resource?: { attributes?: OtlpAttribute[] }; scopeSpans?: { spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string; attributes?: OtlpAttribute[] }[] }[] }[];
}

const valueOf = (value: OtlpValue): unknown => value.stringValue ?? value.boolValue ?? (value.intValue === undefined ? value.doubleValue : Number(value.intValue));
const attributesOf = (list: readonly OtlpAttribute[] | undefined): Record<string, unknown> => Object.fromEntries((list ?? []).map((entry) => [entry.key, valueOf(entry.value)]));

/** An OTLP/HTTP JSON traces receiver on 127.0.0.1: keeps every span it is sent (bounded). */
class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      request.on('data', (chunk: Buffer) => {
        size += chunk.byteLength;
        if (size <= 16 * 1024 * 1024) chunks.push(chunk);
      });
      request.on('end', () => {
        this.requests++;
        try {
          let body = Buffer.concat(chunks);
          if (request.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
          const parsed = JSON.parse(body.toString('utf8')) as OtlpBody;
          for (const resource of parsed.resourceSpans ?? []) {
            const service = String(attributesOf(resource.resource?.attributes)['service.name'] ?? '');
            for (const scope of resource.scopeSpans ?? []) {
              for (const span of scope.spans ?? []) {
                if (this.spans.length < 100_000) this.spans.push({ service, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId ?? '', name: span.name, attributes: attributesOf(span.attributes) });
              }
            }
          }
          response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        } catch {
          response.writeHead(400).end();
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    return `http://127.0.0.1:${address.port}/v1/traces`;
  }

  inTrace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((span) => span.traceId === traceId);
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }
}

const TRACE_ENV = ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'LFAAS_TRACE_SAMPLE'] as const;

describe('tracing over real processes', () => {
  const receiver = new OtlpReceiver();
  const cluster = new FaasCluster();
  let faas: LatticeFaas;
  let stopTracing: StopTracing | undefined;
  let endpoint = '';
  const saved = Object.fromEntries(TRACE_ENV.map((name) => [name, process.env[name]]));

  beforeAll(async () => {
    endpoint = await receiver.start();
    // The roles inherit the environment: every one exports, sampling every call.
    process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] = endpoint;
    process.env['LFAAS_TRACE_SAMPLE'] = '1';
    // Executors with no prewarm and one worker each: the DAG's two functions land on both.
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 2, workers: 2 });
    for (const name of TRACE_ENV) delete process.env[name];
    faas = await cluster.connect();
    await untilServing(faas);
    stopTracing = await startClientTracing({ endpoint, sample: 1, serviceName: 'tracing-test' });
  }, 90_000);

  afterAll(async () => {
    await stopTracing?.();
    await faas?.close();
    await cluster.stop();
    await receiver.stop();
    for (const name of TRACE_ENV) if (saved[name] === undefined) delete process.env[name];
    else process.env[name] = saved[name];
  }, 60_000);

  /** The trace id of the client span the call made (the client's own spans are the roots). */
  const clientTrace = async (name: string, since: number): Promise<string> => {
    let found: ReceivedSpan | undefined;
    await eventually(() => (found = receiver.spans.slice(since).find((span) => span.service === 'tracing-test' && span.name === name)) !== undefined, 15_000);
    expect(found, `the client exported its ${name} span`).toBeDefined();
    return found!.traceId;
  };

  it('makes one trace of a call: client, scheduler, executor run, and the KVS reads and writes with cache.hit', async () => {
    const fn = await faas.register('traced-kv', code('async (key, ctx) => { const before = await ctx.get(key); await ctx.put(key, (before ?? 0) + 1); const again = await ctx.get(key); return again; }'));
    const since = receiver.spans.length;
    expect(await faas.call(fn, ['traced/counter'])).toBe(1);
    const traceId = await clientTrace('lfaas.call', since);
    const wanted = (spans: ReceivedSpan[]): boolean =>
      spans.some((span) => span.service === 'lfaas-scheduler' && span.name === 'lfaas.schedule') &&
      spans.some((span) => span.service === 'lfaas-executor' && span.name === 'lfaas.run') &&
      spans.filter((span) => span.name === 'lfaas.ctx.get').length >= 2 &&
      spans.some((span) => span.name === 'lfaas.ctx.put');
    await eventually(() => wanted(receiver.inTrace(traceId)), 20_000);
    const spans = receiver.inTrace(traceId);
    expect(wanted(spans), `spans of the trace: ${spans.map((span) => `${span.service}:${span.name}`).join(', ')}`).toBe(true);
    const run = spans.find((span) => span.name === 'lfaas.run')!;
    expect(run.attributes).toMatchObject({ 'lfaas.function': expect.stringContaining('traced-kv') as unknown, 'lfaas.version': 1 });
    expect(typeof run.attributes['lfaas.cold']).toBe('boolean');
    const reads = spans.filter((span) => span.name === 'lfaas.ctx.get');
    for (const read of reads) {
      expect(typeof read.attributes['cache.hit']).toBe('boolean');
      expect(read.parentSpanId).toBe(run.spanId);
      // The key is recorded as a hash only.
      expect(read.attributes['lfaas.key.hash']).toMatch(/^[0-9a-f]{16}$/);
      expect(JSON.stringify(read.attributes)).not.toContain('traced/counter');
    }
    // The first read of a new key asks the KVS (a miss).
    expect(reads.some((read) => read.attributes['cache.hit'] === false)).toBe(true);
    // The executor's run is a child of the scheduler's span, itself a child of the client's.
    const schedule = spans.find((span) => span.name === 'lfaas.schedule')!;
    expect(run.parentSpanId).toBe(schedule.spanId);
    const client = spans.find((span) => span.service === 'tracing-test' && span.name === 'lfaas.call')!;
    expect(schedule.parentSpanId).toBe(client.spanId);
    // A KVS miss went to the storage node under the same trace (the executor's KVS client span).
    expect(spans.some((span) => span.service === 'lfaas-executor' && (span.name === 'lfaas.kvs.get' || span.name === 'lfaas.kvs.put'))).toBe(true);
  }, 60_000);

  it('marks reads the executor cache answered cache.hit', async () => {
    const fn = await faas.register('traced-reader', code('async (key, ctx) => { await ctx.get(key); return 1; }'));
    const hits = (): ReceivedSpan[] => receiver.spans.filter((span) => span.name === 'lfaas.ctx.get' && span.attributes['cache.hit'] === true);
    // Read again and again: once an executor caches the key (its first read subscribed it), its reads are hits.
    for (let attempt = 0; attempt < 20 && hits().length === 0; attempt++) {
      await faas.call(fn, ['traced/read-often']);
      await eventually(() => hits().length > 0, 1500);
    }
    expect(hits().length).toBeGreaterThan(0);
  }, 60_000);

  it('makes one trace of a DAG call: the trigger carries the context to the next function', async () => {
    const first = await faas.register<(x: number) => number, 'traced-first'>('traced-first', code('(x) => x + 1'));
    const second = await faas.register<(x: number) => number, 'traced-second'>('traced-second', code('(x) => x * 10'));
    const pipeline = await faas.registerDag(dag('traced-pipeline').fn(first).fn(second, ['traced-first']).build());
    const since = receiver.spans.length;
    expect(await faas.callDag(pipeline, { 'traced-first': [4] })).toBe(50);
    const traceId = await clientTrace('lfaas.dag_call', since);
    const runs = (): ReceivedSpan[] => receiver.inTrace(traceId).filter((span) => span.name === 'lfaas.run');
    await eventually(() => runs().length >= 2, 20_000);
    const byFunction = new Map(runs().map((span) => [String(span.attributes['lfaas.function']), span]));
    const firstRun = [...byFunction.entries()].find(([name]) => name.endsWith('traced-first'))?.[1];
    const secondRun = [...byFunction.entries()].find(([name]) => name.endsWith('traced-second'))?.[1];
    expect(firstRun, `runs: ${[...byFunction.keys()].join(', ')}`).toBeDefined();
    expect(secondRun).toBeDefined();
    // The second function's run is the child of the first's: its trigger carried the context.
    expect(secondRun!.parentSpanId).toBe(firstRun!.spanId);
    expect(receiver.inTrace(traceId).some((span) => span.service === 'lfaas-scheduler')).toBe(true);
  }, 60_000);

  it('lfaas call --trace prints the trace id, and that trace holds the CLI\'s, the scheduler\'s and the executor\'s spans', async () => {
    await faas.register('traced-cli', code('(x) => x * 3'));
    const env = { ...process.env, LFAAS_ROUTING: cluster.routingAddresses.join(','), LFAAS_SCHEDULERS: cluster.schedulerAddresses.join(',') };
    // Not spawnSync: this process's receiver must answer the CLI's export meanwhile.
    const ran = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, '--otlp-endpoint', endpoint, 'call', 'traced-cli', '5', '--trace'], { env, encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => resolve({ status: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }));
    });
    expect(ran.status, ran.stderr).toBe(0);
    expect(ran.stdout.trim()).toBe('15');
    const traceId = /trace ([0-9a-f]{32})/.exec(ran.stderr)?.[1];
    expect(traceId, ran.stderr).toBeDefined();
    const services = (): Set<string> => new Set(receiver.inTrace(traceId!).map((span) => span.service));
    await eventually(() => ['lfaas-cli', 'lfaas-scheduler', 'lfaas-executor'].every((service) => services().has(service)), 20_000);
    expect([...services()].sort()).toEqual(expect.arrayContaining(['lfaas-cli', 'lfaas-scheduler', 'lfaas-executor']));
  }, 60_000);
});

describe('tracing off', () => {
  const receiver = new OtlpReceiver();
  const cluster = new FaasCluster();
  let faas: LatticeFaas;

  beforeAll(async () => {
    await receiver.start();
    for (const name of TRACE_ENV) delete process.env[name];
    await cluster.startAll({ nodes: 1, schedulers: 1, executors: 1, workers: 2 });
    faas = await cluster.connect();
    await untilServing(faas);
  }, 90_000);

  afterAll(async () => {
    await faas?.close();
    await cluster.stop();
    await receiver.stop();
  }, 60_000);

  it('works and exports nothing without an endpoint', async () => {
    const fn = await faas.register('untraced-kv', code('async (key, ctx) => { await ctx.put(key, 7); return ctx.get(key); }'));
    expect(await faas.call(fn, ['untraced/key'])).toBe(7);
    const first = await faas.register<(x: number) => number, 'untraced-a'>('untraced-a', code('(x) => x + 1'));
    const second = await faas.register<(x: number) => number, 'untraced-b'>('untraced-b', code('(x) => x * 2'));
    const pipeline = await faas.registerDag(dag('untraced-pipeline').fn(first).fn(second, ['untraced-a']).build());
    expect(await faas.callDag(pipeline, { 'untraced-a': [1] })).toBe(4);
    // Nothing was configured to send here, and nothing did (the roles' spans are no-ops).
    expect(receiver.requests).toBe(0);
  }, 60_000);
});
